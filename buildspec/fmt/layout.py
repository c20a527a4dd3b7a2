"""The layout of ``buildspec fmt``: the canonical text of a syntax tree, with its comments.

``Source`` scans the text for what the syntax tree does not keep: comments (and
whether each stands on its own line), the lines of the tokens, and which bracket
closes which. ``Formatter`` walks the tree and places every comment, blank line
and alignment as buildspec/fmt/__init__.py describes.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from buildspec.errors import Span
from buildspec.fmt.expressions import condition as render_condition
from buildspec.fmt.expressions import key as render_key
from buildspec.fmt.expressions import value as render_value
from buildspec.syntax import (
    Assign,
    Block,
    ListValue,
    NamedAssign,
    SourceFile,
    Statement,
    TagLine,
    Value,
)

INDENT = "    "
QUOTED_KEY_BLOCKS = frozenset({"labels"})

# Tokens as far as layout is concerned: strings (so that '#' and brackets inside
# them are not misread), comments, brackets, and any other run of non-space text.
_SCAN = re.compile(
    r'(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<comment>#[^\n]*)"
    r"|(?P<open>[{\[(])"
    r"|(?P<close>[}\])])"
    r"|(?P<nl>\n)"
    r"|(?P<ws>[ \t\r\f\v]+)"
    r'|(?P<other>[^\s"#{}\[\]()]+)'
)



@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str
    own_line: bool  # nothing but whitespace before it on its line


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    line: int
    column: int


@dataclass(slots=True)
class _Out:
    """One output line: indentation depth, text, the source line it stands for."""

    depth: int
    text: str
    anchor: int
    comment: str | None = None
    blank_before: bool = False
    key: str | None = None  # for alignment: text is key + sep + rest
    sep: str = ""
    rest: str = ""

    def align(self, width: int) -> None:
        if self.key is not None:
            self.text = f"{self.key.ljust(width)}{self.sep}{self.rest}"

    @property
    def is_comment(self) -> bool:
        return self.key is None and self.text.startswith("#")


@dataclass
class Source:
    """The tokens and comments of the text, by position, for layout decisions."""

    tokens: list[_Tok]
    positions: list[tuple[int, int]]
    comments: list[Comment]
    closer: dict[tuple[int, int], tuple[int, int]]  # opening bracket -> its closing bracket
    placed: set[int] = field(default_factory=set)  # indexes into comments
    comment_positions: list[tuple[int, int]] = field(default_factory=list)
    _low: int = 0

    def __post_init__(self) -> None:
        self.comment_positions = [(c.line, c.column) for c in self.comments]

    @classmethod
    def scan(cls, text: str) -> Source:
        tokens: list[_Tok] = []
        comments: list[Comment] = []
        closer: dict[tuple[int, int], tuple[int, int]] = {}
        stack: list[tuple[int, int]] = []
        line, line_start, code_on_line = 1, 0, False
        for m in _SCAN.finditer(text):
            kind = m.lastgroup or "other"
            column = m.start() - line_start + 1
            if kind == "nl":
                line, line_start, code_on_line = line + 1, m.end(), False
            elif kind == "comment":
                comments.append(Comment(line, column, m.group().rstrip(), not code_on_line))
            elif kind != "ws":
                code_on_line = True
                tokens.append(_Tok(kind, line, column))
                if kind == "open":
                    stack.append((line, column))
                elif kind == "close" and stack:
                    closer[stack.pop()] = (line, column)
        return cls(tokens, [(t.line, t.column) for t in tokens], comments, closer)

    def last_code_line_before(self, pos: tuple[int, int]) -> int:
        """The line of the last token before ``pos``."""
        at = bisect.bisect_left(self.positions, pos)
        return self.positions[at - 1][0] if at > 0 else 0

    def first_open_after(self, pos: tuple[int, int]) -> tuple[int, int]:
        at = bisect.bisect_right(self.positions, pos)
        while at < len(self.tokens) and self.tokens[at].kind != "open":
            at += 1
        tok = self.tokens[at]
        return (tok.line, tok.column)

    def comments_in(self, start: tuple[int, int], end: tuple[int, int]) -> list[int]:
        """Indexes of the comments not placed yet in [start, end), in order.

        Comments are placed roughly in order, so the search starts at the first one
        not placed yet (``_low``): a large file stays linear, not quadratic.
        """
        while self._low < len(self.comments) and self._low in self.placed:
            self._low += 1
        low = max(self._low, bisect.bisect_left(self.comment_positions, start))
        high = bisect.bisect_left(self.comment_positions, end)
        return [i for i in range(low, high) if i not in self.placed]


def _pos(span: Span) -> tuple[int, int]:
    return (span.line, span.column)


def _item_pos(item: Statement | Assign | Block | TagLine) -> tuple[int, int]:
    return _pos(item.span)



class Formatter:
    def __init__(self, source: Source) -> None:
        self.source = source

    # ---------------------------------------------------------------- containers

    def file(self, source: SourceFile) -> str:
        end = (1 << 30, 0)
        lines = self.items(source.statements, 0, end, top_level=True, quoted_keys=False)
        # Comments after the last statement (or a file of comments only).
        for i in self.source.comments_in((0, 0), end):
            lines.append(self.own_comment(i, 0, blank=self._blank_after(lines, self.source.comments[i].line)))
        if lines:
            lines[0].blank_before = False
        return _render(lines)

    def items(
        self,
        items: Sequence[Statement | Assign | Block | TagLine],
        depth: int,
        end: tuple[int, int],
        *,
        top_level: bool,
        quoted_keys: bool,
    ) -> list[_Out]:
        """The lines of a file's statements or a block's items (up to ``end``, its '}')."""
        out: list[_Out] = []
        groups: list[tuple[Statement | Assign | Block | TagLine | None, list[_Out]]] = []
        prev_end_line = 0
        prev_was_block = False
        for index, item in enumerate(items):
            start = _item_pos(item)
            following = _item_pos(items[index + 1]) if index + 1 < len(items) else end
            last_line = self.source.last_code_line_before(following)
            # Comments on their own lines before the item stay above it.
            for i in self.source.comments_in((0, 0), start):
                comment = self.source.comments[i]
                blank = bool(out) and (comment.line > prev_end_line + 1
                                       or (top_level and prev_was_block and comment.line > prev_end_line))
                out.append(self.own_comment(i, depth, blank=blank))
                groups.append((None, [out[-1]]))  # a blank line before it ends an alignment run
                prev_end_line, prev_was_block = comment.line, False
            is_block = top_level and isinstance(item, Block)
            lines = self.item(item, depth, following, quoted_keys)
            # Leftover comments of this item: trailing ones onto the line they were on,
            # any other one (inside a call or condition written on one line) above it.
            above: list[_Out] = []
            for i in self.source.comments_in(start, following):
                comment = self.source.comments[i]
                if comment.line > last_line:
                    continue  # on its own line after the item: it belongs to what follows
                self.source.placed.add(i)
                target = _line_for(lines, comment.line)
                if comment.own_line or target is None or target.comment is not None:
                    above.append(_Out(depth, comment.text, comment.line))
                else:
                    target.comment = comment.text
            lines[:0] = above
            if out:
                lines[0].blank_before = start[0] > prev_end_line + 1 or (
                    top_level and (is_block or prev_was_block)
                    and not (out[-1].is_comment and start[0] == prev_end_line + 1)
                )
            out.extend(lines)
            groups.append((item, lines))
            prev_end_line, prev_was_block = last_line, is_block
        _align(groups)
        return out

    def own_comment(self, index: int, depth: int, *, blank: bool) -> _Out:
        self.source.placed.add(index)
        comment = self.source.comments[index]
        return _Out(depth, comment.text, comment.line, blank_before=blank)

    def _blank_after(self, lines: list[_Out], line: int) -> bool:
        return bool(lines) and line > max(o.anchor for o in lines) + 1

    # ---------------------------------------------------------------- items

    def item(self, item: Statement | Assign | Block | TagLine, depth: int, following: tuple[int, int],
             quoted_keys: bool) -> list[_Out]:
        if isinstance(item, Assign):
            return self.assignment(render_key(item.key, quoted_keys), item.value, item.span.line, depth)
        if isinstance(item, NamedAssign):
            return self.assignment(f"{item.kind} {item.name}", item.value, item.span.line, depth)
        if isinstance(item, TagLine):
            head = item.template.raw + _tag_options(item)
            if item.condition is None:
                return [_Out(depth, head, item.span.line)]
            return [_keyed(depth, item.span.line, head, "  if ", render_condition(item.condition))]
        return self.block(item, depth)

    def assignment(self, key: str, value: Value, line: int, depth: int) -> list[_Out]:
        head = f"{key} = "
        if isinstance(value, ListValue) and value.items:
            closing = self.source.closer.get(_pos(value.span))
            if closing is not None and closing[0] > value.span.line:
                return self.long_list(head, value, line, depth, closing)
        return [_keyed(depth, line, key, " = ", render_value(value))]

    def long_list(self, head: str, value: ListValue, line: int, depth: int,
                  closing: tuple[int, int]) -> list[_Out]:
        lines = [_Out(depth, head + "[", line)]
        for index, element in enumerate(value.items):
            start = _pos(element.span)
            for i in self.source.comments_in((0, 0), start):
                if self.source.comments[i].own_line:
                    lines.append(self.own_comment(i, depth + 1, blank=False))
            following = _pos(value.items[index + 1].span) if index + 1 < len(value.items) else closing
            lines.append(_Out(depth + 1, render_value(element) + ",", element.span.line))
            self._trailing_onto(lines[-1], start, following)
        for i in self.source.comments_in((0, 0), closing):
            if self.source.comments[i].own_line:
                lines.append(self.own_comment(i, depth + 1, blank=False))
        lines.append(_Out(depth, "]", closing[0]))
        return lines

    def _trailing_onto(self, target: _Out, start: tuple[int, int], following: tuple[int, int]) -> None:
        """The first trailing comment on ``target``'s own line goes onto it."""
        for i in self.source.comments_in(start, following):
            comment = self.source.comments[i]
            if not comment.own_line and comment.line == target.anchor and target.comment is None:
                self.source.placed.add(i)
                target.comment = comment.text

    def block(self, block: Block, depth: int) -> list[_Out]:
        head = block.kind if block.label is None else f"{block.kind} {block.label}"
        opening = self.source.first_open_after(_pos(block.label_span or block.span))
        closing = self.source.closer[opening]
        inner = self.source.comments_in(opening, closing)
        if not block.items and not inner:
            return [_Out(depth, head + " {}", block.span.line)]
        quoted = block.kind in QUOTED_KEY_BLOCKS
        one_line = depth > 0 and closing[0] == block.span.line and len(block.items) == 1 and not inner
        if one_line:
            (only,) = self.item(block.items[0], 0, closing, quoted)
            return [_Out(depth, f"{head} {{ {only.text} }}", block.span.line)]
        lines = [_Out(depth, head + " {", block.span.line)]
        self._trailing_onto(lines[0], _pos(block.span), closing)
        body = self.items(block.items, depth + 1, closing, top_level=False, quoted_keys=quoted)
        lines.extend(body)
        # Comments on their own lines before the '}' stay at the end of the block.
        last = max((o.anchor for o in body), default=block.span.line)
        for i in self.source.comments_in((0, 0), closing):
            comment = self.source.comments[i]
            if comment.own_line:
                lines.append(self.own_comment(i, depth + 1, blank=bool(body) and comment.line > last + 1))
                last = comment.line
        lines.append(_Out(depth, "}", closing[0]))
        return lines


# ---------------------------------------------------------------- layout


def _line_for(lines: list[_Out], source_line: int) -> _Out | None:
    """The output line that stands for ``source_line``: the last one anchored at or before it."""
    best = None
    for out in lines:
        if out.anchor <= source_line and (best is None or out.anchor >= best.anchor):
            best = out
    return best


def _keyed(depth: int, anchor: int, key: str, sep: str, rest: str) -> _Out:
    return _Out(depth, f"{key}{sep}{rest}", anchor, key=key, sep=sep, rest=rest)


def _align(groups: list[tuple[Any, list[_Out]]]) -> None:
    """Align '=' (assignments) and 'if' (tag lines) within runs of one-line items."""
    run: list[_Out] = []

    def flush() -> None:
        for sep in (" = ", "  if "):
            same = [out for out in run if out.sep == sep]
            width = max((len(out.key or "") for out in same), default=0)
            for out in same:
                out.align(width)
        run.clear()

    for _item, lines in groups:
        own = [o for o in lines if not o.is_comment]
        if any(o.blank_before for o in lines):
            flush()
        if not own:
            continue  # a comment line neither joins nor ends a run
        if len(own) != 1:
            flush()
            continue
        run.append(own[0])
    flush()


def _render(lines: list[_Out]) -> str:
    rows: list[_Out | None] = []
    for out in lines:
        if out.blank_before:
            rows.append(None)
        rows.append(out)
    texts = ["" if out is None else INDENT * out.depth + out.text for out in rows]
    # Trailing comments of consecutive lines share a column, two spaces after the longest.
    index = 0
    while index < len(rows):
        end = index
        while end < len(rows) and (row := rows[end]) is not None and row.comment is not None:
            end += 1
        if end == index:
            index += 1
            continue
        width = max(len(texts[i]) for i in range(index, end))
        for i in range(index, end):
            texts[i] = f"{texts[i].ljust(width)}  {rows[i].comment}"  # type: ignore[union-attr]
        index = end
    return "\n".join(texts) + "\n" if texts else ""


def _tag_options(item: TagLine) -> str:
    """A tag line's ``[prefix = "pr-", latest]``, written in one canonical form."""
    if not item.options:
        return ""
    parts = [o.name if o.value is None else f"{o.name} = {render_value(o.value)}" for o in item.options]
    return " [" + ", ".join(parts) + "]"
