"""``buildah bud`` then ``buildah push``: daemonless builds, one per (image, platform).

Storage driver ``vfs``: it needs neither a kernel overlay mount nor
fuse-overlayfs, so the same commands work as root on a CI machine and inside an
unprivileged container (a GitLab or Kubernetes job) alike. Each layer is a full
copy, which is slower and uses more disk, but it works everywhere. The driver is
passed on every command because the build and the push must see the same store.

``--format oci`` and ``--layers=false`` are explicit so that ``BUILDAH_FORMAT`` or
``BUILDAH_LAYERS`` in the environment cannot change what is built and pushed.
Layer caching is off by default: under vfs each cached layer is another full
copy of the root file system. ``request.options["buildah.layers"] = "true"``
turns it on (``--layers``). A cache repository turns it on too, with
``--cache-from R --cache-to R``: buildah (1.27 and later) then pulls and pushes
each instruction's layer under a content key in R, so one repository serves
every image and platform.

The platform is passed normalised (``linux/arm64``, not ``linux/arm64/v8``):
buildah would otherwise write ``"variant": "v8"`` into the image config, unlike
the index entry buildspec writes for it.

buildah itself sets ``TARGETPLATFORM``/``TARGETOS``/``TARGETARCH``/``TARGETVARIANT``
from ``--platform`` (``BUILDPLATFORM`` and friends from the host), as BuildKit
does, so Dockerfiles written for buildx work unchanged and no ``--build-arg`` is
added for them (tests/e2e/test_backends_buildah.py checks it).

Each build has a store of its own (``--root``/``--runroot`` in the node's work
folder, emptied by a last ``rmi --all``): buildah 1.28 races when parallel builds
pull the same base into one shared store ("image not known"), measured at 3 of
3 runs with 12 builds at once. The price is that local layers are not shared
between builds; ``cache`` (a registry cache) still is.

The push names the tag in the destination as well: ``buildah push REF`` with a
bare ``docker://REPO`` destination would push ``:latest``. ``--digestfile``
receives the digest of the manifest as pushed. The push is a step of its own, so
``run`` holds it to one at a time per repository (``is_push_step``; see run.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from buildspec.backends.base import BuildRequest
from buildspec.backends.options import build_option_args
from buildspec.errors import BuildspecError

DIGEST_FILE = "digest"

_SUBCOMMAND = 7  # its place in argv: buildah --storage-driver D --root R --runroot R <subcommand>
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class BuildahBackend:
    name = "buildah"

    def __init__(self, buildah: str = "buildah", storage_driver: str = "vfs") -> None:
        self.buildah = buildah
        self.storage_driver = storage_driver

    def commands(self, request: BuildRequest) -> list[list[str]]:
        base = [self.buildah, "--storage-driver", self.storage_driver,
                "--root", str(request.workdir / "storage"), "--runroot", str(request.workdir / "runroot")]
        tls = ["--tls-verify=false"] if request.insecure else []

        platform = str(request.platform.normalized())
        layers = request.options.get("buildah.layers", "false").lower() == "true"
        bud = [*base, "bud", "--platform", platform, "--format", "oci"]
        if request.cache_repo:
            bud += ["--layers", "--cache-from", request.cache_repo, "--cache-to", request.cache_repo]
        else:
            bud.append("--layers" if layers else "--layers=false")
        bud += ["-f", str(request.dockerfile)]
        for key in sorted(request.args):
            bud += ["--build-arg", f"{key}={_arg(request, request.args[key])}"]
        for key in sorted(request.labels):
            bud += ["--label", f"{key}={request.labels[key]}"]
        if request.target:
            bud += ["--target", request.target]
        for name in sorted(request.contexts):
            bud += ["--build-context", f"{name}={_context(request.contexts[name])}"]
        bud += build_option_args(request)
        if request.pull:
            bud.append("--pull=always")
        bud += [*tls, "-t", request.push_ref, str(request.context)]

        push = [*base, "push", *tls, "--digestfile", str(request.workdir / DIGEST_FILE)]
        # run --load / --output: into an OCI layout, which outputs.py assembles; nothing is pushed.
        destination = f"oci:{request.oci_layout}" if request.oci_layout is not None else f"docker://{request.push_ref}"
        push += [request.push_ref, destination]
        if not request.push and request.oci_layout is None:  # an image without tags: build only
            return [bud, [*base, "rmi", "--all", "--force"]]
        return [bud, push, [*base, "rmi", "--all", "--force"]]

    def is_push_step(self, argv: Sequence[str]) -> bool:
        return len(argv) > _SUBCOMMAND and argv[_SUBCOMMAND] == "push"

    def read_digest(self, request: BuildRequest) -> str:
        return read_digest_file(request.workdir / DIGEST_FILE, tool="buildah push")


def _arg(request: BuildRequest, value: str) -> str:
    """A build argument that names a local layout's context (an ``image()`` pin of a local
    run, contexts.local_pin_name) is given as ``oci:FOLDER`` itself: buildah 1.28 looks a
    ``FROM ${ARG}`` with a short name up in the registries, not among the contexts."""
    context = request.contexts.get(value)
    if isinstance(context, str) and context.startswith("oci-layout://"):
        return "oci:" + context.removeprefix("oci-layout://").partition("@")[0]
    return value


def _context(value: str | Path) -> str | Path:
    """buildah 1.28 reads no ``oci-layout://`` contexts, but any containers/image reference
    as ``container-image://``: ``oci:FOLDER`` names the one image a local build wrote there."""
    if isinstance(value, str) and value.startswith("oci-layout://"):
        return "container-image://oci:" + value.removeprefix("oci-layout://").partition("@")[0]
    return value


def read_digest_file(path: Path, *, tool: str) -> str:
    """A ``sha256:<hex>`` file written by a tool (buildah's ends with no newline, kaniko's too)."""
    try:
        digest = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BuildspecError(f"{tool} left no digest file {path}: {exc}") from exc
    if not _DIGEST.match(digest):
        raise BuildspecError(f"{path} does not hold a sha256:<64 hex> digest: {digest[:80]!r}")
    return digest
