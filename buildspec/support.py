"""What each backend can honour, checked before anything is built (plan and run alike).

A setting the chosen backend cannot carry out is an error that names the image, the
setting, the backend and what would work: never a build that silently differs from
what the Buildfile says.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.contexts import needed_images
from buildspec.errors import BuildfileError
from buildspec.evaluate import Project


def check_support(project: Project, graph: nx.DiGraph[str], backends: Mapping[str, tuple[Backend, str]],
                  publish: str) -> None:
    """Raise BuildfileError for the first image of ``graph`` its backend cannot build as asked."""
    built = {attrs["image"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "build"}
    with_manifests = any(attrs["kind"] == "manifest" for _, attrs in graph.nodes(data=True))
    for name in graphs.images_in(graph):
        if name in built and backends[name][0].name == "kaniko":
            _check_kaniko_needs(project, name, built, publish if with_manifests else "split")


def _check_kaniko_needs(project: Project, name: str, built: set[str], publish: str) -> None:
    """kaniko has no named build contexts: a sibling's tag names this run's image only
    once the sibling's index is pushed, which is before the build with eager publishing
    alone."""
    if publish == "eager":
        return
    image = project.images[name]
    siblings = [s for s in needed_images(project, image) if s in built]
    if not siblings:
        return
    sibling = project.images[siblings[0]]
    span = next(span for _, span in image.needs)
    when = ("with --publish atomic, its tags are pushed only after every build of the run"
            if publish == "atomic" else "a run with --platform pushes no tags at all")
    eager = ", or run with --publish eager" if publish == "atomic" else ""
    raise BuildfileError(
        f"image '{name}' is built with kaniko and needs '{sibling.name}': {when}, so a "
        f"'FROM {sibling.repository}:{sibling.tags[0]}' would not find the image this run builds "
        "(on a first release the tag does not exist, later it names the previous one), and kaniko "
        "has no named build contexts to pin it by digest",
        span,
        hint=f"pass it as a build argument, args {{ BASE = image({sibling.name}) }} with "
             f"'ARG BASE' and 'FROM ${{BASE}}' in the Dockerfile{eager}; buildx and buildah pin it themselves",
    )
