"""The input key of one build (one image, one platform), and what changed between two.

The key is the sha256 of a canonical JSON document holding everything that
determines the image (``Inputs``):

* ``KEY_VERSION``: bumped whenever this recipe changes, so an old key can never
  give a false hit;
* the platform and the backend;
* ``settings``: every field of the backend request that shapes the image (the
  Dockerfile's content, target, build arguments with ``image()`` pins resolved
  to digests, labels, backend options, and any field added later), but not where
  it is pushed, where it logs, the builder it runs on or its cache;
* ``files``: every entry of the build context the build can see (context.py),
  and of any other local folder a request names (a named context);
* ``bases``: the digest each image the Dockerfile builds on resolves to now.

The same document, compressed, travels with the pushed image (registry.py), so a
later miss can say what changed.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildspec.backends.base import BuildRequest
from buildspec.uptodate.context import context_entries, file_digest, tree_digest

KEY_VERSION = 1

# Request fields that do not change the image (or are recorded another way).
_NOT_INPUTS = frozenset({
    "node_id", "image", "platform", "platforms", "context", "push_ref", "insecure", "workdir",
    "builder", "cache_repo", "dockerfile",
})
# Backend options that only say how to run the tool, not what it builds.
_RUN_OPTIONS = frozenset({"kaniko.executor", "kaniko.image", "kaniko.docker-config"})
# Above this many bytes the per-file list is left out of the record (the key still covers it).
_MAX_RECORD = 256 * 1024


@dataclass(frozen=True)
class Inputs:
    platform: str
    backend: str
    settings: Mapping[str, Any]
    files: Mapping[str, str]
    bases: Mapping[str, str]
    pins: Mapping[str, str] = field(default_factory=dict)  # build argument -> image() name
    version: int = KEY_VERSION

    def document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "platform": self.platform,
            "backend": self.backend,
            "settings": dict(self.settings),
            "files": tree_digest(dict(self.files)),
            "bases": dict(sorted(self.bases.items())),
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def encode(self) -> str:
        """The compressed record carried by the pushed image (base64 of gzipped JSON)."""
        record = {**self.document(), "key": self.key, "files": dict(self.files), "pins": dict(self.pins)}
        data = gzip.compress(json.dumps(record, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
        if len(data) > _MAX_RECORD:
            record["files"] = tree_digest(dict(self.files))
            data = gzip.compress(json.dumps(record, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
        return base64.b64encode(data).decode()


def decode(text: str) -> dict[str, Any]:
    """A record written by ``Inputs.encode`` (any key version); ValueError if unreadable."""
    try:
        value = json.loads(gzip.decompress(base64.b64decode(text)))
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable inputs record: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("unreadable inputs record: not an object")
    return value


class TreeCache:
    """Hash each folder once per run (the platforms of an image share their context)."""

    def __init__(self) -> None:
        self._trees: dict[tuple[Path, Path], dict[str, str]] = {}

    def entries(self, context: Path, dockerfile: Path) -> dict[str, str]:
        key = (context, dockerfile)
        if key not in self._trees:
            self._trees[key] = context_entries(context, dockerfile)
        return self._trees[key]

    def forget(self) -> None:
        self._trees.clear()


def _value(value: Any, files: dict[str, str], name: str, trees: TreeCache) -> Any:
    """A request field as JSON; a local folder or file becomes its content's digest (its
    entries join ``files`` under ``name/``)."""
    if isinstance(value, Path):
        if value.is_dir():
            entries = trees.entries(value, value / "Dockerfile")
            files.update({f"{name}/{path}": entry for path, entry in entries.items()})
            return f"dir {tree_digest(entries)}"
        if value.is_file():
            return f"file sha256:{file_digest(value)}"
        return f"missing {value.name}"
    if isinstance(value, Mapping):
        ordered = sorted(value.items(), key=lambda item: str(item[0]))
        return {str(k): _value(v, files, f"{name}.{k}", trees) for k, v in ordered}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_value(v, files, f"{name}[{i}]", trees) for i, v in enumerate(value)]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _value(dataclasses.asdict(value), files, name, trees)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def request_inputs(
    request: BuildRequest,
    backend: str,
    bases: Mapping[str, str],
    trees: TreeCache,
    pins: Mapping[str, str] | None = None,
) -> Inputs:
    """The inputs of one per-platform request (for a merged build: one per platform)."""
    files = dict(trees.entries(request.context, request.dockerfile))
    where = os.path.relpath(request.dockerfile, request.context)  # the same in every clone
    settings: dict[str, Any] = {"dockerfile": f"{where} sha256:{file_digest(request.dockerfile)}"}
    for item in dataclasses.fields(request):
        if item.name in _NOT_INPUTS:
            continue
        value = getattr(request, item.name)
        if item.name == "options":
            value = {k: v for k, v in value.items() if k not in _RUN_OPTIONS}
        settings[item.name] = _value(value, files, item.name, trees)
    return Inputs(
        platform=str(request.platform.normalized()),
        backend=backend,
        settings=settings,
        files=files,
        bases=dict(bases),
        pins=dict(pins or {}),
    )


def changes(old: Mapping[str, Any], new: Inputs, limit: int = 6) -> list[str]:
    """What differs between a recorded build and ``new``, in words, most telling first."""
    if old.get("version") != new.version:
        return [f"the key recipe changed (key version {old.get('version')} -> {new.version})"]
    found: list[str] = []
    if old.get("backend") != new.backend:
        found.append(f"backend {old.get('backend')} -> {new.backend}")
    found += _file_changes(old.get("files"), new.files)
    old_settings = old.get("settings") if isinstance(old.get("settings"), dict) else {}
    assert isinstance(old_settings, dict)
    for name in sorted(set(old_settings) | set(new.settings)):
        before, after = old_settings.get(name), new.settings.get(name)
        if before == after:
            continue
        if name == "dockerfile":
            path = str(after).rpartition(" ")[0]
            if f"{path} changed" not in found:  # a Dockerfile inside the context is listed already
                found.append(f"{path} changed")
        elif name in ("args", "labels") and isinstance(before, dict) and isinstance(after, dict):
            found += _mapping_changes("arg" if name == "args" else "label", before, after, new.pins)
        else:
            found.append(f"{name} changed")
    old_bases = old.get("bases") if isinstance(old.get("bases"), dict) else {}
    assert isinstance(old_bases, dict)
    for reference, digest in new.bases.items():
        if old_bases.get(reference) != digest:
            found.append(f"FROM {reference} moved to {digest}" if reference in old_bases
                         else f"FROM {reference} is new ({digest})")
    if len(found) > limit:
        found = [*found[:limit], f"and {len(found) - limit} more changes"]
    return found or ["inputs changed"]


def _mapping_changes(kind: str, before: dict[str, Any], after: dict[str, Any],
                     pins: Mapping[str, str]) -> list[str]:
    found = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name in pins and name in before and name in after:
            found.append(f"image({pins[name]}) was rebuilt ({after[name].rpartition('@')[2][:19]})")
        elif name not in before:
            found.append(f"{kind} {name} added")
        elif name not in after:
            found.append(f"{kind} {name} removed")
        elif kind == "label":
            found.append(f"label {name} changed")
        else:
            found.append(f"{kind} {name} {before[name]} -> {after[name]}")
    return found


def _file_changes(before: Any, after: Mapping[str, str]) -> list[str]:
    if not isinstance(before, dict):
        return [] if before == tree_digest(dict(after)) else ["the build context changed"]
    found: list[str] = []
    removed = {p: e for p, e in before.items() if p not in after}
    added = {p: e for p, e in after.items() if p not in before}
    by_content = {e: p for p, e in removed.items()}
    for path, entry in added.items():
        if entry in by_content:
            old_path = by_content.pop(entry)
            removed.pop(old_path, None)
            found.append(f"{old_path} renamed to {path}")
        else:
            found.append(f"{path} added")
    found += [f"{path} removed" for path in removed]
    for path, entry in after.items():
        old = before.get(path)
        if old is None or old == entry:
            continue
        old_kind, old_mode, *old_rest = str(old).split(" ", 2)
        kind, mode, *rest = entry.split(" ", 2)
        if old_kind == kind and old_rest == rest and old_mode != mode:
            found.append(f"{path} mode {old_mode} -> {mode}")
        else:
            found.append(f"{path} changed")
    return found
