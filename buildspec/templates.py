"""Templates (``"{git.branch|slug}"``) and conditions (``version.stable and not git.pr``).

A scope maps dotted names to values. ``None`` means *known but unset* (for
example ``git.tag`` on a commit without a tag); a name missing from the scope
is unknown, which is always an error. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from buildspec.errors import BuildfileError, Span
from buildspec.model import did_you_mean
from buildspec.syntax import BoolOp, Call, Compare, Condition, ListValue, NameRef, Not, Str, Word

ScopeValue = str | bool | datetime | tuple[str, ...] | None
Scope = Mapping[str, ScopeValue]

_SLUG = re.compile(r"[^a-z0-9._-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
FILTERS: dict[str, Callable[[str], str]] = {
    # A tag cannot start with '.' or '-': strip those at both ends, also after trimming.
    "slug": lambda s: _SLUG.sub("-", s.lower()).strip(".-")[:128].rstrip(".-"),
    # docker/metadata-action's sanitizeTag: every run of characters a tag cannot hold becomes
    # '-', the case is kept (Feature/Login -> Feature-Login).
    "sanitize": lambda s: _UNSAFE.sub("-", s),
    "lower": str.lower,
    "upper": str.upper,
}
FILTER_HELP = "filters: slug, sanitize, lower, upper; for dates (date, git.commit_date) tz=ZONE and %-formats"
_EXPRESSION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*((?:\|[^|}]*)*)$")


class UnsetName(Exception):
    """A template referred to a known name that has no value here."""

    def __init__(self, name: str, span: Span) -> None:
        super().__init__(name)
        self.name = name
        self.span = span


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    filters: tuple[str, ...]
    offset: int  # index of the '{' in the template text
    end: int = 0  # index just after the '}'


Part = str | Field


@lru_cache(maxsize=4096)
def names_in(text: str) -> frozenset[str]:
    """The names a template's fields refer to (none when it does not parse: render says why)."""
    parts = parse_template(text)
    return frozenset() if isinstance(parts, str) else frozenset(p.name for p in parts if isinstance(p, Field))


@lru_cache(maxsize=4096)
def parse_template(text: str) -> tuple[Part, ...] | str:
    """Split a template into literal text and fields.

    A str result is an error: ``"START:END:message"``, START and END indexes into ``text``.
    """
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif char == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif char == "{":
            end = text.find("}", i)
            if end < 0:
                return f"{i}:{len(text)}:unclosed '{{' in template (write '{{{{' for a literal brace)"
            match = _EXPRESSION.match(text[i + 1 : end])
            if match is None:
                return (f"{i}:{end + 1}:'{{{text[i + 1 : end]}}}' is not a name: "
                        "expected {name}, {a.b} or {name|filter}")
            if literal:
                parts.append("".join(literal))
                literal = []
            filters = tuple(f.strip() for f in match.group(2).split("|")[1:])
            parts.append(Field(match.group(1), filters, i, end + 1))
            i = end + 1
        elif char == "}":
            return f"{i}:{i + 1}:unmatched '}}' in template (write '}}}}' for a literal brace)"
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _offset_span(template: Str, offset: int, end: int | None = None) -> Span:
    """The span of ``template.text[offset:end]`` in the file, escapes taken into account."""
    raw = template.raw
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        return template.span
    # raw_at[i] is the index in raw (after the quote) where text[i] was written.
    raw_at: list[int] = []
    r = 1
    while r < len(raw) - 1:
        if raw[r] == "\\" and r + 1 < len(raw) - 1:
            raw_at.append(r)
            if raw[r + 1] not in _ESCAPED:
                raw_at.append(r + 1)  # an unknown escape stays two characters
            r += 2
        else:
            raw_at.append(r)
            r += 1
    raw_at.append(len(raw) - 1)
    if len(raw_at) != len(template.text) + 1:
        return template.span  # not the text of this raw string: point at the whole string
    s = template.span
    start = raw_at[min(offset, len(raw_at) - 1)]
    stop = raw_at[min(end, len(raw_at) - 1)] if end is not None else start + 1
    return Span(s.file, s.line, s.column + start, s.column + max(stop, start + 1))


_ESCAPED = frozenset('nt"\\')


def unknown_name_error(name: str, scope: Scope, span: Span) -> BuildfileError:
    if name == "platform" or name.startswith("platform.") or name == "tag":
        where = "args and platform_tag" if name != "tag" else "platform_tag"
        hint: str | None = f"{name} is only known in per-platform places: {where}"
    else:
        hint = did_you_mean(name, scope.keys())
    return BuildfileError(f"unknown name '{name}'", span, hint=hint)


def to_text(value: ScopeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if isinstance(value, tuple):
        return ",".join(value)
    return value or ""


def render(template: Str, scope: Scope, seen: dict[str, str] | None = None) -> str:
    """Render a template; raise UnsetName for a known but unset name, BuildfileError otherwise.

    ``seen`` collects the names the template used and their values (for ``plan --explain``).
    """
    parts = parse_template(template.text)
    if isinstance(parts, str):
        start, end, message = parts.split(":", 2)
        raise BuildfileError(message, _offset_span(template, int(start), int(end)))
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if part.name not in scope:
            raise unknown_name_error(part.name, scope, _offset_span(template, part.offset, part.end))
        value = scope[part.name]
        if value is None or value == "":
            if seen is not None:
                seen[part.name] = "(unset)"
            raise UnsetName(part.name, _offset_span(template, part.offset, part.end))
        raw = to_text(value)
        text = _apply_filters(part, value, template)
        if seen is not None:
            seen[part.name] = raw  # what the name held, before filters: that is what --explain shows
        out.append(text)
    return "".join(out)


def _apply_filters(part: Field, value: ScopeValue, template: Str) -> str:
    """Filters left to right. A date (``date``, or an ISO 8601 text such as
    ``git.commit_date``) stays a date through ``tz=ZONE`` until a %-format or a text
    filter makes it text; shown bare, a date is ``%Y%m%d``."""
    current: str | datetime = value if isinstance(value, datetime) else to_text(value)

    def error(message: str, hint: str | None = None) -> BuildfileError:
        return BuildfileError(message, _offset_span(template, part.offset, part.end), hint=hint)

    for name in part.filters:
        if name.startswith("tz=") or name.startswith("%"):
            when = current if isinstance(current, datetime) else _iso_date(current)
            if when is None:
                raise error(f"'{name}' formats a date, and {part.name} is not one here",
                            hint="dates: date, git.commit_date")
            if name.startswith("%"):
                current = when.strftime(name)
                continue
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only for tz= (start-up time)

            try:
                current = when.astimezone(ZoneInfo(name.removeprefix("tz=").strip()))
            except (ZoneInfoNotFoundError, ValueError):
                raise error(f"unknown time zone '{name.removeprefix('tz=')}'",
                            hint="an IANA zone name, such as tz=Europe/Paris or tz=UTC") from None
        elif name in FILTERS:
            current = FILTERS[name](to_text(current))
        else:
            raise error(f"unknown filter '{name}'", hint=did_you_mean(name, FILTERS) or FILTER_HELP)
    return to_text(current)


def _iso_date(text: str) -> datetime | None:
    """``2026-01-02T03:04:05Z`` (git.commit_date) as an aware datetime; None if not a date."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def render_or_error(template: Str, scope: Scope, what: str) -> str:
    """Render where an unset name is a plain error (no condition can drop it)."""
    try:
        return render(template, scope)
    except UnsetName as e:
        raise BuildfileError(f"{what} refers to '{e.name}', which is unset here", e.span,
                             hint="guard it with a condition, or set it with --set") from None


# ---------------------------------------------------------------- conditions

Functions = Mapping[str, Callable[[Call, Scope], ScopeValue]]


def evaluate(condition: Condition, scope: Scope, functions: Functions,
             seen: dict[str, str] | None = None) -> bool:
    return _truthy(_value(condition, scope, functions, seen))


def _truthy(value: ScopeValue) -> bool:
    if isinstance(value, bool):
        return value
    return bool(value)


def _value(node: Condition | ListValue, scope: Scope, functions: Functions,
           seen: dict[str, str] | None) -> ScopeValue:
    if isinstance(node, NameRef):
        if node.path not in scope:
            raise unknown_name_error(node.path, scope, node.span)
        value = scope[node.path]
        if seen is not None:
            seen[node.path] = "(unset)" if value is None else to_text(value)
        return value
    if isinstance(node, Str):
        try:
            return render(node, scope, seen)
        except UnsetName:
            return None
    if isinstance(node, Word):
        return node.text
    if isinstance(node, Not):
        return not evaluate(node.operand, scope, functions, seen)
    if isinstance(node, BoolOp):
        left = evaluate(node.left, scope, functions, seen)
        if node.op == "and":
            return left and evaluate(node.right, scope, functions, seen)
        return left or evaluate(node.right, scope, functions, seen)
    if isinstance(node, Compare):
        for side in (node.left, node.right):
            if isinstance(side, NameRef) and side.path not in scope and did_you_mean(side.path, scope) is None:
                raise BuildfileError(f"unknown name '{side.path}'", side.span,
                                     hint=f'to compare with the text {side.path}, quote it: "{side.path}"')
        equal = to_text(_value(node.left, scope, functions, seen)) == to_text(
            _value(node.right, scope, functions, seen)
        )
        return equal if node.op == "==" else not equal
    if isinstance(node, Call):
        if node.name not in functions:
            raise BuildfileError(f"unknown function '{node.name}'", node.span,
                                 hint=did_you_mean(node.name, functions) or
                                 "functions in conditions: " + ", ".join(sorted(functions)))
        return functions[node.name](node, scope)
    raise BuildfileError("a list cannot be a condition", node.span)


def condition_text(node: Condition | ListValue) -> str:
    """The condition as the user would write it (for plan --explain)."""
    if isinstance(node, NameRef):
        return node.path
    if isinstance(node, Str):
        return node.raw
    if isinstance(node, Word):
        return node.text
    if isinstance(node, Not):
        return f"not {condition_text(node.operand)}"
    if isinstance(node, BoolOp | Compare):
        return f"{_grouped(node.left)} {node.op} {_grouped(node.right)}"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(condition_text(a) for a in node.args)})"
    return "[...]"


def _grouped(node: Condition) -> str:
    return f"({condition_text(node)})" if isinstance(node, BoolOp) else condition_text(node)
