"""The Buildfile syntax tree: small frozen dataclasses with spans (stage 1's output).

Both parsers build these nodes: the fast one (syntax_fast.py) and Lark's (syntax_lark.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildspec.errors import Span


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
class TagOption:
    """``prefix = "pr-"`` or a bare flag (``latest``) in a tag line's ``[...]``."""

    name: str
    value: Value | None
    span: Span  # of the name


@dataclass(frozen=True, slots=True)
class TagLine:
    template: Str
    condition: Condition | None
    span: Span
    options: tuple[TagOption, ...] = ()


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


_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def unescape(raw: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw[1:-1])
