"""`buildspec ci gitlab` pipelines executed for real with gitlab-ci-local, against the
local registry, for each backend (kaniko through the strict stand-in tests/kaniko/executor).

The jobs run in the shell of this machine (``--job-image ...=none``, no runner tags),
buildspec's manifest jobs through the pipeline variable ``BUILDSPEC``. What the
pipeline publishes is read back with skopeo and compared with what ``buildspec run``
publishes for the same Buildfile at the same commit: the same tags, the same index
platforms, the same image labels, and every ``image()`` pin by digest.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import oci_reader
import pytest
import yaml
from runner import REPO_ROOT, cli_env, copy_example, run_cli, tags_of

pytestmark = pytest.mark.integration

KANIKO = REPO_ROOT / "tests" / "kaniko" / "executor"
GITIGNORE = ".buildspec/\n.buildspec-ci/\n.gitlab-ci-local/\n.gitlab-ci.yml\n"
TIMEOUT = 900


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                   check=True, capture_output=True, timeout=60)


def repository(folder: Path) -> Path:
    """The example as a git repository with one commit and an origin (gitlab-ci-local needs both)."""
    (folder / ".gitignore").write_text(GITIGNORE)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "example")
    git(folder, "remote", "add", "origin", "https://gitlab.example.com/acme/example.git")
    return folder


def gitlab_ci_local(folder: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    buildspec = f"{shlex.quote(sys.executable)} -m buildspec"
    environ = cli_env()
    # the jobs must see the CI variables gitlab-ci-local gives them, not this process's
    for key in [k for k in environ if k.startswith(("GITLAB_", "CI_", "GITHUB_"))]:
        environ.pop(key)
    environ.pop("CI", None)
    start = time.monotonic()
    done = subprocess.run(["gitlab-ci-local", "--variable", f"BUILDSPEC={buildspec}"], cwd=folder, env=environ,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    return done, time.monotonic() - start


def published(prefix: str, repositories: list[str]) -> dict[str, object]:
    """What the registry holds under ``prefix``: per repository its tags and, per release
    tag, the platforms of its index and the labels of each platform's image."""
    result: dict[str, object] = {}
    for name in repositories:
        repo = f"{prefix}/{name}"
        tags = sorted(tags_of(repo))
        release = [t for t in tags if "-linux-" not in t]
        assert release, f"{repo} has no release tag: {tags}"
        indexes: dict[str, object] = {}
        for tag in release:
            ref = f"{repo}:{tag}"
            assert oci_reader.is_index(oci_reader.raw_manifest(ref)), ref
            platforms = sorted(oci_reader.index_platforms(ref))
            labels = {p: oci_reader.image_config(oci_reader.platform_ref(ref, p))["config"].get("Labels")
                      for p in platforms}
            indexes[tag] = {"platforms": platforms, "labels": labels}
        result[name] = {"tags": tags, "indexes": indexes}
    return result


def assert_pinned(image: str, dependency: str, platforms: list[str]) -> None:
    """``image`` (REPO:TAG) was built on ``dependency``'s image of the same platform
    (image() by digest): its layers start with the dependency's."""
    for platform in platforms:
        slug = platform.replace("/", "-")
        base = oci_reader.layers(f"{dependency}-{slug}")
        assert oci_reader.layers(f"{image}-{slug}")[: len(base)] == base, (image, platform)


BACKENDS: dict[str, list[str]] = {
    "buildx": ["--backend", "buildx", "--job-image", "buildx=none"],
    "buildah": ["--backend", "buildah", "--job-image", "buildah=none"],
    "kaniko": ["--backend", "kaniko", "--job-image", "kaniko=none", "--kaniko-executor", str(KANIKO)],
}
TOOLS = {"buildx": ("docker",), "buildah": ("buildah",), "kaniko": ("buildah", "skopeo")}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_quickstart_pipeline_publishes_what_run_publishes(
    tmp_path: Path, unique_repo: str, backend: str, require_tools: Callable[..., None]
) -> None:
    require_tools("gitlab-ci-local", "rsync", "git", "skopeo", *TOOLS[backend])
    folder = repository(copy_example("quickstart", tmp_path))
    ci_prefix, run_prefix = f"{unique_repo}-ci", f"{unique_repo}-run"
    generate = run_cli(["ci", "gitlab", "--set", f"registry={ci_prefix}", *BACKENDS[backend],
                        "--job-image", "buildspec=none", "--runner", "linux/amd64=none",
                        "--runner", "linux/arm64=none", "--runner", "default=none", "-o", ".gitlab-ci.yml"],
                       cwd=folder)
    assert generate.code == 0, generate
    done, ci_seconds = gitlab_ci_local(folder)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    for job in ("build-base-linux-amd64", "build-base-linux-arm64", "build-app-linux-amd64",
                "build-app-linux-arm64", "manifest-base", "manifest-app"):
        assert f"PASS  {job}" in done.stdout, done.stdout[-3000:]

    run_args = ["run", "--set", f"registry={run_prefix}", "--backend", backend, "--progress", "plain"]
    if backend == "kaniko":
        run_args += ["--kaniko-executor", str(KANIKO)]
    run = run_cli(run_args, cwd=folder, timeout=TIMEOUT)
    assert run.code == 0, run
    print(f"quickstart, {backend}: gitlab-ci-local {ci_seconds:.1f}s, buildspec run {run.duration:.1f}s")

    from_ci, from_run = published(ci_prefix, ["base", "app"]), published(run_prefix, ["base", "app"])
    assert from_ci == from_run
    assert "1.0.0" in tags_of(f"{ci_prefix}/app")
    assert sorted(oci_reader.index_platforms(f"{ci_prefix}/app:1.0.0")) == ["linux/amd64", "linux/arm64"]
    assert_pinned(f"{ci_prefix}/app:1.0.0", f"{ci_prefix}/base:1.0.0", ["linux/amd64", "linux/arm64"])
    # the arm64 app really is arm64 (built, or emulated, for its platform)
    arch = oci_reader.read_file(f"{ci_prefix}/app:1.0.0", "/etc/quickstart/app-arch", platform="linux/arm64")
    assert arch.decode().strip() == "aarch64"


def test_matrix_pipeline_publishes_what_run_publishes(
    tmp_path: Path, unique_repo: str, require_tools: Callable[..., None]
) -> None:
    require_tools("gitlab-ci-local", "rsync", "git", "skopeo", "docker")
    folder = repository(copy_example("matrix", tmp_path))
    ci_prefix, run_prefix = f"{unique_repo}-ci", f"{unique_repo}-run"
    shell = ["--job-image", "buildspec=none", "--runner", "linux/amd64=none", "--runner", "linux/arm64=none",
             "--runner", "default=none"]
    generate = run_cli(["ci", "gitlab", "--set", f"registry={ci_prefix}", *BACKENDS["buildx"], *shell,
                        "-o", ".gitlab-ci.yml"], cwd=folder)
    assert generate.code == 0, generate
    done, ci_seconds = gitlab_ci_local(folder)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    run = run_cli(["run", "--set", f"registry={run_prefix}", "--backend", "buildx", "--progress", "plain"],
                  cwd=folder, timeout=TIMEOUT)
    assert run.code == 0, run
    print(f"matrix, buildx: gitlab-ci-local {ci_seconds:.1f}s, buildspec run {run.duration:.1f}s")
    images = ["runtime", "tool"]
    from_ci, from_run = published(ci_prefix, images), published(run_prefix, images)
    assert from_ci == from_run
    assert oci_reader.index_platforms(f"{ci_prefix}/tool:latest") == ["linux/arm64"]
    assert sorted(t for t in tags_of(f"{ci_prefix}/runtime") if "-linux-" not in t) == [
        "full-l1", "full-l2", "slim-l1", "slim-l2"]
    assert_pinned(f"{ci_prefix}/tool:latest", f"{ci_prefix}/runtime:slim-l1", ["linux/arm64"])


def test_a_failed_build_job_publishes_nothing(
    tmp_path: Path, unique_repo: str, require_tools: Callable[..., None]
) -> None:
    """Atomic publishing across jobs: one failing build job and no manifest job runs."""
    require_tools("gitlab-ci-local", "rsync", "git", "skopeo", "buildah")
    folder = copy_example("quickstart", tmp_path)
    dockerfile = folder / "app" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'RUN [ "$(uname -m)" != aarch64 ]\n')  # fails on arm64 only
    repository(folder)
    generate = run_cli(["ci", "gitlab", "--set", f"registry={unique_repo}", *BACKENDS["buildah"],
                        "--job-image", "buildspec=none", "--runner", "linux/amd64=none",
                        "--runner", "linux/arm64=none", "--runner", "default=none", "-o", ".gitlab-ci.yml"],
                       cwd=folder)
    assert generate.code == 0, generate
    done, _ = gitlab_ci_local(folder)
    assert done.returncode != 0
    assert "FAIL  build-app-linux-arm64" in done.stdout, done.stdout[-3000:]
    assert "PASS  manifest-base" not in done.stdout and "PASS  manifest-app" not in done.stdout
    for image in ("base", "app"):
        assert not [t for t in tags_of(f"{unique_repo}/{image}") if "-linux-" not in t], image




def test_only_stale_pipelines_rebuild_only_what_changed(
    tmp_path: Path, unique_repo: str, require_tools: Callable[..., None]
) -> None:
    """Three pipelines generated with --only-stale (as the generate job of `ci gitlab
    --trigger` does): the first builds everything and records the keys it can; after a
    version bump base is up to date (its images are reused, its tags move) and only app
    builds, on base's digest; after another bump nothing builds and every tag still moves."""
    require_tools("gitlab-ci-local", "rsync", "git", "skopeo", "docker")
    folder = repository(copy_example("quickstart", tmp_path))
    shell = ["--job-image", "buildspec=none", "--runner", "linux/amd64=none", "--runner", "linux/arm64=none",
             "--runner", "default=none"]
    platforms = ["linux/amd64", "linux/arm64"]

    def pipeline(version: str) -> tuple[dict[str, object], str]:
        generate = run_cli(["ci", "gitlab", "--only-stale", "--set", f"registry={unique_repo}",
                            "--set", f"version={version}", *BACKENDS["buildx"], *shell, "-o", ".gitlab-ci.yml"],
                           cwd=folder)
        assert generate.code == 0, generate
        text = (folder / ".gitlab-ci.yml").read_text()
        done, _ = gitlab_ci_local(folder)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
        return yaml.safe_load(text), done.stdout

    def children(ref: str) -> dict[str, str]:
        index = oci_reader.raw_manifest(ref)
        return {oci_reader.platform_string(m["platform"]): m["digest"] for m in index["manifests"]}

    first, log = pipeline("1.0.0")
    assert {"build-base-linux-amd64", "build-base-linux-arm64", "build-app-linux-amd64",
            "build-app-linux-arm64"} <= set(first)
    assert any(t.startswith("buildspec-key-") for t in tags_of(f"{unique_repo}/base", bookkeeping=True)), log

    second, log = pipeline("1.0.1")
    assert not [job for job in second if job.startswith("build-base-")], second
    assert {"build-app-linux-amd64", "build-app-linux-arm64"} <= set(second)
    # base's digest is written into app's jobs: pinned by digest, no job to wait for
    base = children(f"{unique_repo}/base:1.0.0")
    assert children(f"{unique_repo}/base:1.0.1") == base  # reused, and its release tags moved
    assert any(f"BASE_IMAGE={unique_repo}/base@{base['linux/arm64']}" in line
               for line in second["build-app-linux-arm64"]["script"])
    assert "recorded key" in log
    assert_pinned(f"{unique_repo}/app:1.0.1", f"{unique_repo}/base:1.0.1", platforms)

    third, _ = pipeline("1.0.2")
    assert not [job for job in third if job.startswith("build-")], third
    assert children(f"{unique_repo}/app:1.0.2") == children(f"{unique_repo}/app:1.0.1")
    assert children(f"{unique_repo}/base:1.0.2") == base
    for image in ("base", "app"):
        tags = tags_of(f"{unique_repo}/{image}")
        assert {"1.0.2", "1.0.2-linux-amd64", "1.0.2-linux-arm64"} <= set(tags), tags

    # buildspec run, on this machine, finds the keys the pipelines recorded: nothing to build
    plan = run_cli(["plan", "--format", "json", "--no-merge", "--set", f"registry={unique_repo}",
                    "--set", "version=1.0.3", "--backend", "buildx"], cwd=folder)
    assert plan.code == 0, plan
    statuses = {n["id"]: n.get("status") for n in json.loads(plan.stdout)["nodes"] if n["kind"] == "build"}
    assert set(statuses.values()) == {"up to date"}, statuses
