"""``needs`` on a sibling: named build contexts per platform (contexts.py, jobs.py, graph.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildspec import graph as graphs
from buildspec.contexts import reference_names
from buildspec.jobs import build_request, digest_sources, mergeable
from buildspec.platform import Platform
from tests.unit.test_graph import load_text

pytestmark = pytest.mark.usefixtures("buildspec_env")

ARM64 = Platform("linux", "arm64")
FILE = """registry = "localhost:5000/acme"
platforms = [linux/amd64, linux/arm64]
group libs = [base, armonly]
image base { tags = ["1.0.0", "latest"] }
image armonly { platforms = [linux/arm64]  tags = ["2"] }
image app { needs = [libs]  args { X = image(base) } }
"""


def test_reference_names_are_what_a_dockerfile_may_write() -> None:
    assert reference_names("localhost:5000/a/base", "1") == ["localhost:5000/a/base:1"]
    assert reference_names("docker.io/library/busybox", "latest") == [
        "docker.io/library/busybox:latest", "busybox:latest", "docker.io/library/busybox", "busybox"]
    assert reference_names("docker.io/acme/base", "2") == ["docker.io/acme/base:2", "acme/base:2"]


def test_every_tag_of_every_needed_image_of_the_platform_is_a_context(tmp_path: Path) -> None:
    project, _ = load_text(tmp_path, FILE)
    app = project.images["app"]
    assert digest_sources(project, app, ARM64) == ["base", "armonly"]
    assert digest_sources(project, app, Platform("linux", "amd64")) == ["base"]
    pins = {"base": "localhost:5000/acme/base@sha256:" + "1" * 64,
            "armonly": "localhost:5000/acme/armonly@sha256:" + "2" * 64}
    request = build_request(project, app, ARM64, state_dir=tmp_path, pins=pins)
    assert dict(request.contexts) == {
        "localhost:5000/acme/base:1.0.0": f"docker-image://{pins['base']}",
        "localhost:5000/acme/base:latest": f"docker-image://{pins['base']}",
        "localhost:5000/acme/base": f"docker-image://{pins['base']}",
        "localhost:5000/acme/armonly:2": f"docker-image://{pins['armonly']}",
    }
    planned = build_request(project, app, ARM64, state_dir=tmp_path)
    assert planned.contexts["localhost:5000/acme/armonly:2"] == (
        "docker-image://localhost:5000/acme/armonly@<digest of armonly for linux/arm64>")
    assert not build_request(project, project.images["base"], ARM64, state_dir=tmp_path).contexts


def test_an_image_with_needs_is_built_per_platform(tmp_path: Path) -> None:
    project, _ = load_text(tmp_path, FILE.replace("args { X = image(base) }", ""))
    assert not mergeable(project.images["app"], "buildx")
    assert mergeable(project.images["base"], "buildx")


def test_a_platform_job_waits_for_the_needed_build_of_its_platform(tmp_path: Path) -> None:
    _, graph = load_text(tmp_path, FILE)
    restricted = graphs.restrict(graph, ["linux/arm64"])
    assert set(restricted.predecessors("build:app@linux/arm64")) == {
        "build:base@linux/arm64", "build:armonly@linux/arm64"}
