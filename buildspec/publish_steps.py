"""The publishing nodes of a run: ``manifest:X`` and ``tags`` (run.py builds the tasks).

``manifest:X`` assembles X's index from its builds' digests (the images they already
checked, pushed.py, are not fetched again) and pushes it by digest to each of X's
repositories (publish.stage_index); with ``--publish eager``, then its tags. ``tags``
(atomic publishing): once every index is in, move every tag (publish.move_tags).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from buildspec import graph as graphs
from buildspec import publish
from buildspec.errors import RegistryError
from buildspec.evaluate import Image
from buildspec.executor import Outcome, TaskContext
from buildspec.platform import Platform
from buildspec.pushed import children_of
from buildspec.registry.client import RegistryClient
from buildspec.registry.index import IndexEntry, ResolvedChild

if TYPE_CHECKING:  # networkx is loaded by the graph stage; here only for annotations
    import networkx as nx

ANNOTATED_LABELS = "org.opencontainers.image."


def built_digest(ctx: TaskContext, plan: nx.DiGraph[str], image: str, platform: Platform) -> str:
    """The digest a build of this run pushed for ``image`` on ``platform``; KeyError if none did."""
    return str(ctx.results_of(graphs.build_node(plan, image, platform)).data["digests"][str(platform)])  # type: ignore[index]


def manifest_action(image: Image, plan: nx.DiGraph[str], client: RegistryClient,
                     eager: bool) -> Callable[[TaskContext], Outcome]:
    annotations = {k: v for k, v in image.labels.items() if k.startswith(ANNOTATED_LABELS)}
    annotations.update(image.build_options.annotations)  # `annotations { }`: the manifests' and the index's

    def action(ctx: TaskContext) -> Outcome:
        if not image.tags:
            ctx.log(f"{image.name} has no tags here: nothing to publish")
            return Outcome(True, "nothing to publish (no tags)")
        entries = []
        for platform in image.platforms:
            try:
                digest = built_digest(ctx, plan, image.name, platform)
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
        staged = publish.stage_index(client, image.name, image.repositories, entries, image.tags, annotations,
                                     ctx.log, known=checked(ctx, plan, image, entries))
        data: dict[str, object] = {"digest": staged.digest, "manifests": dict(staged.manifests), "staged": staged}
        if not eager:
            return Outcome(True, staged.digest, data)
        report = publish.move_tags(client, [staged], ctx.log, cancelled=ctx.cancelled)
        return Outcome(report.complete, staged.digest if report.complete else report.summary(),
                       {**data, "tags": report})

    return action


def checked(ctx: TaskContext, plan: nx.DiGraph[str], image: Image,
             entries: Sequence[IndexEntry]) -> dict[IndexEntry, ResolvedChild]:
    """The images of ``entries`` their builds already checked (pushed.py), so that the
    manifest step does not fetch them again."""
    known = {}
    for entry in entries:
        node = graphs.build_node(plan, image.name, entry.platform)
        try:
            child = children_of(ctx.results_of(node).data).get(str(entry.platform))
        except KeyError:  # built by another job (--manifests-only)
            continue
        if child is not None and child.digest == entry.digest:
            known[entry] = child
    return known


def tags_action(manifests: Sequence[str], client: RegistryClient) -> Callable[[TaskContext], Outcome]:
    """Atomic publishing's last step: every index is in its registries; move every tag."""

    def action(ctx: TaskContext) -> Outcome:
        # An image without tags staged nothing (its manifest step published nothing).
        staged = [data["staged"] for node in manifests if "staged" in (data := ctx.results_of(node).data)]
        report = publish.move_tags(client, staged, ctx.log, cancelled=ctx.cancelled)  # type: ignore[arg-type]
        return Outcome(report.complete, report.summary(), {"tags": report})

    return action
