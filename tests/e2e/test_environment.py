"""The environment of ``scripts/setup-env.sh`` is there and works.

These tests check the machine, not buildspec: when one fails, every other
integration test would fail for the same reason, so start here.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import oci_reader
import pytest
import requests

if TYPE_CHECKING:
    from conftest import Env  # the top-level tests/conftest.py

pytestmark = pytest.mark.integration

BASE_PLATFORMS = ["linux/amd64", "linux/arm/v7", "linux/arm64"]
# ELF e_machine of each platform's busybox binary.
ELF_MACHINE = {"linux/amd64": 62, "linux/arm64": 183, "linux/arm/v7": 40}


def test_tools_are_on_path(require_tools: Callable[..., None]) -> None:
    require_tools("docker", "buildah", "skopeo", "docker-registry", "qemu-aarch64-static", "qemu-arm-static")


def test_docker_has_buildx_and_the_containerd_image_store(env: Env) -> None:
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True)
    assert buildx.returncode == 0, buildx.stderr
    info = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "io.containerd.snapshotter" in info.stdout


def test_base_image_index_has_three_platforms(env: Env) -> None:
    assert oci_reader.is_index(oci_reader.raw_manifest(env.base_image))
    assert oci_reader.index_platforms(env.base_image) == BASE_PLATFORMS
    assert "1" in oci_reader.tags(oci_reader.repository_of(env.base_image))


@pytest.mark.parametrize("platform", BASE_PLATFORMS)
def test_read_busybox_from_each_platform(env: Env, platform: str) -> None:
    busybox = oci_reader.read_file(env.base_image, "/bin/busybox", platform=platform)
    assert busybox[:4] == b"\x7fELF"
    assert int.from_bytes(busybox[18:20], "little") == ELF_MACHINE[platform]
    # /bin/sh is a symlink made by `busybox --install -s`: the reader follows it.
    assert oci_reader.read_file(env.base_image, "bin/sh", platform=platform) == busybox


def test_single_platform_reference(env: Env) -> None:
    arm64 = oci_reader.platform_ref(env.base_image, "linux/arm64")
    assert "@sha256:" in arm64
    assert oci_reader.index_platforms(arm64) == ["linux/arm64"]
    digests = oci_reader.layers(arm64)
    assert digests
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests)
    assert oci_reader.read_file(arm64, "/bin/busybox")[:4] == b"\x7fELF"
    with pytest.raises(FileNotFoundError):
        oci_reader.read_file(arm64, "/no/such/file")


def test_unique_repo_is_fresh(registry: str, unique_repo: str) -> None:
    assert unique_repo.startswith(f"{registry}/t/")
    with pytest.raises(oci_reader.SkopeoError):
        oci_reader.tags(unique_repo)


def test_auth_registry_rejects_anonymous_access(env: Env) -> None:
    answer = requests.get(f"https://{env.auth_registry}/v2/", verify=env.auth_ca, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].lower().startswith("basic")


def test_auth_registry_rejects_a_wrong_password(env: Env) -> None:
    answer = requests.get(
        f"https://{env.auth_registry}/v2/",
        auth=(env.auth_user, env.auth_password + "x"),
        verify=env.auth_ca,
        timeout=10,
    )
    assert answer.status_code == 401


def test_auth_registry_accepts_the_credentials_over_verified_tls(env: Env) -> None:
    answer = requests.get(
        f"https://{env.auth_registry}/v2/",
        auth=(env.auth_user, env.auth_password),
        verify=env.auth_ca,
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json() == {}


def test_auth_registry_certificate_needs_the_ca(env: Env) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{env.auth_registry}/v2/", timeout=10)


def test_push_to_auth_registry_with_tls_verified_by_certs_d(env: Env) -> None:
    """skopeo (like buildah) trusts /etc/containers/certs.d/<host:port>/ca.crt."""
    creds = f"{env.auth_user}:{env.auth_password}"
    repo = f"{env.auth_registry}/t/env-{uuid.uuid4().hex[:12]}"
    source = oci_reader.platform_ref(env.base_image, "linux/arm64")
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", "--dest-creds", creds,
         f"docker://{source}", f"docker://{repo}:1"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert oci_reader.tags(repo, creds=creds) == ["1"]
    assert oci_reader.index_platforms(f"{repo}:1", creds=creds) == ["linux/arm64"]
    with pytest.raises(oci_reader.SkopeoError):
        oci_reader.raw_manifest(f"{repo}:1", creds=f"{env.auth_user}:wrong")
    config = oci_reader.image_config(f"{repo}:1", creds=creds)
    assert json.dumps(config["rootfs"]["diff_ids"]).count("sha256:") == len(oci_reader.layers(f"{repo}:1", creds=creds))
