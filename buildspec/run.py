"""Stage 6: run the execution graph: per-platform builds, then the manifest step.

Each graph node becomes an executor Task:
  build:X@p      up to date (its input key is in the registry: re-use that image, move
                 its platform tag if needed) or backend argv lists (the ones
                 `plan --commands` shows), then the digest and the key record
  build:X@p1+p2  a merged buildx build: one call, then each platform's image is
                 tagged under its own platform tag; merged builds of one bake batch
                 (jobs.bake_calls) share one `docker buildx bake`, run by the first
                 of them to start (pushed.Bake, which then does the batch's registry
                 work 8 at a time), and each is built alone if it fails
  publish        the atomic-publishing gate: nothing to do, it only orders
  manifest:X     assemble X's index from its builds' digests and push it by digest to each
                 of X's repositories (publish_steps.py); with --publish eager, then its tags
  tags           atomic publishing: once every index is in, move every tag (publish_steps.py)

Manifests and the gate only talk to registries: they are light tasks (executor.py).
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from buildspec import graph as graphs
from buildspec import lock, publish, retry
from buildspec.backends.base import Backend
from buildspec.backends.buildx import BuildxBackend
from buildspec.errors import BuildspecError, ExitCode
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
from buildspec.jobs import bake_calls, build_request, digest_sources
from buildspec.outputs import LocalOutput, local_index_action, local_tags_action
from buildspec.publish_steps import built_digest, manifest_action, tags_action
from buildspec.pushed import FINISH_THREADS, Bake, push_again_with, pushed
from buildspec.registry.client import RegistryClient
from buildspec.reporting import ImageSummary, make_reporter, print_summary, summary_json
from buildspec.uptodate import act
from buildspec.uptodate.check import Checker, Verdict

if TYPE_CHECKING:  # networkx is loaded by the graph stage; here only for annotations
    import networkx as nx


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
    always_make: bool = False  # -B: build every node, as if nothing were up to date
    build_retries: int = retry.DEFAULT_BUILD_RETRIES  # after a transient registry error (retry.py)
    output: LocalOutput | None = None  # --load / --output oci:DIR: nothing is pushed (outputs.py)


def run(project: Project, graph: nx.DiGraph[str], options: RunOptions) -> ExitCode:
    """One run of a Buildfile at a time, and nothing left by a killed one (lock.py)."""
    with lock.run_lock(options.state_dir, sys.stderr) as children:
        if any(b.name == "kaniko" and getattr(b, "image", None) for b, _ in options.backends.values()):
            lock.remove_containers(options.state_dir, sys.stderr)
        return _run(project, graph, options, children.add)


def _run(project: Project, graph: nx.DiGraph[str], options: RunOptions, on_child: Callable[[int], None]) -> ExitCode:
    plan = graphs.execution_graph(graph, options.publish)
    client = RegistryClient(insecure_registries=options.insecure_registries)
    # Lookups give up sooner: a base image on a registry that cannot be reached means
    # "build", not a run that waits for retries.
    lookups = RegistryClient(insecure_registries=options.insecure_registries, retries=1, timeout=10,
                             schemes_of=client)
    try:
        checker = Checker(project, lambda name: options.backends[name][0].name, lookups,
                          state_dir=options.state_dir, insecure_registries=options.insecure_registries,
                          always=options.always_make)
        # The preflight and the up-to-date lookups ask the same registries: at once. A
        # preflight failure still stops the run before anything is built or pushed.
        if options.output is not None:  # local outputs always build, push nothing, ask no registry
            verdicts = {}
        else:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="preflight") as pool:
                preflight = pool.submit(_check_registries, project, plan, client)
                verdicts = act.upfront_verdicts(project, plan, checker)
                preflight.result()
        fresh = {node for node, verdict in verdicts.items() if verdict.fresh}
        shared = _Shared(client, _PushLocks(), _bakes(project, plan, options, fresh), checker, verdicts)
        # In the plan's order, wave by wave, so that `run -j 1` does what `plan` lists.
        tasks = [_task(project, plan, node, options, shared) for wave in graphs.waves(plan) for node in wave]
        result = execute(
            tasks,
            jobs=options.jobs or default_jobs(),
            keep_going=options.keep_going,
            reporter=make_reporter(options.progress),
            log_dir=options.state_dir / "logs",
            on_child=on_child,
        )
    finally:
        client.close()
        lookups.close()
    report = publish.tag_report(plan, result)
    images = [publish.with_tags(_summary(project.images[name], plan, result), report, result)
              for name in graphs.images_in(plan)]
    print_summary(images, result, sys.stderr)
    names = [image.name for image in images]
    if report is not None:
        for line in publish.report_lines(report, names):
            print(line, file=sys.stderr)
    retries = _retries(result)
    if retries:
        print(f"retried after a transient registry error: "
              f"{', '.join(f'{node} ({n}x)' for node, n in retries.items())}", file=sys.stderr)
    publish.print_published(report)
    if options.metadata_file is not None:
        document = {**summary_json(images, result), "publish": publish.report_json(report, names),
                    "retries": retries}
        options.metadata_file.write_text(json.dumps(document, indent=2) + "\n")
    return result.exit_code


def _retries(result: RunResult) -> dict[str, int]:
    """node -> how many times it was built again (retry.py), for the nodes that were."""
    return {node: int(r.data["retries"]) for node, r in result.results.items()  # type: ignore[call-overload]
            if r.data.get("retries")}


def _check_registries(project: Project, plan: nx.DiGraph[str], client: RegistryClient) -> None:
    """Ask every target repository once before building: a missing login or an
    unreachable registry fails the run here, with the registry's own message,
    before anything is built or pushed. At most 8 requests at once; the first error
    (in the images' order) is the one raised."""
    # An image without tags pushes nothing, so its repositories need not even be reachable.
    repositories = dict.fromkeys(r for name in graphs.images_in(plan) if project.images[name].tags
                                 for r in project.images[name].repositories)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="preflight") as pool:
        for _ in pool.map(client.check_access, repositories):
            pass


def _expected_failures(action: Callable[[TaskContext], Outcome]) -> Callable[[TaskContext], Outcome]:
    """A registry or usage error is a failed node with its message, not a traceback in the log."""

    def guarded(ctx: TaskContext) -> Outcome:
        try:
            return action(ctx)
        except BuildspecError as e:
            ctx.log(f"error: {e}")
            return Outcome(False, str(e))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return Outcome(False, f"no space left on the device of {e.filename or 'the work folder'}")

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


def _bakes(project: Project, plan: nx.DiGraph[str], options: RunOptions, fresh: set[str]) -> dict[str, Bake]:
    """node id -> the bake that builds it (up-to-date nodes are in none)."""
    if not options.bake:
        return {}
    calls = bake_calls(project, plan, options.backends, state_dir=options.state_dir,
                       insecure_registries=options.insecure_registries, skip=fresh)
    threads = 1 if options.jobs == 1 else FINISH_THREADS
    return {node: bake for call in calls.values() for bake in [Bake(call, threads)] for node in call.requests}


@dataclass(frozen=True)
class _Shared:
    """What the tasks of one run share."""

    client: RegistryClient
    pushes: _PushLocks
    bakes: Mapping[str, Bake]
    checker: Checker
    verdicts: Mapping[str, Verdict]  # the nodes checked before the run started


def _task(project: Project, plan: nx.DiGraph[str], node: str, options: RunOptions, shared: _Shared) -> Task:
    attrs = plan.nodes[node]
    needs = tuple(graphs.needs_of(plan, node))
    if attrs["kind"] == "gate":
        return Task(node, needs, lambda ctx: Outcome(True, "every build succeeded"), label="publish gate", light=True)
    if attrs["kind"] == "tags" and options.output is not None:
        return Task(node, needs, local_tags_action(needs), label="local tags", light=True)
    if attrs["kind"] == "tags":
        return Task(node, needs, _expected_failures(tags_action(needs, shared.client)), label="move tags",
                    light=True)
    image = project.images[attrs["image"]]
    if attrs["kind"] == "build":
        action = _build_action(project, plan, node, image, options, shared)
        return Task(node, needs, _expected_failures(retry.retrying(action, options.build_retries)))
    if options.output is not None:
        action = local_index_action(image, plan, options.state_dir, options.output)
        return Task(node, needs, _expected_failures(action), light=True)
    eager = graphs.TAGS_NODE not in plan
    return Task(node, needs, _expected_failures(manifest_action(image, plan, shared.client, eager)), light=True)


def _build_action(
    project: Project, plan: nx.DiGraph[str], node: str, image: Image, options: RunOptions, shared: _Shared,
) -> Callable[[TaskContext], Outcome]:
    backend = options.backends[image.name][0]
    platforms = graphs.platforms_of(plan.nodes[node])
    merged = platforms if len(platforms) > 1 else ()
    bake = shared.bakes.get(node)

    def action(ctx: TaskContext) -> Outcome:
        pins = {name: f"{project.images[name].repository}@{built_digest(ctx, plan, name, p)}"
                for p in platforms for name in digest_sources(project, image, p)}
        if options.output is not None:  # local outputs always build, and record no key anywhere
            outcome = build(ctx, pins)
            reasons = ("--load and --output always build",)
            return Outcome(True, outcome.detail, {**outcome.data, "fresh": "built", "reasons": reasons}) \
                if outcome.ok else outcome
        verdict = shared.verdicts.get(node) or shared.checker.check(image, platforms, pins)
        if verdict.fresh:
            return act.reuse(ctx, shared.client, image, verdict)
        for reason in verdict.reasons:
            ctx.log(f"will build: {reason}")
        if bake is not None:
            if bake.build(ctx):
                return bake.outcome(node, ctx)
            ctx.log(f"{bake.call.batch} failed: building {node} alone")
        outcome = build(ctx, pins)
        if outcome.ok and image.tags:  # an image without tags pushed nothing to record a key for
            return recorded(ctx.log, outcome, pins, verdict, time.monotonic())
        return outcome

    def recorded(log: Callable[[str], None], outcome: Outcome, pins: Mapping[str, str], verdict: Verdict,
                 built_at: float) -> Outcome:
        act.record_built(log, shared.checker, shared.client, image, pins, verdict, outcome, built_at=built_at)
        return Outcome(True, outcome.detail, {**outcome.data, "fresh": "built", "reasons": verdict.reasons})

    def after_bake(log: Callable[[str], None], built_at: float, digest: str | None) -> Outcome:
        """The registry work once the bake pushed ``digest`` (None: the one its metadata
        names); Bake runs it beside the batch's others."""
        assert bake is not None and bake.run is not None
        request = bake.call.requests[node]
        push_again = push_again_with(log, bake.run, bake.call.backend.push_command(request))
        outcome = pushed(log, shared.client, image, platforms, request.push_ref, digest or bake.digest(node),
                         push_again)
        # A merged build has no image() pins: its verdict was asked before the run.
        verdict = shared.verdicts.get(node) or shared.checker.check(image, platforms, {})
        return recorded(log, outcome, {}, verdict, built_at)

    if bake is not None:
        bake.finishers[node] = after_bake

    def build(ctx: TaskContext, pins: Mapping[str, str]) -> Outcome:
        request = build_request(project, image, platforms[0], state_dir=options.state_dir,
                                insecure_registries=options.insecure_registries, pins=pins, merged=merged,
                                local=options.output is not None)
        request.workdir.mkdir(parents=True, exist_ok=True)
        if request.oci_layout is not None:  # a fresh layout: it must hold this build's image only
            shutil.rmtree(request.oci_layout, ignore_errors=True)
            request.oci_layout.parent.mkdir(parents=True, exist_ok=True)
        for argv in backend.commands(request):
            with shared.pushes(image.repository) if backend.is_push_step(argv) else contextlib.nullcontext():
                status = ctx.run(argv)
            if status != 0:
                return Outcome(False, f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited with {status}")
        if not request.push:
            ctx.log(f"built {image.name} for {', '.join(map(str, platforms))}; not pushed: it has no tags here")
            return Outcome(True, "built, not pushed (no tags)")
        push_again = push_again_with(ctx.log, ctx.run, backend.push_command(request)
                                     if isinstance(backend, BuildxBackend) else None)
        return pushed(ctx.log, shared.client, image, platforms, request.push_ref, backend.read_digest(request),
                      push_again)

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
        repositories=image.repositories,
        platforms=tuple(str(p) for p in (image.platforms if manifest else builds)),
        tags=image.tags if published else (),
        index_digest=str(manifest.data["digest"]) if manifest and "digest" in manifest.data else None,
        platform_digests=platform_digests,
        duration=(max(ended) - min(started)) if started and ended else None,
        status=_image_status(manifest, list(builds.values())),
        build=_freshness(list(builds.values())),
    )


def _freshness(builds: Sequence[TaskResult]) -> str | None:
    """``built`` (a build ran), ``retagged`` (nothing built, but a platform tag moved; the
    tag step makes it ``retagged`` too when it moves a release tag: publish.with_tags) or
    ``up to date``."""
    states = [str(b.data.get("fresh")) for b in builds if b.status is Status.SUCCEEDED and "fresh" in b.data]
    if not states:
        return None
    if "built" in states:
        return "built"
    return "retagged" if "retagged" in states else "up to date"


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
