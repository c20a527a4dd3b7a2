"""A fast parser for the common, valid Buildfile: the grammar of grammar/buildfile.lark by hand.

One regular expression splits the text into tokens, and a recursive-descent parser makes
the decisions Lark's LALR tables make, with one token of lookahead, building the nodes of
syntax_tree.py with the same spans. It is deliberately partial: at the first thing it does
not handle it raises ``Unsupported`` and ``syntax.parse`` hands the whole text to Lark,
which is the language's definition and the author of every syntax error message. So it
need not know how Lark recovers or reports, only never accept a text Lark rejects and never
build a different tree; tests/unit/test_syntax_fast.py checks both.

What it hands over besides errors: ``if``, ``and``, ``or`` and ``not`` where they are not
keywords. Lark's contextual lexer reads them as names wherever the parser state accepts no
keyword (``not = 1``); rather than mirror every state, this parser hands such texts over.
"""

from __future__ import annotations

import bisect
import re

from buildspec.errors import Span
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
    Statement,
    Str,
    TagLine,
    TagOption,
    Value,
    Word,
    unescape,
)


class Unsupported(Exception):
    """The fast parser does not handle this text (an error, or a rare construct): ask Lark."""


# The grammar's terminals, in the order of Lark's lexer: PLATFORM (priority 2) before NAME
# and NUMBER; '==' and '!=' before '='. Each match swallows the %ignore'd WS (common.WS:
# [ \t\f\r\n]) and COMMENTs before its token. A character no terminal starts with is a
# syntax error ("bad"): Lark's to report.
_TOKEN = re.compile(
    r"""(?:[ \t\f\r\n]+|\#[^\n]*)*
    (?:(?P<STRING>"(?:[^"\\\n]|\\.)*")
    |(?P<PLATFORM>[A-Za-z0-9_]+(?:/[A-Za-z0-9_.]+)+)
    |(?P<NAME>[A-Za-z_][A-Za-z0-9_.\-]*)
    |(?P<NUMBER>[0-9][A-Za-z0-9_.\-]*)
    |(?P<op>==|!=|[{}\[\](),=])
    |(?P<end>\Z)
    |(?P<bad>[\s\S]))""",
    re.VERBOSE,
)
_KIND = {index: name for name, index in _TOKEN.groupindex.items()}
_NEWLINE = re.compile("\n")
_KEYWORDS = frozenset({"if", "and", "or", "not"})
_END = "$END"


def parse_fast(text: str, file: str) -> tuple[Statement, ...]:
    """The statements of ``text``, or ``Unsupported`` when Lark must parse it."""
    try:
        return _Parser(text, file).statements()
    except RecursionError:  # absurdly deep nesting: Lark's LALR stack is not Python's
        raise Unsupported("nesting too deep") from None


class _Parser:
    __slots__ = ("file", "i", "kinds", "newlines", "starts", "texts", "unescaped")

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        kinds: list[str] = []
        texts: list[str] = []
        starts: list[int] = []
        kind_of = _KIND
        # One object per distinct token text (and per distinct unescaped string): a large
        # Buildfile repeats its keys, names and templates thousands of times, and the syntax
        # tree lives as long as the model (the peak memory of plan, bench/plan_scale.py).
        same: dict[str, str] = {}
        for m in _TOKEN.finditer(text):
            index = m.lastindex or 0
            kind = kind_of[index]
            if kind == "end":
                break
            value = m.group(index)
            if kind == "bad":
                raise Unsupported(value)
            value = same.setdefault(value, value)
            kinds.append(value if kind == "op" else kind)
            texts.append(value)
            starts.append(m.start(index))
        self.unescaped: dict[str, str] = {}
        kinds.append(_END)
        texts.append("")
        self.kinds, self.texts, self.starts = kinds, texts, starts
        # Lines and columns only for the tokens that get a span: from the newlines' offsets.
        self.newlines = [m.start() for m in _NEWLINE.finditer(text)]
        self.i = 0

    # -------------------------------------------------------------- tokens

    def span(self, at: int) -> Span:
        start = self.starts[at]
        line = bisect.bisect_left(self.newlines, start)  # newlines before the token
        col = start - (self.newlines[line - 1] + 1 if line else 0) + 1
        return Span(self.file, line + 1, col, col + len(self.texts[at]))

    def name(self, at: int) -> str:
        """The NAME token at ``at`` (a keyword there would be Lark's to read)."""
        text = self.texts[at]
        if self.kinds[at] != "NAME" or text in _KEYWORDS:
            raise Unsupported(text)
        return text

    def expect(self, kind: str) -> int:
        at = self.i
        if self.kinds[at] != kind:
            raise Unsupported(self.texts[at])
        self.i = at + 1
        return at

    def keyword(self, word: str) -> bool:
        at = self.i
        if self.kinds[at] == "NAME" and self.texts[at] == word:
            self.i = at + 1
            return True
        return False

    def string(self, at: int) -> Str:
        raw = self.texts[at]
        text = self.unescaped.get(raw)
        if text is None:
            text = self.unescaped[raw] = unescape(raw)
        return Str(text, raw, self.span(at))

    # -------------------------------------------------------------- statements

    def statements(self) -> tuple[Statement, ...]:
        out: list[Statement] = []
        kinds = self.kinds
        while kinds[self.i] != _END:
            at = self.i
            kind = kinds[at]
            if kind == "STRING" and kinds[at + 1] == "=":
                out.append(self.assignment())
            elif kind == "NAME" and kinds[at + 1] == "NAME" and kinds[at + 2] == "=":
                # named_assignment: NAME NAME "=" value      (group default = [a, b])
                kind_text, name_text = self.name(at), self.name(at + 1)
                self.i = at + 3
                out.append(NamedAssign(kind_text, name_text, self.value(), self.span(at), self.span(at + 1)))
            elif kind == "NAME":
                out.append(self.assignment() if kinds[at + 1] == "=" else self.block())
            else:
                raise Unsupported(self.texts[at])
        return tuple(out)

    def assignment(self) -> Assign:
        # assignment: key "=" value;  key: NAME | STRING
        at = self.i
        if self.kinds[at] == "STRING":
            key = self.string(at)
            self.i = at + 2
            return Assign(key.text, self.value(), key.span)
        text = self.name(at)
        self.i = at + 2
        return Assign(text, self.value(), self.span(at))

    def block(self) -> Block:
        # block: NAME [NAME] "{" block_item* "}"
        at = self.i
        kind_text = self.name(at)
        kinds = self.kinds
        label_at = None
        if kinds[at + 1] == "NAME":
            label_at = at + 1
            self.name(label_at)
            self.i = at + 2
        else:
            self.i = at + 1
        self.expect("{")
        items: list[Assign | Block | TagLine] = []
        while True:
            here = self.i
            kind = kinds[here]
            if kind == "}":
                self.i = here + 1
                break
            if kind == "STRING":
                if kinds[here + 1] == "=":
                    items.append(self.assignment())
                else:
                    items.append(self.tag_line())
            elif kind == "NAME":
                items.append(self.assignment() if kinds[here + 1] == "=" else self.block())
            else:
                raise Unsupported(self.texts[here])
        return Block(
            kind_text,
            None if label_at is None else self.texts[label_at],
            tuple(items),
            self.span(at),
            None if label_at is None else self.span(label_at),
        )

    def tag_line(self) -> TagLine:
        # tag_line: STRING [tag_options] ["if" condition]
        template = self.string(self.i)
        self.i += 1
        options = self.tag_options() if self.kinds[self.i] == "[" else ()
        condition = self.condition() if self.keyword("if") else None
        return TagLine(template, condition, template.span, options)

    def tag_options(self) -> tuple[TagOption, ...]:
        # tag_options: LSQB [tag_option ("," tag_option)* ","?] "]";  tag_option: NAME ["=" value]
        kinds = self.kinds
        self.i += 1
        out: list[TagOption] = []
        while kinds[self.i] != "]":
            at = self.i
            name = self.name(at)
            self.i = at + 1
            value = None
            if kinds[self.i] == "=":
                self.i += 1
                value = self.value()
            out.append(TagOption(name, value, self.span(at)))
            if kinds[self.i] != ",":
                break
            self.i += 1
        self.expect("]")
        return tuple(out)

    # -------------------------------------------------------------- values

    def value(self) -> Value:
        at = self.i
        kind = self.kinds[at]
        if kind == "STRING":
            self.i = at + 1
            return self.string(at)
        if kind == "NAME":
            if self.kinds[at + 1] == "(":
                return self.call()
            text = self.name(at)
            self.i = at + 1
            return Word(text, self.span(at))
        if kind == "NUMBER" or kind == "PLATFORM":
            self.i = at + 1
            return Word(self.texts[at], self.span(at))
        if kind == "[":
            # list_value: LSQB [value ("," value)* ","?] "]"
            self.i = at + 1
            return ListValue(self.items("]"), self.span(at))
        raise Unsupported(self.texts[at])

    def call(self) -> Call:
        # call: NAME "(" [value ("," value)* ","?] ")"
        at = self.i
        text = self.name(at)
        self.i = at + 2  # the "(" was looked at by the caller
        return Call(text, self.items(")"), self.span(at))

    def items(self, closer: str) -> tuple[Value, ...]:
        kinds = self.kinds
        if kinds[self.i] == closer:
            self.i += 1
            return ()
        out = [self.value()]
        while kinds[self.i] == ",":
            self.i += 1
            if kinds[self.i] == closer:
                break
            out.append(self.value())
        self.expect(closer)
        return tuple(out)

    # -------------------------------------------------------------- conditions

    def condition(self) -> Condition:
        # or_cond: and_cond | or_cond "or" and_cond   (left-associative)
        left = self.and_cond()
        while self.keyword("or"):
            left = BoolOp("or", left, self.and_cond(), left.span)
        return left

    def and_cond(self) -> Condition:
        left = self.not_cond()
        while self.keyword("and"):
            left = BoolOp("and", left, self.not_cond(), left.span)
        return left

    def not_cond(self) -> Condition:
        # not_cond: "not" not_cond | comparison;  comparison: operand [(EQ | NE) operand]
        nots = 0
        while self.keyword("not"):  # a loop: `not not ... x` may be long
            nots += 1
        left = self.operand()
        op = self.kinds[self.i]
        if op == "==" or op == "!=":
            self.i += 1
            left = Compare(op, left, self.operand(), left.span)
        for _ in range(nots):
            left = Not(left, left.span)
        return left

    def operand(self) -> Condition:
        # operand: NAME -> name_ref | STRING | NUMBER -> word | call | "(" condition ")"
        at = self.i
        kind = self.kinds[at]
        if kind == "NAME":
            if self.kinds[at + 1] == "(":
                return self.call()
            text = self.name(at)
            self.i = at + 1
            return NameRef(text, self.span(at))
        if kind == "STRING":
            self.i = at + 1
            return self.string(at)
        if kind == "NUMBER":
            self.i = at + 1
            return Word(self.texts[at], self.span(at))
        if kind == "(":
            self.i = at + 1
            inner = self.condition()
            self.expect(")")
            return inner
        raise Unsupported(self.texts[at])
