"""Stage 4: the graph of build and manifest nodes, selection like make, waves, cycles."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from buildspec import graph as graphs
from buildspec.errors import BuildfileError, Span, UsageError
from buildspec.evaluate import Project
from buildspec.graph_parts import GraphParts, add_parts, check_graph, has_cycle
from buildspec.load import load, load_project

pytestmark = pytest.mark.usefixtures("buildspec_env")

HEAD = 'registry = "localhost:5000/acme"\nplatforms = [linux/amd64, linux/arm64]\n'

# base <- image() - app <- needs - tool;  worker alone;  arm-only lib on a single platform.
FILE = HEAD + """
image base {
}

image app {
    args { BASE = image(base) }
}

image tool {
    platforms = [linux/arm64]
    needs     = [app]
}

image worker {
}
"""


def load_text(tmp: Path, text: str) -> tuple[Project, nx.DiGraph[str]]:
    (tmp / "Buildfile").write_text(text)
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    return load(tmp / "Buildfile", environ={"SOURCE_DATE_EPOCH": "0"}, display="Buildfile")


def edges(graph: nx.DiGraph[str]) -> set[tuple[str, str, str]]:
    return {(s, t, d["why"]) for s, t, d in graph.edges(data=True)}


def test_nodes_and_their_attributes(tmp_path: Path) -> None:
    _, graph = load_text(tmp_path, FILE)
    assert sorted(graph.nodes) == sorted([
        "build:base@linux/amd64", "build:base@linux/arm64", "manifest:base",
        "build:app@linux/amd64", "build:app@linux/arm64", "manifest:app",
        "build:tool@linux/arm64", "manifest:tool",
        "build:worker@linux/amd64", "build:worker@linux/arm64", "manifest:worker",
    ])
    assert graph.nodes["build:app@linux/arm64"]["kind"] == "build"
    assert graph.nodes["build:app@linux/arm64"]["image"] == "app"
    assert str(graph.nodes["build:app@linux/arm64"]["platform"]) == "linux/arm64"
    assert graph.nodes["manifest:app"] == {"kind": "manifest", "image": "app"}


def test_edges(tmp_path: Path) -> None:
    _, graph = load_text(tmp_path, FILE)
    index = "part of the index"
    assert edges(graph) == {
        # every build of X feeds X's index
        ("build:base@linux/amd64", "manifest:base", index),
        ("build:base@linux/arm64", "manifest:base", index),
        ("build:app@linux/amd64", "manifest:app", index),
        ("build:app@linux/arm64", "manifest:app", index),
        ("build:tool@linux/arm64", "manifest:tool", index),
        ("build:worker@linux/amd64", "manifest:worker", index),
        ("build:worker@linux/arm64", "manifest:worker", index),
        # image(base): platform by platform, never across
        ("build:base@linux/amd64", "build:app@linux/amd64", "image(base)"),
        ("build:base@linux/arm64", "build:app@linux/arm64", "image(base)"),
        # needs = [app]: app's index before every build of tool
        ("manifest:app", "build:tool@linux/arm64", "needs = [app]"),
    }
    assert graph.edges["build:base@linux/arm64", "build:app@linux/arm64"]["span"] == Span("Buildfile", 8, 25, 29)
    assert graph.edges["manifest:app", "build:tool@linux/arm64"]["span"] == Span("Buildfile", 13, 18, 21)


def test_needs_a_group_or_a_matrix_means_every_member(tmp_path: Path) -> None:
    text = HEAD + """
image rt {
    matrix { v = ["1", "2"] }
}
image app {
    platforms = [linux/amd64]
    needs = [rt]
}
"""
    _, graph = load_text(tmp_path, text)
    assert set(graph.predecessors("build:app@linux/amd64")) == {"manifest:rt-1", "manifest:rt-2"}


def test_an_image_pin_to_a_matrix_cell(tmp_path: Path) -> None:
    text = HEAD + 'image rt {\n matrix { v = ["1", "2"] }\n}\nimage app {\n args { B = image(rt-2) }\n}\n'
    _, graph = load_text(tmp_path, text)
    assert set(graph.predecessors("build:app@linux/arm64")) == {"build:rt-2@linux/arm64"}


# ---------------------------------------------------------------- selection


def selected(tmp: Path, text: str, *targets: str) -> set[str]:
    project, graph = load_text(tmp, text)
    return set(graphs.select(graph, project, targets).nodes)


def test_selecting_an_image_takes_what_it_needs_like_make(tmp_path: Path) -> None:
    assert selected(tmp_path, FILE, "app") == {
        "build:base@linux/amd64", "build:base@linux/arm64", "manifest:base",
        "build:app@linux/amd64", "build:app@linux/arm64", "manifest:app",
    }


def test_a_dependency_that_is_built_is_also_published(tmp_path: Path) -> None:
    """base is only needed through image(); its index is still part of the run."""
    assert "manifest:base" in selected(tmp_path, FILE, "app")


def test_selecting_through_needs_pulls_the_whole_chain(tmp_path: Path) -> None:
    nodes = selected(tmp_path, FILE, "tool")
    assert {"manifest:tool", "manifest:app", "manifest:base"} <= nodes
    assert not any("worker" in n for n in nodes)


def test_selection_by_matrix_cell_by_matrix_and_by_group(tmp_path: Path) -> None:
    text = HEAD + 'image rt {\n matrix { v = ["1", "2"] }\n}\nimage app {\n}\ngroup both = [app, rt-2]\n'
    def manifests(*targets: str) -> set[str]:
        return {n for n in selected(tmp_path, text, *targets) if n.startswith("manifest")}

    assert manifests("rt-1") == {"manifest:rt-1"}
    assert manifests("rt") == {"manifest:rt-1", "manifest:rt-2"}
    assert manifests("both") == {"manifest:app", "manifest:rt-2"}


def test_default_is_the_default_group_else_everything(tmp_path: Path) -> None:
    everything = {n for n in selected(tmp_path, FILE) if n.startswith("manifest")}
    assert everything == {"manifest:base", "manifest:app", "manifest:tool", "manifest:worker"}
    with_group = FILE + "group default = [worker]\n"
    assert {n for n in selected(tmp_path, with_group) if n.startswith("manifest")} == {"manifest:worker"}


def test_selecting_an_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    project, graph = load_text(tmp_path, FILE)
    with pytest.raises(UsageError, match=r"no target named 'wroker'; did you mean 'worker'\?"):
        graphs.select(graph, project, ["wroker"])


# ---------------------------------------------------------------- waves and publishing


def test_waves_are_topological_generations_in_file_order(tmp_path: Path) -> None:
    project, graph = load_text(tmp_path, FILE)
    waves = graphs.waves(graphs.select(graph, project, ["tool"]))
    assert waves == [
        ["build:base@linux/amd64", "build:base@linux/arm64"],
        ["manifest:base", "build:app@linux/amd64", "build:app@linux/arm64"],
        ["manifest:app"],
        ["build:tool@linux/arm64"],
        ["manifest:tool"],
    ]


def test_atomic_publishing_puts_a_gate_between_builds_and_manifests(tmp_path: Path) -> None:
    project, graph = load_text(tmp_path, FILE)
    run = graphs.execution_graph(graphs.select(graph, project, ["tool"]), "atomic")
    assert graphs.waves(run) == [
        ["build:base@linux/amd64", "build:base@linux/arm64"],
        ["build:app@linux/amd64", "build:app@linux/arm64"],
        ["build:tool@linux/arm64"],
        ["publish"],
        ["manifest:base", "manifest:app", "manifest:tool"],
        ["tags"],  # every index by digest first, then every tag
    ]
    assert graphs.needs_of(run, "tags") == ["manifest:base", "manifest:app", "manifest:tool"]
    # needs = [app] waits for app's builds, since app's index now comes last.
    assert set(run.predecessors("build:tool@linux/arm64")) == {"build:app@linux/amd64", "build:app@linux/arm64"}
    assert graphs.execution_graph(graph, "eager") is graph


def test_needs_of_lists_direct_predecessors_in_node_order(tmp_path: Path) -> None:
    _, graph = load_text(tmp_path, FILE)
    assert graphs.needs_of(graph, "manifest:app") == ["build:app@linux/amd64", "build:app@linux/arm64"]
    assert graphs.needs_of(graph, "build:base@linux/amd64") == []


# ---------------------------------------------------------------- errors


def error(tmp: Path, text: str) -> BuildfileError:
    with pytest.raises(BuildfileError) as info:
        load_text(tmp, text)
    return info.value


def test_a_dependency_lacking_a_platform_names_both(tmp_path: Path) -> None:
    text = HEAD + "image base {\n platforms = [linux/amd64]\n}\nimage app {\n args { B = image(base) }\n}\n"
    e = error(tmp_path, text)
    assert e.message == ("'app' is built for linux/arm64, but its dependency 'base' is not (it has linux/amd64)")
    assert e.span == Span("Buildfile", 7, 19, 23)
    assert e.notes == (("'base' is defined here", Span("Buildfile", 3, 7, 11)),)


def test_a_cycle_lists_each_link_with_its_position(tmp_path: Path) -> None:
    text = HEAD + "image a {\n needs = [b]\n}\nimage b {\n args { A = image(a) }\n}\n"
    e = error(tmp_path, text)
    assert e.message.startswith("dependency cycle: ")
    path = e.message.removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1]
    assert set(path) >= {"manifest:b", "build:a@linux/amd64", "build:b@linux/amd64"} or set(path) >= {
        "manifest:b", "build:a@linux/arm64", "build:b@linux/arm64"}
    assert sorted(note.split(" through ")[1] for note, _ in e.notes) == ["image(a)", "needs = [b]"]
    assert {span for _, span in e.notes} == {Span("Buildfile", 4, 11, 12), Span("Buildfile", 7, 19, 20)}
    # The error itself points at a link the user wrote, not at an implicit one.
    assert e.span in {span for _, span in e.notes}


def test_an_image_cannot_use_or_need_itself(tmp_path: Path) -> None:
    assert error(tmp_path, HEAD + "image a {\n args { A = image(a) }\n}\n").message == (
        "image 'a' cannot be built from itself")
    assert error(tmp_path, HEAD + "image a {\n needs = [a]\n}\n").message == "image 'a' needs itself"


def test_batches_group_nodes_ready_together_with_one_key(tmp_path: Path) -> None:
    """base and worker need nothing: one batch. app waits for base: never with them."""
    _, graph = load_text(tmp_path, FILE)
    amd64 = [n for n in graph if n.endswith("@linux/amd64")]
    found = graphs.batches(graph, lambda node: "x" if node in amd64 else None)
    assert found == {"bake-1": ["build:base@linux/amd64", "build:worker@linux/amd64"]}
    # app's two builds wait for different builds (base's own platform): not ready together.
    by_image = graphs.batches(graph, lambda node: graph.nodes[node]["image"] if node.startswith("build:") else None)
    assert by_image == {"bake-1": ["build:base@linux/amd64", "build:base@linux/arm64"],
                        "bake-2": ["build:worker@linux/amd64", "build:worker@linux/arm64"]}


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(REPO.glob("examples/*/Buildfile")), ids=lambda p: p.parent.name)
def test_check_counts_the_builds_of_the_graph_without_networkx(path: Path) -> None:
    project, graph = load(path, environ={"SOURCE_DATE_EPOCH": "0"})
    parts = GraphParts()
    add_parts(project, parts)
    assert check_graph(project) == sum(1 for _, kind in graph.nodes(data="kind") if kind == "build")
    # The same nodes and edges, in the same order, as networkx holds them.
    assert list(graph.nodes(data=True)) == list(parts.nodes.items())
    assert list(graph.edges(data=True)) == [(s, t, d) for s, out in parts.successors.items() for t, d in out.items()]


@pytest.mark.parametrize("text", [
    "image a {\n needs = [b]\n}\nimage b {\n args { A = image(a) }\n}\n",
    "image a {\n args { B = image(b) }\n}\nimage b {\n args { C = image(c) }\n}\nimage c {\n needs = [a]\n}\n",
])
def test_check_finds_a_cycle_and_names_it_as_the_graph_does(tmp_path: Path, text: str) -> None:
    (tmp_path / "Buildfile").write_text(HEAD + text)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    project = load_project(tmp_path / "Buildfile", environ={"SOURCE_DATE_EPOCH": "0"}, display="Buildfile")
    parts = GraphParts()
    add_parts(project, parts)
    assert has_cycle(parts.nodes, parts.successors.__getitem__)
    with pytest.raises(BuildfileError) as from_check:
        check_graph(project)
    with pytest.raises(BuildfileError) as from_graph:
        graphs.build_graph(project)
    assert from_check.value.message.startswith("dependency cycle: ")
    assert (from_check.value.message, from_check.value.notes) == (from_graph.value.message, from_graph.value.notes)


def test_has_cycle() -> None:
    edges = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}  # shared dependencies: no cycle
    assert not has_cycle(edges, edges.__getitem__)
    assert has_cycle({**edges, "d": ["a"]}, {**edges, "d": ["a"]}.__getitem__)
    assert has_cycle({"a": ["a"]}, {"a": ["a"]}.__getitem__)
    assert not has_cycle({}, {}.__getitem__)
