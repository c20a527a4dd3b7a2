"""What a build can see of its context: every file ``.dockerignore`` lets through, hashed.

The ignore file is the one BuildKit reads: ``<Dockerfile name>.dockerignore`` next
to the Dockerfile when it exists, else ``.dockerignore`` at the root of the
context. Its patterns are matched by docker-py's port of moby's pattern matcher
(``docker.utils.build.PatternMatcher``), so ``**``, ``!exceptions`` and directory
patterns behave as they do for ``docker build``. A context without ignore patterns
(the common case) is walked here, as that matcher walks it when nothing is ignored:
docker-py is then not even imported (about 35 ms of a run's start, before its first build).

Each entry is keyed by its path relative to the context and holds its type, its
mode bits and, for a file, the sha256 of its content (a symlink: its target).
Timestamps, owners and the folder the context lives in never count, so a second
clone of the repository gets the same answer.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


def ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    """The patterns that apply, read as Docker reads them (comments and blanks dropped)."""
    specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
    path = specific if specific.is_file() else context / ".dockerignore"
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path) -> str:
    info = path.lstat()
    mode = f"{stat.S_IMODE(info.st_mode):04o}"
    if stat.S_ISLNK(info.st_mode):
        return f"link {mode} {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"dir {mode}"
    if stat.S_ISREG(info.st_mode):
        return f"file {mode} {file_digest(path)}"
    return f"other {mode}"  # a socket or fifo: BuildKit skips it; its presence still counts


def context_entries(context: Path, dockerfile: Path) -> dict[str, str]:
    """``{relative path: "file 0644 <sha256>"}`` for everything the build can see, sorted."""
    patterns = ignore_patterns(context, dockerfile)
    if patterns:
        from docker.utils.build import PatternMatcher  # slow to import: only when something is ignored

        paths: Iterator[str] = PatternMatcher(patterns).walk(str(context))
    else:
        paths = _every_path(str(context))
    entries = {path.replace(os.sep, "/"): _entry(context / path) for path in paths}
    return dict(sorted(entries.items()))


def _every_path(root: str, prefix: str = "") -> Iterator[str]:
    """Every entry under ``root``, relative to it, entering folders but not links to
    folders: what ``PatternMatcher([]).walk(root)`` yields."""
    with os.scandir(os.path.join(root, prefix) if prefix else root) as found:
        for entry in found:
            path = os.path.join(prefix, entry.name) if prefix else entry.name
            yield path
            if entry.is_dir(follow_symlinks=False):
                yield from _every_path(root, path)


def tree_digest(entries: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path, entry in entries.items():
        digest.update(f"{path}\0{entry}\n".encode())
    return "sha256:" + digest.hexdigest()
