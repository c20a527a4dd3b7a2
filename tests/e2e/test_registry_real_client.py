"""RegistryClient against the real plain-HTTP registry (CNCF distribution)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from buildspec.errors import RegistryError
from buildspec.registry.client import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, RegistryClient, config_of
from tests.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.integration


def skopeo(*args: str) -> str:
    """Run skopeo; a missing tool or a failure fails the test (never a skip)."""
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"skopeo {args} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(docker_config=str(tmp_path / "docker")) as client:
        yield client


@pytest.fixture
def pushed(env: Mapping[str, str], unique_repo: str) -> str:
    """``unique_repo:arm64``: one Docker v2 image copied out of the base image."""
    copy = "copy --override-arch arm64 --src-tls-verify=false --dest-tls-verify=false"
    skopeo(*copy.split(), f"docker://{env['BUILDSPEC_BASE_IMAGE']}", f"docker://{unique_repo}:arm64")
    return f"{unique_repo}:arm64"


def test_manifests_and_blobs(client: RegistryClient, pushed: str, unique_repo: str) -> None:
    manifest = client.get_manifest(pushed)
    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.body.decode() == skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pushed}")
    assert client.get_manifest(f"{unique_repo}@{manifest.digest}") == manifest
    config = json.loads(client.get_blob(unique_repo, config_of(manifest)))
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert client.manifest_exists(pushed)
    assert client.manifest_exists(f"{unique_repo}@{manifest.digest}")
    assert not client.manifest_exists(f"{unique_repo}:nope")


def test_base_image_is_a_list(client: RegistryClient, env: Mapping[str, str]) -> None:
    manifest = client.get_manifest(env["BUILDSPEC_BASE_IMAGE"])
    assert manifest.media_type == DOCKER_MANIFEST_LIST and manifest.is_index


def test_missing_manifest_error(client: RegistryClient, unique_repo: str) -> None:
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{unique_repo}:nope")
    assert str(caught.value) == (
        f"{unique_repo}: cannot get manifest nope: HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)"
    )


def test_put_by_tag_and_digest_and_list_tags_with_pages(client: RegistryClient, pushed: str, unique_repo: str) -> None:
    manifest = client.get_manifest(pushed)
    tags = [f"t{i}" for i in range(5)]
    for tag in tags:
        assert client.put_manifest(unique_repo, tag, manifest.media_type, manifest.body) == (manifest.digest)
    assert client.put_manifest(unique_repo, manifest.digest, manifest.media_type, manifest.body)
    expected = sorted(["arm64", *tags])
    assert sorted(client.list_tags(unique_repo, page_size=2)) == expected
    assert sorted(client.list_tags(unique_repo)) == expected
    listed = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{unique_repo}"))
    assert sorted(listed["Tags"]) == expected


def test_unknown_repository_has_no_tags(client: RegistryClient, unique_repo: str) -> None:
    assert client.list_tags(unique_repo) == []
    client.check_access(unique_repo)  # readable: nothing raised


def test_check_access_is_one_request_and_names_a_registry_that_does_not_answer(
    client: RegistryClient, pushed: str, unique_repo: str
) -> None:
    with FaultyProxy(client_registry(pushed), failures=0) as proxy:
        client.check_access(f"{proxy.address}/{unique_repo.split('/', 1)[1]}")
        assert [(r.method, r.path.split("?")[0]) for r in proxy.forwarded if "/tags/" in r.path] == [
            ("GET", f"/v2/{unique_repo.split('/', 1)[1]}/tags/list")]
    with pytest.raises(RegistryError, match=r"127\.0\.0\.1:1: GET /v2/x/tags/list failed"):
        client.check_access("127.0.0.1:1/x")


def client_registry(ref: str) -> str:
    return ref.split("/", 1)[0]


def test_rejected_manifest(client: RegistryClient, unique_repo: str) -> None:
    with pytest.raises(RegistryError) as caught:
        client.put_manifest(unique_repo, "bad", DOCKER_MANIFEST, b"{}")
    assert str(caught.value).startswith(
        f"{unique_repo}: cannot push manifest bad: HTTP 400 Bad Request (MANIFEST_INVALID"
    )


def test_fetching_through_a_flaky_proxy(pushed: str, unique_repo: str) -> None:
    registry, _, path = unique_repo.partition("/")
    with (
        FaultyProxy(registry, failures=2, path_pattern="/blobs/|/tags/") as proxy,
        RegistryClient() as client,
    ):
        via_proxy = f"{proxy.address}/{path}"
        manifest = client.get_manifest(f"{via_proxy}:arm64")
        assert client.get_blob(via_proxy, config_of(manifest))
        assert client.list_tags(via_proxy) == ["arm64"]
    assert [r.path.split("/")[-2] for r in proxy.failed] == ["blobs", "blobs"]
    assert len(proxy.forwarded) == 3


def test_one_client_shared_by_threads(client: RegistryClient, pushed: str, unique_repo: str) -> None:
    """The executor publishes several images at once through one client."""
    manifest = client.get_manifest(pushed)

    def push_and_read(n: int) -> str:
        client.put_manifest(unique_repo, f"thread-{n}", manifest.media_type, manifest.body)
        return client.get_manifest(f"{unique_repo}:thread-{n}").digest

    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(push_and_read, range(16)))
    assert digests == [manifest.digest] * 16
    assert len(client.list_tags(unique_repo)) == 17
