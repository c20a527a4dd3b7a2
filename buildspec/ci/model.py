"""The part of ``buildspec ci`` that both CI systems share: the graph as a list of jobs.

Every build node of the (unmerged) graph is one job for one platform, so each can go
to a runner of its own architecture; every manifest node is one job that runs
``buildspec run --manifests-only IMAGE``. A build job runs exactly the argv that
``plan --commands`` prints (``jobs.build_request`` then ``backend.commands``), with
three differences that come from running on another machine:

* paths are the checkout's (``$CI_PROJECT_DIR/...``, ``$GITHUB_WORKSPACE/...``), not
  this machine's, and the work folder (digest and metadata files) is the job's;
* an ``image()`` pin is ``repo@$VAR``, ``VAR`` being the digest the dependency's job
  exported (GitLab: a dotenv report; GitHub: a job output): still pinned by digest;
* kaniko's ``BUILDPLATFORM`` args describe the runner (native runners: the target
  platform itself), not the machine that generated the pipeline.

The renderers (gitlab.py, github.py) only turn these jobs into YAML.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import networkx as nx

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.backends.buildx import METADATA_FILE
from buildspec.backends.kaniko import DIGEST_FILE, KanikoBackend
from buildspec.ci.shell import split_var, var, word
from buildspec.ci.stale import Staleness
from buildspec.errors import UsageError
from buildspec.evaluate import Project
from buildspec.jobs import build_request, digest_sources, safe_name
from buildspec.platform import Platform

# Platforms whose jobs run on a runner of their own architecture by default; every
# other platform runs emulated (qemu) on an amd64 runner.
NATIVE = ("linux/amd64", "linux/arm64")
HOST = Platform.parse("linux/amd64")


@dataclass(frozen=True)
class Where:
    """Where a CI system puts things, as shell text (``var()`` for its variables)."""

    checkout: str  # the repository root in a job: var("CI_PROJECT_DIR")
    work: Callable[[str, str], str]  # (backend, safe node name) -> the job's work folder


@dataclass(frozen=True)
class CiOptions:
    root: Path  # the repository root (absolute) on this machine
    buildfile: Path  # the Buildfile (absolute)
    backends: Mapping[str, Backend]  # image name -> backend
    publish: str = "atomic"
    targets: Sequence[str] = ()
    sets: Mapping[str, str] = field(default_factory=dict)  # --set, passed on to manifest jobs
    insecure_registries: Sequence[str] = ()
    runners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # platform|"default" -> labels
    job_images: Mapping[str, str | None] = field(default_factory=dict)  # backend|"buildspec" -> image


@dataclass(frozen=True)
class BuildJob:
    name: str  # job name / id: "build-app-linux-arm64"
    node: str  # "build:app@linux/arm64"
    image: str
    platform: Platform
    backend: str
    needs: tuple[str, ...]  # job names
    pins: Mapping[str, str]  # variable holding a dependency's digest -> the job that exports it
    pin_nodes: Mapping[str, str]  # the same variable -> the dependency's build node
    digest_var: str  # the variable this job exports its own digest under
    commands: tuple[str, ...]  # shell lines: mkdir of the work folder, then the backend's argv
    digest: str  # a shell command that prints this job's digest (sha256:...) or fails
    wave: int  # topological generation in the execution graph without the gate (0: no dependency)
    emulated: bool  # the platform is not native to the default runner (qemu needed)


@dataclass(frozen=True)
class ManifestJob:
    name: str  # "manifest-app"
    node: str
    image: str
    needs: tuple[str, ...]  # eager: the image's build jobs; atomic: () (a stage boundary gates it)
    argv: tuple[str, ...]  # $BUILDSPEC run ... --manifests-only IMAGE
    wave: int
    # --only-stale: $BUILDSPEC ci record ... first (stale.py), and the digest variables it reads
    record: tuple[tuple[str, ...], ...] = ()
    record_vars: Mapping[str, str] = field(default_factory=dict)  # variable -> the build job exporting it


@dataclass(frozen=True)
class Pipeline:
    builds: tuple[BuildJob, ...]
    manifests: tuple[ManifestJob, ...]
    publish: str
    # Build jobs that need a manifest job (eager publishing with needs = [B]).
    manifest_needs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class Names:
    """Job names and digest variables: readable, unique, valid on both systems
    (GitHub job ids: ``[A-Za-z_][A-Za-z0-9_-]*``)."""

    def __init__(self) -> None:
        self._jobs: dict[str, str] = {}
        self._taken: set[str] = set()
        self._vars: dict[str, str] = {}
        self._taken_vars: set[str] = set()

    def job(self, node: str) -> str:
        if node not in self._jobs:
            kind, _, rest = node.partition(":")
            name = f"{kind}-{_UNSAFE.sub('-', rest).strip('-')}"[:80]
            if name in self._taken:
                name = f"{name}-{hashlib.sha256(node.encode()).hexdigest()[:8]}"
            self._taken.add(name)
            self._jobs[node] = name
        return self._jobs[node]

    def digest_var(self, node: str) -> str:
        if node not in self._vars:
            name = "BUILDSPEC_DIGEST_" + _UNSAFE.sub("_", self.job(node).removeprefix("build-")).replace("-", "_")
            name = name.upper()[:100]
            if name in self._taken_vars:
                name = f"{name}_{hashlib.sha256(node.encode()).hexdigest()[:8].upper()}"
            self._taken_vars.add(name)
            self._vars[node] = name
        return self._vars[node]


def _relative(path: Path, root: Path, what: str) -> PurePosixPath:
    try:
        return PurePosixPath(path.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        raise UsageError(f"{what} {path} is outside the repository {root}: a CI job cannot see it") from None


def _in_checkout(where: Where, relative: PurePosixPath) -> str:
    return where.checkout if str(relative) == "." else f"{where.checkout}/{relative}"


def _buildspec_common(options: CiOptions, project: Project, backend: str) -> list[str]:
    sets = dict(_env_variables(project))
    sets.update(options.sets)
    argv = ["-f", str(_relative(options.buildfile, options.root, "the Buildfile"))]
    for name in sorted(sets):
        argv += ["--set", f"{name}={sets[name]}"]
    for registry in options.insecure_registries:
        argv += ["--insecure-registry", registry]
    return [*argv, "--backend", backend]


def buildspec_argv(options: CiOptions, project: Project, image: str, backend: str) -> tuple[str, ...]:
    """The manifest job's command: ``$BUILDSPEC run -f FILE --manifests-only IMAGE``.

    Every variable whose value came from ``env()`` and every ``--set`` is passed as
    ``--set``, so the job computes the very repositories and tags the build jobs
    pushed to, whatever that job's environment holds. ``--backend`` is explicit
    so that no build tool is probed in a job that builds nothing.
    """
    return (split_var("BUILDSPEC"), "run", *_buildspec_common(options, project, backend),
            "--publish", options.publish, "--progress", "plain", "--manifests-only", image)


def _env_variables(project: Project) -> dict[str, str]:
    from buildspec.syntax import Call

    found = {}
    for variable in project.buildfile.variables:
        value = project.variables.get(variable.name)
        if isinstance(variable.value, Call) and variable.value.name == "env" and isinstance(value, str):
            found[variable.name] = value
    return found


def _digest_command(backend: str, work: str) -> str:
    """A shell command printing the digest the build pushed, failing when there is none."""
    if backend == "buildx":
        path = word(f"{work}/{METADATA_FILE}")
        return (f"grep -o '\"containerimage.digest\": *\"sha256:[0-9a-f]\\{{64\\}}\"' {path}"
                f" | grep -o 'sha256:[0-9a-f]\\{{64\\}}'")
    return f"grep -o '^sha256:[0-9a-f]\\{{64\\}}' {word(f'{work}/{DIGEST_FILE}')}"


def build_pipeline(project: Project, graph: nx.DiGraph[str], options: CiOptions, where: Where,
                   stale: Staleness | None = None, plan_env: str | None = None) -> Pipeline:
    """``graph``: the selected, unmerged graph (graph.select), before execution_graph.
    ``stale``: only the builds that are not up to date get a job (--only-stale).
    ``plan_env``: every build gets a job, and a plan job decides at run time which run
    (GitHub); the manifest jobs' record step reads its verdicts from this variable."""
    names = Names()
    fresh = stale.fresh if stale is not None else {}
    build_nodes = [n for n, a in graph.nodes(data=True) if a["kind"] == "build"]
    atomic = options.publish == "atomic"
    execution = graphs.execution_graph(graph, options.publish)
    ungated = execution.subgraph(n for n in execution if n != graphs.PUBLISH_GATE)
    wave_of = {n: i for i, wave in enumerate(nx.topological_generations(ungated)) for n in wave}
    builds: list[BuildJob] = []
    manifest_needs: dict[str, tuple[str, ...]] = {}
    for node in build_nodes:
        if node in fresh:
            continue
        attrs = graph.nodes[node]
        image = project.images[attrs["image"]]
        platform: Platform = attrs["platform"]
        backend = options.backends[image.name]
        pins: dict[str, str] = {}
        pin_nodes: dict[str, str] = {}
        pin_refs: dict[str, str] = {}
        needs_of_pins: list[str] = []
        # image() pins and the images `needs` passes as named contexts: their digests
        # come from the dependency's job (or the registry, when it is up to date).
        for target in digest_sources(project, image, platform):
            dependency = graphs.build_id(target, platform)
            if dependency in fresh:  # up to date: the digest is known now
                pin_refs[target] = f"{project.images[target].repository}@{fresh[dependency]}"
                continue
            pins[names.digest_var(dependency)] = names.job(dependency)
            pin_nodes[names.digest_var(dependency)] = dependency
            pin_refs[target] = f"{project.images[target].repository}@{var(names.digest_var(dependency))}"
            if names.job(dependency) not in needs_of_pins:
                needs_of_pins.append(names.job(dependency))
        needs: list[str] = list(needs_of_pins)
        for before in graphs.needs_of(execution, node):
            kind = execution.nodes[before]["kind"]
            if before in fresh:
                continue
            if kind == "build":
                if names.job(before) not in needs:
                    needs.append(names.job(before))
            elif kind == "manifest":
                manifest_needs.setdefault(node, ())
                manifest_needs[node] += (names.job(before),)
                needs.append(names.job(before))
        work = where.work(backend.name, safe_name(node))
        request = build_request(project, image, platform, state_dir=Path("."),
                                insecure_registries=options.insecure_registries, pins=pin_refs)
        request = dataclasses.replace(
            request,
            context=Path(_in_checkout(where, _relative(image.context, options.root, "the build context"))),
            dockerfile=Path(_in_checkout(where, _relative(image.dockerfile, options.root, "the Dockerfile"))),
            workdir=Path(work),
        )
        native = str(platform.normalized()) in NATIVE
        if isinstance(backend, KanikoBackend):
            backend = KanikoBackend(executor=backend.executor, build_platform=platform if native else HOST)
        lines = [f"mkdir -p {word(work)}", *(" ".join(word(a) for a in argv) for argv in backend.commands(request))]
        builds.append(BuildJob(
            name=names.job(node), node=node, image=image.name, platform=platform, backend=backend.name,
            needs=tuple(needs), pins=pins, pin_nodes=pin_nodes, digest_var=names.digest_var(node),
            commands=tuple(lines),
            digest=_digest_command(backend.name, work), wave=wave_of[node], emulated=not native,
        ))
    manifests = []
    for node, attrs in graph.nodes(data=True):
        if attrs["kind"] != "manifest":
            continue
        own = () if atomic else tuple(names.job(n) for n in graphs.needs_of(graph, node)
                                      if graph.nodes[n]["kind"] == "build")
        name = attrs["image"]
        own = tuple(job for job in own if job in {b.name for b in builds})
        if plan_env is not None:
            record, record_vars = _dynamic_record(project, graph, options, names, node, plan_env)
        elif stale is not None:
            record, record_vars = _record(project, graph, options, names, stale, node)
        else:
            record, record_vars = (), {}
        manifests.append(ManifestJob(
            name=names.job(node), node=node, image=name, needs=own,
            argv=buildspec_argv(options, project, name, options.backends[name].name), wave=wave_of[node],
            record=record, record_vars=record_vars,
        ))
    return Pipeline(tuple(builds), tuple(manifests), options.publish, manifest_needs)


def _record(project: Project, graph: nx.DiGraph[str], options: CiOptions, names: Names, stale: Staleness,
            manifest: str) -> tuple[tuple[tuple[str, ...], ...], dict[str, str]]:
    """``buildspec ci record`` for the builds of the manifest's image (stale.py)."""
    name = graph.nodes[manifest]["image"]
    # the image right after "record": argparse takes positionals in one run
    argv = [split_var("BUILDSPEC"), "ci", "record", name,
            *_buildspec_common(options, project, options.backends[name].name)]
    variables: dict[str, str] = {}
    nodes = [n for n in graphs.needs_of(graph, manifest) if graph.nodes[n]["kind"] == "build"]
    # `run --manifests-only IMAGE` publishes the indexes of IMAGE's dependencies too, so
    # the platform tags of their reused images must have moved before it, whatever the
    # order of the manifest jobs (moving a tag to the same digest again changes nothing).
    closure = set(graphs.images_in(graphs.select(graph, project, [name])))
    reused = [n for n, a in graph.nodes(data=True) if a["kind"] == "build" and a["image"] in closure
              and n in stale.fresh]
    digests: dict[str, str] = {}
    if not reused and not any(node in stale.keys for node in nodes):
        return (), {}
    for node in reused:
        argv += ["--reuse", f"{node}={stale.fresh[node]}"]
    for node in nodes:
        if node in stale.keys:
            argv += ["--record", f"{node}={stale.keys[node]}"]
            variables[names.digest_var(node)] = names.job(node)
            digests[node] = var(names.digest_var(node))
            platform = graph.nodes[node]["platform"]
            for pin in project.images[name].pins(platform):
                dependency = graphs.build_id(pin.target, platform)
                if dependency in stale.fresh:  # a key is known only when the dependencies are up to date
                    digests[dependency] = stale.fresh[dependency]
    for node, digest in digests.items():
        argv += ["--digest", f"{node}={digest}"]
    return (tuple(argv),), variables


def _dynamic_record(project: Project, graph: nx.DiGraph[str], options: CiOptions, names: Names, manifest: str,
                    plan_env: str) -> tuple[tuple[tuple[str, ...], ...], dict[str, str]]:
    """``buildspec ci record`` reading a plan job's verdicts: the digest of every build
    of the image and of its image() dependencies (empty when that job was skipped)."""
    name = graph.nodes[manifest]["image"]
    argv = [split_var("BUILDSPEC"), "ci", "record", name,
            *_buildspec_common(options, project, options.backends[name].name), "--plan-from-env", plan_env]
    variables: dict[str, str] = {}
    nodes: dict[str, None] = {}
    for node in graphs.needs_of(graph, manifest):
        if graph.nodes[node]["kind"] != "build":
            continue
        nodes[node] = None
        platform = graph.nodes[node]["platform"]
        for pin in project.images[name].pins(platform):
            nodes[graphs.build_id(pin.target, platform)] = None
    for node in nodes:
        variables[names.digest_var(node)] = names.job(node)
        argv += ["--digest", f"{node}={var(names.digest_var(node))}"]
    return (tuple(argv),), variables


def runner_for(options: CiOptions, platform: Platform | None, defaults: Mapping[str, tuple[str, ...]]
               ) -> tuple[str, ...]:
    """The runner labels of a platform's jobs (``None``: a manifest job): ``--runner``
    and the Buildfile's ``ci_runners`` first, then the CI system's defaults."""
    key = str(platform.normalized()) if platform is not None else "default"
    for table in (options.runners, defaults):
        if key in table:
            return table[key]
    return options.runners.get("default", defaults["default"])


def job_image(options: CiOptions, kind: str, defaults: Mapping[str, str | None]) -> str | None:
    """The image a backend's (or ``buildspec``'s) jobs run in; None: the runner's shell."""
    if kind in options.job_images:
        return options.job_images[kind]
    return defaults.get(kind)
