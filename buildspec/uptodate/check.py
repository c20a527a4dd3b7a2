"""Is a build node up to date? The answer `plan` shows and `run` acts on.

For each platform of a node: compute its inputs (key.py) from the very request
the backend would run, resolve the images its Dockerfile builds on, and look the
key up in the image's repository (records.py). The node is up to date when every
platform's key is found there; otherwise it builds, and the reasons say why:
``no image with this key`` or what changed since the newest recorded build.

Never skip on doubt: a base image or a registry that cannot be read, a variable
in ``FROM`` with no value, a context that cannot be read, all mean *build*, and
the reason says so.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from buildspec import graph as graphs
from buildspec.errors import BuildspecError, RegistryError
from buildspec.evaluate import Image, Project, host
from buildspec.jobs import build_request, digest_sources
from buildspec.platform import Platform
from buildspec.registry.client import Manifest, RegistryClient
from buildspec.registry.index import select_child
from buildspec.registry.reference import as_reference
from buildspec.uptodate import records
from buildspec.uptodate.dockerfile import Base, Unresolved, base_references
from buildspec.uptodate.key import Inputs, TreeCache, changes, request_inputs

if TYPE_CHECKING:  # networkx is loaded by the graph stage; here only for annotations
    import networkx as nx

_T = TypeVar("_T")


@dataclass(frozen=True)
class Verdict:
    """Whether a node builds, and why (``reasons`` is empty when it is up to date)."""

    fresh: bool
    digests: Mapping[str, str] = field(default_factory=dict)  # platform -> image digest, when fresh
    reasons: tuple[str, ...] = ()
    inputs: Mapping[str, Inputs] = field(default_factory=dict)  # platform -> inputs (when known)
    keys: Mapping[str, str] = field(default_factory=dict)  # platform -> key (when known)


class Checker:
    """Answers for one run or plan; thread-safe (lookups go out in parallel)."""

    def __init__(
        self,
        project: Project,
        backend_of: Callable[[str], str],
        client: RegistryClient,
        *,
        state_dir: Path,
        insecure_registries: Collection[str] = (),
        always: bool = False,
    ) -> None:
        self.project = project
        self.backend_of = backend_of
        self.client = client
        self.state_dir = state_dir
        self.insecure_registries = tuple(insecure_registries)
        self.always = always
        self.trees = _SafeTreeCache()
        # reference -> (time.monotonic() when it was asked, the answer)
        self._bases: dict[str, tuple[float, Manifest | BuildspecError]] = {}
        self._resolving: dict[str, threading.Lock] = {}  # one question per base image at a time
        self._down: dict[str, RegistryError] = {}  # registry host -> why it cannot be reached
        self._lock = threading.Lock()
        self._build_platform = host()

    def inputs(self, image: Image, platform: Platform, pins: Mapping[str, str], *, again: bool = False,
               not_before: float | None = None) -> Inputs:
        """The inputs of ``image`` on ``platform``; BuildspecError with the reason when
        they cannot be known (the caller then builds). ``again``: read the files and the
        base images anew (after a build, to prove nothing moved while it ran); with
        ``not_before`` (a ``time.monotonic()`` value, when the build ended), a base image
        resolved at or after that moment counts as anew: the builds of one bake share
        one question per base image."""
        request = build_request(self.project, image, platform, state_dir=self.state_dir,
                                insecure_registries=self.insecure_registries, pins=pins)
        try:
            text = request.dockerfile.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildspecError(f"cannot read {request.dockerfile}: {exc}") from None
        contexts = getattr(request, "contexts", None) or {}
        bases: dict[str, str] = {}
        for base in base_references(text, request.args, platform, self._build_platform, contexts):
            if isinstance(base, Unresolved):
                raise BuildspecError(f"FROM {base.text}: ${base.missing} has no value here")
            name = base.reference if base.platform == platform else f"{base.reference} ({base.platform})"
            bases[name] = self._resolve(base, again, not_before)
        pin_args = {name: value.target for name, value in image.args[platform] if not isinstance(value, str)}
        try:
            trees = TreeCache() if again else self.trees
            return request_inputs(request, self.backend_of(image.name), bases, trees, pin_args)
        except OSError as exc:
            raise BuildspecError(f"cannot read the build context: {exc}") from None

    def _resolve(self, base: Base, again: bool = False, not_before: float | None = None) -> str:
        """The digest of the image ``base`` names for its platform, now: an index is
        resolved to its child for that platform, so that a base image updated for one
        platform only makes only that platform's builds stale."""
        reference = base.reference
        with self._lock:
            asking = self._resolving.setdefault(reference, threading.Lock())
        with asking:  # the threads that need it meanwhile wait for this one answer
            cached = self._bases.get(reference)
            usable = cached is not None and (not again or (not_before is not None and cached[0] >= not_before))
            if cached is not None and usable:
                known = cached[1]
            else:
                asked = time.monotonic()
                try:
                    known = self._ask(reference, lambda: self.client.get_manifest(as_reference(reference)))
                except BuildspecError as exc:
                    known = BuildspecError(f"cannot resolve FROM {reference}: {exc}")
                self._bases[reference] = (asked, known)
        if isinstance(known, BuildspecError):
            raise known
        if not known.is_index:
            return known.digest
        try:
            child = select_child(known.json(), base.platform, f"{reference}@{known.digest}")["digest"]
        except (RegistryError, KeyError, ValueError) as exc:
            raise BuildspecError(f"cannot resolve FROM {reference} for {base.platform}: {exc}") from None
        return str(child)

    def check(self, image: Image, platforms: Sequence[Platform], pins: Mapping[str, str] | None) -> Verdict:
        """``pins``: image() name -> ``repo@digest``; None when a dependency is still to be
        built (it then builds too)."""
        if not image.tags:  # nothing is pushed, so nothing can be found or re-used: always build
            return Verdict(False, reasons=("it has no tags here: built, not pushed",))
        if pins is None:
            missing = sorted({name for p in platforms for name in digest_sources(self.project, image, p)})
            return Verdict(False, reasons=tuple(f"image({name}) will be rebuilt" for name in missing))
        inputs: dict[str, Inputs] = {}
        digests: dict[str, str] = {}
        reasons: dict[str, list[str]] = {}
        for platform in platforms:
            where = str(platform)
            try:
                found = self.inputs(image, platform, pins)
            except BuildspecError as exc:
                reasons[where] = [f"cannot tell whether it is up to date: {exc}"]
                continue
            inputs[where] = found
            if self.always:
                reasons[where] = ["-B (--always-make)"]
                continue
            if image.build_options.no_cache:  # bake's no-cache: nothing reused, this level included
                reasons[where] = ["no_cache = true"]
                continue
            try:
                hit = self._ask(image.repository, functools.partial(records.find, self.client, image.repository,
                                                                    found.key))
            except BuildspecError as exc:
                reasons[where] = [f"cannot read the registry: {exc}"]
                continue
            if hit is not None:
                digests[where] = hit.digest
            else:
                reasons[where] = self._why(image, platform, found)
        keys = {p: i.key for p, i in inputs.items()}
        if not reasons:
            return Verdict(True, digests, (), inputs, keys)
        return Verdict(False, {}, _merge_reasons(reasons, len(platforms)), inputs, keys)

    def _ask(self, reference: str, question: Callable[[], _T]) -> _T:
        """``question()``, unless ``reference``'s registry already failed to answer: one
        unreachable registry costs one time-out per run, not one per node."""
        host = as_reference(reference).registry
        with self._lock:
            down = self._down.get(host)
        if down is not None:
            raise down
        try:
            return question()
        except RegistryError as exc:
            if "failed:" in str(exc):  # a network failure (client._send), not an HTTP answer
                with self._lock:
                    self._down.setdefault(host, exc)
            raise

    def _why(self, image: Image, platform: Platform, inputs: Inputs) -> list[str]:
        try:
            last = records.last_inputs(self.client, image.repository, image.name, platform)
        except BuildspecError:
            last = None
        if last is None or last.get("key") == inputs.key:  # nothing changed, but the image is gone
            return ["no image with this key"]
        return changes(last, inputs)


def _merge_reasons(reasons: Mapping[str, list[str]], platforms: int) -> tuple[str, ...]:
    """One list when every platform has the same reasons, else each prefixed with its platform."""
    lists = list(reasons.values())
    if len(reasons) == platforms and all(r == lists[0] for r in lists):
        return tuple(lists[0])
    return tuple(f"{platform}: {reason}" for platform, found in reasons.items() for reason in found)


class _SafeTreeCache(TreeCache):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def entries(self, context: Path, dockerfile: Path) -> dict[str, str]:
        with self._lock:
            return super().entries(context, dockerfile)


def plan_verdicts(project: Project, graph: nx.DiGraph[str], checker: Checker) -> dict[str, Verdict]:
    """A verdict for every build node of ``graph``, wave by wave (up to 8 lookups at once):
    a pinned node is checked with its dependencies' digests when they are up to date, and
    will build when one of them will."""
    verdicts: dict[str, Verdict] = {}

    def verdict(node: str) -> Verdict:
        attrs = graph.nodes[node]
        image = project.images[attrs["image"]]
        platforms = graphs.platforms_of(attrs)
        pins: dict[str, str] | None = {}
        for platform in platforms:
            for name in digest_sources(project, image, platform):  # image() pins and needs' contexts
                dependency = verdicts.get(graphs.build_node(graph, name, platform))
                digest = dependency.digests.get(str(platform)) if dependency and dependency.fresh else None
                if digest is None or pins is None:
                    pins = None
                    break
                pins[name] = f"{project.images[name].repository}@{digest}"
        return checker.check(image, platforms, pins)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="uptodate") as pool:
        for wave in graphs.waves(graph):
            builds = [node for node in wave if graph.nodes[node]["kind"] == "build"]
            verdicts.update(zip(builds, pool.map(verdict, builds), strict=True))
    return verdicts
