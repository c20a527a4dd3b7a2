"""Choosing a backend: by name, or ``auto`` by probing what this machine has.

``auto`` prefers buildx (a Docker daemon that answers and the buildx plugin), then
kaniko (its executor exists, as inside a kaniko CI job), then buildah (on PATH).
A backend named explicitly is not probed: ``plan --commands`` must be able to
show its argv on a machine that lacks the tool, and ``run`` reports the tool's
own error when it is missing.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
from typing import Final

from buildspec.backends.base import Backend
from buildspec.backends.buildah import BuildahBackend
from buildspec.backends.buildx import BuildxBackend
from buildspec.backends.kaniko import DEFAULT_EXECUTOR, KanikoBackend
from buildspec.errors import UsageError

BACKENDS: Final[dict[str, type[Backend]]] = {
    "buildx": BuildxBackend,
    "kaniko": KanikoBackend,
    "buildah": BuildahBackend,
}
NAMES: Final = ("auto", *BACKENDS)

PROBE_TIMEOUT = 3.0  # seconds, for the daemon ping and for `docker buildx version`

INSTALL_HINTS: Final = (
    "buildx: a running Docker Engine and the buildx plugin "
    "(apt-get install docker.io docker-buildx, then start dockerd)",
    "kaniko: run inside kaniko's executor image (gcr.io/kaniko-project/executor) or pass "
    "--kaniko-executor PATH, or --kaniko-image IMAGE to run it on a local Docker Engine",
    "buildah: apt-get install buildah",
)


# Where the docker CLI looks for its plugins (besides $DOCKER_CONFIG/cli-plugins), in its order.
PLUGIN_DIRS: tuple[str, ...] = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def _plain_address() -> tuple[int, str | tuple[str, int]] | None:
    """(socket family, address) of the daemon DOCKER_HOST or the default socket names,
    when it is a plain socket (unix, or tcp without TLS); None for other hosts."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
        return None
    if host.startswith("unix://"):
        return socket.AF_UNIX, host[len("unix://"):]
    if host.startswith("tcp://"):
        hostname, _, port = host[len("tcp://"):].partition("/")[0].rpartition(":")
        if hostname and port.isdigit():
            return socket.AF_INET6 if ":" in hostname else socket.AF_INET, (hostname.strip("[]"), int(port))
    return None


@functools.cache
def docker_daemon_answers() -> bool:
    """Whether a Docker daemon answers a ping (DOCKER_HOST or the default socket).

    A plain socket (unix, or tcp without TLS) gets one ``GET /_ping`` written by hand:
    docker-py and requests take longer to import (about 0.15 s) than the ping takes, and
    `plan` pays for this probe. Other hosts (TLS, ssh) go through docker-py.
    """
    address = _plain_address()
    if address is None:
        return _ping_with_docker_py()
    answer = _get(*address, "/_ping")
    return answer is not None and answer[0] == 200


def _get(family: int, address: str | tuple[str, int], path: str, limit: int = 1 << 20) -> tuple[int, bytes] | None:
    """``GET path`` over HTTP/1.0 (the daemon closes the connection after its answer):
    (status, body), or None when nothing usable answered."""
    answer = b""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as conn:
            conn.settimeout(PROBE_TIMEOUT)
            conn.connect(address)
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            while len(answer) < limit:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError:  # no socket, refused, timed out
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        return None
    return int(status[1]), body


def _ping_with_docker_py() -> bool:
    try:
        import docker  # imported here: docker-py is slow to import and not needed otherwise

        client = docker.from_env(timeout=int(PROBE_TIMEOUT))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # docker-py raises DockerException, requests' and socket errors alike
        return False


@functools.cache
def buildx_plugin_present() -> bool:
    """Whether the docker CLI has the buildx plugin.

    Found where the CLI looks for it: the plugin file, without starting the CLI (about
    0.1 s of CPU, a third of a small `plan`). When no file is found (a plugin directory
    set in the CLI's config.json, say), ``docker buildx version`` decides.
    """
    docker = shutil.which("docker")
    if docker is None:
        return False
    config = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    for folder in (os.path.join(config, "cli-plugins"), *PLUGIN_DIRS):
        if _is_executable(os.path.join(folder, "docker-buildx")):
            return True
    try:
        result = subprocess.run(
            [docker, "buildx", "version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


CONTAINERD_STORE = ["driver-type", "io.containerd.snapshotter.v1"]  # in GET /info's DriverStatus


@functools.cache
def buildkit_pushes_itself() -> bool:
    """Whether a buildx build's own push is the whole push, so that buildx's second push
    "with docker" (after every build that pushes through the ``docker`` driver) is only
    repeated work: BuildxBackend then leaves the push to BuildKit (backends/buildx.py).

    True when the builder is the default one (no ``BUILDX_BUILDER``, no other builder
    chosen with ``docker buildx use``), the Docker context is the default one, and the
    daemon that DOCKER_HOST or the default socket names keeps its images in containerd
    (``GET /info``: ``DriverStatus`` has ``driver-type io.containerd.snapshotter.v1``):
    its BuildKit then pushes what it exported. With the classic image store it does not,
    and only buildx's push with docker reaches the registry. Anything unknown: False.
    """
    if os.environ.get("BUILDX_BUILDER", "default") not in ("", "default"):
        return False
    config = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    if not os.environ.get("DOCKER_HOST"):
        context = os.environ.get("DOCKER_CONTEXT") or _json_field(os.path.join(config, "config.json"),
                                                                  "currentContext")
        if context not in (None, "", "default"):
            return False
    if _json_field(os.path.join(config, "buildx", "current"), "Name") not in (None, "", "default"):
        return False
    address = _plain_address()
    answer = _get(*address, "/info") if address is not None else None
    if answer is None or answer[0] != 200:
        return False
    try:
        status = json.loads(answer[1]).get("DriverStatus")
    except (ValueError, AttributeError):
        return False
    return isinstance(status, list) and CONTAINERD_STORE in status


def _json_field(path: str, name: str) -> object:
    """``name`` of the JSON object in ``path``; None when there is no such file or field.
    A file that cannot be read or parsed answers "unknown" (a non-empty marker)."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "?unreadable"
    return document.get(name) if isinstance(document, dict) else "?unreadable"


def reset_probes() -> None:
    """Forget the cached probe results (tests; a long-lived process after an install)."""
    docker_daemon_answers.cache_clear()
    buildx_plugin_present.cache_clear()
    buildkit_pushes_itself.cache_clear()


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def choose_backend(name: str, *, kaniko_executor: str | None, kaniko_image: str | None) -> tuple[Backend, str]:
    """The backend called ``name`` (or the first usable one for ``auto``) and why."""
    if name == "buildx":
        return BuildxBackend(), "asked for with --backend buildx"
    if name == "buildah":
        return BuildahBackend(), "asked for with --backend buildah"
    if name == "kaniko":
        backend = KanikoBackend(executor=kaniko_executor, image=kaniko_image)
        how = f"image {kaniko_image}" if kaniko_image else f"executor {backend.executor}"
        return backend, f"asked for with --backend kaniko ({how})"
    if name != "auto":
        raise UsageError(f"unknown backend '{name}': expected one of {', '.join(NAMES)}")

    looked_at: list[str] = []
    daemon = docker_daemon_answers()
    if daemon and buildx_plugin_present():
        return BuildxBackend(), "auto: the Docker daemon answers and the buildx plugin is present"
    looked_at.append(
        "buildx: the Docker daemon answers but `docker buildx version` failed"
        if daemon
        else "buildx: no Docker daemon answered (DOCKER_HOST or /var/run/docker.sock)"
    )

    executor = kaniko_executor or DEFAULT_EXECUTOR
    if _is_executable(executor):
        return (
            KanikoBackend(executor=executor),
            f"auto: no usable buildx, and kaniko's executor {executor} exists",
        )
    if kaniko_image and daemon:
        return (
            KanikoBackend(image=kaniko_image),
            f"auto: no buildx plugin; kaniko image {kaniko_image} runs on the Docker daemon",
        )
    looked_at.append(f"kaniko: no executable {executor}")

    buildah = shutil.which("buildah")
    if buildah is not None:
        return BuildahBackend(), f"auto: neither buildx nor kaniko usable; buildah is {buildah}"
    looked_at.append("buildah: not on PATH")

    raise UsageError(
        "no build backend is usable here. Looked for:\n  "
        + "\n  ".join(looked_at)
        + "\nInstall one of:\n  "
        + "\n  ".join(INSTALL_HINTS)
    )
