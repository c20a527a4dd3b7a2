"""Shell words for CI job scripts, with CI variables left for the shell to expand.

A CI job's ``script:``/``run:`` is a shell script, so the argv of a backend command
has to become one shell line. Every literal part is quoted with ``shlex.quote``
(nothing in a Buildfile value can reach the shell as syntax); the only parts the
shell expands are the variable references buildspec itself puts in, marked with
``var(NAME)``: the digest of an ``image()`` dependency that arrives as a job output,
or a runner's temporary folder.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

_MARK = "\x00"  # cannot occur in a Buildfile value (the parser rejects NUL bytes) nor in argv
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def var(name: str) -> str:
    """A reference to the shell variable ``name``, to embed in an argv word."""
    if not _NAME.match(name):
        raise ValueError(f"not a shell variable name: {name!r}")
    return f"{_MARK}{name}{_MARK}"


def split_var(name: str) -> str:
    """A reference the shell expands unquoted, so a value of several words (``BUILDSPEC``
    set to ``python3 -m buildspec``) becomes several argv words."""
    return var(name).replace(_MARK, _MARK + "+", 1)


def word(text: str) -> str:
    """One argv word as shell text: literal parts single-quoted, ``var()`` parts as ``"${NAME}"``."""
    parts = text.split(_MARK)
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced variable marker in {text!r}")
    out = []
    for i, part in enumerate(parts):
        if i % 2 and part.startswith("+"):
            out.append(f"${{{part[1:]}}}")
        elif i % 2:
            out.append(f'"${{{part}}}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


def line(argv: Sequence[str]) -> str:
    return " ".join(word(a) for a in argv)


def plain(text: str) -> str:
    """``text`` with every ``var()`` written as ``${NAME}`` (for display, never executed)."""
    parts = text.split(_MARK)
    return "".join(f"${{{p.lstrip('+')}}}" if i % 2 else p for i, p in enumerate(parts))
