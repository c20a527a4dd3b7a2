"""Named build contexts that stand for a sibling image: ``needs`` on a sibling's tag.

When ``A`` has ``needs = [B]`` and A's Dockerfile says ``FROM REPO_B:1.0.0`` (or
``COPY --from=``, ``RUN --mount=from=``), that tag is pushed only by B's manifest
step: with atomic publishing after every build of the run, so on a first release
the tag does not exist and on later ones it names the *previous* B. buildspec
therefore hands A's build one named context per tag of B (``--build-context
REPO_B:1.0.0=docker-image://REPO_B@sha256:...``), naming the image this run built
for the same platform, by digest. BuildKit and buildah 1.28 both look a ``FROM``
reference up among the named contexts before they pull it (verified in
/work/shared/ENVIRONMENT.md), so the Dockerfile stays as it is and builds on this
run's B whatever the publish mode.

The context names are the references a Dockerfile may write: ``REPO:TAG``, the
short form Docker users write for Docker Hub (``acme/base:1`` for
``docker.io/acme/base:1``, as BuildKit normalises it), and ``REPO`` alone for
``latest``. Contexts are passed for every needed image, not only those the
Dockerfile text mentions: a ``FROM ${BASE}`` can name a sibling too.

The digests exist only at run time: like ``image()`` pins they are filled in by
``run`` (``jobs.build_request(pins=...)``) and shown as placeholders by ``plan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buildspec.backends.base import SecretRef
from buildspec.evaluate import Image, Pin, Project, resolve_target
from buildspec.platform import Platform

DOCKER_HUB = "docker.io/"


def needed_images(project: Project, image: Image) -> list[str]:
    """The images ``image`` needs (groups and matrix declarations expanded), in order."""
    names: dict[str, None] = {}
    for name, span in image.needs:
        names.update(dict.fromkeys(resolve_target(project, name, project.groups, span)))
    names.pop(image.name, None)
    return list(names)


def sibling_sources(project: Project, image: Image, platform: Platform) -> list[str]:
    """The needed images that are built for ``platform``: those whose digest a build of
    ``image`` for ``platform`` gets as named contexts."""
    return [name for name in needed_images(project, image) if platform in project.images[name].platforms]


def reference_names(repository: str, tag: str) -> list[str]:
    """The ways a Dockerfile may write ``repository:tag``."""
    names = [f"{repository}:{tag}"]
    if repository.startswith(DOCKER_HUB):
        short = repository[len(DOCKER_HUB):]
        short = short.removeprefix("library/")
        names.append(f"{short}:{tag}")
    if tag == "latest":
        names += [name.removesuffix(":latest") for name in list(names)]
    return names


def image_source(project: Project, name: str, platform: Platform, pins: Mapping[str, str] | None,
                 layouts: Mapping[str, Path] | None = None) -> str:
    """The context value naming this run's image ``name`` for ``platform``:
    ``docker-image://REPO@sha256:...`` in the registry, or with ``layouts`` (run --load /
    --output, where nothing is pushed) ``oci-layout://FOLDER@sha256:...``, the OCI layout
    its build wrote. ``pins`` maps an image name to ``REPO@sha256:...``; None in a plan."""
    repository = project.images[name].repository
    pinned = pins[name] if pins is not None else f"{repository}@<digest of {name} for {platform}>"
    if layouts is None:
        return f"docker-image://{pinned}"
    return f"oci-layout://{layouts[name]}@{pinned.partition('@')[2]}"


def local_pin_name(project: Project, name: str, platform: Platform) -> str:
    """What an ``image()`` build argument says in a local run: ``REPO:PLATFORM_TAG``, the
    name of a context holding the layout. buildah 1.28 finds a context named by a tag
    but not one named ``REPO@sha256:...`` after ``ARG`` expansion, while BuildKit finds both."""
    image = project.images[name]
    return f"{image.repository}:{image.platform_tags[platform]}"


def sibling_contexts(project: Project, image: Image, platform: Platform,
                     pins: Mapping[str, str] | None, layouts: Mapping[str, Path] | None = None) -> dict[str, str]:
    """Context name -> this run's image (image_source) for every tag of every needed
    image built for ``platform``."""
    contexts: dict[str, str] = {}
    for name in sibling_sources(project, image, platform):
        sibling = project.images[name]
        source = image_source(project, name, platform, pins, layouts)
        for tag in sibling.tags:
            for reference in reference_names(sibling.repository, tag):
                contexts.setdefault(reference, source)
    return contexts


def request_fields(project: Project, image: Image, platform: Platform,
                   pins: Mapping[str, str] | None, layouts: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """The BuildRequest fields of the image's build options (evaluate/build_options.py) and
    its named contexts for ``platform``: ``contexts { x = image(B) }`` becomes
    ``docker-image://REPO@sha256:...`` as an ``args`` pin does, and wins over a sibling's
    context of the same name. With ``layouts`` (nothing is pushed), each ``image()`` pin
    of ``args`` is ``local_pin_name`` and a context of that name holds the layout, so
    that ``FROM ${BASE}`` finds it (BuildKit and buildah look FROM up there first)."""
    options = image.build_options
    contexts: dict[str, str | Path] = dict(sibling_contexts(project, image, platform, pins, layouts))
    if layouts is not None:
        for pin in image.pins(platform):
            contexts[local_pin_name(project, pin.target, platform)] = image_source(
                project, pin.target, platform, pins, layouts)
    for name, value in options.contexts:
        if isinstance(value, Pin):
            contexts[name] = image_source(project, value.target, platform, pins, layouts)
        else:
            contexts[name] = value
    return {
        "contexts": contexts,
        "secrets": tuple(SecretRef(s.id, s.kind, s.source) for s in options.secrets),
        "ssh": options.ssh,
        "attest": options.attest,
        "no_cache": options.no_cache,
        "pull": options.pull,
        "network": options.network,
        "hosts": dict(options.hosts),
        "shm_size": options.shm_size,
        "ulimits": tuple(f"{name}={limits}" for name, limits in options.ulimits),
        "annotations": dict(options.annotations),
        "cache_from": options.cache_from,
        "cache_to": options.cache_to,
    }
