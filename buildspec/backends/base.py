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
