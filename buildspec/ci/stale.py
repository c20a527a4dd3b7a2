"""``--only-stale``: a pipeline that rebuilds only the images whose inputs changed.

The generator asks the question ``plan`` asks (uptodate.check.plan_verdicts: the
same verdicts ``plan --format json`` shows as ``"status": "up to date"`` with their
digests and keys) and leaves the up-to-date builds out of the pipeline:

* a dependent of an up-to-date build pins the digest found in the registry
  (``repo@sha256:...`` written into the job) instead of waiting for a job;
* each manifest job first runs ``buildspec ci record`` for its image, which
  - moves the platform tag of an up-to-date image onto it (a new version's
    platform tag, as ``run`` does for a skipped build), so the manifest step finds
    every platform and the release tags move to the new index;
  - pushes the input key record of each image a build job just pushed, as ``run``
    does after a build, so the next pipeline can skip it. It records only when the
    key computed now equals the key computed when the pipeline was generated
    (before any build started): inputs that moved while the pipeline ran mean no
    record, and the next pipeline builds again. A build whose key could not be
    known in advance (its ``image()`` dependency was rebuilt in the same pipeline)
    is not recorded; the next pipeline records it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from buildspec import graph as graphs
from buildspec.errors import BuildspecError, UsageError
from buildspec.evaluate import Project
from buildspec.jobs import state_dir
from buildspec.platform import Platform


@dataclass(frozen=True)
class Staleness:
    fresh: Mapping[str, str] = field(default_factory=dict)  # up-to-date build node -> its image digest
    keys: Mapping[str, str] = field(default_factory=dict)  # stale build node -> its key, when known now


def staleness(project: Project, graph: nx.DiGraph[str], backend_of: Mapping[str, str], publish: str,
              insecure_registries: Sequence[str]) -> Staleness:
    """The verdict of every build node of ``graph`` (the selected, unmerged graph)."""
    from buildspec.registry.client import RegistryClient
    from buildspec.uptodate.check import Checker, plan_verdicts

    execution = graphs.execution_graph(graph, publish)
    with RegistryClient(insecure_registries=insecure_registries, retries=1, timeout=10) as client:
        checker = Checker(project, backend_of.__getitem__, client, state_dir=state_dir(project),
                          insecure_registries=insecure_registries)
        verdicts = plan_verdicts(project, execution, checker)
    fresh: dict[str, str] = {}
    keys: dict[str, str] = {}
    for node, verdict in verdicts.items():
        platform = str(execution.nodes[node]["platform"])
        if verdict.fresh and platform in verdict.digests:
            fresh[node] = verdict.digests[platform]
        elif platform in verdict.keys:
            keys[node] = verdict.keys[platform]
    return Staleness(fresh, keys)


def _node(graph: nx.DiGraph[str], text: str, option: str) -> tuple[str, str]:
    node, sep, value = text.partition("=")
    if not sep or node not in graph or graph.nodes[node]["kind"] != "build":
        raise UsageError(f"{option}: expected BUILD-NODE=VALUE with a build node of the Buildfile, got '{text}'")
    return node, value


def to_json(stale: Staleness) -> str:
    """The output of ``buildspec ci stale`` (GitHub's plan job): ``{"fresh": {...}, "keys": {...}}``."""
    return json.dumps({"fresh": dict(stale.fresh), "keys": dict(stale.keys)}, sort_keys=True, separators=(",", ":"))


def from_json(text: str, graph: nx.DiGraph[str]) -> Staleness:
    """A plan job's output (the build nodes of ``graph`` only)."""
    try:
        data = json.loads(text)
        fresh, keys = dict(data["fresh"]), dict(data["keys"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--plan: not the output of 'buildspec ci stale': {text[:80]!r}") from None

    def known(node: object) -> bool:
        return isinstance(node, str) and node in graph and graph.nodes[node]["kind"] == "build"

    return Staleness({n: str(d) for n, d in fresh.items() if known(n)},
                     {n: str(k) for n, k in keys.items() if known(n)})


def record(project: Project, graph: nx.DiGraph[str], backend: str, *, digests: Sequence[str],
           keys: Sequence[str], reuse: Sequence[str], insecure_registries: Sequence[str],
           plan: Staleness | None = None, images: Sequence[str] = ()) -> int:
    """``buildspec ci record``: move the platform tags of up-to-date images (``reuse``:
    NODE=DIGEST) and record the keys of built ones (``keys``: NODE=KEY, their digests
    in ``digests``: NODE=DIGEST, with the digests of their ``image()`` dependencies).
    ``plan``: the same from a plan job's output (GitHub) for the builds of ``images``;
    an empty ``--digest`` is then a build job that was skipped."""
    from buildspec.registry.client import RegistryClient
    from buildspec.registry.reference import as_reference
    from buildspec.uptodate import records
    from buildspec.uptodate.check import Checker

    known = {node: digest for node, digest in (_node(graph, text, "--digest") for text in digests) if digest}
    moved = dict(_node(graph, text, "--reuse") for text in reuse)
    wanted = dict(_node(graph, text, "--record") for text in keys)
    if plan is not None:
        known.update(plan.fresh)  # the digests of up-to-date dependencies, for pins
        # IMAGE's dependencies too: `run --manifests-only IMAGE` publishes their indexes
        closure = set(graphs.images_in(graphs.select(graph, project, images)))
        moved.update({n: d for n, d in plan.fresh.items() if graph.nodes[n]["image"] in closure})
        wanted.update({n: k for n, k in plan.keys.items() if graph.nodes[n]["image"] in images})
    known.update(moved)
    status = 0
    with RegistryClient(insecure_registries=insecure_registries) as client:
        for node, digest in moved.items():
            image = project.images[graph.nodes[node]["image"]]
            platform: Platform = graph.nodes[node]["platform"]
            tag = image.platform_tags[platform]
            current = client.find_manifest(f"{image.repository}:{tag}")
            if current is not None and current.digest == digest:
                print(f"{node}: up to date, {image.repository}:{tag} already is {digest}")
                continue
            manifest = client.get_manifest(as_reference(f"{image.repository}@{digest}"))
            client.put_manifest(image.repository, tag, manifest.media_type, manifest.body)
            print(f"{node}: up to date, tagged {image.repository}:{tag} -> {digest}")
        checker = Checker(project, lambda name: backend, client, state_dir=state_dir(project),
                          insecure_registries=insecure_registries)
        for node, key in wanted.items():
            image = project.images[graph.nodes[node]["image"]]
            platform = graph.nodes[node]["platform"]
            digest = known.get(node, "")
            pins = {}
            for pin in image.pins(platform):
                dependency = known.get(graphs.build_id(pin.target, platform))
                if dependency is None:
                    raise UsageError(f"{node}: no --digest for its dependency {pin.target}")
                pins[pin.target] = f"{project.images[pin.target].repository}@{dependency}"
            if not digest.startswith("sha256:"):
                print(f"warning: {node}: no digest of the image its job pushed ('{digest}'): key not recorded")
                status = 1
                continue
            try:
                inputs = checker.inputs(image, platform, pins, again=True)
                if inputs.key != key:
                    print(f"{node}: not recording its key: the inputs changed since the pipeline was generated "
                          f"({key[:12]} -> {inputs.key[:12]}); the next pipeline builds it again")
                    continue
                records.record(client, image.repository, image.name, platform, digest, inputs)
                print(f"{node}: recorded key {key} for {image.repository}@{digest}")
            except BuildspecError as exc:  # the image is fine; only the next pipeline's skip is lost
                print(f"warning: {node}: cannot record its key: {exc}")
    return status
