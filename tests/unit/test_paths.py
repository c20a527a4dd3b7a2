"""paths.Resolver gives what Path.resolve() gives, symlinks and '..' included."""

from __future__ import annotations

import os
from pathlib import Path

from buildspec.paths import Resolver


def test_resolver_matches_path_resolve(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "ctx" / "a" / "deep").mkdir(parents=True)
    (base / "elsewhere" / "x").mkdir(parents=True)
    os.symlink(base / "elsewhere", base / "ctx" / "link")                 # absolute target
    os.symlink("../elsewhere/x", base / "ctx" / "rel")                    # relative target
    os.symlink(base / "ctx" / "link", base / "ctx" / "chain")             # a link to a link
    os.symlink(tmp_path, base / "ctx" / "up")                             # a link to an ancestor
    os.symlink(base / "nowhere", base / "ctx" / "dangling")
    paths = [
        base, base / "ctx", base / "ctx" / "a", base / "ctx" / "a" / "deep", base / "ctx" / "link",
        base / "ctx" / "link" / "x", base / "ctx" / "rel", base / "ctx" / "chain" / "x",
        base / "ctx" / "up" / "base" / "ctx", base / "ctx" / "link" / "..", base / "ctx" / "a" / ".." / "link",
        base / "ctx" / "up" / "..", base / "ctx" / "missing" / "more", base / "ctx" / "dangling" / "y",
        Path(str(base / "ctx") + "/./a//deep/"),
    ]
    resolver = Resolver()
    for _ in range(2):  # the second time from its memory
        for path in paths:
            assert resolver.resolve(path) == path.resolve(), path
