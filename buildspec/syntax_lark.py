"""The Lark parser of grammar/buildfile.lark: the definition of the language.

It builds the syntax nodes while parsing (an inline Transformer, no intermediate
parse tree). ``syntax.parse`` uses it when the fast parser (syntax_fast.py) hands a
text over: for every syntax error, whose message comes from here and syntax_errors.py,
and for the rare valid constructs the fast parser leaves to it.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput

from buildspec.errors import Span
from buildspec.syntax_errors import syntax_error
from buildspec.syntax_tree import (
    Assign,
    Block,
    BoolOp,
    Call,
    Compare,
    ListValue,
    NamedAssign,
    NameRef,
    Not,
    Statement,
    Str,
    TagLine,
    TagOption,
    Word,
    unescape,
)


class _ToNodes(Transformer[Token, Any]):
    """Builds syntax nodes during the LALR parse; ``file`` is set per parse."""

    file = "Buildfile"

    def _span(self, tok: Token) -> Span:
        return Span(self.file, tok.line or 0, tok.column or 0, tok.end_column)

    def STRING(self, tok: Token) -> Str:
        return Str(unescape(str(tok)), str(tok), self._span(tok))

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
        template, options, condition = items
        return TagLine(template, condition, template.span, tuple(options or ()))

    def tag_options(self, items: list[Any]) -> tuple[TagOption, ...]:
        _bracket, *options = items
        return tuple(o for o in options if o is not None)

    def tag_option(self, items: list[Any]) -> TagOption:
        name, value = items
        return TagOption(str(name), value, self._span(name))

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


def parse_statements(text: str, file: str) -> tuple[Statement, ...]:
    """Parse with Lark; raise BuildfileError (with a readable message) on a syntax error."""
    parser, transformer = _parser()
    with _lock:
        transformer.file = file
        try:
            statements: tuple[Statement, ...] = parser.parse(text)  # type: ignore[assignment]
        except UnexpectedInput as e:
            raise syntax_error(e, text, file) from None
    return statements
