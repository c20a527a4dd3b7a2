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

The platform is passed normalised (``linux/arm64`` for ``linux/arm64/v8``), as
for the other backends. A cache repository becomes a registry cache
(``--cache-from``/``--cache-to type=registry``, ``mode=max``) under one tag per
image and platform, so that parallel builds never overwrite each other's cache;
the ``docker`` driver with the containerd image store supports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from buildspec.backends.base import BuildRequest
from buildspec.errors import BuildspecError

METADATA_FILE = "metadata.json"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class BuildxBackend:
    name = "buildx"

    def __init__(self, docker: str = "docker") -> None:
        self.docker = docker

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
        argv.append("--provenance=false")
        if request.builder:
            argv += ["--builder", request.builder]
        if request.cache_repo:
            cache_ref = cache_ref_for(request)
            argv += ["--cache-from", f"type=registry,ref={cache_ref}"]
            argv += ["--cache-to", f"type=registry,ref={cache_ref},mode=max"]
        argv += ["--tag", request.push_ref, "--push"]
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


def cache_ref_for(request: BuildRequest) -> str:
    """One cache tag per image and platform: builds must not overwrite each other's cache."""
    slugs = "-".join(p.normalized().slug for p in request.platforms or (request.platform,))
    tag = _TAG_UNSAFE.sub("-", f"buildcache-{request.image}-{slugs}")
    return f"{request.cache_repo}:{tag[:128]}"
