"""One push per build: on a daemon with the containerd image store, buildx builds leave the
push to BuildKit (``push=``), and buildx does not push each image a second time "with docker"
(backends/buildx.py). Should BuildKit not push, buildspec pushes with ``docker push`` itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import cli_env, copy_example, manifest_digest

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo

pytestmark = pytest.mark.integration

REGISTRY_LOG = Path("/var/lib/buildspec-env/logs/registry-plain.log")  # scripts/setup-env.sh


def run_buildspec(project: Path, args: list[str], env: Env, patch: str = "") -> tuple[int, str]:
    """``buildspec ARGS`` in a process of its own; ``patch``: Python run before main()."""
    code = f"import sys\n{patch}\nfrom buildspec.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=project, capture_output=True, text=True,
                          env=cli_env(BUSYBOX_IMAGE=env.base_image), timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def logs_of(project: Path) -> str:
    return "\n".join(log.read_text() for log in sorted((project / ".buildspec" / "logs").iterdir()))


def check_published(unique_repo: str) -> None:
    for name in ("base", "app"):
        repository = f"{unique_repo}/{name}"
        index = oci_reader.raw_manifest(f"{repository}:1.0.0")
        children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
        assert sorted(children) == ["amd64", "arm64"], index
        for arch, digest in children.items():
            assert manifest_digest(f"{repository}:1.0.0-linux-{arch}") == digest
            assert oci_reader.image_config(f"{repository}:1.0.0-linux-{arch}")["architecture"] == arch


def docker_requests(since: int, repository_path: str) -> int:
    """Requests of the docker daemon's own pushes ("docker/..." user agent) to the repositories."""
    with REGISTRY_LOG.open("rb") as log:
        log.seek(since)
        lines = log.read().decode(errors="replace").splitlines()
    return sum(1 for line in lines if line.startswith("127.") and f"/v2/{repository_path}/" in line
               and '"docker/' in line)


def test_buildkit_pushes_once_and_buildx_never_again_with_docker(tmp_path: Path, unique_repo: str, env: Env) -> None:
    from buildspec.backends import select

    select.reset_probes()
    assert select.buildkit_pushes_itself(), "scripts/setup-env.sh runs dockerd with the containerd image store"
    project = copy_example("quickstart", tmp_path / "quickstart")
    args = ["--set", f"registry={unique_repo}", "--backend", "buildx"]
    code, output = run_buildspec(project, ["plan", "--format", "json", "--commands", *args], env)
    assert code == 0, output
    plan = json.loads(output[output.index("{"):])
    argv = {n["id"]: n["commands"][0] for n in plan["nodes"] if n.get("commands")}
    single = argv["build:app@linux/arm64"]
    assert "--push" not in single
    assert single[single.index("--output") + 1] == f"type=image,name={unique_repo}/app:1.0.0-linux-arm64,push="

    since = REGISTRY_LOG.stat().st_size
    code, output = run_buildspec(project, ["run", "--progress", "plain", *args], env)
    assert code == 0, output
    logs = logs_of(project)
    assert "push=" in logs and "pushing manifest for" in logs  # BuildKit pushed...
    assert " with docker" not in logs  # ...and buildx did not push again
    assert "BuildKit did not push it itself" not in logs
    check_published(unique_repo)
    assert docker_requests(since, unique_repo.split("/", 1)[1]) == 0

    # The same run with buildx's own push (`--push`), in other repositories: docker pushes again.
    other = f"{unique_repo}-classic"
    since = REGISTRY_LOG.stat().st_size
    classic = "import buildspec.backends.select as select\nselect.buildkit_pushes_itself = lambda: False"
    code, output = run_buildspec(project, ["run", "--progress", "plain", "--set", f"registry={other}",
                                           "--backend", "buildx"], env, patch=classic)
    assert code == 0, output
    assert " with docker" in logs_of(project)
    assert docker_requests(since, other.split("/", 1)[1]) > 0


def test_a_build_buildkit_did_not_push_is_pushed_with_docker(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """A daemon whose BuildKit does not push (played here by ``push=false``): the registry
    lacks what was built, and buildspec pushes it with ``docker push`` before going on."""
    project = copy_example("quickstart", tmp_path / "quickstart")
    args = ["run", "--progress", "plain", "--set", f"registry={unique_repo}", "--backend", "buildx"]
    patch = "import buildspec.backends.buildx as buildx\nbuildx.BUILDKIT_ONLY_PUSH = 'push=false'"
    code, output = run_buildspec(project, args, env, patch=patch)
    assert code == 0, output
    logs = logs_of(project)
    assert logs.count("BuildKit did not push it itself") == 3  # base (merged), app per platform
    assert f"$ docker push {unique_repo}/base:1.0.0-linux-amd64" in logs
    assert f"$ docker push {unique_repo}/app:1.0.0-linux-arm64" in logs
    check_published(unique_repo)
