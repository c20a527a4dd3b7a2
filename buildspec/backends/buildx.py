"""``docker buildx build``: one invocation per (image, platform), or per image.

When nothing forces separate builds (no ``image()`` pin, the same arguments on
every platform), buildspec merges an image's platforms into one call
(``request.platforms``): BuildKit then builds them in one session, which is
what makes ``docker buildx bake`` fast. That call pushes an index under the
first platform tag; run.py then re-tags each platform's image under its own
platform tag, so the registry ends up as with separate builds.

The per-platform image is pushed under its platform tag (``request.push_ref``) and
buildspec assembles the multi-platform index itself afterwards.

Why a tagged push and not ``push-by-digest``: the default ``docker`` driver (the
only one usable without pulling a BuildKit image from Docker Hub) answers
"push-by-digest is currently not implemented for docker driver", even with the
containerd image store. ``--tag REF --push`` works with every driver.

Why ``--provenance=false``: buildx otherwise attaches a provenance attestation,
so the pushed artifact becomes an OCI *index* holding the image and an
``unknown/unknown`` attestation manifest, and ``containerimage.digest`` names that
index. Without it the pushed artifact is a plain image manifest whose digest can
go straight into buildspec's own index.

Why ``push=`` on a daemon with the containerd image store (``buildkit_pushes``): with the
``docker`` driver, ``--push`` makes BuildKit push the image, and then buildx pushes it a
second time "with docker" (``docker push`` of the same name: a HEAD of every blob and a
PUT of every manifest again, about a third of a warm bake's time). BuildKit reads an empty
``push`` as true and pushes; buildx's second push only follows a ``push`` that parses as
true. So on such a daemon buildspec asks for ``--output type=image,name=REF,push=``
(``output = ["type=image,push="]`` in a bake file): one push, by BuildKit. Only for the
default builder of a daemon that ``select.buildkit_pushes_itself`` found to push by
itself; and if the registry still lacks the image after the build, run.py pushes it with
``docker push REF``, as buildx would have (``push_command``).

Merged builds that become ready together (the same dependencies, the same
``--builder``) are batched into one ``docker buildx bake`` call (``bake``): one
BuildKit session for all of them, which is the rest of what makes bake fast
(the base image's metadata resolved once per platform, not once per image). The
bake file is generated from the very requests ``commands`` would run, one target
per image: the same context, Dockerfile, platforms, arguments, labels, tag and
cache. If the bake fails, each of its images is built alone with ``commands``,
so that a failure names its image, and ``--keep-going`` still publishes the rest.

The platform is passed normalised (``linux/arm64`` for ``linux/arm64/v8``), as
for the other backends. A cache repository becomes a registry cache
(``--cache-from``/``--cache-to type=registry``, ``mode=max``) under one tag per
image and platform, so that parallel builds never overwrite each other's cache;
the ``docker`` driver with the containerd image store supports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buildspec.backends.base import BuildRequest
from buildspec.backends.options import build_option_args
from buildspec.errors import BuildspecError

METADATA_FILE = "metadata.json"
BAKE_FILE = "bake.json"

# BuildKit reads an empty ``push`` as true and pushes; buildx pushes "with docker" only
# after an exporter whose ``push`` parses as true (see the module's docstring).
BUILDKIT_ONLY_PUSH = "push="

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_TARGET_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class BuildxBackend:
    name = "buildx"

    def __init__(self, docker: str = "docker", *, buildkit_pushes: bool = False) -> None:
        self.docker = docker
        # Whether the default builder's BuildKit pushes by itself (select.buildkit_pushes_itself):
        # set by `run` and `plan --commands` on a machine that has such a daemon.
        self.buildkit_pushes = buildkit_pushes

    def leaves_push_to_buildkit(self, request: BuildRequest) -> bool:
        """Whether ``request``'s build pushes through BuildKit alone (``push=`` below):
        the default builder (no ``--builder``) of a daemon whose BuildKit pushes itself."""
        return self.buildkit_pushes and request.push and request.oci_layout is None and not request.builder

    def push_command(self, request: BuildRequest) -> list[str] | None:
        """What pushes ``request``'s image if the registry does not have it after a build
        that left the push to BuildKit (what buildx would have run itself); None otherwise."""
        return [self.docker, "push", request.push_ref] if self.leaves_push_to_buildkit(request) else None

    def commands(self, request: BuildRequest) -> list[list[str]]:
        platform = ",".join(str(p.normalized()) for p in request.platforms or (request.platform,))
        argv = [self.docker, "buildx", "build", "--platform", platform]
        argv += ["-f", str(request.dockerfile)]
        if request.target:
            argv += ["--target", request.target]
        for key in sorted(request.args):
            argv += ["--build-arg", f"{key}={request.args[key]}"]
        for key in sorted(request.labels):
            argv += ["--label", f"{key}={request.labels[key]}"]
        for name in sorted(request.contexts):
            argv += ["--build-context", f"{name}={request.contexts[name]}"]
        argv += build_option_args(request)
        if request.pull:
            argv.append("--pull")
        argv += [f"--attest={a}" for a in request.attest] or ["--provenance=false"]
        if request.builder:
            argv += ["--builder", request.builder]
        if request.cache_repo:
            cache_ref = cache_ref_for(request)
            argv += ["--cache-from", f"type=registry,ref={cache_ref}"]
            argv += ["--cache-to", f"type=registry,ref={cache_ref},mode=max"]
        for cache in request.cache_from:
            argv += ["--cache-from", cache]
        for cache in request.cache_to:
            argv += ["--cache-to", cache]
        if request.oci_layout is not None:  # run --load / --output: nothing is pushed
            argv += ["--output", f"type=oci,dest={request.oci_layout},tar=false"]
        elif self.leaves_push_to_buildkit(request):
            argv += ["--output", f"type=image,name={request.push_ref},{BUILDKIT_ONLY_PUSH}"]
        elif request.push:
            argv += ["--tag", request.push_ref, "--push"]
        else:  # nothing to push (an image without tags): build, and keep only the build cache
            argv += ["--output", "type=cacheonly"]
        argv += ["--metadata-file", str(request.workdir / METADATA_FILE)]
        argv += ["--progress=plain", str(request.context)]
        return [argv]

    def is_push_step(self, argv: Sequence[str]) -> bool:
        return False  # the build pushes (``--push``)

    def read_digest(self, request: BuildRequest) -> str:
        path = request.workdir / METADATA_FILE
        try:
            metadata = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BuildspecError(f"buildx left no readable metadata file {path}: {exc}") from exc
        digest = metadata.get("containerimage.digest") if isinstance(metadata, dict) else None
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise BuildspecError(f"{path} has no 'containerimage.digest' of the form sha256:<64 hex>: {digest!r}")
        return digest

    def bake(self, requests: Sequence[BuildRequest], folder: Path) -> tuple[list[str], dict[str, Any]]:
        """One ``docker buildx bake`` for merged builds: (argv, the bake file it reads).

        The file is written to ``folder / BAKE_FILE`` by the caller; each request's
        target is ``bake_target(request)``. Every request must have the same builder.
        """
        targets: dict[str, dict[str, Any]] = {}
        for request in requests:
            target: dict[str, Any] = {
                "context": str(request.context),
                "dockerfile": str(request.dockerfile),
                "platforms": [str(p.normalized()) for p in request.platforms or (request.platform,)],
                "args": dict(sorted(request.args.items())),
                "labels": dict(sorted(request.labels.items())),
                "tags": [request.push_ref],
            }
            if request.target:
                target["target"] = request.target
            if request.contexts:
                target["contexts"] = {k: str(v) for k, v in sorted(request.contexts.items())}
            if request.cache_repo:
                cache_ref = cache_ref_for(request)
                target["cache-from"] = [f"type=registry,ref={cache_ref}"]
                target["cache-to"] = [f"type=registry,ref={cache_ref},mode=max"]
            if self.leaves_push_to_buildkit(request):
                target["output"] = [f"type=image,{BUILDKIT_ONLY_PUSH}"]
            targets[bake_target(request)] = target
        definition = {"group": {"default": {"targets": list(targets)}}, "target": _hcl_literal(targets)}
        argv = [self.docker, "buildx", "bake", "--file", str(folder / BAKE_FILE), "--provenance=false"]
        builders = {request.builder for request in requests}
        if len(builders) != 1:
            raise ValueError(f"one bake call, one builder: {sorted(map(str, builders))}")
        if requests[0].builder:
            argv += ["--builder", requests[0].builder]
        if not all(self.leaves_push_to_buildkit(request) for request in requests):
            argv.append("--push")
        argv += ["--metadata-file", str(folder / METADATA_FILE), "--progress=plain"]
        return argv, definition

    def read_bake_digest(self, request: BuildRequest, folder: Path) -> str:
        """After a bake succeeded: the digest it pushed for ``request``'s target."""
        path = folder / METADATA_FILE
        try:
            metadata = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BuildspecError(f"buildx bake left no readable metadata file {path}: {exc}") from exc
        entry = metadata.get(bake_target(request)) if isinstance(metadata, dict) else None
        digest = entry.get("containerimage.digest") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise BuildspecError(f"{path} has no digest for target {bake_target(request)!r}: {digest!r}")
        return digest


def _hcl_literal(value: Any) -> Any:
    """Bake reads a JSON file as HCL: every string, keys included, is a template, so
    ``${X}`` would be interpolated and ``%{`` start a directive. ``$${`` and ``%%{``
    are their literal forms: a value reaches the build exactly as ``--build-arg`` gives it."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return {_hcl_literal(k): _hcl_literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hcl_literal(v) for v in value]
    return value


def bake_target(request: BuildRequest) -> str:
    """A bake target name (``[A-Za-z0-9_-]``): the image's name, or when that has other
    characters (``.``), the name made safe plus a hash of it, so that no two collide."""
    safe = _TARGET_UNSAFE.sub("_", request.image)
    return safe if safe == request.image else f"{safe}-{hashlib.sha256(request.image.encode()).hexdigest()[:8]}"


def cache_ref_for(request: BuildRequest) -> str:
    """One cache tag per image and platform: builds must not overwrite each other's cache."""
    slugs = "-".join(p.normalized().slug for p in request.platforms or (request.platform,))
    tag = _TAG_UNSAFE.sub("-", f"buildcache-{request.image}-{slugs}")
    return f"{request.cache_repo}:{tag[:128]}"
