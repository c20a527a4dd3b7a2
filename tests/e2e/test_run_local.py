"""``run --load`` and ``run --output oci:DIR``: the laptop loop without a registry.

image() pins and needs work between the local images; nothing is pushed, and the
target registry need not answer."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from runner import run_cli

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

BUILDFILE = """\
registry  = env("REGISTRY", "")
busybox   = env("BUSYBOX", "")
platforms = [linux/amd64, linux/arm64]

image base {
    context = "base"
    tags    = ["1.0.0", "latest"]
    args    { BUSYBOX = "{busybox}" }
}

image app {
    context = "app"
    tags    = ["1.0.0"]
    args    { BASE = image(base) }
}

image tool {
    context = "tool"
    tags    = ["1.0.0"]
    needs   = [base]
}
"""


def _project(folder: Path, base_ref: str) -> Path:
    for sub in ("base", "app", "tool"):
        (folder / sub).mkdir(parents=True)
    (folder / "Buildfile").write_text(BUILDFILE)
    (folder / "base" / "Dockerfile").write_text("ARG BUSYBOX\nFROM ${BUSYBOX}\nARG TARGETARCH\n"
                                                "COPY ${TARGETARCH}.txt /marker\n")
    for arch in ("amd64", "arm64"):
        (folder / "base" / f"{arch}.txt").write_text(f"base-{arch}\n")
    (folder / "app" / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY app.txt /app.txt\n")
    (folder / "app" / "app.txt").write_text("app\n")
    (folder / "tool" / "Dockerfile").write_text(f"FROM {base_ref}\nCOPY tool.txt /tool.txt\n")
    (folder / "tool" / "tool.txt").write_text("tool\n")
    return folder


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_load_puts_every_platform_in_the_docker_store_with_the_registry_unreachable(
    tmp_path: Path, env: Env,
) -> None:
    registry = f"127.0.0.1:9/load-{uuid.uuid4().hex[:12]}"  # nothing listens on port 9
    project = _project(tmp_path / "p", f"{registry}/base:1.0.0")
    environ = {**os.environ, "REGISTRY": registry, "BUSYBOX": env.base_image}
    refs = [f"{registry}/{name}:1.0.0" for name in ("base", "app", "tool")] + [f"{registry}/base:latest"]
    try:
        plan = run_cli(["plan", "--load", "--backend", "buildx"], cwd=project, env=environ)
        assert plan.code == 0, plan
        assert f"manifest:app  -> docker image store {registry}/app:1.0.0" in plan.stdout
        result = run_cli(["run", "--load", "--backend", "buildx", "--progress", "plain"], cwd=project, env=environ)
        assert result.code == 0, result
        printed = dict(line.split("@") for line in result.stdout.split())
        assert sorted(printed) == sorted(refs)
        for ref in refs:  # the store holds the very index buildspec assembled
            assert _docker("image", "inspect", "--format", "{{.Id}}", ref).strip() == printed[ref]
        for arch in ("amd64", "arm64"):
            for name, extra in (("app", "/app.txt"), ("tool", "/tool.txt")):
                out = _docker("run", "--rm", "--platform", f"linux/{arch}", f"{registry}/{name}:1.0.0",
                              "cat", "/marker", extra)
                assert out == f"base-{arch}\n{name}\n"
    finally:
        subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)


def _layout_json(layout: Path, digest: str) -> dict[str, object]:
    result: dict[str, object] = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())
    return result


def test_output_writes_one_oci_layout_per_image_with_buildah(tmp_path: Path, env: Env) -> None:
    """No registry in the Buildfile: the repository is the image name, as with docker build -t."""
    project = _project(tmp_path / "p", "base:1.0.0")
    out = tmp_path / "out"
    # FROM scratch: buildah would need --tls-verify=false for a base in the loopback
    # registry, which it gets only when the image's own repository is there.
    environ = {**os.environ, "BUSYBOX": "scratch"}
    environ.pop("REGISTRY", None)
    result = run_cli(["run", "--output", f"oci:{out}", "--backend", "buildah", "--progress", "plain"],
                     cwd=project, env=environ)
    assert result.code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["app", "base", "tool"]
    for image, tag in (("base", "1.0.0"), ("base", "latest"), ("app", "1.0.0"), ("tool", "1.0.0")):
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{out / image}:{tag}"], capture_output=True,
                             check=True).stdout
        index = json.loads(raw)
        platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"])
        assert platforms == ["linux/amd64", "linux/arm64"]
    # app and tool are built on this run's base, platform by platform: base's layers come first.
    def layers(image: str, arch: str) -> list[str]:
        layout = out / image
        entry = next(d for d in json.loads((layout / "index.json").read_text())["manifests"]
                     if d["annotations"]["org.opencontainers.image.ref.name"] == "1.0.0")
        index: Any = _layout_json(layout, entry["digest"])
        child = next(m for m in index["manifests"] if m["platform"]["architecture"] == arch)
        manifest: Any = _layout_json(layout, child["digest"])
        return [layer["digest"] for layer in manifest["layers"]]

    for arch in ("amd64", "arm64"):
        base = layers("base", arch)
        assert layers("app", arch)[: len(base)] == base
        assert layers("tool", arch)[: len(base)] == base
    assert layers("base", "amd64") != layers("base", "arm64")


def test_kaniko_cannot_write_local_outputs(tmp_path: Path, env: Env) -> None:
    project = _project(tmp_path / "p", "base:1.0.0")
    environ = {**os.environ, "BUSYBOX": "scratch"}
    result = run_cli(["plan", "--load", "--backend", "kaniko"], cwd=project, env=environ)
    assert result.code == 2, result
    assert "image 'base' is built with kaniko, which buildspec cannot run with --load or --output" in result.stderr
    both = run_cli(["run", "--load", "--platform", "linux/amd64"], cwd=project, env=environ)
    assert both.code == 2 and "do not combine with --platform" in both.stderr, both


def test_the_quickstart_builds_with_load(tmp_path: Path, env: Env) -> None:
    """`buildspec run --load` on examples/quickstart: only Docker is needed (the busybox
    base still comes from wherever BUSYBOX_IMAGE says)."""
    from runner import copy_example

    project = copy_example("quickstart", tmp_path)
    registry = f"127.0.0.1:9/quickstart-{uuid.uuid4().hex[:12]}"
    environ = {**os.environ, "REGISTRY": registry, "BUSYBOX_IMAGE": env.base_image}
    result = run_cli(["run", "--load", "--progress", "plain"], cwd=project, env=environ)
    refs = [line.split("@")[0] for line in result.stdout.split()]
    try:
        assert result.code == 0, result
        assert f"{registry}/app:1.0.0" in refs and f"{registry}/base:1.0.0" in refs
        arch = _docker("run", "--rm", "--platform", "linux/arm64", f"{registry}/app:1.0.0",
                       "cat", "/etc/quickstart/app-arch")
        assert arch == "aarch64\n"
    finally:
        subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)
