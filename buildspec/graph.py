"""Stage 4: project -> a networkx DiGraph of build and manifest nodes.

The nodes and edges, and every check of them, are made by graph_parts.py (where
``check`` validates them without networkx):

  ``build:<image>@<platform>``  one build of one image for one platform
  ``manifest:<image>``          assemble and push the image's multi-platform index

Edges (each carries ``span``, where the user asked for it, and ``why``):
  build:X@p  -> manifest:X      every platform of X
  build:B@p  -> build:A@p       A uses image(B): platform by platform
  manifest:B -> build:A@p       A has needs = [B]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import networkx as nx

from buildspec.errors import BuildfileError, Span
from buildspec.evaluate import Project, resolve_target
from buildspec.graph_parts import PART_OF_INDEX as _PART_OF_INDEX
from buildspec.graph_parts import add_parts, has_cycle
from buildspec.graph_parts import build_id as build_id  # the stages after this one use them from here
from buildspec.graph_parts import manifest_id as manifest_id
from buildspec.platform import Platform


def build_graph(project: Project) -> nx.DiGraph[str]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    add_parts(project, graph)
    if has_cycle(graph, graph.successors):
        _check_acyclic(graph)  # names the cycle
    return graph


def _check_acyclic(graph: nx.DiGraph[str]) -> None:
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    # Start at a link the user wrote (image() or needs), not at the implicit build -> manifest
    # edge, and show only those links: the implicit ones are the same for every image.
    written = [i for i, (s, t) in enumerate(cycle) if graph.edges[s, t]["why"] != _PART_OF_INDEX]
    start = written[0] if written else 0
    cycle = cycle[start:] + cycle[:start]
    links: list[tuple[str, Span | None]] = []
    for source, target in cycle:
        data = graph.edges[source, target]
        if data["why"] != _PART_OF_INDEX or not written:
            links.append((f"{target} depends on {source} through {data['why']}", data.get("span")))
    first_span = next((span for _, span in links if span is not None), None)
    path = " -> ".join([cycle[0][0], *(t for _, t in cycle)])
    raise BuildfileError(f"dependency cycle: {path}", first_span, notes=tuple(links))


def select(graph: nx.DiGraph[str], project: Project, targets: Sequence[str]) -> nx.DiGraph[str]:
    """The targets' manifest nodes and everything they depend on, like `make TARGET`."""
    names: dict[str, None] = {}
    for target in targets or project.default_targets():
        names.update(dict.fromkeys(resolve_target(project, target, project.groups, None)))
    wanted = _with_ancestors(graph, [manifest_id(name) for name in names])
    # A dependency that gets built also gets published: its index is part of the release.
    extra = {manifest_id(graph.nodes[n]["image"]) for n in wanted} - wanted
    if extra:
        wanted |= _with_ancestors(graph, extra)
    if len(wanted) == len(graph):
        return graph
    return _subgraph(graph, wanted)


def _subgraph(graph: nx.DiGraph[str], keep: set[str]) -> nx.DiGraph[str]:
    """The nodes in ``keep`` in the graph's own order (``graph.subgraph`` may follow the set's)."""
    result: nx.DiGraph[str] = nx.DiGraph()
    result.graph.update({k: v for k, v in graph.graph.items() if k != "_order"})
    result.add_nodes_from((n, graph.nodes[n]) for n in graph if n in keep)
    result.add_edges_from((u, v, d) for u, v, d in graph.edges(data=True) if u in keep and v in keep)
    return result


def _with_ancestors(graph: nx.DiGraph[str], start: Iterable[str]) -> set[str]:
    stack = list(start)
    seen = set(stack)
    pred = graph.pred
    while stack:
        for parent in pred[stack.pop()]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def waves(graph: nx.DiGraph[str]) -> list[list[str]]:
    """Topological generations, each sorted: what can run together."""
    return [sorted(generation, key=_node_order(graph)) for generation in nx.topological_generations(graph)]


def _node_order(graph: nx.DiGraph[str]) -> Callable[[str], int]:
    order: dict[str, int] | None = graph.graph.get("_order")
    if order is None or len(order) != len(graph):
        order = graph.graph["_order"] = {node: i for i, node in enumerate(graph.nodes)}
    return order.__getitem__


def needs_of(graph: nx.DiGraph[str], node: str) -> list[str]:
    return sorted(graph.predecessors(node), key=_node_order(graph))


def images_in(graph: nx.DiGraph[str]) -> list[str]:
    """The images that have a node in the graph, in graph order."""
    return list(dict.fromkeys(data["image"] for _, data in graph.nodes(data=True) if data["image"] is not None))


PUBLISH_GATE = "publish"
TAGS_NODE = "tags"


def execution_graph(graph: nx.DiGraph[str], publish: str) -> nx.DiGraph[str]:
    """The graph a run executes, with the publishing policy made explicit.

    ``eager``: the graph as it is. ``atomic``: a ``publish`` gate node that every
    build precedes and every manifest follows, and a ``tags`` node after every
    manifest: manifests push their indexes by digest only, and ``tags`` moves the
    tags once every index is in its registries, so no tag is pushed unless every
    build and every index push of the run succeeded. ``needs = [B]`` then cannot
    wait for B's index (it comes last), so it waits for all of B's builds instead;
    plan shows it.
    """
    kinds = {str(kind) for _, kind in graph.nodes(data="kind")}
    if publish == "eager" or "manifest" not in kinds:
        return graph
    if "build" not in kinds:  # --manifests-only: the indexes, then the tags
        return _add_tags_node(_subgraph(graph, set(graph)))
    result: nx.DiGraph[str] = nx.DiGraph()
    result.graph.update({k: v for k, v in graph.graph.items() if k != "_order"})
    result.add_nodes_from(graph.nodes(data=True))
    result.add_node(PUBLISH_GATE, kind="gate", image=None)
    nodes = graph.nodes

    def edges() -> Iterator[tuple[str, str, dict[str, Any]]]:  # one add_edges_from: a large plan's hot spot
        for source, target, data in graph.edges(data=True):
            if nodes[source]["kind"] == "manifest" and nodes[target]["kind"] == "build":
                atomic = {**data, "why": data["why"] + " (atomic: its builds)"}
                for build in graph.predecessors(source):
                    yield build, target, atomic  # (add_edges_from copies each edge's data)
            else:
                yield source, target, data
        gate = {"why": "atomic publishing"}
        for node, attrs in nodes(data=True):
            yield (node, PUBLISH_GATE, gate) if attrs["kind"] == "build" else (PUBLISH_GATE, node, gate)

    result.add_edges_from(edges())
    return _add_tags_node(result)


def _add_tags_node(graph: nx.DiGraph[str]) -> nx.DiGraph[str]:
    """Add (in place) the ``tags`` node that every manifest precedes; returns ``graph``."""
    manifests = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "manifest"]
    graph.add_node(TAGS_NODE, kind="tags", image=None)
    graph.add_edges_from((node, TAGS_NODE, {"why": "atomic publishing: every index first"}) for node in manifests)
    return graph


def restrict(graph: nx.DiGraph[str], platforms: Sequence[str] = (), manifests_only: bool = False) -> nx.DiGraph[str]:
    """Split a release over CI jobs, as kaniko users do with one runner per architecture.

    ``platforms``: only the builds for those platforms (and no manifests: each
    job pushes its per-platform images under their platform tags).
    ``manifests_only``: only the manifests, which then find each per-platform
    image in the registry under its platform tag.
    """
    if manifests_only:
        keep = {n for n, attrs in graph.nodes(data=True) if attrs["kind"] == "manifest"}
    elif platforms:
        keep = {n for n, attrs in graph.nodes(data=True)
                if attrs["kind"] == "build" and str(attrs["platform"]) in platforms}
        return _needs_on_builds(graph, _subgraph(graph, keep))
    else:
        return graph
    return _subgraph(graph, keep)


def _needs_on_builds(graph: nx.DiGraph[str], result: nx.DiGraph[str]) -> nx.DiGraph[str]:
    """Without manifests, ``needs = [B]`` waits for B's build of the same platform, whose
    digest the build then gets as named contexts (contexts.py)."""
    for source, target, data in graph.edges(data=True):
        if graph.nodes[source]["kind"] == "manifest" and target in result:
            for build in graph.predecessors(source):
                if build in result and graph.nodes[build]["platform"] == graph.nodes[target]["platform"]:
                    result.add_edge(build, target, **{**data, "why": data["why"] + " (its build)"})
    return result


def merge_builds(graph: nx.DiGraph[str], images: set[str]) -> nx.DiGraph[str]:
    """One ``build:X@p1+p2`` node instead of X's per-platform builds, for each image in
    ``images`` whose every platform is in the graph (see jobs.mergeable)."""
    platforms_of: dict[str, list[str]] = {}
    for node, attrs in graph.nodes(data=True):
        if attrs["kind"] == "build" and attrs["image"] in images:
            platforms_of.setdefault(attrs["image"], []).append(node)
    if not platforms_of:
        return graph
    merged_id: dict[str, str] = {}
    result: nx.DiGraph[str] = nx.DiGraph()
    result.graph.update({k: v for k, v in graph.graph.items() if k != "_order"})
    for node, attrs in graph.nodes(data=True):
        image = attrs["image"]
        if node not in platforms_of.get(image, ()):
            result.add_node(node, **attrs)
        elif image not in merged_id:
            platforms = tuple(graph.nodes[n]["platform"] for n in platforms_of[image])
            merged_id[image] = build_id(image, "+".join(map(str, platforms)))
            result.add_node(merged_id[image], kind="build", image=image, platform=None, platforms=platforms)
    nodes = graph.nodes
    result.add_edges_from(
        (merged_id.get(nodes[source]["image"], source) if source not in result else source,
         merged_id.get(nodes[target]["image"], target) if target not in result else target,
         data)
        for source, target, data in graph.edges(data=True)
    )
    result.graph["merged"] = {**graph.graph.get("merged", {}), **merged_id}
    return result


def batches(graph: nx.DiGraph[str], key: Callable[[str], Hashable | None],
            known_waves: Sequence[Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Groups of two or more nodes that become ready together (the same predecessors) and
    share a ``key`` (None: never batched), in the plan's order: ``{"bake-1": [...], ...}``.
    ``known_waves``: ``waves(graph)``, when the caller has it already.

    The nodes stay in the graph as they are: a batch only says that one call builds them.
    """
    groups: dict[tuple[Hashable, frozenset[str]], list[str]] = {}
    for wave in waves(graph) if known_waves is None else known_waves:
        for node in wave:
            group = key(node)
            if group is not None:
                groups.setdefault((group, frozenset(graph.predecessors(node))), []).append(node)
    found = [nodes for nodes in groups.values() if len(nodes) > 1]
    return {f"bake-{number}": nodes for number, nodes in enumerate(found, start=1)}


def platforms_of(attrs: Mapping[str, Any]) -> tuple[Platform, ...]:
    """The platforms a build node makes: one, or several for a merged build."""
    merged: tuple[Platform, ...] | None = attrs.get("platforms")
    return merged if merged else (attrs["platform"],)


def build_node(graph: nx.DiGraph[str], image: str, platform: object) -> str:
    """The node that builds ``image`` for ``platform``: its own, or its image's merged build."""
    single = build_id(image, platform)
    if single in graph:
        return single
    merged: dict[str, str] = graph.graph.get("merged", {})
    return merged.get(image, single)
