"""kaniko's executor: one run per (image, platform), in one of two modes.

* executor mode (the default): run the executor binary directly, ``/kaniko/executor``
  unless told otherwise. This is how buildspec runs *inside* a kaniko CI job
  (the job's image is kaniko's own, buildspec is copied or installed into it).
* container mode (when a kaniko image is given): ``docker run`` that image on the
  local Docker Engine, mounting the build context read-only at
  ``/kaniko/buildcontext`` (kaniko's own folder for unpacked contexts; ``/kaniko``
  is never snapshotted and never shadows a path of the image being built, as
  ``/workspace`` could), the Docker client configuration read-only at
  ``/kaniko/.docker`` (kaniko's ``DOCKER_CONFIG``: credentials stay in files, never
  on the command line) and the node's work folder at ``/kaniko/buildspec-out`` for
  the digest file. ``--network host`` lets kaniko reach registries on the host's
  loopback.

The executor arguments are kaniko's real flags (cmd/executor/cmd/root.go):

* ``--custom-platform`` is the *normalised* platform: kaniko matches the base
  image's index entry on the exact variant, so ``linux/arm64/v8`` fails against an
  index whose arm64 entry has no variant (the usual case).
* kaniko does not set ``TARGETPLATFORM``/``TARGETOS``/``TARGETARCH``/
  ``TARGETVARIANT`` nor ``BUILDPLATFORM``/``BUILDOS``/``BUILDARCH``/``BUILDVARIANT``
  under ``--custom-platform``; they are passed as ``--build-arg`` (a request's own
  value for one of them wins) so Dockerfiles written for buildx work unchanged.
  ``BUILD*`` describe the machine that runs the executor.
* ``--destination`` is the platform tag: kaniko pushes only to tags.
* ``--digest-file`` lives in the node's work folder, never in the build context,
  where a later ``COPY .`` would pick it up. kaniko writes it *before* pushing,
  so only the executor's exit status proves the push; ``read_digest`` is called
  only after success.
* insecure registries get ``--insecure``/``--insecure-pull`` (plain HTTP) and
  ``--skip-tls-verify``/``--skip-tls-verify-pull`` (unverified TLS): kaniko keeps
  the two apart where buildah's ``--tls-verify=false`` covers both.
* ``--cache=true --cache-repo R`` only when the request names a cache repository;
  ``--push-retry 3`` always.
* never ``--force``: outside a container kaniko would overwrite the machine's own
  root file system, and refusing that is kaniko's safety net.

``request.options`` may override the constructor per request: ``kaniko.executor``,
``kaniko.image`` (a non-empty image means container mode), ``kaniko.docker-config``.
"""

from __future__ import annotations

import os
import platform as _platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from buildspec.backends.base import BuildRequest
from buildspec.backends.buildah import read_digest_file
from buildspec.lock import CONTAINER_LABEL, state_id
from buildspec.platform import Platform

DEFAULT_EXECUTOR = "/kaniko/executor"
DIGEST_FILE = "digest"
PUSH_RETRY = "3"

# Paths inside the kaniko container (container mode).
CONTAINER_CONTEXT = PurePosixPath("/kaniko/buildcontext")
CONTAINER_DOCKERFILE_DIR = PurePosixPath("/kaniko/buildspec-dockerfile")
CONTAINER_OUT = PurePosixPath("/kaniko/buildspec-out")
CONTAINER_DOCKER_CONFIG = PurePosixPath("/kaniko/.docker")

# uname -m -> OCI architecture and variant
_MACHINES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """The platform of this machine, as BuildKit would report ``BUILDPLATFORM``."""
    os_name = "linux" if sys.platform.startswith("linux") else _platform.system().lower()
    machine = _platform.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, None))
    return Platform(os_name, arch, variant)


def automatic_platform_args(target: Platform, build: Platform) -> dict[str, str]:
    """BuildKit's automatic platform ARGs, which kaniko leaves unset."""
    target, build = target.normalized(), build.normalized()
    return {
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.arch,
        "TARGETVARIANT": target.variant or "",
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.arch,
        "BUILDVARIANT": build.variant or "",
    }


class KanikoBackend:
    name = "kaniko"

    def __init__(
        self,
        executor: str | None = None,
        image: str | None = None,
        *,
        docker: str = "docker",
        docker_config: Path | None = None,
        build_platform: Platform | None = None,
    ) -> None:
        self.executor = executor or DEFAULT_EXECUTOR
        self.image = image
        self.docker = docker
        self.docker_config = docker_config
        self.build_platform = build_platform or host_platform()

    def mode(self, request: BuildRequest) -> str:
        return "container" if self._image(request) else "executor"

    def _image(self, request: BuildRequest) -> str | None:
        return request.options.get("kaniko.image") or self.image

    def commands(self, request: BuildRequest) -> list[list[str]]:
        image = self._image(request)
        if not image:
            executor = request.options.get("kaniko.executor") or self.executor
            return [[executor, *self.executor_args(request)]]

        context = request.context
        mounts = ["-v", f"{context}:{CONTAINER_CONTEXT}:ro"]
        if request.dockerfile.is_relative_to(context):
            dockerfile = CONTAINER_CONTEXT / request.dockerfile.relative_to(context).as_posix()
        else:
            dockerfile = CONTAINER_DOCKERFILE_DIR / request.dockerfile.name
            mounts += ["-v", f"{request.dockerfile.parent}:{CONTAINER_DOCKERFILE_DIR}:ro"]
        docker_config = self._docker_config(request)
        if docker_config is not None:
            mounts += ["-v", f"{docker_config}:{CONTAINER_DOCKER_CONFIG}:ro"]
        mounts += ["-v", f"{request.workdir}:{CONTAINER_OUT}"]
        args = self.executor_args(
            request,
            context=str(CONTAINER_CONTEXT),
            dockerfile=str(dockerfile),
            digest_file=str(CONTAINER_OUT / DIGEST_FILE),
        )
        return [[self.docker, "run", "--rm", *_container_identity(request), "--network", "host", *mounts, image,
                 *args]]

    def executor_args(
        self,
        request: BuildRequest,
        *,
        context: str | None = None,
        dockerfile: str | None = None,
        digest_file: str | None = None,
    ) -> list[str]:
        target = request.platform.normalized()
        args = ["--context", f"dir://{context or request.context}"]
        args += ["--dockerfile", dockerfile or str(request.dockerfile)]
        # An image without tags is built and not pushed (kaniko then needs no destination).
        args += ["--destination", request.push_ref] if request.push else ["--no-push"]
        args += ["--custom-platform", str(target)]
        build_args = automatic_platform_args(target, self.build_platform)
        build_args.update(request.args)
        for key in sorted(build_args):
            args += ["--build-arg", f"{key}={build_args[key]}"]
        if request.target:
            args += ["--target", request.target]
        for key in sorted(request.labels):
            args += ["--label", f"{key}={request.labels[key]}"]
        args += ["--digest-file", digest_file or str(request.workdir / DIGEST_FILE)]
        if request.cache_repo and not request.no_cache:  # no_cache = true: kaniko's default, no cache
            args += ["--cache=true", "--cache-repo", request.cache_repo]
        if request.insecure:
            args += ["--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull"]
        args += ["--push-retry", PUSH_RETRY]
        return args

    def _docker_config(self, request: BuildRequest) -> Path | None:
        """The host folder holding config.json, mounted only when it exists."""
        configured = request.options.get("kaniko.docker-config")
        if configured:
            return Path(configured)
        if self.docker_config is not None:
            return self.docker_config
        env = os.environ.get("DOCKER_CONFIG")
        folder = Path(env) if env else Path.home() / ".docker"
        return folder if folder.is_dir() else None

    def is_push_step(self, argv: Sequence[str]) -> bool:
        return False  # the executor builds and pushes in one process

    def read_digest(self, request: BuildRequest) -> str:
        return read_digest_file(request.workdir / DIGEST_FILE, tool="kaniko")


def _container_identity(request: BuildRequest) -> list[str]:
    """A name and a label of the run's state folder (the workdir is <state>/work/<node>,
    jobs.build_request), so the next run can remove what a killed one left (lock.py)."""
    ident = state_id(request.workdir.parent.parent)
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"buildspec-{ident}-{request.workdir.name}")
    return ["--name", name, "--label", f"{CONTAINER_LABEL}={ident}"]
