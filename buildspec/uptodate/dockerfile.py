"""The image references a Dockerfile builds on: ``FROM``, ``COPY --from``, ``RUN --mount=from=``.

Read the way BuildKit reads them, as far as the answer matters for an input key:

* parser directives (``# escape=``) and line continuations; comments skipped;
* global ``ARG`` lines before the first ``FROM`` (their defaults, overridden by
  ``--build-arg`` values for declared names) and BuildKit's automatic platform
  arguments (``TARGETPLATFORM``, ``TARGETARCH``, ``BUILDPLATFORM``, ...) are
  substituted into ``FROM``: ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME:+word}``;
* ``scratch``, earlier stage names (case-insensitive) and stage numbers are not images;
* a named build context (``--build-context NAME=...``) replaces an image of that
  name: such references are left to the caller (``contexts``).

A reference whose variables cannot all be resolved is returned as an ``Unresolved``
value: the caller must then build (never skip on doubt).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from buildspec.platform import Platform, PlatformError

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
                       r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Base:
    """An image the build uses, and the platform it is pulled for (``FROM --platform=``)."""

    reference: str
    platform: Platform


@dataclass(frozen=True)
class Unresolved:
    """A reference that names a variable with no value: the key cannot know the image."""

    text: str
    missing: str


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, rest)`` per instruction, continuations joined, comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    start = 0
    for start, line in enumerate(lines):  # noqa: B007 (start is used after the loop)
        found = _DIRECTIVE.match(line)
        if not found:
            break
        if found.group(1).lower() == "escape" and found.group(2) in ("\\", "`"):
            escape = found.group(2)
    else:
        start = len(lines)
    result: list[tuple[str, str]] = []
    current = ""
    for line in lines[start:]:
        stripped = line.strip()
        if stripped.startswith("#") or (current and not stripped):
            continue
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
        current = ""
    if current.strip():
        word, _, rest = current.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def platform_args(platform: Platform, build: Platform) -> dict[str, str]:
    """BuildKit's automatic platform arguments, available to ``FROM`` without a declaration."""
    values: dict[str, str] = {}
    for prefix, which in (("TARGET", platform.normalized()), ("BUILD", build.normalized())):
        values[f"{prefix}PLATFORM"] = str(which)
        values[f"{prefix}OS"] = which.os
        values[f"{prefix}ARCH"] = which.arch
        values[f"{prefix}VARIANT"] = which.variant or ""
    return values


def _substitute(text: str, values: Mapping[str, str]) -> str | Unresolved:
    missing: list[str] = []

    def replace(found: re.Match[str]) -> str:
        name = found.group("braced") or found.group("plain")
        value = values.get(name)
        op = found.group("op")
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return found.group("word")
            return value
        if op in (":+", "+"):
            return found.group("word") if value is not None and (op == "+" or value) else ""
        if value is None:
            missing.append(name)
            return ""
        return value

    result = _VARIABLE.sub(replace, text)
    return Unresolved(text, missing[0]) if missing else result


def _arg_declarations(rest: str) -> list[tuple[str, str | None]]:
    declared: list[tuple[str, str | None]] = []
    for part in rest.split():
        name, sep, default = part.partition("=")
        if sep and len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'":
            default = default[1:-1]
        declared.append((name, default if sep else None))
    return declared


def _flag(words: list[str], name: str) -> str | None:
    for word in words:
        if word.startswith(f"--{name}="):
            return word.split("=", 1)[1]
    return None


def base_references(
    text: str,
    build_args: Mapping[str, str],
    platform: Platform,
    build_platform: Platform,
    contexts: Collection[str] = (),
) -> list[Base | Unresolved]:
    """The external images the Dockerfile ``text`` uses, in order, de-duplicated."""
    automatic = platform_args(platform, build_platform)
    globals_: dict[str, str] = dict(automatic)
    stages: set[str] = set()
    found: dict[tuple[str, str], Base | Unresolved] = {}
    seen_from = False

    def add(reference: str | Unresolved, pulled_for: Platform = platform) -> None:
        if isinstance(reference, str):
            if not reference or reference.lower() == "scratch" or reference.lower() in stages:
                return
            if reference.isdigit() or reference in contexts:
                return
            found.setdefault((reference, str(pulled_for)), Base(reference, pulled_for))
        else:
            found.setdefault((reference.text, ""), reference)

    for word, rest in instructions(text):
        if word == "ARG" and not seen_from:
            for name, default in _arg_declarations(rest):
                if name in build_args:
                    globals_[name] = build_args[name]
                elif default is not None:
                    value = _substitute(default, globals_)
                    if isinstance(value, str):
                        globals_[name] = value
                elif name not in automatic:
                    globals_.pop(name, None)
        elif word == "FROM":
            seen_from = True
            words = rest.split()
            parts = [p for p in words if not p.startswith("--")]
            if not parts:
                continue
            reference = _substitute(parts[0], globals_)
            wanted = _flag(words, "platform")
            pulled_for = platform
            if wanted is not None:
                platform_text = _substitute(wanted, globals_)
                if isinstance(platform_text, Unresolved):
                    reference = platform_text
                else:
                    try:
                        pulled_for = Platform.parse(platform_text)
                    except PlatformError:
                        reference = Unresolved(wanted, wanted)
            add(reference, pulled_for)
            if len(parts) >= 3 and parts[1].lower() == "as":
                stages.add(parts[2].lower())
        elif word in ("COPY", "ADD"):
            source = _flag(rest.split(), "from")
            if source is not None:
                add(source if "$" not in source else Unresolved(source, source))
        elif word == "RUN":
            for flag in (w for w in rest.split() if w.startswith("--mount=")):
                options = dict(o.partition("=")[::2] for o in flag[len("--mount="):].split(","))
                source = options.get("from")
                if source:
                    add(source if "$" not in source else Unresolved(source, source))
    return list(found.values())
