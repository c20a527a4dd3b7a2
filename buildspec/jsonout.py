"""JSON text exactly as ``json.dumps(data, indent=2)`` writes it, written by orjson.

With ``indent`` the standard library encodes in pure Python: a fifth of `plan --format json`
on a large Buildfile. orjson writes the same layout with OPT_INDENT_2; the differences are
closed here: json escapes every character outside printable ASCII (``ensure_ascii``, DEL
included) where orjson writes UTF-8. Whatever orjson refuses (an integer past 64 bits, a
key that is not a string) is written by the standard library, as is everything when orjson
is not installed. tests/unit/test_plan_fast_paths.py compares both on the plans of every
example and on data orjson refuses.

``write_indented`` writes piece by piece (the outer object, its lists, one element at a
time), so the encoded text of a large plan (14 MB at 5000 images) is never in memory whole.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
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
    """``out.write(json.dumps(data, indent=2))``, in pieces; orjson's bytes go to the
    stream's buffer as they are when they need no escaping (no decoded copy)."""
    buffer = getattr(out, "buffer", None)
    if isinstance(buffer, io.BufferedIOBase):
        out.flush()
        for piece in _pieces(data, 0, 2):
            buffer.write(piece.encode("ascii") if isinstance(piece, str) else piece)
    else:
        for piece in _pieces(data, 0, 2):
            out.write(piece if isinstance(piece, str) else piece.decode("ascii"))


def _pieces(value: Any, indent: int, depth: int) -> Iterator[bytes | str]:
    """``json.dumps(value, indent=2)`` nested ``indent`` spaces deep, in pieces: containers
    ``depth`` levels down are opened here, deeper values are encoded whole. Each piece is
    ASCII: bytes from orjson, or text from the standard library (what orjson refuses)."""
    container = isinstance(value, dict | list | tuple) and value and depth > 0
    if not container or (isinstance(value, dict) and not all(isinstance(key, str) for key in value)):
        encoded = _encode(value)
        if encoded is None:
            yield standard_dumps(value).replace("\n", "\n" + " " * indent)
        else:
            if not encoded.isascii() or b"\x7f" in encoded:
                encoded = _ascii(encoded).encode("ascii")
            yield encoded.replace(b"\n", b"\n" + b" " * indent) if indent else encoded
        return
    inner = b"\n" + b" " * (indent + 2)
    if isinstance(value, dict):
        yield b"{"
        for number, (key, item) in enumerate(value.items()):
            yield (b"," if number else b"") + inner + _key(key) + b": "
            yield from _pieces(item, indent + 2, depth - 1)
        yield b"\n" + b" " * indent + b"}"
    else:
        yield b"["
        for number, item in enumerate(value):
            yield (b"," if number else b"") + inner
            yield from _pieces(item, indent + 2, depth - 1)
        yield b"\n" + b" " * indent + b"]"


def _key(key: str) -> bytes:
    encoded = _encode(key)
    return standard_dumps(key).encode("ascii") if encoded is None else _ascii(encoded).encode("ascii")


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
