"""What one graph node asks of a backend or of the registry, shared by `plan` and `run`.

`plan --commands` and `run` both build their BuildRequest here, so the argv a
plan shows is the argv a run executes (run only fills in the digests of the
``image()`` dependencies, which exist only once they are built).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildspec import graph as graphs
from buildspec.backends.base import Backend, BuildRequest
from buildspec.backends.buildx import BuildxBackend
from buildspec.contexts import local_pin_name, request_fields, sibling_sources
from buildspec.evaluate import Image, Pin, Project
from buildspec.paths import Resolver
from buildspec.platform import Platform
from buildspec.registry.reference import is_loopback

if TYPE_CHECKING:  # networkx is loaded by the graph stage; here only for annotations
    import networkx as nx


def safe_name(node_id: str) -> str:
    """``build:app@linux/arm64`` -> ``build-app@linux-arm64`` (a file name)."""
    return node_id.replace(":", "-", 1).replace("/", "-")


def state_dir(project: Project) -> Path:
    """Where logs and work files go: ``.buildspec/`` next to the Buildfile, like make's
    outputs, unless that folder is inside a build context (``context = "."``): then a
    ``COPY .`` would put logs and digests into the image, so they go to
    ``$XDG_STATE_HOME/buildspec/<hash of the Buildfile folder>`` instead."""
    folder = project.buildfile.directory
    local = folder / ".buildspec"
    real = Resolver().real  # the contexts share folders: each is looked at once
    inside = str(local) + os.sep  # local.is_relative_to(context), on strings (a large plan's hot spot)
    if not any(inside.startswith(real(image.context).rstrip(os.sep) + os.sep) for image in project.images.values()):
        return local
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state_home / "buildspec" / hashlib.sha256(str(folder).encode()).hexdigest()[:16]


def registry_host(repository: str) -> str:
    first = repository.split("/", 1)[0]
    return first if ("." in first or ":" in first or first == "localhost") else "docker.io"


def is_insecure(repository: str, insecure_registries: Collection[str]) -> bool:
    """Loopback registries and the ones named with --insecure-registry, as Docker does."""
    host = registry_host(repository)
    return host in insecure_registries or is_loopback(host)


# Labels that change with every release or commit: they go on the index (annotations),
# not on the platform images, so an image whose inputs did not change stays the same
# image under a new version's tags (and its build can be skipped).
RELEASE_LABELS = frozenset(f"org.opencontainers.image.{name}" for name in ("version", "revision", "created"))


def build_labels(image: Image) -> dict[str, str]:
    """The labels a build puts on the platform image (``release_labels = true``: all)."""
    if image.release_labels:
        return dict(image.labels)
    return {k: v for k, v in image.labels.items() if k not in RELEASE_LABELS}


def pin_placeholder(project: Project, pin: Pin, platform: Platform) -> str:
    return f"{project.images[pin.target].repository}@<digest of {pin.target} for {platform}>"


def build_request(
    project: Project,
    image: Image,
    platform: Platform,
    *,
    state_dir: Path,
    insecure_registries: Collection[str] = (),
    pins: Mapping[str, str] | None = None,
    merged: tuple[Platform, ...] = (),
    local: bool = False,
) -> BuildRequest:
    """``pins`` maps a dependency's image name to ``repo@sha256:...``; None in a plan.
    ``merged``: all the platforms one merged build makes (``platform`` is the first).
    ``local`` (run --load / --output): the build writes an OCI layout (local_layout)
    instead of pushing, and finds its dependencies in theirs (contexts.image_source)."""
    args: dict[str, str] = {}
    for key, value in image.args[platform]:
        if isinstance(value, Pin):
            if local:
                args[key] = local_pin_name(project, value.target, platform)
            else:
                args[key] = pins[value.target] if pins is not None else pin_placeholder(project, value, platform)
        else:
            args[key] = value
    node_id = f"build:{image.name}@{'+'.join(map(str, merged or (platform,)))}"
    workdir = state_dir / "work" / safe_name(node_id)
    layouts = ({name: local_layout(state_dir, name, platform) for name in digest_sources(project, image, platform)}
               if local else None)
    return BuildRequest(
        node_id=node_id,
        image=image.name,
        platform=platform,
        context=image.context,
        dockerfile=image.dockerfile,
        target=image.target,
        args=args,
        labels=build_labels(image),
        push_ref=f"{image.repository}:{image.platform_tags[platform]}",
        insecure=is_insecure(image.repository, insecure_registries),
        workdir=workdir,
        builder=image.builder,
        cache_repo=image.cache,
        platforms=merged,
        **request_fields(project, image, platform, pins, layouts),
        oci_layout=local_layout(state_dir, image.name, platform) if local else None,
        push=bool(image.tags),
    )


def local_layout(state_dir: Path, image: str, platform: Platform) -> Path:
    """The OCI layout the local build (never merged) of ``image`` for ``platform`` writes.

    Under the temporary folder, named by hashes: buildah 1.28 reads a
    ``container-image://oci:PATH`` context only when PATH is also a valid image name
    (lowercase, no component starting with ``.`` as ``.buildspec`` does), and buildx
    splits ``oci-layout://PATH@DIGEST`` at the first ``@`` (which node names hold)."""
    folder = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    name = hashlib.sha256(image.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"buildspec-layouts-{folder}" / f"{name}-{platform.normalized().slug}"


def digest_sources(project: Project, image: Image, platform: Platform) -> list[str]:
    """The images whose digest for ``platform`` a build of ``image`` needs at run time
    (``pins`` of build_request): its image() pins and the needed images it gets as
    named contexts (contexts.py)."""
    names = dict.fromkeys(pin.target for pin in image.pins(platform))
    names.update(dict.fromkeys(sibling_sources(project, image, platform)))
    return list(names)


@dataclass(frozen=True)
class BakeCall:
    """One ``docker buildx bake`` that builds a batch of merged builds (backends/buildx.py)."""

    batch: str  # "bake-1"
    backend: BuildxBackend
    requests: Mapping[str, BuildRequest]  # node id -> the request its own build would run
    argv: list[str]
    definition: dict[str, Any]  # the bake file, written to folder / BAKE_FILE
    folder: Path


def bake_batches(
    project: Project,
    plan: nx.DiGraph[str],
    backends: Mapping[str, tuple[Backend, str]],
    skip: Collection[str] = (),
    waves: Sequence[Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Which merged buildx builds of the execution graph ``plan`` one bake call builds
    together (``{"bake-1": [node, ...]}``): ready at the same moment, on the same builder.
    ``skip``: nodes that will not build (up to date); ``waves``: ``graph.waves(plan)`` if known."""

    def key(node: str) -> str | None:
        attrs = plan.nodes[node]
        if attrs["kind"] != "build" or len(graphs.platforms_of(attrs)) < 2 or node in skip:
            return None
        image = project.images[attrs["image"]]
        if image.build_options.used():  # built alone: bake files carry only the basic settings
            return None
        if not image.tags:  # built without pushing: no digest to read from a bake
            return None
        return (image.builder or "") if isinstance(backends[image.name][0], BuildxBackend) else None

    return graphs.batches(plan, key, waves)


def bake_calls(
    project: Project,
    plan: nx.DiGraph[str],
    backends: Mapping[str, tuple[Backend, str]],
    *,
    state_dir: Path,
    insecure_registries: Collection[str] = (),
    skip: Collection[str] = (),
) -> dict[str, BakeCall]:
    """The bake calls of ``bake_batches``, each with its requests, argv and bake file.
    Merged builds have no ``image()`` pins, so their requests are known before anything
    runs."""
    calls: dict[str, BakeCall] = {}
    for batch, nodes in bake_batches(project, plan, backends, skip).items():
        requests = {}
        for node in nodes:
            image = project.images[plan.nodes[node]["image"]]
            platforms = graphs.platforms_of(plan.nodes[node])
            requests[node] = build_request(project, image, platforms[0], state_dir=state_dir,
                                           insecure_registries=insecure_registries, merged=platforms)
        backend = backends[project.images[plan.nodes[nodes[0]]["image"]].name][0]
        assert isinstance(backend, BuildxBackend)
        folder = state_dir / "work" / batch
        argv, definition = backend.bake(list(requests.values()), folder)
        calls[batch] = BakeCall(batch, backend, requests, argv, definition, folder)
    return calls


def mergeable(image: Image, backend_name: str) -> bool:
    """Whether one buildx call may build all of the image's platforms: nothing differs
    per platform but the platform itself (no image() pin, the same build arguments), and
    it needs no other image (whose per-platform digests become named contexts) and keeps
    no attestations (which the manifest step carries over per platform)."""
    if backend_name != "buildx" or len(image.platforms) < 2 or image.needs or image.build_options.attest:
        return False
    first = image.args[image.platforms[0]]
    return not image.pins(image.platforms[0]) and all(image.args[p] == first for p in image.platforms)
