"""``buildspec fmt``: one canonical layout for a Buildfile, comments kept.

The layout (the one docs/language.md and examples/ use):

* 4 spaces per block level; one statement or item per line;
* ``=`` aligned within each run of consecutive one-line assignments of a block
  (a blank line or a multi-line item ends the run, as gofmt does), and the
  ``if`` of tag lines aligned the same way, two spaces after the longest template;
* top-level blocks separated from their neighbours by exactly one blank line;
  elsewhere at most one blank line is kept where the author put one;
* keys unquoted where they are plain names, except in ``labels`` (whose keys
  are OCI label names and stay quoted); values, strings and words as written;
* a nested block with one item written on one line stays on one line
  (``args { BASE = image(base) }``); a list written over several lines stays
  one item per line with a trailing comma, else it is written on one line;
* comments stay where they were: a comment on its own line stays above what
  followed it, a comment after code stays at the end of that line (trailing
  comments of consecutive lines aligned). A comment inside an expression that
  is written on one line (a call or condition spread over lines) moves to the
  line above that statement: it is never dropped.

The formatter works on the syntax tree of ``syntax.parse`` (so whatever parses
is formatted, even a Buildfile with semantic mistakes) plus the comments and
line positions from a small scanner. Before returning, it parses its own output
and checks that the tree (without positions) and the comments are the same:
a formatter bug is an error, never a silently changed Buildfile.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildspec.errors import BuildfileError, BuildspecError
from buildspec.fmt.layout import Comment, Formatter, Source
from buildspec.syntax import (
    Assign,
    Block,
    BoolOp,
    Call,
    Compare,
    ListValue,
    NamedAssign,
    NameRef,
    Not,
    SourceFile,
    Str,
    TagLine,
    Word,
    parse,
    read_source,
)


def format_text(text: str, file: str = "Buildfile") -> str:
    """The canonical layout of ``text``; raises BuildfileError when it does not parse."""
    text = text.replace("\r\n", "\n")
    source = parse(text, file)
    formatter = Formatter(Source.scan(text))
    formatted = formatter.file(source)
    _verify(source, formatted, file, formatter.source.comments)
    return formatted



class FormatterBug(BuildspecError):
    """The formatted text would not mean the same as the input (never expected)."""




# ---------------------------------------------------------------- self-check


def _shape(node: Any) -> Any:
    """A node as plain data without positions (and without the raw text of a string key)."""
    if isinstance(node, tuple):
        return tuple(_shape(n) for n in node)
    if isinstance(node, Str):
        return ("Str", node.raw)
    if isinstance(node, Word):
        return ("Word", node.text)
    if isinstance(node, NameRef):
        return ("Name", node.path)
    if isinstance(node, ListValue):
        return ("List", _shape(node.items))
    if isinstance(node, Call):
        return ("Call", node.name, _shape(node.args))
    if isinstance(node, Not):
        return ("Not", _shape(node.operand))
    if isinstance(node, BoolOp | Compare):
        return (node.op, _shape(node.left), _shape(node.right))
    if isinstance(node, Assign):
        return ("Assign", node.key, _shape(node.value))
    if isinstance(node, NamedAssign):
        return ("NamedAssign", node.kind, node.name, _shape(node.value))
    if isinstance(node, TagLine):
        options = tuple((o.name, None if o.value is None else _shape(o.value)) for o in node.options)
        return ("Tag", _shape(node.template), options, None if node.condition is None else _shape(node.condition))
    if isinstance(node, Block):
        return ("Block", node.kind, node.label, _shape(node.items))
    raise TypeError(type(node).__name__)


def _verify(before: SourceFile, formatted: str, file: str, comments: list[Comment]) -> None:
    try:
        after = parse(formatted, file)
    except BuildfileError as e:
        raise FormatterBug(f"{file}: the formatted text does not parse ({e.message}); please report this") from None
    if _shape(before.statements) != _shape(after.statements):
        raise FormatterBug(f"{file}: formatting would change the meaning of the file; please report this")
    if sorted(c.text for c in comments) != sorted(c.text for c in Source.scan(formatted).comments):
        raise FormatterBug(f"{file}: formatting would lose or split a comment; please report this")


# ---------------------------------------------------------------- the command


@dataclass(frozen=True)
class FmtResult:
    changed: list[str]  # files whose layout is not (or was not) canonical
    output: str  # what goes to stdout: diffs, or the formatted text of stdin


def run_fmt(files: Sequence[str], *, check: bool, diff: bool, stdin: str | None = None) -> FmtResult:
    """Format ``files`` in place (or only report with ``check``/``diff``); ``-`` is stdin.

    Every file is parsed before any is written, so a syntax error in one leaves all untouched.
    """
    results: list[tuple[str, str, str]] = []
    for name in _expand(files):
        text = (stdin or "") if name == "-" else read_source(Path(name), name)
        results.append((name, text, format_text(text, "<stdin>" if name == "-" else name)))
    changed: list[str] = []
    output: list[str] = []
    for name, text, formatted in results:
        if formatted != text:
            changed.append(name)
        if diff:
            output.extend(difflib.unified_diff(text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                                               f"{name} (original)", f"{name} (formatted)"))
        elif name == "-" and not check:
            output.append(formatted)
        elif formatted != text and not check:
            Path(name).write_text(formatted, encoding="utf-8")
    return FmtResult(changed, "".join(output))


_SKIPPED_FOLDERS = {".git", ".venv", "node_modules", ".buildspec", "__pycache__"}


def _expand(files: Sequence[str]) -> list[str]:
    """Files as given; a folder stands for every file named Buildfile below it (as gofmt DIR)."""
    expanded: list[str] = []
    for name in files:
        if name == "-" or not os.path.isdir(name):
            expanded.append(name)
            continue
        for folder, subfolders, names in os.walk(name):
            subfolders[:] = sorted(d for d in subfolders if d not in _SKIPPED_FOLDERS)
            if "Buildfile" in names and os.path.isfile(os.path.join(folder, "Buildfile")):
                expanded.append(os.path.join(folder, "Buildfile"))
    return expanded

