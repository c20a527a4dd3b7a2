"""A merged buildx build (one call for every platform of an image) leaves the registry
as separate per-platform builds would: each platform tag names that platform's image."""

from __future__ import annotations

import json
from pathlib import Path

import oci_reader
import pytest
from runner import copy_example, manifest_digest, run_cli

pytestmark = pytest.mark.integration


def test_merged_build_retags_each_platform(tmp_path: Path, unique_repo: str, env: object) -> None:
    project = copy_example("quickstart", tmp_path / "quickstart")
    args = ["--set", f"registry={unique_repo}", "--backend", "buildx"]
    plan = run_cli(["plan", "--format", "json", *args], cwd=project)
    assert plan.code == 0, plan
    merged = [n["id"] for n in json.loads(plan.stdout)["nodes"] if len(n.get("platforms", [])) > 1]
    assert merged == ["build:base@linux/amd64+linux/arm64"]

    run = run_cli(["run", "--progress", "plain", *args], cwd=project)
    assert run.code == 0, run
    repository = f"{unique_repo}/base"
    index = oci_reader.raw_manifest(f"{repository}:1.0.0")
    children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    for arch in ("amd64", "arm64"):
        ref = f"{repository}:1.0.0-linux-{arch}"
        single = oci_reader.raw_manifest(ref)
        assert "manifests" not in single, f"{ref} should be one image, not an index"
        assert oci_reader.image_config(ref)["architecture"] == arch
        assert children[arch] == manifest_digest(ref)
    uname = {"amd64": b"x86_64\n", "arm64": b"aarch64\n"}
    for arch, expected in uname.items():
        arch_file = oci_reader.read_file(f"{repository}:1.0.0", "/etc/quickstart/base-arch", platform=f"linux/{arch}")
        assert arch_file == expected
