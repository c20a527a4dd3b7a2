"""Stages 1-4 in one call: Buildfile path -> evaluated project and its graph (or, for check, 1-3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from buildspec.evaluate import Project, TagLister, evaluate
from buildspec.gitcontext import start_git_context
from buildspec.model import build_model
from buildspec.syntax import parse, read_source

if TYPE_CHECKING:  # check needs no networkx (start-up time): graph.py is imported by load() only
    import networkx as nx


def load(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    display: str | None = None,
    tag_lister: TagLister | None = None,
    *,
    local: bool = False,
) -> tuple[Project, nx.DiGraph[str]]:
    from buildspec.graph import build_graph

    project = load_project(path, overrides, environ, display, tag_lister, local=local)
    return project, build_graph(project)


def load_project(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    display: str | None = None,
    tag_lister: TagLister | None = None,
    *,
    local: bool = False,
) -> Project:
    """Stages 1-3: the evaluated project, not yet its graph (graph_parts.check_graph validates it)."""
    display = display or str(path)
    environ = os.environ if environ is None else environ
    directory = path.resolve().parent
    # git runs beside reading, parsing and modelling the file (wall time: start-up).
    git = start_git_context(directory, environ)
    try:
        text = read_source(path, display)
        model = build_model(parse(text, display), directory)
        return evaluate(model, overrides, environ, tag_lister, local=local, git_started=git)
    finally:
        git.close()
