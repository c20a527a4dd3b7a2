"""Flags of the image's build options (evaluate/build_options.py) that ``docker buildx
build`` and ``buildah bud`` (1.28) spell alike. What a backend cannot honour never
reaches it: support.py refuses it at plan time."""

from __future__ import annotations

from buildspec.backends.base import BuildRequest


def build_option_args(request: BuildRequest) -> list[str]:
    """The flags of the image's build options that buildx and buildah 1.28 spell alike
    (secrets go by reference: ``id=ID,src=PATH`` or ``id=ID,env=NAME``)."""
    args: list[str] = []
    for secret in request.secrets:
        args += ["--secret", secret.flag()]
    for ssh in request.ssh:
        args += ["--ssh", ssh]
    if request.no_cache:
        args.append("--no-cache")
    if request.network and request.network != "default":
        args += ["--network", request.network]
    for host in sorted(request.hosts):
        args += ["--add-host", f"{host}:{request.hosts[host]}"]
    if request.shm_size:
        args += ["--shm-size", request.shm_size]
    for ulimit in request.ulimits:
        args += ["--ulimit", ulimit]
    for key in sorted(request.annotations):
        args += ["--annotation", f"{key}={request.annotations[key]}"]
    return args


def has_build_options(request: BuildRequest) -> bool:
    """Whether ``request`` uses an option buildspec does not write into bake files
    (such builds are built alone, with ``commands``)."""
    return bool(request.secrets or request.ssh or request.attest or request.no_cache or request.pull
                or request.network or request.hosts or request.shm_size or request.ulimits
                or request.annotations or request.cache_from or request.cache_to or request.contexts)
