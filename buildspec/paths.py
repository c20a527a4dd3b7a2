"""Resolving many paths that share folders: ``Path.resolve()`` with one ``lstat`` per new folder.

``os.path.realpath`` looks at every component of every path it is given: for the build
contexts of a large Buildfile (ctx/img0 ... ctx/img4999, all under one folder), that is
the same folders again and again, about a tenth of `plan`. This resolver remembers the
real path of each folder it has seen, and so only looks at each path's new components.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class Resolver:
    """``resolve(path) == path.resolve()`` for absolute paths, with a memory of folders."""

    def __init__(self) -> None:
        self._real: dict[str, str] = {"/": "/"}

    def resolve(self, path: Path) -> Path:
        return Path(self.real(path))

    def real(self, path: Path) -> str:
        """``str(self.resolve(path))``, without making the Path."""
        return self._resolve(os.path.normpath(path) if ".." not in path.parts else str(path))

    def _resolve(self, text: str) -> str:
        known = self._real.get(text)
        if known is not None:
            return known
        parent, name = os.path.split(text)
        if not os.path.isabs(text) or not name:
            real = os.path.realpath(text)
        elif name == "..":
            real = os.path.dirname(self._resolve(parent))
        elif name == ".":
            real = self._resolve(parent)
        else:
            candidate = os.path.join(self._resolve(parent), name)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:  # missing: realpath keeps the rest as written
                is_link = True
            real = os.path.realpath(candidate) if is_link else candidate
        self._real[text] = real
        return real
