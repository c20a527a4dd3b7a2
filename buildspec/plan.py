"""Stage 5: the plan, rendered as text, JSON, DOT or Mermaid. No side effects.

The JSON shape (``"version": 1``) is a documented interface (docs/plan-json.md):
scripts may rely on it; fields are only ever added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import networkx as nx

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.evaluate import Image, Pin, Project
from buildspec.jobs import BakeCall, bake_batches, bake_calls, build_request, local_layout

if TYPE_CHECKING:
    from buildspec.outputs import LocalOutput  # only the type: outputs.py is run's module
    from buildspec.uptodate.check import Verdict  # imports the registry client: not for --no-lookup


@dataclass(frozen=True)
class PlanOptions:
    targets: Sequence[str] = ()
    commands: bool = False
    explain: bool = False
    publish: str = "atomic"
    state_dir: Path = Path(".buildspec")
    insecure_registries: Sequence[str] = ()
    # image name -> (backend, why it was chosen)
    backends: Mapping[str, tuple[Backend, str]] = field(default_factory=dict)
    bake: bool = True  # batch merged buildx builds into `docker buildx bake` calls, as run does
    # build node -> up to date or why it builds (None: not looked up, --no-lookup)
    verdicts: Mapping[str, Verdict] | None = None
    output: LocalOutput | None = None  # --load / --output oci:DIR


def _fresh(options: PlanOptions) -> set[str]:
    return {node for node, verdict in (options.verdicts or {}).items() if verdict.fresh}


def _verdict_json(verdict: Verdict | None) -> dict[str, Any]:
    if verdict is None:
        return {}
    if verdict.fresh:
        return {"status": "up to date", "digests": dict(verdict.digests), "keys": dict(verdict.keys)}
    return {"status": "will build", "reasons": list(verdict.reasons), "keys": dict(verdict.keys)}


def _verdict_text(verdict: Verdict | None) -> str:
    from rich.markup import escape

    if verdict is None:
        return ""
    if verdict.fresh:
        return f"  [green]up to date[/green] [dim]({', '.join(verdict.digests.values())})[/dim]"
    return f"  [yellow]will build[/yellow]: {escape('; '.join(verdict.reasons))}"


def _bake_calls(project: Project, graph: nx.DiGraph[str], options: PlanOptions) -> dict[str, BakeCall]:
    if not options.bake:
        return {}
    return bake_calls(project, graph, options.backends, state_dir=options.state_dir,
                      insecure_registries=options.insecure_registries, skip=_fresh(options))


def _backend_name(options: PlanOptions, image: str) -> str:
    backend = options.backends.get(image)
    return backend[0].name if backend else "?"


def _args_for_json(image: Image) -> dict[str, str]:
    first = image.platforms[0]
    return {k: (f"image({v.target})" if isinstance(v, Pin) else v) for k, v in image.args[first]}


def _command(project: Project, options: PlanOptions, node: Mapping[str, Any]) -> list[list[str]]:
    image = project.images[node["image"]]
    backend = options.backends[image.name][0]
    platforms = graphs.platforms_of(node)
    request = build_request(project, image, platforms[0], state_dir=options.state_dir,
                            insecure_registries=options.insecure_registries,
                            merged=platforms if len(platforms) > 1 else (), local=options.output is not None)
    return backend.commands(request)


def to_json_data(project: Project, graph: nx.DiGraph[str], options: PlanOptions) -> dict[str, Any]:
    images = [project.images[name] for name in graphs.images_in(graph)]
    git = project.git
    waves = graphs.waves(graph)
    data: dict[str, Any] = {
        "version": 1,
        "buildfile": project.buildfile.file,
        "publish": options.publish,
        "context": {
            "source": git.source,
            "branch": git.branch,
            "tag": git.tag,
            "sha": git.sha,
            "default_branch": git.default_branch,
            "is_default_branch": git.is_default_branch,
            "pr": git.pr,
            "dirty": git.dirty,
            "version": project.version.text if project.version else None,
        },
        "notes": list(project.notes),
        "images": [],
        "nodes": [],
        "waves": waves,
        "batches": [],
    }
    # Without --commands only the batches' members are shown: their bake files need not be made.
    calls = _bake_calls(project, graph, options) if options.commands else {}
    batches = {batch: list(call.requests) for batch, call in calls.items()} if options.commands else (
        bake_batches(project, graph, options.backends, _fresh(options), waves) if options.bake else {})
    batch_of = {node: batch for batch, nodes in batches.items() for node in nodes}
    for batch_id, nodes in batches.items():
        batch: dict[str, Any] = {"id": batch_id, "nodes": nodes}
        if options.commands:
            batch["commands"] = [calls[batch_id].argv]
            batch["file"] = calls[batch_id].definition
        data["batches"].append(batch)
    for image in images:
        entry: dict[str, Any] = {
            "name": image.name,
            "repository": image.repository,
            "repositories": list(image.repositories),
            "platforms": [str(p) for p in image.platforms],
            "tags": list(image.tags),
            "platform_tags": {str(p): t for p, t in image.platform_tags.items()},
            "backend": _backend_name(options, image.name),
            "backend_reason": options.backends[image.name][1] if image.name in options.backends else None,
            "args": _args_for_json(image),
            "labels": dict(image.labels),
        }
        if options.output is not None:
            entry["output"] = options.output.where(image)
        if options.explain:
            entry["tag_decisions"] = [
                {"template": d.template, "condition": d.condition, "values": dict(d.values),
                 "tag": d.tag, "reason": d.reason, **({"options": d.options} if d.options else {})}
                for d in image.tag_decisions
            ]
        data["images"].append(entry)
    for node in (node for wave in data["waves"] for node in wave):
        attrs = graph.nodes[node]
        item: dict[str, Any] = {"id": node, "kind": attrs["kind"]}
        if attrs["image"] is not None:
            item["image"] = attrs["image"]
        if attrs["kind"] == "build":
            platforms = [str(p) for p in graphs.platforms_of(attrs)]
            item["platform"] = "+".join(platforms)
            item["platforms"] = platforms
            if node in batch_of:
                item["batch"] = batch_of[node]
            if options.verdicts is not None:
                item.update(_verdict_json(options.verdicts.get(node)))
        item["needs"] = graphs.needs_of(graph, node)
        if options.commands and attrs["kind"] == "build":
            item["commands"] = _command(project, options, attrs)
        data["nodes"].append(item)
    return data


def render_json(project: Project, graph: nx.DiGraph[str], options: PlanOptions, out: TextIO) -> None:
    from buildspec.jsonout import write_indented

    write_indented(to_json_data(project, graph, options), out)
    out.write("\n")


def render_dot(project: Project, graph: nx.DiGraph[str], options: PlanOptions, out: TextIO) -> None:
    out.write("digraph buildspec {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n")
    for node, attrs in graph.nodes(data=True):
        shape = {"build": "box", "manifest": "box3d", "gate": "diamond", "tags": "hexagon"}[attrs["kind"]]
        out.write(f"  {json.dumps(node)} [shape={shape}];\n")
    for source, target, attrs in graph.edges(data=True):
        out.write(f"  {json.dumps(source)} -> {json.dumps(target)} [label={json.dumps(attrs['why'])}];\n")
    out.write("}\n")


def render_mermaid(project: Project, graph: nx.DiGraph[str], options: PlanOptions, out: TextIO) -> None:
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    out.write("flowchart LR\n")
    for node, attrs in graph.nodes(data=True):
        label = node.replace('"', "'")
        # the gate and the tag step: hexagons
        shape = {"build": '["{}"]', "gate": '{{{{"{}"}}}}', "tags": '{{{{"{}"}}}}'}.get(attrs["kind"], '[["{}"]]')
        out.write(f"  {ids[node]}{shape.format(label)}\n")
    for source, target in graph.edges:
        out.write(f"  {ids[source]} --> {ids[target]}\n")


def render_text(project: Project, graph: nx.DiGraph[str], options: PlanOptions, out: TextIO) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)  # piped: long lines beat wrapped tables
    git = project.git
    # Branch, version and notes come from the user, the CI or a registry: never rich markup.
    where = escape(git.branch or (f"tag {git.tag}" if git.tag else "detached"))
    sha = f" @ {git.short_sha}" if git.short_sha else ""
    version = escape(project.version.text if project.version else "unset")
    console.print(f"file      {escape(project.buildfile.file)}")
    console.print(f"context   git {where}{sha} ({git.source}{', dirty' if git.dirty else ''}), "
                  f"default branch {escape(git.default_branch)}, version {version}"
                  + (f", pull request {escape(git.pr)}" if git.pr else ""))
    policy = ("atomic: tags are pushed only after every build of the run succeeded"
              if options.publish == "atomic" else "eager: each image's tags are pushed as soon as its builds are done")
    console.print(f"publish   {policy}")
    console.print(f"logs      {escape(str(options.state_dir / 'logs'))}")
    for note in project.notes:
        console.print(f"note      {escape(note)}")

    table = Table(title="Images", title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    for column in ("image", "repository", "platforms", "tags", "backend"):
        table.add_column(column, overflow="fold")
    reasons: dict[str, str] = {}
    for name in graphs.images_in(graph):
        image = project.images[name]
        backend, why = options.backends.get(name, (None, ""))
        backend_name = backend.name if backend else "?"
        reasons.setdefault(f"{backend_name}: {why}", "")
        tags = ", ".join(image.tags) if image.tags else "(none: built, not pushed)"
        table.add_row(name, "\n".join(image.repositories), ", ".join(map(str, image.platforms)), tags, backend_name)
    console.print(table)
    for reason in reasons:
        console.print(f"backend   {escape(reason)}")
    calls = _bake_calls(project, graph, options)
    batch_of = {node: call for call in calls.values() for node in call.requests}
    console.print(Text("Run order", style="bold"))
    for number, wave in enumerate(graphs.waves(graph), start=1):
        console.print(f"  wave {number}")
        for node in wave:
            attrs = graph.nodes[node]
            needs = graphs.needs_of(graph, node)
            after = f"  [dim]after {', '.join(needs)}[/dim]" if needs and attrs["kind"] == "build" else ""
            if attrs["kind"] == "build":
                image = project.images[attrs["image"]]
                push = f"{image.repository}:" + ", ".join(image.platform_tags[p] for p in graphs.platforms_of(attrs))
                if not image.tags:
                    push = "built, not pushed (no tags)"
                elif options.output is not None:  # nothing is pushed: the build writes an OCI layout
                    push = "OCI layout " + ", ".join(str(local_layout(options.state_dir, image.name, p))
                                                     for p in graphs.platforms_of(attrs))
                call = batch_of.get(node)
                if call is not None and node == next(iter(call.requests)):
                    console.print(f"    {call.batch}  [dim]one docker buildx bake for {len(call.requests)} "
                                  f"images; a failed bake builds each alone[/dim]")
                    if options.commands:
                        _print_argv(console, call.argv, indent=6)
                batched = f"  [dim]in {call.batch}[/dim]" if call is not None else ""
                verdict = options.verdicts.get(node) if options.verdicts is not None else None
                console.print(f"    {node}  [dim]-> {push}[/dim]{batched}{after}{_verdict_text(verdict)}")
                if options.commands:
                    for argv in _command(project, options, attrs):
                        _print_argv(console, argv, indent=6)
            elif attrs["kind"] == "gate":
                console.print(f"    {node}  [dim](gate: every build above succeeded)[/dim]")
            elif attrs["kind"] == "tags":
                console.print(f"    {node}  [dim](every index above is in its registries: move every tag; "
                              "tags already at their index are left alone)[/dim]")
            else:
                image = project.images[attrs["image"]]
                if options.output is not None:
                    console.print(f"    {node}  [dim]-> {escape(options.output.where(image))}[/dim]")
                    continue
                later = "  (by digest; the tags step moves the tags)" if graphs.TAGS_NODE in graph else ""
                if not image.tags:
                    console.print(f"    {node}  [dim]-> nothing to publish (no tags)[/dim]")
                for repository in image.repositories if image.tags else ():
                    console.print(f"    {node}  [dim]-> index {repository} : {', '.join(image.tags)}{later}[/dim]")
                    node = " " * len(node)
    if options.explain:
        _render_explain(console, project, graph)


def _render_explain(console: Any, project: Project, graph: nx.DiGraph[str]) -> None:
    from rich.text import Text

    console.print(Text("Tags explained", style="bold"))
    for name in graphs.images_in(graph):
        image = project.images[name]
        console.print(f"  {name}  ({image.repository})")
        rows: list[tuple[str, str, str, str, bool]] = [
            (
                f"+ {d.tag}" if d.tag else f"- {d.reason}",
                f'"{d.template}"' + (f" [{d.options}]" if d.options else ""),
                f"if {d.condition}" if d.condition else "",
                ", ".join(f"{k}={v}" for k, v in d.values.items()),
                d.tag is not None,
            )
            for d in image.tag_decisions
        ]
        widths = [max((len(str(row[i])) for row in rows), default=0) for i in range(3)]
        for outcome, template, condition, values, added in rows:
            line = Text("    ")
            line.append(outcome.ljust(widths[0]), style="green" if added else "yellow")
            line.append(f"  {template.ljust(widths[1])}  {condition.ljust(widths[2])}  ")
            line.append(values, style="dim")
            line.rstrip()
            console.print(line)
        console.print("    labels (index annotations too):")
        for key, value in image.labels.items():
            console.print(Text(f"      {key} = {value}"))


def _print_argv(console: Any, argv: Sequence[str], indent: int) -> None:
    from rich.text import Text

    # One line per command, never wrapped: it is meant to be copied.
    console.print(Text(" " * indent + "$ " + " ".join(_quote(a) for a in argv), style="cyan"), soft_wrap=True)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


RENDERERS: dict[str, Callable[[Project, nx.DiGraph[str], PlanOptions, TextIO], None]] = {
    "text": render_text,
    "json": render_json,
    "dot": render_dot,
    "mermaid": render_mermaid,
}
