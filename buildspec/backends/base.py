"""The backend seam: a per-platform build request in, argv lists out.

``plan --commands`` prints exactly ``backend.commands(request)``; ``run`` executes
those argv lists one after the other (never through a shell) and then asks the
backend for the digest of the pushed per-platform image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from buildspec.platform import Platform


@dataclass(frozen=True)
class SecretRef:
    """A build secret by reference: buildspec never reads, logs or stores its value."""

    id: str
    kind: str  # "src" (a file) or "env" (an environment variable)
    source: str  # the absolute file path, or the variable's NAME

    def flag(self) -> str:
        """``id=ID,src=PATH`` or ``id=ID,env=NAME``: the value of --secret for buildx and buildah."""
        return f"id={self.id},{self.kind}={self.source}"


@dataclass(frozen=True)
class BuildRequest:
    node_id: str  # "build:app@linux/arm64"
    image: str  # "app"
    platform: Platform
    context: Path  # absolute
    dockerfile: Path  # absolute
    target: str | None
    args: Mapping[str, str]  # image() pins already resolved to repo@sha256:...
    labels: Mapping[str, str]
    push_ref: str  # "localhost:5000/acme/app:1.0.0-linux-arm64" (the platform tag)
    insecure: bool  # plain HTTP / unverified TLS allowed for this registry
    workdir: Path  # a private folder for this node (digest files, metadata); never inside context
    builder: str | None = None  # buildx --builder
    cache_repo: str | None = None  # kaniko --cache-repo / buildx registry cache, when asked for
    options: Mapping[str, str] = field(default_factory=dict)  # backend-specific settings
    # Set only for a merged build (buildx): one call builds all of these platforms and
    # pushes an index under push_ref; ``platform`` is then the first of them.
    platforms: tuple[Platform, ...] = ()
    # Named build contexts (--build-context NAME=VALUE): a local directory as an absolute
    # Path, anything else (docker-image://REPO@sha256:..., a URL) as a string.
    contexts: Mapping[str, str | Path] = field(default_factory=dict)
    # The image's build options (evaluate/build_options.py), with bake's names; the
    # backends refuse at plan time what they cannot honour (support.py).
    secrets: tuple[SecretRef, ...] = ()
    ssh: tuple[str, ...] = ()  # "default", "ID=/abs/socket-or-key[,...]"
    attest: tuple[str, ...] = ()  # "type=provenance,mode=max"
    no_cache: bool = False
    pull: bool = False
    network: str | None = None  # "none", "host", "default"
    hosts: Mapping[str, str] = field(default_factory=dict)  # host name -> IP
    shm_size: str | None = None  # "256m"
    ulimits: tuple[str, ...] = ()  # "nofile=1024:2048"
    annotations: Mapping[str, str] = field(default_factory=dict)
    cache_from: tuple[str, ...] = ()  # bake's format: "type=registry,ref=..."
    cache_to: tuple[str, ...] = ()
    # run --load / --output: write the image as an OCI layout into this folder instead of
    # pushing push_ref (outputs.py assembles each image's index from these).
    oci_layout: Path | None = None
    # False for an image that has no tags here: build it, push nothing (push_ref is then a local name).
    push: bool = True


class Backend(Protocol):
    name: str

    def commands(self, request: BuildRequest) -> list[list[str]]:
        """The argv lists that build and push ``request.push_ref``, in order."""
        ...

    def is_push_step(self, argv: Sequence[str]) -> bool:
        """Whether ``argv`` (one of ``commands()``) only pushes what an earlier command built.

        ``run`` lets one such step per repository run at a time (see run.py). Backends
        whose build command pushes too (buildx, kaniko) answer False.
        """
        ...

    def read_digest(self, request: BuildRequest) -> str:
        """After every command succeeded: ``sha256:<hex>`` of the pushed manifest."""
        ...
