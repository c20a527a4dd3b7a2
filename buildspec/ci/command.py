"""``buildspec ci``: options in, pipeline YAML out (called by cli.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from buildspec import graph as graphs
from buildspec.backends.base import Backend
from buildspec.backends.buildah import BuildahBackend
from buildspec.backends.buildx import BuildxBackend
from buildspec.backends.kaniko import KanikoBackend
from buildspec.ci import github, gitlab, limits
from buildspec.ci.model import CiOptions, build_pipeline
from buildspec.errors import UsageError
from buildspec.evaluate import Project
from buildspec.platform import Platform, PlatformError

BACKEND_KINDS = ("buildx", "kaniko", "buildah", "buildspec")


def run_ci(args: argparse.Namespace, project: Project, graph: nx.DiGraph[str], sets: Mapping[str, str]) -> int:
    if args.system == "record":
        from buildspec.ci.stale import record

        if not args.backend or args.backend == "auto":
            raise UsageError("ci record needs --backend buildx|kaniko|buildah (the backend the builds used)")
        from buildspec.ci.stale import from_json

        plan = None
        if args.plan_from_env:
            plan = from_json(os.environ.get(args.plan_from_env, ""), graph)
        return record(project, graph, args.backend, digests=args.digest, keys=args.record, reuse=args.reuse,
                      insecure_registries=tuple(args.insecure_registry), plan=plan, images=tuple(args.targets))
    if args.digest or args.record or args.reuse or args.plan_from_env:
        raise UsageError("--digest, --record, --reuse and --plan-from-env belong to 'buildspec ci record'")
    if args.check and args.system != "stale":
        raise UsageError("--check belongs to 'buildspec ci stale'")
    if args.trigger and args.system != "gitlab":
        raise UsageError("--trigger is for gitlab (GitHub runs only committed workflows)")
    selected = graphs.select(graph, project, args.targets)
    buildfile = Path(args.file).resolve()
    options = CiOptions(
        root=_repository_root(buildfile.parent),
        buildfile=buildfile,
        backends=_backends(project, selected, args),
        publish=args.publish or project.publish,
        targets=tuple(args.targets),
        sets=dict(sets),
        insecure_registries=tuple(args.insecure_registry),
        runners=_runners([*_setting_list(project, "ci_runners"), *args.runner]),
        job_images=_job_images([*_setting_list(project, "ci_job_images"),
                                *([f"kaniko={args.kaniko_image}"] if args.kaniko_image else []),
                                *args.job_image]),
    )
    if args.system == "stale":
        return _plan_job(args, project, selected, options)
    stale = None
    if args.only_stale and not args.trigger and args.system == "gitlab":
        from buildspec.ci.stale import staleness

        stale = staleness(project, selected, {name: b.name for name, b in options.backends.items()},
                          options.publish, options.insecure_registries)
    if args.trigger:
        document = gitlab.render_trigger(options, _regenerate(args, options))
    elif args.system == "gitlab":
        pipeline = build_pipeline(project, selected, options, gitlab.WHERE, stale)
        if args.one_publish_job:
            pipeline = limits.one_publish_job(pipeline)
        document = gitlab.render(pipeline, options, max_jobs=args.max_jobs or limits.GITLAB_MAX_JOBS)
    else:
        document = _github(args, project, selected, options)
    text = _header(args, project) + dump(document)
    if args.system == "github" and len(text.encode()) > limits.GITHUB_MAX_BYTES:
        raise UsageError(f"the workflow is {len(text.encode()) // 1024} KB, GitHub refuses more than 500 KB: "
                         "generate one workflow per group of targets")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _github(args: argparse.Namespace, project: Project, selected: nx.DiGraph[str], options: CiOptions
            ) -> dict[str, Any]:
    """The workflow. With --only-stale every build has a job and a plan job, at run time,
    says which are up to date (a workflow is committed: it cannot be generated per run)."""
    plan_env = github.PLAN_ENV if args.only_stale else None
    pipeline = build_pipeline(project, selected, options, github.WHERE, plan_env=plan_env)
    if args.one_publish_job:
        pipeline = limits.one_publish_job(pipeline)
    plan = None
    if args.only_stale:
        from buildspec.ci.shell import split_var

        plan = [split_var("BUILDSPEC"), "ci", "stale", *_regenerate(args, options)]
        written = Path(args.output).resolve() if args.output else None
        if written is not None and written.is_relative_to(options.root):  # the workflow to commit
            plan += ["--check", str(written.relative_to(options.root))]
    return github.render(pipeline, options, args.name, max_jobs=args.max_jobs or limits.GITHUB_MAX_JOBS, plan=plan)


def _plan_job(args: argparse.Namespace, project: Project, selected: nx.DiGraph[str], options: CiOptions) -> int:
    """``buildspec ci stale``, the plan job of a GitHub --only-stale workflow: prints
    ``plan=<JSON>`` (for $GITHUB_OUTPUT). ``--check FILE``: first prove that FILE is the
    workflow these options generate now (else the jobs would run an outdated recipe)."""
    from buildspec.ci.stale import staleness, to_json

    if args.check:
        try:
            committed = yaml.safe_load(Path(args.check).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"--check: cannot read {args.check}: {exc}") from None
        as_written = argparse.Namespace(**{**vars(args), "system": "github", "output": args.check})
        if committed != yaml.safe_load(dump(_github(as_written, project, selected, options))):
            raise UsageError(f"{args.check} is not the workflow this Buildfile gives now (the Buildfile, a version "
                             f"or a tag changed): generate it again with `buildspec ci github ... -o {args.check}` "
                             "and commit it")
    stale = staleness(project, selected, {name: b.name for name, b in options.backends.items()},
                      options.publish, options.insecure_registries)
    print(f"plan={to_json(stale)}")
    return 0


def _regenerate(args: argparse.Namespace, options: CiOptions) -> list[str]:
    """The options of this command, for the job that generates the child pipeline."""
    # the targets first, right after "gitlab": argparse takes positionals in one run
    argv = [*args.targets, "-f", str(options.buildfile.relative_to(options.root))]
    for value in args.set:
        argv += ["--set", value]
    for flag, values in (("--runner", args.runner), ("--job-image", args.job_image),
                         ("--insecure-registry", args.insecure_registry)):
        for value in values:
            argv += [flag, value]
    for flag, value in (("--backend", args.backend), ("--publish", args.publish),
                        ("--kaniko-executor", args.kaniko_executor), ("--kaniko-image", args.kaniko_image),
                        ("--max-jobs", str(args.max_jobs) if args.max_jobs else None)):
        if value:
            argv += [flag, value]
    if args.only_stale:
        argv.append("--only-stale")
    if args.one_publish_job:
        argv.append("--one-publish-job")
    if args.system in ("github", "stale") and args.name != "buildspec":
        argv += ["--name", args.name]
    return argv


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Mapping[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1 << 20, default_flow_style=False)


def _header(args: argparse.Namespace, project: Project) -> str:
    git = project.git
    where = git.branch or (f"tag {git.tag}" if git.tag else "a detached HEAD")
    command = " ".join(["buildspec", "ci", args.system, *(["-f", args.file] if args.file != "Buildfile" else []),
                        *args.targets])
    return (f"# Generated by `{command}` from {args.file}: do not edit, generate again.\n"
            f"# Generated at {where}, commit {git.short_sha or 'unknown'}{' (dirty)' if git.dirty else ''}: "
            "the platform tags follow the version; docs/ci.md shows how to generate it in the pipeline itself.\n")


def _repository_root(folder: Path) -> Path:
    """The git work tree holding the Buildfile (jobs start at its root); in a CI job
    without git (a python image), the checkout the CI names; else the Buildfile's folder."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30, check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip()).resolve()
    except (OSError, subprocess.TimeoutExpired):
        pass
    for name in ("CI_PROJECT_DIR", "GITHUB_WORKSPACE"):
        checkout = os.environ.get(name)
        if checkout and folder.resolve().is_relative_to(Path(checkout).resolve()):
            return Path(checkout).resolve()
    return folder


def _backends(project: Project, graph: nx.DiGraph[str], args: argparse.Namespace) -> dict[str, Backend]:
    """By name, never probed: the jobs run elsewhere. ``auto`` is buildx, the backend
    with the widest support on hosted runners."""
    chosen: dict[str, Backend] = {}
    for name in graphs.images_in(graph):
        wanted = args.backend or project.images[name].backend
        if wanted in ("auto", "buildx"):
            chosen[name] = BuildxBackend()
        elif wanted == "buildah":
            chosen[name] = BuildahBackend()
        elif wanted == "kaniko":
            chosen[name] = KanikoBackend(executor=args.kaniko_executor or _setting(project, "kaniko_executor"))
        else:
            raise UsageError(f"unknown backend '{wanted}'")
    return chosen


def _setting(project: Project, name: str) -> str | None:
    value = project.variables.get(name)
    return value if isinstance(value, str) and value else None


def _setting_list(project: Project, name: str) -> list[str]:
    value = project.variables.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UsageError(f"{name} in the Buildfile must be a list of strings such as \"linux/arm64=my-arm-runner\"")


def _pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise UsageError(f"{option} expects KEY=VALUE, got '{value}'")
        pairs.append((key.strip(), text.strip()))
    return pairs


def _runners(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    runners: dict[str, tuple[str, ...]] = {}
    for key, text in _pairs(values, "--runner"):
        if key != "default":
            try:
                key = str(Platform.parse(key).normalized())
            except PlatformError as e:
                raise UsageError(f"--runner: {e}") from None
        labels = tuple(label.strip() for label in text.split(",") if label.strip())
        runners[key] = () if labels == ("none",) else labels
    return runners


def _job_images(values: Sequence[str]) -> dict[str, str | None]:
    images: dict[str, str | None] = {}
    for key, text in _pairs(values, "--job-image"):
        if key not in BACKEND_KINDS:
            raise UsageError(f"--job-image: unknown kind '{key}': expected one of {', '.join(BACKEND_KINDS)}")
        images[key] = None if text == "none" else text
    return images
