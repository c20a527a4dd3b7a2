"""Stage 4's nodes and edges as plain data, validated: what ``check`` needs, without networkx.

graph.py turns these parts into the networkx DiGraph that plan, run and ci work on. The
parts are made here so that ``buildspec check`` validates every dependency (image(),
needs, platforms, cycles) without importing networkx, the largest import of the program
(start-up time, bench/startup.py). Only a Buildfile with a cycle imports it, to name the
cycle the way graph.py always has.

Nodes:
  ``build:<image>@<platform>``  one build of one image for one platform
  ``manifest:<image>``          assemble and push the image's multi-platform index

Edges (each carries ``span``, where the user asked for it, and ``why``):
  build:X@p  -> manifest:X      every platform of X
  build:B@p  -> build:A@p       A uses image(B): platform by platform
  manifest:B -> build:A@p       A has needs = [B]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from buildspec.errors import BuildfileError
from buildspec.evaluate import Image, Project, resolve_target

PART_OF_INDEX = "part of the index"


def build_id(image: str, platform: object) -> str:
    return f"build:{image}@{platform}"


def manifest_id(image: str) -> str:
    return f"manifest:{image}"


@dataclass(slots=True)
class GraphParts:
    """Nodes with their attributes and edges with theirs, in insertion order.

    An edge added twice keeps its first place and takes the later attributes, as
    networkx's ``add_edge`` does.
    """

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add_edge(self, source: str, target: str, **attrs: Any) -> None:
        self.edges.setdefault((source, target), {}).update(attrs)

    def builds(self) -> int:
        return sum(1 for attrs in self.nodes.values() if attrs["kind"] == "build")

    def has_cycle(self) -> bool:
        """Kahn's algorithm: a cycle leaves nodes that never lose all their predecessors."""
        waiting = dict.fromkeys(self.nodes, 0)
        successors: dict[str, list[str]] = {node: [] for node in self.nodes}
        for source, target in self.edges:
            waiting[target] += 1
            successors[source].append(target)
        ready = [node for node, count in waiting.items() if count == 0]
        done = 0
        while ready:
            done += 1
            for target in successors[ready.pop()]:
                waiting[target] -= 1
                if waiting[target] == 0:
                    ready.append(target)
        return done != len(self.nodes)


def graph_parts(project: Project) -> GraphParts:
    """The graph's nodes and edges; raises BuildfileError for every error but a cycle."""
    parts = GraphParts()
    nodes = parts.nodes
    images = project.images
    for image in images.values():
        for platform in image.platforms:
            nodes[build_id(image.name, platform)] = {"kind": "build", "image": image.name, "platform": platform}
        nodes[manifest_id(image.name)] = {"kind": "manifest", "image": image.name}
        for platform in image.platforms:
            parts.add_edge(build_id(image.name, platform), manifest_id(image.name), span=image.span,
                           why=PART_OF_INDEX)
    for image in images.values():
        _add_pin_edges(parts, project, image)
        for name, span in image.needs:
            for needed in resolve_target(project, name, project.groups, span):
                if needed == image.name:
                    through = "" if name == image.name else f" (through '{name}')"
                    raise BuildfileError(f"image '{image.name}' needs itself{through}", span,
                                         hint="needs lists the targets to finish before this one")
                for platform in image.platforms:
                    parts.add_edge(manifest_id(needed), build_id(image.name, platform), span=span,
                                   why=f"needs = [{name}]")
    return parts


def _add_pin_edges(parts: GraphParts, project: Project, image: Image) -> None:
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
            parts.add_edge(build_id(dependency.name, platform), build_id(image.name, platform),
                           span=pin.span, why=f"image({pin.target})")


def check_graph(project: Project) -> int:
    """Validate the project's graph as ``build_graph`` does; the number of build nodes."""
    parts = graph_parts(project)
    if parts.has_cycle():
        from buildspec.graph import graph_of

        graph_of(parts)  # raises the error that names the cycle
    return parts.builds()
