"""pushed.py: a build that left its push to BuildKit is checked in the registry, and
pushed with docker when BuildKit did not push it (against tests/fake_registry.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fake_registry import FakeRegistry, digest_of

from buildspec.errors import BuildspecError
from buildspec.evaluate import Image
from buildspec.platform import Platform
from buildspec.pushed import push_again_with, pushed
from buildspec.registry.client import RegistryClient

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
