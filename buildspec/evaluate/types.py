"""The evaluated project: what every later stage (graph, plan, run) reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildspec.errors import Span
from buildspec.gitcontext import GitContext
from buildspec.model import Buildfile
from buildspec.platform import Platform
from buildspec.templates import ScopeValue
from buildspec.versions import Version

BACKENDS = ("auto", "buildx", "kaniko", "buildah")
DEFAULT_PLATFORM_TAG = "{tag}-{platform.slug}"
OCI = "org.opencontainers.image."


@dataclass(frozen=True, slots=True)
class Pin:
    """``image(NAME)``: the digest of NAME's build for the same platform, known at run time."""

    target: str
    span: Span


@dataclass(frozen=True, slots=True)
class Secret:
    """``secrets = ["id=token,env=NPM_TOKEN"]``: a reference, never the value."""

    id: str
    kind: str  # "src" or "env"
    source: str  # absolute file path or variable NAME
    span: Span


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """The image attributes named after bake's (evaluate/build_options.py)."""

    secrets: tuple[Secret, ...] = ()
    ssh: tuple[str, ...] = ()
    contexts: tuple[tuple[str, Pin | Path | str], ...] = ()
    attest: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    network: str | None = None
    hosts: tuple[tuple[str, str], ...] = ()
    shm_size: str | None = None
    ulimits: tuple[tuple[str, str], ...] = ()  # (name, "soft:hard")
    annotations: tuple[tuple[str, str], ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    spans: Mapping[str, Span] = field(default_factory=dict)  # attribute -> where it was set

    def used(self) -> list[str]:
        """The attributes set, by name, in a fixed order."""
        return [name for name in ATTRIBUTES if getattr(self, name)]


ATTRIBUTES = ("secrets", "ssh", "contexts", "attest", "no_cache", "pull", "network", "hosts", "shm_size",
              "ulimits", "annotations", "cache_from", "cache_to")


@dataclass(frozen=True, slots=True)  # slots: one per image, tag or entry of a large Buildfile
class TagDecision:
    """What one tag template did, for ``plan --explain``."""

    template: str
    condition: str | None
    values: Mapping[str, str]
    tag: str | None  # the tag produced, or None when dropped
    reason: str  # "added", "condition false", "unset name git.tag", "duplicate of 1.2.3"
    options: str = ""  # the line's [options] as written: 'prefix = "pr-", latest'


@dataclass(frozen=True, slots=True)
class Image:
    """One image to build and publish: a declared image or one cell of its matrix."""

    name: str
    declared_as: str
    span: Span
    repository: str
    platforms: tuple[Platform, ...]
    tags: tuple[str, ...]
    tag_decisions: tuple[TagDecision, ...]
    labels: Mapping[str, str]
    args: Mapping[Platform, tuple[tuple[str, str | Pin], ...]]
    platform_tags: Mapping[Platform, str]
    needs: tuple[tuple[str, Span], ...]
    context: Path
    dockerfile: Path
    target: str | None
    backend: str
    backend_span: Span | None
    matrix: Mapping[str, str] = field(default_factory=dict)
    cache: str | None = None
    builder: str | None = None
    # Put the per-release labels (version, revision, created) on the platform images too.
    release_labels: bool = False
    build_options: BuildOptions = field(default_factory=BuildOptions)
    # Every repository the image is published to, ``repository`` (where the builds
    # push) first: ``repository = [...]`` or ``registry = [...]``.
    repositories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.repositories:
            object.__setattr__(self, "repositories", (self.repository,))

    def pins(self, platform: Platform) -> list[Pin]:
        """The image() pins of args and of contexts: digests of this platform, known at run time."""
        return [*(v for _, v in self.args[platform] if isinstance(v, Pin)),
                *(v for _, v in self.build_options.contexts if isinstance(v, Pin))]


@dataclass(frozen=True)
class Project:
    buildfile: Buildfile
    images: Mapping[str, Image]  # by cell name, in file order
    groups: Mapping[str, tuple[str, ...]]  # group -> image names
    declared: Mapping[str, tuple[str, ...]]  # declared image -> its cell names
    variables: Mapping[str, ScopeValue]
    git: GitContext
    version: Version | None
    backend: str
    publish: str
    notes: tuple[str, ...] = ()

    def default_targets(self) -> tuple[str, ...]:
        return self.groups.get("default", tuple(self.images))


TagLister = Callable[[str], list[str]]
