"""An image whose tag lines all drop (a pull request, release lines only) is built and not pushed.

metadata-action gives an empty tag list there and the workflow builds without
pushing; buildspec does that itself: every backend builds (so a broken Dockerfile
still fails the pull request), and the registry holds nothing for the repository
afterwards, read back with skopeo. ``no_tags = error`` turns it into exit 2 before
anything is built. Real Docker Engine + buildx, real buildah, the kaniko stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import need_tools
from runner import run_cli, tags_of

pytestmark = pytest.mark.integration

STANDIN = Path(__file__).resolve().parents[1] / "kaniko" / "executor"

BUILDFILE = """\
registry  = env("REGISTRY")
platforms = [{platforms}]

tags release {{
    "{{version}}"  [latest] if version.stable
}}

image app {{
    tags = release
{extra}}}
"""


def pull_request_environ(tmp_path: Path) -> dict[str, str]:
    """What GitHub Actions sets for pull request #15 (merge commit, head branch test-pr)."""
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"number": 15, "pull_request": {"number": 15, "head": {"ref": "test-pr"}},
                                   "repository": {"default_branch": "main"}}))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/15/merge",
            "GITHUB_HEAD_REF": "test-pr", "GITHUB_BASE_REF": "main", "GITHUB_EVENT_PATH": str(payload),
            "GITHUB_SHA": "a9c8c5828b91be19d9728548b24759e352367ef1"}


def project(tmp_path: Path, base_image: str, *, platforms: str, extra: str = "", run: str = "echo ok") -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "Buildfile").write_text(BUILDFILE.format(platforms=platforms, extra=extra))
    (folder / "Dockerfile").write_text(f"FROM {base_image}\nRUN {run} > /built\n")
    return folder


def backend_args(backend: str, *, run: bool = True) -> list[str]:
    args = ["--backend", backend, *(["--progress", "plain"] if run else [])]
    return [*args, "--kaniko-executor", str(STANDIN)] if backend == "kaniko" else args


def environ(tmp_path: Path, repository: str) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    return {**base, **pull_request_environ(tmp_path), "REGISTRY": repository.rsplit("/", 1)[0]}


@pytest.mark.parametrize(("backend", "platforms"), [
    ("buildx", "linux/amd64, linux/arm64"),  # one merged buildx call for both platforms
    ("buildah", "linux/amd64"),
    ("kaniko", "linux/amd64"),
])
def test_a_pull_request_builds_and_pushes_nothing(
    tmp_path: Path, unique_repo: str, env: object, backend: str, platforms: str
) -> None:
    need_tools("docker", "buildah", "skopeo")
    repository = f"{unique_repo}/app"
    folder = project(tmp_path, env.base_image, platforms=platforms)  # type: ignore[attr-defined]
    environment = environ(tmp_path, repository)

    plan = run_cli(["plan", "--commands", *backend_args(backend, run=False)], cwd=folder, env=environment)
    assert plan.code == 0, plan
    assert "(none: built, not pushed)" in plan.stdout, plan
    assert "nothing to publish (no tags)" in plan.stdout, plan
    push_flag = {"buildx": "--push", "buildah": " push ", "kaniko": "--destination"}[backend]
    assert push_flag not in plan.stdout, plan  # the commands that run builds only

    result = run_cli(["run", *backend_args(backend), "--metadata-file", str(tmp_path / "meta.json")],
                     cwd=folder, env=environment)
    assert result.code == 0, result
    assert result.stdout == "", result  # no reference was published
    assert tags_of(repository) == [], result
    meta = json.loads((tmp_path / "meta.json").read_text())
    (image,) = meta["images"]
    assert (image["tags"], image["index_digest"], image["status"]) == ([], None, "succeeded")
    details = {node["id"]: node["detail"] for node in meta["nodes"]}
    assert details["manifest:app"] == "nothing to publish (no tags)"
    builds = [d for node, d in details.items() if node.startswith("build:app@")]
    assert builds and all(d == "built, not pushed (no tags)" for d in builds), details


@pytest.mark.parametrize("backend", ["buildx", "buildah", "kaniko"])
def test_a_broken_dockerfile_still_fails_the_pull_request(
    tmp_path: Path, unique_repo: str, env: object, backend: str
) -> None:
    need_tools("docker", "buildah", "skopeo")
    repository = f"{unique_repo}/app"
    folder = project(tmp_path, env.base_image, platforms="linux/amd64", run="exit 3")  # type: ignore[attr-defined]
    result = run_cli(["run", *backend_args(backend)], cwd=folder, env=environ(tmp_path, repository))
    assert result.code == 1, result
    assert "FAILED build:app@linux/amd64" in result.stderr, result
    assert tags_of(repository) == []


def test_no_tags_error_stops_before_building(tmp_path: Path, unique_repo: str, env: object) -> None:
    need_tools("docker", "skopeo")
    repository = f"{unique_repo}/app"
    folder = project(tmp_path, env.base_image, platforms="linux/amd64",  # type: ignore[attr-defined]
                     extra="    no_tags = error\n")
    result = run_cli(["run", "--backend", "buildx", "--progress", "plain"], cwd=folder,
                     env=environ(tmp_path, repository))
    assert result.code == 2, result
    assert "error: image 'app' resolves to no tags" in result.stderr, result
    assert "Traceback" not in result.stderr
    assert not (folder / ".buildspec" / "logs").exists() or not any((folder / ".buildspec" / "logs").iterdir())
    assert tags_of(repository) == []


def test_the_same_file_on_a_release_tag_publishes(tmp_path: Path, unique_repo: str, env: object) -> None:
    """The control: with a version the very same Buildfile pushes its tags (and [latest])."""
    need_tools("docker", "skopeo")
    repository = f"{unique_repo}/app"
    folder = project(tmp_path, env.base_image, platforms="linux/amd64")  # type: ignore[attr-defined]
    environment = {**environ(tmp_path, repository), "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3",
                   "GITHUB_HEAD_REF": "", "GITHUB_BASE_REF": ""}
    result = run_cli(["run", "--backend", "buildx", "--progress", "plain"], cwd=folder, env=environment)
    assert result.code == 0, result
    assert tags_of(repository) == ["1.2.3", "1.2.3-linux-amd64", "latest"], result


def test_beside_an_image_that_has_tags_only_that_one_is_published(
    tmp_path: Path, unique_repo: str, env: object
) -> None:
    """Atomic publishing with one image that publishes and one that has no tags in this PR."""
    need_tools("docker", "skopeo")
    folder = project(tmp_path, env.base_image, platforms="linux/amd64")  # type: ignore[attr-defined]
    with (folder / "Buildfile").open("a") as f:
        f.write('\nimage preview {\n    tags { "pr-{git.pr}" if git.pr }\n}\n')
    result = run_cli(["run", "--backend", "buildx", "--progress", "plain"], cwd=folder,
                     env=environ(tmp_path, f"{unique_repo}/app"))
    assert result.code == 0, result
    assert tags_of(f"{unique_repo}/app") == [], result
    assert tags_of(f"{unique_repo}/preview") == ["pr-15", "pr-15-linux-amd64"], result
    assert result.stdout.startswith(f"{unique_repo}/preview:pr-15@sha256:"), result
