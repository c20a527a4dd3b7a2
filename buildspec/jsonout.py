"""JSON text exactly as ``json.dumps(data, indent=2)`` writes it, written by orjson.

With ``indent`` the standard library encodes in pure Python: a fifth of `plan --format json`
on a large Buildfile. orjson writes the same layout with OPT_INDENT_2; the differences are
closed here: json escapes every character outside printable ASCII (``ensure_ascii``, DEL
included) where orjson writes UTF-8. Whatever orjson refuses (an integer past 64 bits, a
key that is not a string) is written by the standard library, as is everything when orjson
is not installed. tests/unit/test_jsonout.py compares both on the plans of every example.
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

_NOT_ASCII = re.compile("[\x7f-\U0010ffff]")  # orjson already escapes the control characters


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as json writes it
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def dumps_indented(data: Any) -> str:
    """``json.dumps(data, indent=2)``, faster."""
    encoded = _encode(data)
    return standard_dumps(data) if encoded is None else _ascii(encoded)


def write_indented(data: Any, out: TextIO) -> None:
    """``out.write(json.dumps(data, indent=2))``; orjson's bytes go to the stream's buffer
    as they are when they need no escaping (tens of MB on a large plan: no decoded copy)."""
    encoded = _encode(data)
    if encoded is None:
        out.write(standard_dumps(data))
    elif encoded.isascii() and b"\x7f" not in encoded and isinstance(buffer := getattr(out, "buffer", None),
                                                                    io.BufferedIOBase):
        out.flush()
        buffer.write(encoded)
    else:
        out.write(_ascii(encoded))


def _encode(data: Any) -> bytes | None:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; the slow path still works
        return None
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)
    except TypeError:  # an integer past 64 bits, a key that is not a string
        return None


def _ascii(encoded: bytes) -> str:
    text = encoded.decode("utf-8")
    return text if text.isascii() and "\x7f" not in text else _NOT_ASCII.sub(_escape, text)


def standard_dumps(data: Any) -> str:
    import json

    return json.dumps(data, indent=2)
