"""Text helpers of ``buildspec import``: references, literal templates, names."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from buildspec.errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def split_tag(reference: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); no tag means ``latest``, as Docker reads it."""
    name, _, _digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"


def common_registry(repositories: Sequence[str]) -> str | None:
    """The longest folder all repositories share (``127.0.0.1:5000/team``), if any."""
    if not repositories:
        return None
    parts = [r.split("/")[:-1] for r in repositories]
    common = []
    for column in itertools.zip_longest(*parts):
        if None in column or len(set(column)) != 1:
            break
        common.append(column[0])
    return "/".join(common) or None


def template_literal(text: str) -> str:
    """Text as a template that renders to exactly that text: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def key_text(key: str) -> str:
    return key if _NAME.fullmatch(key) and key not in ("if", "and", "or", "not") else string(key)


def name_text(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"bake target or group '{name}' is not a valid buildspec name "
                         "(letters, digits, '_', '-', '.'; starting with a letter or '_')")
    return name
