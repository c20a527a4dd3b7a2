"""`buildspec ci github --only-stale` workflows run job by job on this machine
(tests/e2e/github_local.py: GitHub Actions itself cannot run offline), against the local
registry: the plan job's output skips the up-to-date builds, pins fall back to its
digests, the manifest jobs move tags and record keys; an outdated workflow stops at the
plan job and publishes nothing."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import oci_reader
import pytest
import yaml
from github_local import environment_for_jobs, run_workflow
from runner import copy_example, run_cli, tags_of

pytestmark = pytest.mark.integration

WORKFLOW = ".github/workflows/images.yml"


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                   check=True, capture_output=True, timeout=60)


def children(ref: str) -> dict[str, str]:
    index = oci_reader.raw_manifest(ref)
    return {oci_reader.platform_string(m["platform"]): m["digest"] for m in index["manifests"]}


def test_only_stale_workflow(tmp_path: Path, unique_repo: str, require_tools: Callable[..., None]) -> None:
    require_tools("git", "skopeo", "docker", "bash")
    folder = copy_example("quickstart", tmp_path)
    (folder / ".gitignore").write_text(".buildspec/\n")
    git(folder, "init", "-q", "-b", "main")
    (folder / ".github" / "workflows").mkdir(parents=True)
    jobs_env = environment_for_jobs(f"{shlex.quote(sys.executable)} -m buildspec")

    def workflow(version: str) -> dict[str, object]:
        generate = run_cli(["ci", "github", "--only-stale", "--set", f"registry={unique_repo}",
                            "--set", f"version={version}", "--backend", "buildx", "-o", WORKFLOW], cwd=folder)
        assert generate.code == 0, generate
        git(folder, "add", "-A")
        git(folder, "commit", "-q", "-m", f"release {version}")
        loaded = yaml.safe_load((folder / WORKFLOW).read_text())
        assert isinstance(loaded, dict)
        return loaded

    first = run_workflow(workflow("1.0.0"), folder, jobs_env)
    assert {name: r.result for name, r in first.items()} == {
        "buildspec-plan": "success", "build-base-linux-amd64": "success", "build-base-linux-arm64": "success",
        "build-app-linux-amd64": "success", "build-app-linux-arm64": "success", "publish-gate": "success",
        "manifest-base": "success", "manifest-app": "success"}, {n: r.log[-2000:] for n, r in first.items()}
    assert "recorded key" in first["manifest-base"].log
    base = children(f"{unique_repo}/base:1.0.0")
    assert sorted(base) == ["linux/amd64", "linux/arm64"]

    # an outdated workflow (the Buildfile changed, the workflow was not generated again)
    # stops at the plan job: nothing builds, nothing is published
    buildfile = folder / "Buildfile"
    extra = 'args {\n        BUSYBOX = "{busybox}"\n        EXTRA = "1"\n    }'
    buildfile.write_text(buildfile.read_text().replace('args { BUSYBOX = "{busybox}" }', extra))
    assert "EXTRA" in buildfile.read_text()
    refused = run_workflow(yaml.safe_load((folder / WORKFLOW).read_text()), folder, jobs_env)
    assert refused["buildspec-plan"].result == "failure"
    assert "is not the workflow this Buildfile gives now" in refused["buildspec-plan"].log
    assert {r.result for n, r in refused.items() if n != "buildspec-plan"} == {"skipped"}
    git(folder, "checkout", "--", "Buildfile")

    second = run_workflow(workflow("1.0.1"), folder, jobs_env)
    results = {name: r.result for name, r in second.items()}
    assert results["build-base-linux-amd64"] == results["build-base-linux-arm64"] == "skipped", results
    assert results["build-app-linux-arm64"] == "success", second["build-app-linux-arm64"].log[-3000:]
    assert results["manifest-base"] == results["manifest-app"] == "success", second["manifest-app"].log[-3000:]
    # app was built on base's reused image, pinned by the digest the plan job found
    assert f"{unique_repo}/base@{base['linux/arm64']}" in second["build-app-linux-arm64"].log
    base_layers = oci_reader.layers(f"{unique_repo}/base@{base['linux/arm64']}")
    assert oci_reader.layers(f"{unique_repo}/app:1.0.1-linux-arm64")[: len(base_layers)] == base_layers
    assert children(f"{unique_repo}/base:1.0.1") == base
    for image in ("base", "app"):
        assert {"1.0.1", "1.0.1-linux-amd64", "1.0.1-linux-arm64"} <= set(tags_of(f"{unique_repo}/{image}"))
    assert sorted(children(f"{unique_repo}/app:1.0.1")) == ["linux/amd64", "linux/arm64"]
