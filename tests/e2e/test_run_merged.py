"""A merged buildx build (one call for every platform of an image) leaves the registry
as separate per-platform builds would: each platform tag names that platform's image."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import FIXTURES, cli_env, copy_example, copy_tree, manifest_digest, run_cli

from buildspec.backends.base import BuildRequest
from buildspec.backends.buildx import BuildxBackend, bake_target
from buildspec.platform import Platform

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo

CONTRACT = Path(__file__).resolve().parent / "contract"

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


def test_merged_builds_ready_together_are_one_bake(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """Six merged builds that need nothing: one `docker buildx bake` builds them all, and the
    registry ends up as with six buildx calls (each index, each platform tag, each label)."""
    project = copy_tree(CONTRACT / "parallel-pulls", tmp_path / "parallel-pulls")
    args = ["--set", f"registry={unique_repo}", "--backend", "buildx"]
    environment = cli_env(BUSYBOX_IMAGE=env.base_image)
    plan = run_cli(["plan", "--format", "json", *args], cwd=project, env=environment)
    assert plan.code == 0, plan
    (batch,) = json.loads(plan.stdout)["batches"]
    assert len(batch["nodes"]) == 6

    run = run_cli(["run", *args], cwd=project, env=environment)
    assert run.code == 0, run
    commands = [line.split()[1:4] for log in (project / ".buildspec" / "logs").iterdir()
                for line in log.read_text().splitlines() if line.startswith("$ ")]
    assert commands == [["docker", "buildx", "bake"]], commands
    for n in range(1, 7):
        repository = f"{unique_repo}/cell-{n}"
        index = oci_reader.raw_manifest(f"{repository}:{n}")
        children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
        assert sorted(children) == ["amd64", "arm64"], index
        for arch in children:
            ref = f"{repository}:{n}-linux-{arch}"
            assert children[arch] == manifest_digest(ref)
            config = oci_reader.image_config(ref)
            assert (config["architecture"], config["config"]["Labels"]["contract.cell"]) == (arch, str(n))


def test_a_failed_bake_builds_each_image_alone(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """fixtures/failing: fine and broken share bake-1, which fails; each is then built alone,
    and with --keep-going --publish eager fine is published while broken's log shows both tries."""
    project = copy_tree(FIXTURES / "failing", tmp_path / "failing")
    args = ["--set", f"registry={unique_repo}", "--set", f"busybox={env.base_image}", "--backend", "buildx"]
    run = run_cli(["run", "--keep-going", "--publish", "eager", *args], cwd=project)
    assert run.code == 1, run
    logs = project / ".buildspec" / "logs"
    fine = (logs / "build-fine@linux-amd64+linux-arm64.log").read_text()
    broken = (logs / "build-broken@linux-amd64+linux-arm64.log").read_text()
    both = fine + broken
    assert both.count("$ docker buildx bake ") == 1, both
    assert "bake-1 failed: building build:broken@linux/amd64+linux/arm64 alone" in broken
    assert "$ docker buildx build " in broken and "$ docker buildx build " in fine
    assert oci_reader.raw_manifest(f"{unique_repo}/fine:1.0.0")["manifests"]


def test_bake_file_gives_each_build_its_values_literally(tmp_path: Path) -> None:
    """Bake reads JSON as HCL (``${X}`` interpolates, ``%{`` is a directive): what
    ``docker buildx bake --print`` makes of buildspec's file must be the requests' values,
    as ``docker buildx build --build-arg`` would pass them."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    nasty = {"PLAIN": "1.0", "DOLLAR": "${HOME}", "ESCAPED": "$${X}", "DIRECTIVE": "%{ if true }x%{ endif }",
             "MONEY": "a$$b $x", "K${EY}": "v"}
    platforms = (Platform("linux", "amd64"), Platform("linux", "arm64"))
    requests = [
        BuildRequest(node_id=f"build:{name}@linux/amd64+linux/arm64", image=name, platform=platforms[0],
                     context=context, dockerfile=context / "Dockerfile", target=None, args=nasty,
                     labels={"org.example.note": "${USER} %{x}", "k%{": "v"},
                     push_ref=f"127.0.0.1:5000/t/{name}:1-linux-amd64", insecure=True,
                     workdir=tmp_path / name, platforms=platforms)
        for name in ("app", "my.tool")
    ]
    argv, definition = BuildxBackend().bake(requests, tmp_path)
    (tmp_path / "bake.json").write_text(json.dumps(definition))
    printed = subprocess.run([*argv[:5], "--print"], capture_output=True, text=True, check=False,
                             env={**os.environ, "HOME": "/nowhere", "USER": "nobody", "X": "x", "EY": "ey"})
    assert printed.returncode == 0, printed.stderr
    targets = json.loads(printed.stdout)["target"]
    assert sorted(targets) == sorted(bake_target(r) for r in requests)
    for request in requests:
        target = targets[bake_target(request)]
        assert target["args"] == nasty
        assert target["labels"] == {"org.example.note": "${USER} %{x}", "k%{": "v"}
        assert target["tags"] == [request.push_ref]
        assert target["platforms"] == ["linux/amd64", "linux/arm64"]
        assert (target["context"], target["dockerfile"]) == (str(context), str(context / "Dockerfile"))
