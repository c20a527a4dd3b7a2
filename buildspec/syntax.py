"""Stage 1: Buildfile text -> syntax tree (syntax_tree.py: small frozen dataclasses with spans).

The language is defined by its LALR grammar (grammar/buildfile.lark), parsed with Lark
(syntax_lark.py), whose exceptions become readable errors (syntax_errors.py). Lark in
pure Python was half of `plan`'s time on large files (about 10 microseconds a token), so
``parse`` first runs a small hand-written parser of the same grammar (syntax_fast.py,
about ten times faster, and Lark need not even be imported): it takes on the common,
valid constructs and hands anything else, every error included, to Lark. Both must build
the very same tree: tests/unit/test_syntax_fast.py compares them on every Buildfile of
the repository, generated large ones and fuzzed mutations.
"""

from __future__ import annotations

from pathlib import Path

from buildspec.errors import BuildfileError, Span
from buildspec.syntax_fast import Unsupported, parse_fast
from buildspec.syntax_tree import (
    Assign,
    Block,
    BoolOp,
    Call,
    Compare,
    Condition,
    ListValue,
    NamedAssign,
    NameRef,
    Not,
    SourceFile,
    Statement,
    Str,
    TagLine,
    TagOption,
    Value,
    Word,
)

__all__ = [
    "Assign",
    "Block",
    "BoolOp",
    "Call",
    "Compare",
    "Condition",
    "ListValue",
    "NameRef",
    "NamedAssign",
    "Not",
    "SourceFile",
    "Statement",
    "Str",
    "TagLine",
    "TagOption",
    "Value",
    "Word",
    "parse",
    "read_source",
]


def read_source(path: Path, display: str) -> str:
    """Read a Buildfile as UTF-8, or raise a BuildfileError that says why not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BuildfileError(f"no Buildfile at '{display}'", Span(display, 0, 0),
                             hint="pass another file with -f FILE") from None
    except IsADirectoryError:
        raise BuildfileError(f"'{display}' is a directory, not a Buildfile",
                             Span(display, 0, 0)) from None
    except OSError as e:
        raise BuildfileError(f"cannot read '{display}': {e.strerror}", Span(display, 0, 0)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        column = e.start - (before.rfind(b"\n") + 1) + 1
        raise BuildfileError(
            f"the Buildfile is not valid UTF-8 (byte 0x{data[e.start]:02x})",
            Span(display, line, column),
            hint="save the file as UTF-8",
        ) from None


def parse(text: str, file: str = "Buildfile") -> SourceFile:
    """Parse Buildfile text into syntax nodes; raise BuildfileError on a syntax error."""
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise BuildfileError("the Buildfile contains a NUL byte", Span(file, line, column),
                             hint="is it a binary file? a Buildfile is UTF-8 text")
    try:
        statements = parse_fast(text, file)
    except Unsupported:
        # Lark is the language's definition: whatever the fast parser does not take on
        # (every syntax error, a keyword used as a name) is parsed, or reported, by Lark.
        from buildspec.syntax_lark import parse_statements

        statements = parse_statements(text, file)
    _check_conditions(statements, text)
    return SourceFile(file, text, statements)


MAX_CONDITION_DEPTH = 100  # later stages walk conditions recursively


def _check_conditions(statements: tuple[Statement, ...], text: str) -> None:
    """Catch a condition that ran on into the next tag line, or that nests absurdly deep.

    Newlines are not significant, so in ``"a" if git.branch ==`` followed by a
    line ``"b"``, the template ``"b"`` becomes the right-hand side of ``==``
    and silently disappears. A string that starts a line inside a condition is
    that mistake: nobody writes a condition's operand at the start of a line.
    The depth limit keeps every later (recursive) walk of a condition safe.
    """
    lines = text.split("\n")
    blocks = [s for s in statements if isinstance(s, Block)]
    while blocks:
        block = blocks.pop()
        for item in block.items:
            if isinstance(item, Block):
                blocks.append(item)
            elif isinstance(item, TagLine) and item.condition is not None:
                for node in _condition_strings(item.condition, item):
                    line = lines[node.span.line - 1] if node.span.line <= len(lines) else ""
                    if not line[: node.span.column - 1].strip():
                        from buildspec.syntax_errors import swallowed_line

                        raise swallowed_line(node, item, text)


def _condition_strings(condition: Condition, item: TagLine) -> list[Str]:
    """The strings in a condition, in order (iteratively: a condition may be deep)."""
    found: list[Str] = []
    stack: list[tuple[Condition | Value, int]] = [(condition, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONDITION_DEPTH:
            raise BuildfileError(f"the condition of this tag nests more than {MAX_CONDITION_DEPTH} levels deep",
                                 item.span, hint="simplify it")
        if isinstance(node, Str):
            found.append(node)
        elif isinstance(node, Not):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, BoolOp | Compare):
            stack.extend([(node.right, depth + 1), (node.left, depth + 1)])
        elif isinstance(node, Call):
            stack.extend((arg, depth + 1) for arg in reversed(node.args))
    return found
