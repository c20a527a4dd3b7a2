"""paths.Resolver gives what Path.resolve() gives, symlinks and '..' included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildspec.jobs import state_dir
from buildspec.load import load_project
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


def _project_with_context(tmp_path: Path, context: str) -> Path:
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True, exist_ok=True)
    (tmp_path / "ap").mkdir(exist_ok=True)
    for folder in (app, app / "sub", tmp_path / "ap", tmp_path):
        (folder / "Dockerfile").write_text("FROM scratch\n")
    (app / "Buildfile").write_text(
        f'registry = "127.0.0.1:5000/paths"\nimage one {{\n    context = "{context}"\n    tags = ["1"]\n}}\n'
    )
    return app / "Buildfile"


def test_state_dir_leaves_build_contexts_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # .buildspec/ next to the Buildfile, unless a build context holds it (a COPY . would put
    # logs into the image): then $XDG_STATE_HOME. A context that only shares a name prefix
    # ("../ap" beside "app") does not hold it.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    expected = {"sub": "local", "../ap": "local", ".": "state", "..": "state"}
    for context, where in expected.items():
        project = load_project(_project_with_context(tmp_path, context), environ={})
        got = state_dir(project)
        if where == "local":
            assert got == tmp_path / "app" / ".buildspec", context
        else:
            assert got.parent == tmp_path / "state" / "buildspec", context
