"""Stage 4's nodes and edges, and their checks, without networkx: what ``check`` needs.

``add_parts`` adds the nodes and edges of a project to anything with networkx's
``add_node`` and ``add_edge``: graph.py fills the networkx DiGraph that plan, run and ci
work on, and ``check_graph`` fills a small ``GraphParts``, so that ``buildspec check``
validates every dependency (image(), needs, platforms, cycles) without importing networkx,
the largest import of the program (start-up time, bench/startup.py). Only a Buildfile with
a cycle imports it, to name the cycle the way graph.py always has.

Nodes:
  ``build:<image>@<platform>``  one build of one image for one platform
  ``manifest:<image>``          assemble and push the image's multi-platform index

Edges (each carries ``span``, where the user asked for it, and ``why``):
  build:X@p  -> manifest:X      every platform of X
  build:B@p  -> build:A@p       A uses image(B): platform by platform
  manifest:B -> build:A@p       A has needs = [B]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from buildspec.errors import BuildfileError
from buildspec.evaluate import Image, Project, resolve_target
from buildspec.platform import Platform

if TYPE_CHECKING:  # only the type: check does not import networkx
    import networkx as nx

PART_OF_INDEX = "part of the index"


def build_id(image: str, platform: object) -> str:
    return f"build:{image}@{platform}"


def manifest_id(image: str) -> str:
    return f"manifest:{image}"


@dataclass(slots=True)
class GraphParts:
    """Nodes with their attributes and each node's successors, in insertion order.

    Adding a node or an edge again keeps its first place and takes the later attributes,
    as networkx does.
    """

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    successors: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_node(self, node: str, /, **attrs: Any) -> None:
        self.nodes.setdefault(node, {}).update(attrs)
        self.successors.setdefault(node, {})

    def add_edge(self, source: str, target: str, /, **attrs: Any) -> None:
        for node in (source, target):
            if node not in self.nodes:
                self.add_node(node)
        self.successors[source].setdefault(target, {}).update(attrs)

    def builds(self) -> int:
        return sum(1 for attrs in self.nodes.values() if attrs["kind"] == "build")


def has_cycle(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> bool:
    """Kahn's algorithm: a cycle leaves nodes that never lose all their predecessors.

    Linear, and cheaper than networkx's find_cycle, which is only needed to name a cycle.
    """
    waiting = dict.fromkeys(nodes, 0)
    for node in waiting:
        for target in successors(node):
            waiting[target] += 1
    ready = [node for node, count in waiting.items() if count == 0]
    done = 0
    while ready:
        done += 1
        for target in successors(ready.pop()):
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    return done != len(waiting)


def add_parts(project: Project, graph: GraphParts | nx.DiGraph[str]) -> None:
    """Add the project's nodes and edges to ``graph``; raise BuildfileError for every error but a cycle."""
    images = project.images
    # Each node's name is made once and shared by its edges (a tenth of the graph's memory
    # at 5000 images when every edge had its own copies), as is each edge's `why`.
    builds: dict[str, dict[Platform, str]] = {}
    manifests: dict[str, str] = {}
    for image in images.values():
        ids = builds[image.name] = {platform: build_id(image.name, platform) for platform in image.platforms}
        for platform, node in ids.items():
            graph.add_node(node, kind="build", image=image.name, platform=platform)
        manifest = manifests[image.name] = manifest_id(image.name)
        graph.add_node(manifest, kind="manifest", image=image.name)
        for node in ids.values():
            graph.add_edge(node, manifest, span=image.span, why=PART_OF_INDEX)
    whys: dict[str, str] = {}
    for image in images.values():
        ids = builds[image.name]
        _add_pin_edges(graph, project, image, builds, whys)
        for name, span in image.needs:
            for needed in resolve_target(project, name, project.groups, span):
                if needed == image.name:
                    through = "" if name == image.name else f" (through '{name}')"
                    raise BuildfileError(f"image '{image.name}' needs itself{through}", span,
                                         hint="needs lists the targets to finish before this one")
                why = whys.setdefault(f"needs = [{name}]", f"needs = [{name}]")
                for node in ids.values():
                    graph.add_edge(manifests[needed], node, span=span, why=why)


def _add_pin_edges(graph: GraphParts | nx.DiGraph[str], project: Project, image: Image,
                   builds: dict[str, dict[Platform, str]], whys: dict[str, str]) -> None:
    for platform in image.platforms:
        for pin in image.pins(platform):
            if pin.target == image.name:
                raise BuildfileError(f"image '{image.name}' cannot be built from itself", pin.span,
                                     hint="image(NAME) names another image, built before this one")
            dependency = project.images[pin.target]
            if platform not in dependency.platforms:
                raise BuildfileError(
                    f"'{image.name}' is built for {platform}, but its dependency '{dependency.name}' "
                    f"is not (it has {', '.join(map(str, dependency.platforms))})",
                    pin.span,
                    hint=f"add {platform} to the platforms of '{dependency.name}'",
                    notes=((f"'{dependency.name}' is defined here", dependency.span),),
                )
            why = whys.setdefault(f"image({pin.target})", f"image({pin.target})")
            graph.add_edge(builds[dependency.name][platform], builds[image.name][platform], span=pin.span, why=why)


def check_graph(project: Project) -> int:
    """Validate the project's graph as ``build_graph`` does; the number of build nodes."""
    parts = GraphParts()
    add_parts(project, parts)
    if has_cycle(parts.nodes, parts.successors.__getitem__):
        from buildspec.graph import build_graph

        build_graph(project)  # raises the error that names the cycle
    return parts.builds()
