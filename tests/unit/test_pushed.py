"""pushed.py: a build that left its push to BuildKit is checked in the registry, and
pushed with docker when BuildKit did not push it (against tests/fake_registry.py); a bake's
registry work starts while the bake runs, once its output says an image was pushed."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fake_registry import FakeRegistry, digest_of

from buildspec.errors import BuildspecError
from buildspec.evaluate import Image
from buildspec.executor import Outcome, Task, TaskContext, execute
from buildspec.platform import Platform
from buildspec.pushed import Bake, push_again_with, pushed
from buildspec.registry.client import RegistryClient
from buildspec.reporting import make_reporter

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def image(registry: FakeRegistry) -> Image:
    return cast(Image, SimpleNamespace(
        repository=f"{registry.address}/acme/app",
        platform_tags={AMD64: "1.0-linux-amd64", ARM64: "1.0-linux-arm64"},
    ))


def index_of(registry: FakeRegistry, repo: str) -> tuple[str, bytes]:
    entries = []
    for arch in ("amd64", "arm64"):
        digest, body = registry.add_image(repo, arch=arch, seed="s")
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                        "size": len(body), "platform": {"os": "linux", "architecture": arch}})
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return digest_of(body), body


class DockerPush:
    """``run`` for push_again_with: records argv; ``then`` is what the push puts in the registry."""

    def __init__(self, then: Any = None, status: int = 0) -> None:
        self.argv: list[list[str]] = []
        self.then, self.status = then, status

    def __call__(self, argv: Any) -> int:
        self.argv.append(list(argv))
        if self.then is not None:
            self.then()
        return self.status


def test_a_merged_build_missing_from_the_registry_is_pushed_with_docker() -> None:
    lines: list[str] = []
    with FakeRegistry() as registry, RegistryClient() as client:
        digest, body = index_of(registry, "acme/app")  # built, but not in the registry (yet)
        children = {k: v for k, v in registry.manifests.items()}
        registry.manifests.clear()

        def docker_push_puts_it_there() -> None:
            registry.manifests.update(children)
            registry.manifests[("acme/app", digest)] = (OCI_INDEX, body)
            registry.manifests[("acme/app", "1.0-linux-amd64")] = (OCI_INDEX, body)

        run = DockerPush(then=docker_push_puts_it_there)
        argv = ["docker", "push", f"{registry.address}/acme/app:1.0-linux-amd64"]
        outcome = pushed(lines.append, client, image(registry), (AMD64, ARM64), argv[-1], digest,
                         push_again_with(lines.append, run, argv))
        assert outcome.ok and run.argv == [argv]
        assert any("BuildKit did not push it itself" in line and "docker push" in line for line in lines)
        # and then as always: each platform's image under its own platform tag
        tags = registry.tags("acme/app")
        assert set(tags) == {"1.0-linux-amd64", "1.0-linux-arm64"}
        assert tags["1.0-linux-arm64"] == outcome.data["digests"]["linux/arm64"]  # type: ignore[index]


def test_a_build_the_registry_has_is_not_pushed_again() -> None:
    with FakeRegistry() as registry, RegistryClient() as client:
        digest, body = index_of(registry, "acme/app")
        registry.manifests[("acme/app", digest)] = (OCI_INDEX, body)
        single, _ = registry.add_image("acme/app", arch="arm64", seed="one")
        run = DockerPush()
        push_again = push_again_with(lambda line: None, run, ["docker", "push", "x"])
        assert pushed(lambda line: None, client, image(registry), (AMD64, ARM64), "x", digest, push_again).ok
        assert pushed(lambda line: None, client, image(registry), (ARM64,), "x", single, push_again).ok
        assert run.argv == []
        gets = [r for r in registry.requests if r.method == "GET" and r.path.endswith(f"/manifests/{digest}")]
        assert len(gets) == 1  # the check is the GET the platform tags needed anyway


def test_a_single_platform_build_missing_from_the_registry_and_a_failed_docker_push() -> None:
    with FakeRegistry() as registry, RegistryClient() as client:
        missing = "sha256:" + "ef" * 32
        run = DockerPush(status=1)
        push_again = push_again_with(lambda line: None, run, ["docker", "push", "127.0.0.1:1/acme/app:1.0"])
        with pytest.raises(BuildspecError, match=r"docker push 127.0.0.1:1/acme/app:1.0 exited with 1"):
            pushed(lambda line: None, client, image(registry), (ARM64,), "x", missing, push_again)
        assert push_again_with(lambda line: None, run, None) is None


# ---------------------------------------------------------------- a bake's registry work during the bake


def bake_of(tmp_path: Path, buildkit_pushes: bool, script: str) -> tuple[Bake, list[str]]:
    """A Bake of three merged builds whose "docker buildx bake" is ``script`` (Python)."""
    from buildspec.backends.base import BuildRequest
    from buildspec.backends.buildx import BuildxBackend
    from buildspec.jobs import BakeCall

    nodes = [f"build:img{i}@linux/amd64+linux/arm64" for i in range(3)]
    requests = {node: BuildRequest(
        node_id=node, image=f"img{i}", platform=AMD64, platforms=(AMD64, ARM64), context=tmp_path,
        dockerfile=tmp_path / "Dockerfile", target=None, args={}, labels={},
        push_ref=f"127.0.0.1:5000/acme/img{i}:1-linux-amd64", insecure=True, workdir=tmp_path / f"w{i}",
    ) for i, node in enumerate(nodes)}
    folder = tmp_path / "bake"
    call = BakeCall("bake-1", BuildxBackend(buildkit_pushes=buildkit_pushes), requests,
                    [sys.executable, "-c", script, str(folder / "metadata.json")], {}, folder)
    return Bake(call), nodes


DIGESTS = ["sha256:" + c * 64 for c in "abc"]
BAKE_SCRIPT = """
import json, sys, time
digests = %r
for i, digest in enumerate(digests):
    print(f"#{i + 5} pushing manifest for 127.0.0.1:5000/acme/img{i}:1-linux-amd64@{digest} 0.1s done", flush=True)
    time.sleep(0.4)
metadata = {f"img{i}": {"containerimage.digest": d} for i, d in enumerate(%r)}
open(sys.argv[1], "w").write(json.dumps(metadata))
"""


def run_bake(tmp_path: Path, bake: Bake, nodes: list[str]) -> tuple[dict[str, tuple[float, str | None]], float]:
    """Runs the batch; returns node -> (when its registry work started, the digest it got)
    and when the bake ended."""
    started: dict[str, tuple[float, str | None]] = {}
    for node in nodes:
        def finish(log: Any, built_at: float, digest: str | None, node: str = node) -> Outcome:
            started[node] = (time.monotonic(), digest)
            log(f"registry work of {node} for {digest}")
            return Outcome(True, digest or bake.digest(node), {})
        bake.finishers[node] = finish

    def action(node: str) -> Any:
        def run(ctx: TaskContext) -> Outcome:
            assert bake.build(ctx)
            return bake.outcome(node, ctx)
        return run

    result = execute([Task(node, (), action(node)) for node in nodes], jobs=3, keep_going=False,
                     reporter=make_reporter("plain", io.StringIO()), log_dir=tmp_path / "logs")
    assert all(r.status.value == "succeeded" for r in result.results.values()), result.results
    details = {node: result.results[node].detail for node in nodes}
    assert details == dict(zip(nodes, DIGESTS, strict=True))
    return started, bake._ended


def test_a_build_s_registry_work_starts_once_buildkit_said_it_pushed(tmp_path: Path) -> None:
    bake, nodes = bake_of(tmp_path, True, BAKE_SCRIPT % (DIGESTS, DIGESTS))
    started, ended = run_bake(tmp_path, bake, nodes)
    assert [started[node][1] for node in nodes] == DIGESTS  # the digests of the bake's output
    assert started[nodes[0]][0] < ended - 0.6  # a second before the bake ended, not after it


def test_the_metadata_decides_and_buildx_s_own_push_waits_for_the_bake(tmp_path: Path) -> None:
    # The output names another digest for img1 than the metadata: its work is done again.
    printed = [DIGESTS[0], "sha256:" + "f" * 64, DIGESTS[2]]
    bake, nodes = bake_of(tmp_path, True, BAKE_SCRIPT % (printed, DIGESTS))
    started, ended = run_bake(tmp_path, bake, nodes)
    assert started[nodes[1]][1] is None and started[nodes[1]][0] >= ended  # read from the metadata
    assert started[nodes[0]][1] == DIGESTS[0]
    runner_log = "\n".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "its registry work is done again" in runner_log

    # buildx pushes a second time "with docker" after its own push: nothing starts early.
    bake, nodes = bake_of(tmp_path / "classic", False, BAKE_SCRIPT % (DIGESTS, DIGESTS))
    started, ended = run_bake(tmp_path / "classic", bake, nodes)
    assert all(digest is None and when >= ended for when, digest in started.values())
