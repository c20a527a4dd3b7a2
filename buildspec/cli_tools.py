"""The commands around the language: ``fmt``, ``doctor``, ``import``, ``completion``.

Kept apart from cli.py so that cli.py stays about building; like cli.py, this
module imports nothing heavy at load time (``buildspec --version`` stays fast):
each command imports its module when it runs. Errors are raised, and cli.py,
the only place that exits, turns them into messages and exit statuses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from buildspec.errors import BuildfileError, BuildspecError, ExitCode, UsageError

COMMANDS = ("fmt", "doctor", "import", "completion", "__targets")


def add_parsers(commands: Any) -> None:
    """Add the tool commands to cli.py's subparsers."""
    fmt = commands.add_parser("fmt", help="rewrite Buildfiles in the canonical layout (comments kept)")
    fmt.add_argument("files", nargs="*", metavar="FILE", default=[],
                     help="Buildfiles to format in place; a folder means every Buildfile below it "
                          "(default: ./Buildfile; '-' reads stdin, writes stdout)")
    fmt.add_argument("--check", action="store_true",
                     help="change nothing; exit 1 and name the files whose layout is not canonical")
    fmt.add_argument("--diff", action="store_true", help="change nothing; print a unified diff of the changes")

    doctor = commands.add_parser("doctor", help="check that this machine can run what the Buildfile needs")
    doctor.add_argument("-f", "--file", default="Buildfile", help="the Buildfile (default: ./Buildfile)")
    doctor.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a variable of the Buildfile (repeatable)")
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    doctor.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                        help="allow plain HTTP / unverified TLS for this registry (loopback always is)")
    doctor.add_argument("--backend", choices=("auto", "buildx", "kaniko", "buildah"),
                        help="check for this backend instead of the Buildfile's")

    importer = commands.add_parser("import", help="turn a docker buildx bake file into a Buildfile")
    importer.add_argument("bakefiles", nargs="*", metavar="FILE",
                          help="bake files (HCL, JSON or Compose; default: bake's own defaults)")
    importer.add_argument("-o", "--output", metavar="OUT", help="write the Buildfile here (default: stdout)")
    importer.add_argument("--target", action="append", default=[], metavar="TARGET",
                          help="only this bake target or group (repeatable; default: bake's 'default' group)")

    completion = commands.add_parser("completion", help="print a shell completion script (bash, zsh, fish)")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))

    # Used by the completion scripts: the targets of a Buildfile, one per line.
    targets = commands.add_parser("__targets")
    targets.add_argument("-f", "--file", default="Buildfile")


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser, parse_sets: Any) -> int:
    if args.command == "fmt":
        return _fmt(args)
    if args.command == "doctor":
        return _doctor(args, parse_sets)
    if args.command == "import":
        return _import(args)
    if args.command == "completion":
        from buildspec.completion import script

        sys.stdout.write(script(args.shell, parser))
        return int(ExitCode.OK)
    return _targets(args)


def _fmt(args: argparse.Namespace) -> int:
    from buildspec.fmt import run_fmt

    files = args.files or ["Buildfile"]
    stdin = sys.stdin.read() if "-" in files else None
    result = run_fmt(files, check=args.check, diff=args.diff, stdin=stdin)
    sys.stdout.write(result.output)
    if args.check:
        for name in result.changed:
            print(f"{name}: not formatted (run: buildspec fmt {name})", file=sys.stderr)
        return int(ExitCode.FAILED if result.changed else ExitCode.OK)
    if not args.diff:
        for name in result.changed:
            if name != "-":
                print(f"formatted {name}", file=sys.stderr)
    return int(ExitCode.OK)


def _doctor(args: argparse.Namespace, parse_sets: Any) -> int:
    from buildspec.doctor import DoctorOptions, doctor, render_json, render_text

    report = doctor(DoctorOptions(
        file=args.file,
        overrides=parse_sets(args.set),
        insecure_registries=tuple(args.insecure_registry),
        backend=args.backend,
    ))
    if args.format == "json":
        import json

        json.dump(render_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return int(ExitCode.OK if report.ok else ExitCode.FAILED)


def _import(args: argparse.Namespace) -> int:
    from buildspec.importer import import_bake

    # Contexts are written relative to the folder of the Buildfile being made.
    output_dir = Path(args.output).resolve().parent if args.output else None
    text = import_bake(args.bakefiles, args.target, output_dir=output_dir)
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return int(ExitCode.OK)


def _targets(args: argparse.Namespace) -> int:
    """Image, matrix cell and group names, for shell completion: quiet on any error."""
    import os

    try:
        from buildspec.load import load_project

        project = load_project(Path(args.file), {}, os.environ, display=args.file)
    except (BuildspecError, OSError):
        return int(ExitCode.FAILED)
    names = [*project.declared, *(n for n in project.images if n not in project.declared), *project.groups]
    sys.stdout.write("".join(f"{name}\n" for name in dict.fromkeys(names)))
    return int(ExitCode.OK)


# ---------------------------------------------------------------- check --format json


def check_json(args: argparse.Namespace, parse_sets: Any, tag_lister: Any) -> int:
    """``check --format json``: the result as one JSON object an editor or hook can read.

    ``{"file": F, "ok": bool, "images": N, "builds": N, "diagnostics": [...]}``; each
    diagnostic has file, line, column, end_line, end_column (1-based, end exclusive;
    0 when the mistake has no position, such as a missing file), severity, message,
    hint and notes (each with its own position). Exit 0 or 2, as ``check``.
    """
    import os

    result: dict[str, Any] = {"file": args.file, "ok": True, "images": 0, "builds": 0, "diagnostics": []}
    try:
        from buildspec.graph_parts import check_graph
        from buildspec.load import load_project

        project = load_project(Path(args.file), parse_sets(args.set), os.environ, display=args.file,
                               tag_lister=tag_lister)
        result["images"] = len(project.images)
        result["builds"] = check_graph(project)
    except BuildfileError as error:
        result["ok"] = False
        result["diagnostics"].append(diagnostic(error, args.file))
    except UsageError as error:
        result["ok"] = False
        result["diagnostics"].append(_located(None, args.file, str(error)) | {"hint": None, "notes": []})
    import json

    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return int(ExitCode.OK if result["ok"] else ExitCode.INVALID)


def diagnostic(error: BuildfileError, file: str) -> dict[str, Any]:
    entry = _located(error.span, file, error.message)
    entry["hint"] = error.hint
    entry["notes"] = [_located(span, file, message, "note") for message, span in error.notes]
    return entry


def _located(span: Any, file: str, message: str, severity: str = "error") -> dict[str, Any]:
    line = max(span.line, 0) if span is not None else 0
    column = max(span.column, 0) if span is not None and line else 0
    end = span.end_column if span is not None and span.end_column and line else (column + 1 if line else 0)
    return {
        "file": span.file if span is not None else file,
        "line": line,
        "column": column,
        "end_line": line,
        "end_column": end,
        "severity": severity,
        "message": message,
    }
