"""``needs = [base]`` with a Dockerfile that names the sibling by its tag
(``FROM REGISTRY/base:VERSION``) builds on the image this run built for the same
platform, by digest, in both publish modes, on a first release (the tag does not
exist yet) and on a later one (the tag still names the previous base)."""

from __future__ import annotations

from pathlib import Path

import oci_reader
import pytest
from runner import run_cli, tags_of

pytestmark = pytest.mark.integration

BUILDFILE = """\
registry  = env("REGISTRY", "")
version   = env("VERSION", "1.0.0")
platforms = [linux/amd64, linux/arm64]

image base {
    context = "base"
    tags    = ["{version}", "latest"]
}

image app {
    context = "app"
    needs   = [base]
    tags    = ["{version}"]
}
"""


def _project(folder: Path, registry: str, from_tag: str) -> Path:
    (folder / "base").mkdir(parents=True)
    (folder / "app").mkdir()
    (folder / "Buildfile").write_text(BUILDFILE)
    # Each platform's base holds its own marker: the app must get the same platform's base.
    (folder / "base" / "Dockerfile").write_text("FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /marker\n")
    (folder / "app" / "Dockerfile").write_text(
        f"FROM {registry}/base:{from_tag}\nCOPY app.txt /app.txt\n"
        f"COPY --from={registry}/base:{from_tag} /marker /copied-marker\n")
    (folder / "app" / "app.txt").write_text("app\n")
    return folder


def _mark(project: Path, release: str) -> None:
    for arch in ("amd64", "arm64"):
        (project / "base" / f"{arch}.txt").write_text(f"{release}-{arch}\n")


@pytest.mark.parametrize("publish", ["atomic", "eager"])
@pytest.mark.parametrize("backend", ["buildx", "buildah"])
def test_needs_builds_on_this_runs_sibling(tmp_path: Path, unique_repo: str, env: object, backend: str,
                                           publish: str) -> None:
    # The app names base:latest: on the second release that tag exists and is the first base.
    project = _project(tmp_path / "p", unique_repo, "latest")
    common = ["run", "--backend", backend, "--publish", publish, "--progress", "plain"]
    for release in ("1.0.0", "1.0.1"):
        _mark(project, release)
        result = run_cli(common, cwd=project, env={**_environ(), "REGISTRY": unique_repo, "VERSION": release})
        assert result.code == 0, result
        for arch in ("amd64", "arm64"):
            ref = f"{unique_repo}/app:{release}"
            platform = f"linux/{arch}"
            assert oci_reader.read_file(ref, "/marker", platform=platform) == f"{release}-{arch}\n".encode(), result
            assert oci_reader.read_file(ref, "/copied-marker", platform=platform) == f"{release}-{arch}\n".encode()
            # Built on this run's base image, by digest: its layers come first.
            base_layers = oci_reader.layers(f"{unique_repo}/base:{release}", platform=platform)
            assert oci_reader.layers(ref, platform=platform)[: len(base_layers)] == base_layers
    assert "latest" in tags_of(f"{unique_repo}/base")


def test_needs_in_a_platform_job_builds_on_that_jobs_sibling(tmp_path: Path, unique_repo: str, env: object) -> None:
    """``run --platform P`` pushes no tags at all: the app still finds the sibling it built."""
    project = _project(tmp_path / "p", unique_repo, "1.0.0")
    _mark(project, "split")
    environ = {**_environ(), "REGISTRY": unique_repo}
    result = run_cli(["run", "--backend", "buildah", "--platform", "linux/arm64"], cwd=project, env=environ)
    assert result.code == 0, result
    assert tags_of(f"{unique_repo}/base") == ["1.0.0-linux-arm64"]
    assert oci_reader.read_file(f"{unique_repo}/app:1.0.0-linux-arm64", "/marker") == b"split-arm64\n"


def test_kaniko_refuses_needs_on_a_sibling_with_atomic_publishing(tmp_path: Path, unique_repo: str) -> None:
    project = _project(tmp_path / "p", unique_repo, "1.0.0")
    _mark(project, "k")
    environ = {**_environ(), "REGISTRY": unique_repo}
    for command in ("plan", "run"):
        result = run_cli([command, "--backend", "kaniko"], cwd=project, env=environ)
        assert result.code == 2, result
        assert "Buildfile:12:16: error: image 'app' is built with kaniko and needs 'base'" in result.stderr, result
        assert "image(base)" in result.stderr and "--publish eager" in result.stderr
        assert "Traceback" not in result.stderr
    split = run_cli(["plan", "--backend", "kaniko", "--platform", "linux/amd64"], cwd=project, env=environ)
    assert split.code == 2 and "pushes no tags at all" in split.stderr, split
    assert "--publish eager" not in split.stderr
    eager = run_cli(["plan", "--backend", "kaniko", "--publish", "eager"], cwd=project, env=environ)
    assert eager.code == 0, eager
    assert tags_of(f"{unique_repo}/base") == []  # nothing was built or pushed


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
