"""What `run` does with the verdicts (check.py): ask before the run, re-use what is up
to date, and record the key of what was built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from buildspec import graph as graphs
from buildspec.errors import BuildspecError
from buildspec.evaluate import Image, Project
from buildspec.executor import Outcome, TaskContext
from buildspec.jobs import digest_sources
from buildspec.registry.client import Manifest, RegistryClient
from buildspec.uptodate import records
from buildspec.uptodate.check import Checker, Verdict

if TYPE_CHECKING:  # networkx is loaded by the graph stage; here only for annotations
    import networkx as nx


def upfront_verdicts(project: Project, plan: nx.DiGraph[str], checker: Checker) -> dict[str, Verdict]:
    """Whether each build node whose inputs are known before anything runs (no image()
    pin) is up to date: at most 8 lookups at once. Pinned nodes are checked when their
    dependencies are done (their key holds the dependencies' digests)."""
    nodes = [n for n, attrs in plan.nodes(data=True) if attrs["kind"] == "build"
             and not any(digest_sources(project, project.images[attrs["image"]], p)
                         for p in graphs.platforms_of(attrs))]

    def verdict(node: str) -> Verdict:
        attrs = plan.nodes[node]
        return checker.check(project.images[attrs["image"]], graphs.platforms_of(attrs), {})

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="uptodate") as pool:
        return dict(zip(nodes, pool.map(verdict, nodes), strict=True))


def reuse(ctx: TaskContext, client: RegistryClient, image: Image, verdict: Verdict) -> Outcome:
    """Re-use the images found by key; move a platform tag that points elsewhere (a new
    version's platform tag), so the registry holds what a build would have pushed."""
    moved = []
    for platform in image.platforms:
        digest = verdict.digests.get(str(platform))
        if digest is None:
            continue
        ctx.log(f"up to date: {image.repository}@{digest} has key {verdict.keys[str(platform)]}")
        tag = image.platform_tags[platform]
        current = client.find_manifest(f"{image.repository}:{tag}")
        if current is None or current.digest != digest:
            manifest = client.get_manifest(f"{image.repository}@{digest}")
            client.put_manifest(image.repository, tag, manifest.media_type, manifest.body)
            ctx.log(f"tagged {image.repository}:{tag} -> {digest}")
            moved.append(tag)
    fresh = "retagged" if moved else "up to date"
    return Outcome(True, f"{fresh} ({', '.join(verdict.digests.values())})",
                   {"digests": dict(verdict.digests), "fresh": fresh, "reasons": ()})


def record_built(log: Callable[[str], None], checker: Checker, client: RegistryClient, image: Image,
                 pins: Mapping[str, str], verdict: Verdict, outcome: Outcome, *,
                 built_at: float | None = None) -> None:
    """Push the key record of each platform image just built, unless its inputs moved while
    it was being built (the image may then hold either: the next run builds again).

    ``built_at``: when the build ended (``time.monotonic()``); the base images are then
    resolved once for all the builds that ended before (Checker.inputs). The outcome's
    ``fetched`` manifests (platform -> Manifest, pushed.py), when there are any, spare a request."""
    digests: Mapping[str, str] = outcome.data["digests"]  # type: ignore[assignment]
    fetched: Mapping[str, Manifest] = outcome.data.get("fetched") or {}  # type: ignore[assignment]
    for platform in image.platforms:
        inputs = verdict.inputs.get(str(platform))
        if inputs is None or str(platform) not in digests:
            continue
        try:
            again = checker.inputs(image, platform, pins, again=True, not_before=built_at)
            if again.key != inputs.key:
                log(f"not recording the key of {platform}: the inputs changed while it was built")
                continue
            records.record(client, image.repository, image.name, platform, digests[str(platform)], inputs,
                           fetched.get(str(platform)))
            log(f"recorded key {inputs.key} for {platform}")
        except BuildspecError as e:  # the image is fine; only the next run's skip is lost
            log(f"warning: cannot record the key of {platform}: {e}")
