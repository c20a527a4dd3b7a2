"""Stages 1-4 in one call: Buildfile path -> evaluated project and its graph."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import networkx as nx

from buildspec.evaluate import Project, TagLister, evaluate
from buildspec.graph import build_graph
from buildspec.model import build_model
from buildspec.syntax import parse, read_source


def load(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    display: str | None = None,
    tag_lister: TagLister | None = None,
    *,
    local: bool = False,
) -> tuple[Project, nx.DiGraph[str]]:
    display = display or str(path)
    text = read_source(path, display)
    model = build_model(parse(text, display), path.resolve().parent)
    project = evaluate(model, overrides, os.environ if environ is None else environ, tag_lister, local=local)
    return project, build_graph(project)
