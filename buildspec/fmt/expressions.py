"""Values, keys and conditions as ``buildspec fmt`` writes them (each on one line)."""

from __future__ import annotations

import re

from buildspec.syntax import BoolOp, Compare, Condition, ListValue, NameRef, Not, Str, Value, Word

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_KEYWORDS = frozenset({"if", "and", "or", "not"})


def key(key: str, quoted: bool) -> str:
    if not quoted and _NAME.fullmatch(key) and key not in _KEYWORDS:
        return key
    return _quote(key)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def value(node: Value) -> str:
    """A value as written: strings keep their quoting and escapes, words their text."""
    if isinstance(node, Str):
        return node.raw
    if isinstance(node, Word):
        return node.text
    if isinstance(node, ListValue):
        return "[" + ", ".join(value(v) for v in node.items) + "]"
    return f"{node.name}(" + ", ".join(value(v) for v in node.args) + ")"


# Binding strength: or < and < not < comparison < operand.
_STRENGTH = {"or": 1, "and": 2}


def _strength(node: Condition) -> int:
    if isinstance(node, BoolOp):
        return _STRENGTH[node.op]
    if isinstance(node, Not):
        return 3
    if isinstance(node, Compare):
        return 4
    return 5


def condition(node: Condition) -> str:
    """A condition with exactly the parentheses its grammar needs (iterative: it may be deep)."""
    parts: list[str] = []
    stack: list[Condition | str] = [node]
    while stack:
        top = stack.pop()
        if isinstance(top, str):
            parts.append(top)
        elif isinstance(top, BoolOp):
            # or_cond: or_cond "or" and_cond  /  and_cond: and_cond "and" not_cond
            mine = _STRENGTH[top.op]
            stack.extend(reversed([*_wrap(top.left, _strength(top.left) < mine),
                                   f" {top.op} ", *_wrap(top.right, _strength(top.right) <= mine)]))
        elif isinstance(top, Not):
            # `not a == "b"` parses as `not (a == "b")`; the parentheses say so to the reader.
            stack.extend(reversed(["not ", *_wrap(top.operand, _strength(top.operand) != 3 and
                                                  _strength(top.operand) < 5)]))
        elif isinstance(top, Compare):
            stack.extend(reversed([*_wrap(top.left, _strength(top.left) < 5), f" {top.op} ",
                                   *_wrap(top.right, _strength(top.right) < 5)]))
        elif isinstance(top, NameRef):
            parts.append(top.path)
        else:
            parts.append(value(top))
    return "".join(parts)


def _wrap(node: Condition, parenthesise: bool) -> list[Condition | str]:
    return ["(", node, ")"] if parenthesise else [node]
