"""Stage 6: run the execution graph: per-platform builds, then the manifest step.

Each graph node becomes an executor Task:
  build:X@p      backend argv lists (the ones `plan --commands` shows), then the digest
  build:X@p1+p2  a merged buildx build: one call, then each platform's image is
                 tagged under its own platform tag; merged builds of one bake batch
                 (jobs.bake_calls) share one `docker buildx bake`, run by the first
                 of them to start (_Bake), and each is built alone if it fails
  publish        the atomic-publishing gate: nothing to do, it only orders
  manifest:X     assemble X's index from its builds' digests and push it under every tag

Manifests and the gate only talk to registries: they are light tasks (executor.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.backends.buildx import BAKE_FILE
from buildspec.errors import BuildspecError, ExitCode, RegistryError
from buildspec.evaluate import Image, Project
from buildspec.executor import (
    Outcome,
    RunResult,
    Status,
    Task,
    TaskContext,
    TaskResult,
    default_jobs,
    execute,
)
from buildspec.jobs import BakeCall, bake_calls, build_request
from buildspec.platform import Platform
from buildspec.registry.client import RegistryClient
from buildspec.registry.index import IndexEntry, publish_index, select_child
from buildspec.reporting import ImageSummary, make_reporter, print_summary, summary_json

ANNOTATED_LABELS = "org.opencontainers.image."


@dataclass(frozen=True)
class RunOptions:
    jobs: int | None = None
    keep_going: bool = False
    publish: str = "atomic"
    progress: str = "auto"
    metadata_file: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    state_dir: Path = Path(".buildspec")
    backends: Mapping[str, tuple[Backend, str]] = field(default_factory=dict)
    bake: bool = True  # batch merged buildx builds into `docker buildx bake` calls


def run(project: Project, graph: nx.DiGraph[str], options: RunOptions) -> ExitCode:
    plan = graphs.execution_graph(graph, options.publish)
    client = RegistryClient(insecure_registries=options.insecure_registries)
    shared = _Shared(client, _PushLocks(), _bakes(project, plan, options))
    try:
        _check_registries(project, plan, client)
        # In the plan's order, wave by wave, so that `run -j 1` does what `plan` lists.
        tasks = [_task(project, plan, node, options, shared) for wave in graphs.waves(plan) for node in wave]
        result = execute(
            tasks,
            jobs=options.jobs or default_jobs(),
            keep_going=options.keep_going,
            reporter=make_reporter(options.progress),
            log_dir=options.state_dir / "logs",
        )
    finally:
        client.close()
    images = [_summary(project.images[name], plan, result) for name in graphs.images_in(plan)]
    print_summary(images, result, sys.stderr)
    _print_published(images)
    if options.metadata_file is not None:
        options.metadata_file.write_text(json.dumps(summary_json(images, result), indent=2) + "\n")
    return result.exit_code


def _check_registries(project: Project, plan: nx.DiGraph[str], client: RegistryClient) -> None:
    """Ask every target repository once before building: a missing login or an
    unreachable registry fails the run here, with the registry's own message,
    before anything is built or pushed. At most 8 requests at once; the first error
    (in the images' order) is the one raised."""
    repositories = dict.fromkeys(project.images[name].repository for name in graphs.images_in(plan))
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="preflight") as pool:
        for _ in pool.map(client.list_tags, repositories):
            pass


def _expected_failures(action: Callable[[TaskContext], Outcome]) -> Callable[[TaskContext], Outcome]:
    """A registry or usage error is a failed node with its message, not a traceback in the log."""

    def guarded(ctx: TaskContext) -> Outcome:
        try:
            return action(ctx)
        except BuildspecError as e:
            ctx.log(f"error: {e}")
            return Outcome(False, str(e))

    return guarded


class _PushLocks:
    """One push step at a time per repository.

    The platforms of one image upload the same blobs (a base image's layers that do not
    depend on the architecture) to one repository. Pushed at the same moment, registry 2.8
    with filesystem storage answered a manifest PUT with "blob unknown to registry"
    (buildah, 12 builds at once, seen in CI). One after the other, the second push
    finds those blobs in place and is the shorter for it. Builds still run in parallel:
    only a backend's separate push step waits (``Backend.is_push_step``).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, repository: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(repository, threading.Lock())


class _Bake:
    """A batch's ``docker buildx bake``, run once by whichever of its builds starts first.

    The others wait for it (their work is being done) and then read their digest from
    its metadata file. A failed bake leaves each build to run alone (``commands``).
    """

    def __init__(self, call: BakeCall) -> None:
        self.call = call
        self._lock = threading.Lock()
        self._log: Path | None = None  # of the build that ran the bake
        self._ok = False

    def build(self, ctx: TaskContext) -> bool:
        """Whether the bake succeeded (running it if no build of the batch did yet)."""
        with self._lock:
            if self._log is None:
                self._log = ctx.log_path
                self.call.folder.mkdir(parents=True, exist_ok=True)
                (self.call.folder / BAKE_FILE).write_text(json.dumps(self.call.definition, indent=2) + "\n")
                ctx.log(f"{self.call.batch}: one bake for {', '.join(self.call.requests)}")
                self._ok = ctx.run(self.call.argv) == 0
            else:
                ctx.log(f"{self.call.batch}: {'built' if self._ok else 'failed'} in one bake with "
                        f"{len(self.call.requests) - 1} other builds; its output is in {self._log}")
            return self._ok

    def digest(self, node: str) -> str:
        return self.call.backend.read_bake_digest(self.call.requests[node], self.call.folder)


def _bakes(project: Project, plan: nx.DiGraph[str], options: RunOptions) -> dict[str, _Bake]:
    """node id -> the bake that builds it."""
    if not options.bake:
        return {}
    calls = bake_calls(project, plan, options.backends, state_dir=options.state_dir,
                       insecure_registries=options.insecure_registries)
    return {node: bake for bake in map(_Bake, calls.values()) for node in bake.call.requests}


@dataclass(frozen=True)
class _Shared:
    """What the tasks of one run share."""

    client: RegistryClient
    pushes: _PushLocks
    bakes: Mapping[str, _Bake]


def _task(project: Project, plan: nx.DiGraph[str], node: str, options: RunOptions, shared: _Shared) -> Task:
    attrs = plan.nodes[node]
    needs = tuple(graphs.needs_of(plan, node))
    if attrs["kind"] == "gate":
        return Task(node, needs, lambda ctx: Outcome(True, "every build succeeded"), label="publish gate", light=True)
    image = project.images[attrs["image"]]
    if attrs["kind"] == "build":
        action = _build_action(project, plan, node, image, options, shared)
        return Task(node, needs, _expected_failures(action))
    return Task(node, needs, _expected_failures(_manifest_action(image, plan, shared.client)), light=True)


def _built_digest(ctx: TaskContext, plan: nx.DiGraph[str], image: str, platform: Platform) -> str:
    """The digest a build of this run pushed for ``image`` on ``platform``; KeyError if none did."""
    return str(ctx.results_of(graphs.build_node(plan, image, platform)).data["digests"][str(platform)])  # type: ignore[index]


def _build_action(
    project: Project, plan: nx.DiGraph[str], node: str, image: Image, options: RunOptions, shared: _Shared,
) -> Callable[[TaskContext], Outcome]:
    backend = options.backends[image.name][0]
    platforms = graphs.platforms_of(plan.nodes[node])
    merged = platforms if len(platforms) > 1 else ()
    bake = shared.bakes.get(node)

    def action(ctx: TaskContext) -> Outcome:
        if bake is not None:
            if bake.build(ctx):
                return _pushed(ctx, shared.client, image, platforms, bake.call.requests[node].push_ref,
                               bake.digest(node))
            ctx.log(f"{bake.call.batch} failed: building {node} alone")
        pins = {pin.target: f"{project.images[pin.target].repository}@{_built_digest(ctx, plan, pin.target, p)}"
                for p in platforms for pin in image.pins(p)}
        request = build_request(project, image, platforms[0], state_dir=options.state_dir,
                                insecure_registries=options.insecure_registries, pins=pins, merged=merged)
        request.workdir.mkdir(parents=True, exist_ok=True)
        for argv in backend.commands(request):
            with shared.pushes(image.repository) if backend.is_push_step(argv) else contextlib.nullcontext():
                status = ctx.run(argv)
            if status != 0:
                return Outcome(False, f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited with {status}")
        return _pushed(ctx, shared.client, image, platforms, request.push_ref, backend.read_digest(request))

    return action


def _pushed(ctx: TaskContext, client: RegistryClient, image: Image, platforms: tuple[Platform, ...], push_ref: str,
            digest: str) -> Outcome:
    ctx.log(f"pushed {push_ref}@{digest}")
    digests = _retag_platforms(ctx, client, image, platforms, digest) if len(platforms) > 1 else {
        str(platforms[0]): digest}
    return Outcome(True, digest, {"digests": digests})


def _retag_platforms(ctx: TaskContext, client: RegistryClient, image: Image, platforms: tuple[Platform, ...],
                     index_digest: str) -> dict[str, str]:
    """A merged build pushed one index: give each platform's image its own platform tag,
    so the registry holds what separate builds would have pushed."""
    where = f"{image.repository}@{index_digest}"
    index = client.get_manifest(where).json()
    digests: dict[str, str] = {}
    for platform in platforms:
        child = client.get_manifest(f"{image.repository}@{select_child(index, platform, where)['digest']}")
        client.put_manifest(image.repository, image.platform_tags[platform], child.media_type, child.body)
        ctx.log(f"tagged {image.repository}:{image.platform_tags[platform]} -> {child.digest}")
        digests[str(platform)] = child.digest
    return digests


def _manifest_action(image: Image, plan: nx.DiGraph[str], client: RegistryClient) -> Callable[[TaskContext], Outcome]:
    annotations = {k: v for k, v in image.labels.items() if k.startswith(ANNOTATED_LABELS)}

    def action(ctx: TaskContext) -> Outcome:
        entries = []
        for platform in image.platforms:
            try:
                digest = _built_digest(ctx, plan, image.name, platform)
            except KeyError:  # built by another job (--manifests-only): find it by its platform tag
                ref = f"{image.repository}:{image.platform_tags[platform]}"
                try:
                    digest = client.get_manifest(ref).digest
                except RegistryError as e:
                    raise RegistryError(f"no {platform} image for {image.name} at {ref} "
                                        f"(did the job `run --platform {platform}` succeed?): {e}") from None
                ctx.log(f"found {ref} -> {digest}")
            entries.append(IndexEntry(platform, digest))
        if ctx.cancelled.is_set():
            return Outcome(False, "interrupted before publishing")
        published = publish_index(client, image.repository, entries, image.tags, annotations)
        for tag in published.tags:
            ctx.log(f"pushed {published.repository}:{tag} -> {published.digest} ({published.media_type})")
        return Outcome(True, published.digest, {"digest": published.digest,
                                                "manifests": dict(published.manifests)})

    return action


def _summary(image: Image, plan: nx.DiGraph[str], run: RunResult) -> ImageSummary:
    manifest = run.results.get(graphs.manifest_id(image.name))
    builds = {p: run.results[node] for p in image.platforms
              if (node := graphs.build_node(plan, image.name, p)) in run.results}
    platform_digests = {str(p): str(r.data["digests"][str(p)]) for p, r in builds.items()  # type: ignore[index]
                        if "digests" in r.data}
    if manifest is not None and "manifests" in manifest.data:
        platform_digests = {str(k): str(v) for k, v in dict(manifest.data["manifests"]).items()}  # type: ignore[call-overload]
    results = [*builds.values(), *([manifest] if manifest else [])]
    started = [r.started for r in results if r.started is not None]
    ended = [r.started + r.duration for r in results if r.started is not None and r.duration is not None]
    published = manifest is not None and manifest.status is Status.SUCCEEDED
    return ImageSummary(
        name=image.name,
        repository=image.repository,
        platforms=tuple(str(p) for p in (image.platforms if manifest else builds)),
        tags=image.tags if published else (),
        index_digest=str(manifest.data["digest"]) if manifest and "digest" in manifest.data else None,
        platform_digests=platform_digests,
        duration=(max(ended) - min(started)) if started and ended else None,
        status=_image_status(manifest, list(builds.values())),
    )


def _image_status(manifest: TaskResult | None, builds: Sequence[TaskResult]) -> str:
    """An image whose build failed says so, not just that its index was not pushed."""
    if manifest is None:  # --platform: builds only
        worst = [b.status for b in builds if b.status is not Status.SUCCEEDED]
        return str(worst[0].value if worst else Status.SUCCEEDED.value)
    if manifest.status is Status.NOT_RUN:
        for status in (Status.FAILED, Status.INTERRUPTED):
            if any(b.status is status for b in builds):
                return str(status.value)
    return str(manifest.status.value)


def _print_published(images: Sequence[ImageSummary]) -> None:
    """The pushed references on stdout, one per line, for scripts (`... | xargs`)."""
    for image in images:
        if image.index_digest:
            for tag in image.tags:
                print(f"{image.repository}:{tag}@{image.index_digest}")
