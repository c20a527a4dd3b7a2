"""Stage 1: Buildfile text -> syntax tree (small frozen dataclasses with spans).

The grammar (grammar/buildfile.lark) is LALR and generic; this module turns
Lark's tokens straight into the nodes below while parsing (no intermediate
parse tree, which keeps `plan` fast on large files) and turns Lark's
exceptions into ``BuildfileError`` with a position and a readable message.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from buildspec.errors import BuildfileError, Span

# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Word:
    """A bare word: a name (`release`, `buildx`), a platform (`linux/arm64`) or a number."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal; ``text`` is unescaped, ``raw`` is as written (with quotes)."""

    text: str
    raw: str
    span: Span


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class NameRef:
    """A name in a condition: `git.branch`, `version.stable`."""

    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Condition
    right: Condition
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # "==" | "!="
    left: Condition
    right: Condition
    span: Span


Value = Word | Str | ListValue | Call
Condition = NameRef | Not | BoolOp | Compare | Str | Word | Call


@dataclass(frozen=True, slots=True)
class Assign:
    key: str
    value: Value
    span: Span  # of the key


@dataclass(frozen=True, slots=True)
class NamedAssign:
    """``group default = [a, b]``."""

    kind: str
    name: str
    value: Value
    span: Span  # of the kind keyword
    name_span: Span


@dataclass(frozen=True, slots=True)
class TagLine:
    template: Str
    condition: Condition | None
    span: Span


@dataclass(frozen=True, slots=True)
class Block:
    kind: str
    label: str | None
    items: tuple[Assign | Block | TagLine, ...]
    span: Span  # of the kind keyword
    label_span: Span | None


Statement = Assign | NamedAssign | Block


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    text: str
    statements: tuple[Statement, ...]


# ---------------------------------------------------------------- parsing

_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unescape(raw: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw[1:-1])


class _ToNodes(Transformer[Token, Any]):
    """Builds syntax nodes during the LALR parse; ``file`` is set per parse."""

    file = "Buildfile"

    def _span(self, tok: Token) -> Span:
        return Span(self.file, tok.line or 0, tok.column or 0, tok.end_column)

    def STRING(self, tok: Token) -> Str:
        return Str(_unescape(str(tok)), str(tok), self._span(tok))

    def start(self, items: list[Statement]) -> tuple[Statement, ...]:
        return tuple(items)

    def assignment(self, items: list[Any]) -> Assign:
        key, value = items
        if isinstance(key, Str):
            return Assign(key.text, value, key.span)
        return Assign(str(key), value, self._span(key))

    def named_assignment(self, items: list[Any]) -> NamedAssign:
        kind, name, value = items
        return NamedAssign(str(kind), str(name), value, self._span(kind), self._span(name))

    def block(self, items: list[Any]) -> Block:
        kind, label, *body = items
        return Block(
            str(kind),
            None if label is None else str(label),
            tuple(body),
            self._span(kind),
            None if label is None else self._span(label),
        )

    def tag_line(self, items: list[Any]) -> TagLine:
        template, condition = items
        return TagLine(template, condition, template.span)

    def word(self, items: list[Token]) -> Word:
        return Word(str(items[0]), self._span(items[0]))

    def name_ref(self, items: list[Token]) -> NameRef:
        return NameRef(str(items[0]), self._span(items[0]))

    def list_value(self, items: list[Any]) -> ListValue:
        bracket, *rest = items
        return ListValue(tuple(i for i in rest if i is not None), self._span(bracket))

    def call(self, items: list[Any]) -> Call:
        name, *args = items
        return Call(str(name), tuple(a for a in args if a is not None), self._span(name))

    def not_(self, items: list[Any]) -> Not:
        return Not(items[0], _span_of(items[0]))

    def and_(self, items: list[Any]) -> BoolOp:
        return BoolOp("and", items[0], items[1], _span_of(items[0]))

    def or_(self, items: list[Any]) -> BoolOp:
        return BoolOp("or", items[0], items[1], _span_of(items[0]))

    def compare(self, items: list[Any]) -> Compare:
        left, op, right = items
        return Compare(str(op), left, right, _span_of(left))


def _span_of(node: Any) -> Span:
    span: Span = node.span
    return span


_lock = threading.Lock()


@cache
def _parser() -> tuple[Lark, _ToNodes]:
    grammar = _grammar_text()
    transformer = _ToNodes()
    parser = Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        transformer=transformer,
        maybe_placeholders=True,
        cache=True,
    )
    return parser, transformer


def _grammar_text() -> str:
    # Installed wheel: the grammar ships inside the package; source checkout: grammar/.
    packaged = resources.files("buildspec").joinpath("grammar/buildfile.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).parent.parent / "grammar" / "buildfile.lark").read_text(encoding="utf-8")


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
        line = text[: text.index("\x00")].count("\n") + 1
        raise BuildfileError("the Buildfile contains a NUL byte", Span(file, line, 1))
    parser, transformer = _parser()
    with _lock:
        transformer.file = file
        try:
            statements: tuple[Statement, ...] = parser.parse(text)  # type: ignore[assignment]
        except UnexpectedInput as e:
            raise _syntax_error(e, text, file) from None
    return SourceFile(file, text, statements)


# ---------------------------------------------------------------- friendly syntax errors

_TERMINAL_NAMES = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "EQUAL": "'='",
    "EQ": "'=='",
    "NE": "'!='",
    "STRING": "a string",
    "NAME": "a name",
    "NUMBER": "a number",
    "PLATFORM": "a platform",
    "IF": "'if'",
    "AND": "'and'",
    "OR": "'or'",
    "NOT": "'not'",
    "$END": "the end of the file",
}


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "STRING":
        return f"string {token}"
    if token.type in ("NAME", "NUMBER", "PLATFORM"):
        return f"'{token}'"
    return _TERMINAL_NAMES.get(token.type, f"'{token}'")


def _expected(names: set[str]) -> str:
    described = sorted({_TERMINAL_NAMES.get(n, n.lower()) for n in names})
    if len(described) > 6:
        return ""
    if len(described) == 1:
        return f"; expected {described[0]}"
    return "; expected " + ", ".join(described[:-1]) + " or " + described[-1]


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> BuildfileError:
    line, column = e.line, e.column
    if isinstance(e, UnexpectedCharacters):
        position = e.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        if char == '"':
            return BuildfileError("unterminated string", Span(file, line, column),
                                  hint='close the string with " on the same line')
        if char == "'":
            return BuildfileError("strings use double quotes", Span(file, line, column),
                                  hint="write \"...\" instead of '...'")
        shown = repr(char)[1:-1] if char.isprintable() else f"\\x{ord(char):02x}"
        return BuildfileError(f"unexpected character '{shown}'", Span(file, line, column))
    if isinstance(e, UnexpectedToken):
        token = e.token
        if token.type == "$END":
            return _unexpected_end(text, file, e.expected)
        return BuildfileError(
            f"unexpected {_describe_token(token)}{_expected(set(e.expected))}",
            Span(file, line, column, token.end_column),
            hint=_hint_for(token, set(e.expected)),
        )
    if isinstance(e, UnexpectedEOF):
        return _unexpected_end(text, file, set(e.expected))
    return BuildfileError("syntax error", Span(file, line, column))


def _unexpected_end(text: str, file: str, expected: Any) -> BuildfileError:
    lines = text.splitlines() or [""]
    line = len(lines)
    hint = "a block opened with '{' is not closed" if "RBRACE" in expected else None
    return BuildfileError(
        f"unexpected end of the file{_expected(set(expected))}",
        Span(file, line, len(lines[-1]) + 1),
        hint=hint,
    )


def _hint_for(token: Token, expected: set[str]) -> str | None:
    if token.type == "EQUAL" and "EQ" in expected:
        return "compare with '==' in conditions"
    if token.type == "RBRACE" and "EQUAL" in expected:
        return "every attribute needs a value: NAME = VALUE"
    if "COMMA" in expected and "RSQB" in expected:
        return "separate list items with commas"
    if token.type == "COLON" or str(token) == ":":
        return "use '=' to assign, not ':'"
    return None
