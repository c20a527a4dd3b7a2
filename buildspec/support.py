"""What each backend can honour, checked before anything is built (plan and run alike).

A setting the chosen backend cannot carry out is an error that names the image, the
setting, the backend and what would work: never a build that silently differs from
what the Buildfile says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import networkx as nx

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.contexts import needed_images
from buildspec.errors import BuildfileError
from buildspec.evaluate import Image, Project

# The image attributes of evaluate/build_options.py each backend carries out.
SUPPORTED: Mapping[str, frozenset[str]] = {
    "buildx": frozenset({"secrets", "ssh", "contexts", "attest", "no_cache", "pull", "network", "hosts",
                         "shm_size", "ulimits", "annotations", "cache_from", "cache_to"}),
    "buildah": frozenset({"secrets", "ssh", "contexts", "no_cache", "pull", "network", "hosts", "shm_size",
                          "ulimits", "annotations"}),
    # kaniko always pulls (it has no image store), and builds without a cache unless told.
    "kaniko": frozenset({"no_cache", "pull"}),
}
_CACHE_HINT = 'cache = "REPO" is the short form every backend supports'
HINTS: Mapping[tuple[str, str], str] = {
    ("buildah", "cache_from"): _CACHE_HINT + " (buildah --cache-from/--cache-to REPO)",
    ("buildah", "cache_to"): _CACHE_HINT + " (buildah --cache-from/--cache-to REPO)",
    ("kaniko", "cache_from"): _CACHE_HINT + " (kaniko --cache-repo)",
    ("kaniko", "cache_to"): _CACHE_HINT + " (kaniko --cache-repo)",
    ("kaniko", "contexts"): "pass an image as a build argument, args { X = image(NAME) }, or use buildx or buildah",
}


def check_support(project: Project, graph: nx.DiGraph[str], backends: Mapping[str, tuple[Backend, str]],
                  publish: str, *, local: bool = False) -> None:
    """Raise BuildfileError for the first image of ``graph`` its backend cannot build as asked."""
    built = {attrs["image"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "build"}
    with_manifests = any(attrs["kind"] == "manifest" for _, attrs in graph.nodes(data=True))
    for name in graphs.images_in(graph):
        if name not in built:
            continue
        backend = backends[name][0].name
        _check_options(project.images[name], backend)
        if backend == "kaniko" and local:
            raise BuildfileError(f"image '{name}' is built with kaniko, which buildspec cannot run with --load "
                                 "or --output (it writes no OCI layout buildspec reads)", project.images[name].span,
                                 hint="use --backend buildah (daemonless) or buildx for local outputs")
        if backend == "kaniko":
            _check_kaniko_needs(project, name, built, publish if with_manifests else "split")


def _check_options(image: Image, backend: str) -> None:
    supported = SUPPORTED.get(backend)
    if supported is None:  # a backend of a test or plugin: it says itself what it takes
        return
    for attribute in image.build_options.used():
        if attribute not in supported:
            able = [b for b, attrs in SUPPORTED.items() if attribute in attrs]
            verb = "supports" if len(able) == 1 else "support"
            hint = HINTS.get((backend, attribute)) or f"use backend = {' or '.join(able)}, which {verb} it"
            raise BuildfileError(f"image '{image.name}' sets {attribute}, which the {backend} backend cannot "
                                 "honour", image.build_options.spans.get(attribute, image.span), hint=hint)


def check_secrets(project: Project, graph: nx.DiGraph[str]) -> None:
    """Before anything is built: every secret's file exists and every variable is set.
    Only their existence is looked at, never their content."""
    built = {attrs["image"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "build"}
    for name in graphs.images_in(graph):
        if name not in built:
            continue
        for secret in project.images[name].build_options.secrets:
            if secret.kind == "env" and secret.source not in os.environ:
                raise BuildfileError(f"secret '{secret.id}': the variable {secret.source} is not set", secret.span,
                                     hint=f"export {secret.source} before buildspec run")
            if secret.kind == "src" and not Path(secret.source).is_file():
                raise BuildfileError(f"secret '{secret.id}': no file {secret.source}", secret.span)


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
