"""Command line: ``buildspec plan | check | run | ci``. The only place that exits."""

from __future__ import annotations

import os
import sys

from buildspec import __version__

TYPE_CHECKING = False  # as typing.TYPE_CHECKING (mypy knows the name), without importing typing

# Start-up time is part of every command (bench/startup.py): this module imports only
# what `--version` needs; each command imports its own modules, and
# tests/unit/test_lazy_imports.py checks that nothing is loaded that it does not use.
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn

    import networkx as nx

    from buildspec.backends.base import Backend
    from buildspec.evaluate import Project, TagLister
    from buildspec.outputs import LocalOutput
    from buildspec.uptodate.check import Verdict


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="buildspec",
        description="Build container images for many platforms from a Buildfile.",
    )
    parser.add_argument("--version", action="version", version=f"buildspec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser, targets: bool = True) -> None:
        sub.add_argument("-f", "--file", default="Buildfile", help="the Buildfile (default: ./Buildfile)")
        sub.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="override a variable of the Buildfile (repeatable)")
        if targets:
            sub.add_argument("targets", nargs="*", metavar="TARGET",
                             help="images, matrix cells or groups (default: the 'default' group)")
            sub.add_argument("--backend", choices=("auto", "buildx", "kaniko", "buildah"),
                             help="use this backend for every image (overrides the Buildfile)")
            sub.add_argument("--publish", choices=("atomic", "eager"),
                             help="atomic (default): push tags only after every build succeeded; "
                                  "eager: push each image's tags as soon as its builds are done")
            sub.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                             help="allow plain HTTP / unverified TLS for this registry (loopback always is)")
            sub.add_argument("--kaniko-executor", metavar="PATH", help="kaniko executor binary (executor mode)")
            sub.add_argument("--kaniko-image", metavar="IMAGE", help="kaniko executor image (container mode)")
            sub.add_argument("--no-merge", action="store_true",
                             help="one buildx call per platform, even for an image whose platforms "
                                  "one multi-platform call could build")
            sub.add_argument("--no-bake", action="store_true",
                             help="one buildx call per image, even for images one 'docker buildx bake' "
                                  "call could build together")
            sub.add_argument("-B", "--always-make", action="store_true",
                             help="build every image, even those whose inputs have not changed (as make -B)")
            local = sub.add_mutually_exclusive_group()
            local.add_argument("--load", action="store_true",
                               help="load every image, all platforms, into the local Docker image store "
                                    "under its tags; push nothing (no registry needed)")
            local.add_argument("--output", metavar="oci:DIR", dest="local_output",
                               help="write one OCI image layout per image to DIR/<image>, every tag a "
                                    "reference; push nothing (no registry needed)")
            split = sub.add_mutually_exclusive_group()
            split.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]",
                               help="only the builds for this platform, no index (one CI job per architecture)")
            split.add_argument("--manifests-only", action="store_true",
                               help="only assemble and push the indexes, from the per-platform images "
                                    "already in the registry under their platform tags")

    plan = commands.add_parser("plan", help="show the graph, the order, the commands and the tags (dry run)")
    common(plan)
    plan.add_argument("--format", choices=("text", "json", "dot", "mermaid"), default="text")
    plan.add_argument("--commands", action="store_true", help="show the exact argv of every build")
    plan.add_argument("--explain", action="store_true", help="show why each tag exists or was dropped")
    plan.add_argument("--no-lookup", action="store_true",
                      help="do not ask the registries which builds are up to date (no network access)")

    check = commands.add_parser("check", help="parse, evaluate and validate the Buildfile; exit 0 or 2")
    common(check, targets=False)
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: the result and its diagnostics (file, line, column, message, hint)")

    run = commands.add_parser("run", help="build, push and publish the multi-platform indexes")
    common(run)
    run.add_argument("-j", "--jobs", type=_positive, metavar="N",
                     help="builds at once (default: twice the CPU count, at least 4)")
    run.add_argument("-k", "--keep-going", action="store_true",
                     help="go on with everything that does not depend on a failure")
    run.add_argument("--metadata-file", metavar="FILE", help="write the run's result as JSON")
    run.add_argument("--progress", choices=("auto", "live", "plain", "json"), default="auto")
    run.add_argument("--build-retries", type=_count, default=1, metavar="N",
                     help="run a build again up to N times when it fails on a transient registry error (default 1)")

    from buildspec import cli_tools
    from buildspec.ci.options import add_parser as add_ci_parser

    common(add_ci_parser(commands), targets=False)
    cli_tools.add_parsers(commands)
    return parser


def _positive(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got '{text}'")
    return int(text)


def _count(text: str) -> int:
    import argparse

    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'")
    return int(text)


def parse_sets(values: Sequence[str]) -> dict[str, str]:
    from buildspec.errors import UsageError

    overrides: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip() or not name.strip().replace("_", "a").isalnum():
            raise UsageError(f"--set expects NAME=VALUE, got '{value}'")
        overrides[name.strip()] = text
    return overrides


# What a finished `plan` or `check` made, kept by console() so that it is never freed.
_RETAINED: list[object] | None = None


def console() -> NoReturn:
    """The ``buildspec`` command (the console script, and ``python -m buildspec``).

    ``main`` as a process. A ``plan``, ``check`` or ``run`` that returned then ends as mypy
    does: its output is flushed and the process exits with ``os._exit``, without freeing its
    objects one by one only to end (6% of ``plan``'s time at 1,000 images) or running the
    interpreter's clean-up (60-100 ms after a 20-image ``run``): their threads (registry
    lookups, builds) have ended, their children were waited for and their files closed
    (context managers, before ``run`` returns), they use no ``atexit``, and their output is
    all that is left to finish. Every other command, and one that raised, exits as usual.
    """
    global _RETAINED
    _RETAINED = []
    code = main()
    if not _RETAINED:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader went away (`buildspec plan | head`): as _command says
            code = code or 1
    os._exit(code)


def _retain(*objects: object) -> None:
    """Keep ``objects`` until the process ends (console()); nothing when main is called in-process."""
    if _RETAINED is not None:
        _RETAINED.extend(objects)


def main(argv: Sequence[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else list(argv)) == ["--version"]:
        # What argparse's version action prints, without importing argparse (start-up time).
        print(f"buildspec {__version__}")
        return 0
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `ci gitlab -f FILE app`: argparse takes the positionals (the system, the targets) in
        # one run, so targets after an option come back here.
        if args.command != "ci" or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.targets += extra
    import gc

    collecting = gc.isenabled()
    if args.command in ("plan", "check"):
        # A short-lived process that allocates many small objects and frees almost nothing:
        # the cyclic GC would only rescan them (about a quarter of plan's CPU at 5000 images).
        # Restored on return, for callers that go on (tests, bench/fuzz.py call main in-process).
        gc.disable()
    try:
        return _command(args, parser)
    finally:
        if collecting:
            gc.enable()


def _command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from buildspec import cli_tools
    from buildspec.errors import BuildfileError, BuildspecError, ExitCode, format_error

    sources: dict[str, str] = {}
    try:
        if args.command in cli_tools.COMMANDS:
            return cli_tools.dispatch(args, parser, parse_sets)
        if args.command == "check" and args.format == "json":
            return cli_tools.check_json(args, parse_sets, _tag_lister(()))
        return _dispatch(args, sources)
    except BuildfileError as error:
        if error.span is not None and error.span.file not in sources:
            _remember_source(error.span.file, sources)
        print(format_error(error, sources), file=sys.stderr)
        return int(error.exit_code)
    except BuildspecError as error:
        print(f"buildspec: error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("buildspec: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`buildspec plan | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.FAILED)


def _remember_source(file: str, sources: dict[str, str]) -> None:
    import contextlib
    from pathlib import Path

    with contextlib.suppress(OSError, UnicodeDecodeError):
        sources[file] = Path(file).read_text(encoding="utf-8")


def _dispatch(args: argparse.Namespace, sources: dict[str, str]) -> int:
    from pathlib import Path

    from buildspec.errors import ExitCode, UsageError
    from buildspec.load import load, load_project

    overrides = parse_sets(args.set)
    path = Path(args.file)
    insecure = tuple(getattr(args, "insecure_registry", ()))
    if args.command == "check":  # validates the graph without making it (no networkx: start-up time)
        from buildspec.graph_parts import check_graph

        checked = load_project(path, overrides, os.environ, display=args.file, tag_lister=_tag_lister(insecure))
        sources[args.file] = checked.buildfile.source
        print(f"{args.file}: ok ({len(checked.images)} images, {check_graph(checked)} builds)")
        _retain(checked)
        return int(ExitCode.OK)
    output = _local_output(args)
    project, graph = load(path, overrides, os.environ, display=args.file, tag_lister=_tag_lister(insecure),
                          local=output is not None)
    sources[args.file] = project.buildfile.source
    if args.command == "ci":
        from buildspec.ci.command import run_ci

        return run_ci(args, project, graph, overrides)

    from buildspec import graph as graphs
    from buildspec.jobs import mergeable, state_dir

    selected = graphs.restrict(graphs.select(graph, project, args.targets), _platforms(args.platform),
                               args.manifests_only)
    if not selected:
        raise UsageError(f"no image of the selection is built for {', '.join(args.platform)}")
    publish = args.publish or project.publish
    backends = _choose_backends(project, selected, args)
    if args.command == "run" or getattr(args, "commands", False):
        _leave_pushes_to_buildkit(backends)
    from buildspec.support import check_secrets, check_support

    check_support(project, selected, backends, publish, local=output is not None)
    if args.command == "run":
        check_secrets(project, selected)
    # Each step below may copy the graph. With the GC off (plan, check), a graph that is no
    # longer used is never freed (networkx's cached views refer back to it): the plan
    # empties each one as soon as the next exists (a third of the peak memory at 5000
    # images: their node and edge data were copied, not shared).
    done_with = [graph, selected]
    if not args.no_merge and output is None:  # a local build writes one platform's layout
        selected = graphs.merge_builds(selected, {
            name for name in graphs.images_in(selected) if mergeable(project.images[name], backends[name][0].name)
        })
    if args.command == "plan":
        from buildspec.plan import RENDERERS, PlanOptions

        _clear_all_but(done_with, selected)
        execution = graphs.execution_graph(selected, publish)
        _clear_all_but([selected], execution)
        options = PlanOptions(
            targets=args.targets,
            commands=args.commands,
            explain=args.explain,
            publish=publish,
            state_dir=state_dir(project),
            insecure_registries=args.insecure_registry,
            backends=backends,
            bake=not args.no_bake and output is None,
            # local outputs always build: nothing to look up
            verdicts=None if args.no_lookup or output is not None else _verdicts(project, execution, backends, args),
            output=output,
        )
        RENDERERS[args.format](project, execution, options, sys.stdout)
        _retain(project, execution, options)
        return int(ExitCode.OK)

    from buildspec.run import RunOptions, run

    code = int(run(project, selected, RunOptions(
        jobs=args.jobs,
        keep_going=args.keep_going,
        publish=publish,
        progress=args.progress,
        metadata_file=Path(args.metadata_file) if args.metadata_file else None,
        insecure_registries=tuple(args.insecure_registry),
        state_dir=state_dir(project),
        backends=backends,
        bake=not args.no_bake and output is None,
        always_make=args.always_make or output is not None,  # local outputs always build
        build_retries=args.build_retries,
        output=output,
    )))
    _retain(project, selected)
    return code


def _clear_all_but(graphs: list[nx.DiGraph[str]], keep: nx.DiGraph[str]) -> None:
    for graph in graphs:
        if graph is not keep:
            graph.clear()


def _verdicts(
    project: Project, graph: nx.DiGraph[str], backends: dict[str, tuple[Backend, str]], args: argparse.Namespace,
) -> dict[str, Verdict]:
    """Which builds of the plan are up to date (registry lookups; see uptodate/)."""
    from buildspec.jobs import state_dir
    from buildspec.registry.client import RegistryClient
    from buildspec.uptodate.check import Checker, plan_verdicts

    with RegistryClient(insecure_registries=args.insecure_registry, retries=1, timeout=10) as client:
        checker = Checker(project, lambda name: backends[name][0].name, client, state_dir=state_dir(project),
                          insecure_registries=args.insecure_registry, always=args.always_make)
        return plan_verdicts(project, graph, checker)


def _local_output(args: argparse.Namespace) -> LocalOutput | None:
    """``--load`` / ``--output oci:DIR`` (outputs.py), or None: push to the registry."""
    load, output = getattr(args, "load", False), getattr(args, "local_output", None)
    if not load and not output:  # (`ci -o FILE` is another option)
        return None
    from buildspec.errors import UsageError

    if getattr(args, "platform", None) or getattr(args, "manifests_only", False):
        raise UsageError("--load and --output build every platform of each image in one run: "
                         "they do not combine with --platform or --manifests-only")
    from buildspec.outputs import LocalOutput, parse_output

    return LocalOutput("load") if load else parse_output(str(output))


def _platforms(values: Sequence[str]) -> list[str]:
    from buildspec.errors import UsageError
    from buildspec.platform import Platform, PlatformError

    try:
        return [str(Platform.parse(value)) for value in values]
    except PlatformError as e:
        raise UsageError(f"--platform: {e}") from None


def _tag_lister(insecure: Sequence[str]) -> TagLister:
    def list_tags(repository: str) -> list[str]:
        from buildspec.registry.client import RegistryClient

        with RegistryClient(insecure_registries=insecure, retries=1, timeout=5) as client:
            return client.list_tags(repository)

    return list_tags


def _choose_backends(
    project: Project, graph: nx.DiGraph[str], args: argparse.Namespace
) -> dict[str, tuple[Backend, str]]:
    from buildspec import graph as graphs
    from buildspec.backends.select import choose_backend

    kaniko_executor = args.kaniko_executor or _setting(project, "kaniko_executor")
    kaniko_image = args.kaniko_image or _setting(project, "kaniko_image")
    chosen: dict[str, tuple[Backend, str]] = {}
    cache: dict[str, tuple[Backend, str]] = {}
    for name in graphs.images_in(graph):
        image = project.images[name]
        wanted = args.backend or image.backend
        if wanted not in cache:
            cache[wanted] = choose_backend(wanted, kaniko_executor=kaniko_executor, kaniko_image=kaniko_image)
        backend, why = cache[wanted]
        if args.backend:
            why = f"--backend {args.backend}" + ("" if wanted != "auto" else f"; {why}")
        elif image.backend_span is not None and wanted != "auto":
            why = f"backend = {wanted} in image {image.declared_as}"
        elif wanted != "auto":
            why = f"backend = {wanted} in {args.file}"
        chosen[name] = (backend, why)
    return chosen


def _leave_pushes_to_buildkit(backends: dict[str, tuple[Backend, str]]) -> None:
    """buildx builds push through BuildKit alone where its own push is the whole push
    (backends/buildx.py): `run`, and `plan --commands` to show what `run` would run."""
    from buildspec.backends.buildx import BuildxBackend
    from buildspec.backends.select import buildkit_pushes_itself

    buildx = [backend for backend, _ in backends.values() if isinstance(backend, BuildxBackend)]
    if buildx and buildkit_pushes_itself():
        for backend in buildx:
            backend.buildkit_pushes = True


def _setting(project: Project, name: str) -> str | None:
    value = project.variables.get(name)
    return value if isinstance(value, str) and value else None


if __name__ == "__main__":
    sys.exit(main())
