"""A release split over CI jobs, as kaniko users do with one runner per architecture:
``run --platform P`` in each job, then ``run --manifests-only`` assembles the indexes."""

from __future__ import annotations

from pathlib import Path

import oci_reader
import pytest
from runner import copy_example, manifest_digest, run_cli, tags_of

pytestmark = pytest.mark.integration


def test_per_platform_jobs_then_manifests_only(tmp_path: Path, unique_repo: str, env: object) -> None:
    project = copy_example("quickstart", tmp_path / "quickstart")
    common = ["--set", f"registry={unique_repo}", "--backend", "buildah", "--progress", "plain"]

    arm = run_cli(["run", "--platform", "linux/arm64", *common], cwd=project)
    assert arm.code == 0, arm
    # A platform job publishes no release tag: only the per-platform images exist.
    assert tags_of(f"{unique_repo}/app") == ["1.0.0-linux-arm64"], arm

    amd = run_cli(["run", "--platform", "linux/amd64", *common], cwd=project)
    assert amd.code == 0, amd

    final = run_cli(["run", "--manifests-only", *common], cwd=project)
    assert final.code == 0, final
    for image in ("base", "app"):
        repository = f"{unique_repo}/{image}"
        assert sorted(oci_reader.index_platforms(f"{repository}:1.0.0")) == ["linux/amd64", "linux/arm64"]
        # The index lists exactly the images the platform jobs pushed.
        children = {m["platform"]["architecture"]: m["digest"]
                    for m in oci_reader.raw_manifest(f"{repository}:1.0.0")["manifests"]}
        assert children == {
            "amd64": manifest_digest(f"{repository}:1.0.0-linux-amd64"),
            "arm64": manifest_digest(f"{repository}:1.0.0-linux-arm64"),
        }
    assert "1.0.0" in tags_of(f"{unique_repo}/app")
    # The image() pin of the arm64 job held: app's arm64 image starts with base's arm64 layers.
    base_layers = oci_reader.layers(f"{unique_repo}/base:1.0.0-linux-arm64")
    assert oci_reader.layers(f"{unique_repo}/app:1.0.0-linux-arm64")[: len(base_layers)] == base_layers


def test_manifests_only_fails_clearly_when_a_platform_job_did_not_run(
    tmp_path: Path, unique_repo: str, env: object
) -> None:
    project = copy_example("quickstart", tmp_path / "quickstart")
    common = ["--set", f"registry={unique_repo}", "--backend", "buildah", "--progress", "plain"]
    assert run_cli(["run", "--platform", "linux/amd64", *common], cwd=project).code == 0
    final = run_cli(["run", "--manifests-only", *common], cwd=project)
    assert final.code == 1, final
    assert "1.0.0-linux-arm64" in final.stderr, final
    assert tags_of(f"{unique_repo}/app") == ["1.0.0-linux-amd64"]
