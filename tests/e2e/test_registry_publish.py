"""Publishing image indexes to the real registries, checked with skopeo.

Per-platform images are made by real tools: ``skopeo copy`` of one platform out
of the multi-arch base image (Docker v2 schema 2, or OCI with ``--format oci``),
``docker buildx build`` (an index with a provenance attestation), and ``skopeo
copy`` of a hand-made OCI layout (an image whose config has no variant, as kaniko
writes them). skopeo, an independent client, then reads what was published.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from buildspec.errors import RegistryError
from buildspec.platform import Platform
from buildspec.registry.client import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    sha256_digest,
)
from buildspec.registry.index import IndexEntry, assemble_index, publish_index
from tests.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.integration


def run(argv: list[str]) -> str:
    """Run a tool; a missing tool or a failure fails the test (never a skip)."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def copy_platform(base: str, dest: str, arch: str, tmp_path: Path, fmt: str | None = None, creds: str = "") -> str:
    """``skopeo copy`` one platform of ``base`` to ``dest``; its manifest digest."""
    digest_file = tmp_path / f"digest-{hashlib.sha256(dest.encode()).hexdigest()[:12]}"
    argv = ["skopeo", "copy", "--override-arch", arch, "--src-tls-verify=false"]
    argv += ["--dest-tls-verify=false", "--digestfile", str(digest_file)]
    argv += ["--format", fmt] if fmt else []
    argv += ["--dest-creds", creds] if creds else []
    run([*argv, f"docker://{base}", f"docker://{dest}"])
    return digest_file.read_text().strip()


def push_layout_image(dest: str, config: Mapping[str, Any], tmp_path: Path) -> str:
    """Push a one-layer OCI image with exactly ``config`` (via skopeo); its digest."""
    layout = tmp_path / f"layout-{hashlib.sha256(dest.encode()).hexdigest()[:12]}"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        digest = sha256_digest(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        content = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer_descriptor = blob(layer.getvalue(), "application/vnd.oci.image.layer.v1.tar")
    full_config = {
        **config,
        "rootfs": {"type": "layers", "diff_ids": [layer_descriptor["digest"]]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": blob(json.dumps(full_config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [layer_descriptor],
    }
    manifest_descriptor = blob(json.dumps(manifest).encode(), OCI_MANIFEST)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest_descriptor]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    # skopeo compresses the layer on the way, so the pushed digest is its to say.
    digest_file = layout / "pushed-digest"
    argv = ["skopeo", "copy", "--dest-tls-verify=false", "--digestfile", str(digest_file)]
    run([*argv, f"oci:{layout}", f"docker://{dest}"])
    return digest_file.read_text().strip()


def raw(ref: str, creds: str = "") -> bytes:
    """The manifest bytes skopeo reads for ``ref``."""
    argv = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    argv += ["--creds", creds] if creds else []
    result = subprocess.run([*argv, f"docker://{ref}"], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def platforms_of(body: bytes) -> list[tuple[str, str, str]]:
    """(platform, mediaType, digest) of each entry of an index."""
    out = []
    for entry in json.loads(body)["manifests"]:
        p = entry["platform"]
        platform = "/".join(filter(None, [p["os"], p["architecture"], p.get("variant")]))
        out.append((platform, entry["mediaType"], entry["digest"]))
    return out


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(docker_config=str(tmp_path / "docker")) as client:
        yield client


def test_docker_v2_images_make_a_manifest_list(
    client: RegistryClient, env: Mapping[str, str], unique_repo: str, tmp_path: Path
) -> None:
    base = env["BUILDSPEC_BASE_IMAGE"]
    amd64 = copy_platform(base, f"{unique_repo}:amd64", "amd64", tmp_path)
    arm64 = copy_platform(base, f"{unique_repo}:arm64", "arm64", tmp_path)
    entries = [
        IndexEntry(Platform.parse("linux/amd64"), amd64),
        IndexEntry(Platform.parse("linux/arm64"), arm64),
    ]

    published = publish_index(client, unique_repo, entries, ["1.0", "latest"])

    assert published.media_type == DOCKER_MANIFEST_LIST
    assert published.tags == ("1.0", "latest")
    assert published.manifests == (("linux/amd64", amd64), ("linux/arm64", arm64))
    assert published.repository == unique_repo
    for tag in ("1.0", "latest"):
        body = raw(f"{unique_repo}:{tag}")
        assert sha256_digest(body) == published.digest
    assert platforms_of(body) == [
        ("linux/amd64", DOCKER_MANIFEST, amd64),
        ("linux/arm64", DOCKER_MANIFEST, arm64),
    ]
    # skopeo resolves the index to the right image for each platform.
    for arch in ("amd64", "arm64"):
        argv = ["skopeo", "inspect", "--tls-verify=false", "--override-arch", arch]
        assert json.loads(run([*argv, f"docker://{unique_repo}:1.0"]))["Architecture"] == arch
    # Assembling again gives the very same bytes.
    assert sha256_digest(assemble_index(client, unique_repo, entries)[1]) == published.digest


def test_docker_and_oci_mixture_makes_an_oci_index(
    client: RegistryClient, env: Mapping[str, str], unique_repo: str, tmp_path: Path
) -> None:
    base = env["BUILDSPEC_BASE_IMAGE"]
    amd64 = copy_platform(base, f"{unique_repo}:amd64", "amd64", tmp_path)
    arm64 = copy_platform(base, f"{unique_repo}:arm64", "arm64", tmp_path, fmt="oci")
    published = publish_index(
        client,
        unique_repo,
        [
            IndexEntry(Platform.parse("linux/amd64"), amd64),
            IndexEntry(Platform.parse("linux/arm64/v8"), arm64),
        ],
        ["mixed"],
        annotations={"org.opencontainers.image.version": "1.0"},
    )
    body = raw(f"{unique_repo}:mixed")
    assert published.media_type == OCI_INDEX == json.loads(body)["mediaType"]
    assert json.loads(body)["annotations"] == {"org.opencontainers.image.version": "1.0"}
    assert platforms_of(body) == [
        ("linux/amd64", DOCKER_MANIFEST, amd64),
        ("linux/arm64", OCI_MANIFEST, arm64),
    ]


def test_buildx_index_with_provenance_is_unwrapped_and_keeps_its_attestation(
    client: RegistryClient, env: Mapping[str, str], unique_repo: str, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {env['BUILDSPEC_BASE_IMAGE']}\nCOPY hello.txt /hello.txt\n")
    (context / "hello.txt").write_text("hello\n")
    metadata = tmp_path / "metadata.json"
    build = f"docker buildx build --platform linux/arm64 --provenance=true -t {unique_repo}:arm64 --push"
    run([*build.split(), "--metadata-file", str(metadata), str(context)])
    pushed = json.loads(metadata.read_text())["containerimage.digest"]
    pushed_body = raw(f"{unique_repo}@{pushed}")
    assert json.loads(pushed_body)["mediaType"] == OCI_INDEX  # image + attestation
    (image,) = [m for m in platforms_of(pushed_body) if m[0] == "linux/arm64"]

    (attestation,) = [m for m in platforms_of(pushed_body) if m[0] == "unknown/unknown"]

    published = publish_index(client, unique_repo, [IndexEntry(Platform.parse("linux/arm64"), pushed)], ["1"])
    # The image is listed once, for its platform; its attestation follows it, as buildx lays it out.
    assert platforms_of(raw(f"{unique_repo}:1")) == [image, attestation]
    assert published.manifests == (("linux/arm64", image[2]),)


def test_variant_comes_from_the_requested_platform(client: RegistryClient, unique_repo: str, tmp_path: Path) -> None:
    # kaniko writes linux/arm/v7 images with a config that says only "arm".
    digest = push_layout_image(f"{unique_repo}:armv7", {"os": "linux", "architecture": "arm"}, tmp_path)
    publish_index(client, unique_repo, [IndexEntry(Platform.parse("linux/arm/v7"), digest)], ["1"])
    assert platforms_of(raw(f"{unique_repo}:1")) == [("linux/arm/v7", OCI_MANIFEST, digest)]


def test_wrong_platform_is_a_clear_error(
    client: RegistryClient, env: Mapping[str, str], unique_repo: str, tmp_path: Path
) -> None:
    amd64 = copy_platform(env["BUILDSPEC_BASE_IMAGE"], f"{unique_repo}:x", "amd64", tmp_path)
    with pytest.raises(RegistryError) as caught:
        publish_index(client, unique_repo, [IndexEntry(Platform.parse("linux/arm64"), amd64)], ["1"])
    assert str(caught.value) == (
        f"{unique_repo}@{amd64} (linux/arm64): the image was built for linux/amd64, "
        "but linux/arm64 was requested: the builder ignored the platform"
    )
    assert not client.manifest_exists(f"{unique_repo}:1")  # nothing was pushed


def test_duplicate_platform_is_refused(
    client: RegistryClient, env: Mapping[str, str], unique_repo: str, tmp_path: Path
) -> None:
    base = env["BUILDSPEC_BASE_IMAGE"]
    docker = copy_platform(base, f"{unique_repo}:a", "arm64", tmp_path)
    oci = copy_platform(base, f"{unique_repo}:b", "arm64", tmp_path, fmt="oci")
    arm64 = Platform.parse("linux/arm64")
    with pytest.raises(RegistryError, match="platform linux/arm64 appears twice"):
        publish_index(client, unique_repo, [IndexEntry(arm64, docker), IndexEntry(arm64, oci)], ["1"])


def test_publishing_through_a_flaky_proxy(env: Mapping[str, str], unique_repo: str, tmp_path: Path) -> None:
    registry, _, path = unique_repo.partition("/")
    base = env["BUILDSPEC_BASE_IMAGE"]
    amd64 = copy_platform(base, f"{unique_repo}:amd64", "amd64", tmp_path)
    arm64 = copy_platform(base, f"{unique_repo}:arm64", "arm64", tmp_path)
    entries = [
        IndexEntry(Platform.parse("linux/amd64"), amd64),
        IndexEntry(Platform.parse("linux/arm64"), arm64),
    ]
    with FaultyProxy(registry, failures=2) as proxy, RegistryClient() as client:
        published = publish_index(client, f"{proxy.address}/{path}", entries, ["1", "2"])
    assert len(proxy.failed) == 2
    assert [r.method for r in proxy.failed] == ["GET", "GET"]
    assert sha256_digest(raw(f"{unique_repo}:1")) == published.digest
    assert sha256_digest(raw(f"{unique_repo}:2")) == published.digest


def test_pushes_are_retried_through_a_flaky_proxy(env: Mapping[str, str], unique_repo: str, tmp_path: Path) -> None:
    registry, _, path = unique_repo.partition("/")
    arm64 = copy_platform(env["BUILDSPEC_BASE_IMAGE"], f"{unique_repo}:arm64", "arm64", tmp_path)
    entries = [IndexEntry(Platform.parse("linux/arm64"), arm64)]
    with (
        FaultyProxy(registry, failures=2, path_pattern=r"/manifests/v1$") as proxy,
        RegistryClient() as client,
    ):
        published = publish_index(client, f"{proxy.address}/{path}", entries, ["v1"])
    assert [(r.method, r.path) for r in proxy.failed] == [("PUT", f"/v2/{path}/manifests/v1")] * 2
    assert sha256_digest(raw(f"{unique_repo}:v1")) == published.digest


# -- the TLS + htpasswd registry ----------------------------------------------------


@pytest.fixture
def auth_repo(env: Mapping[str, str], unique_repo: str) -> str:
    """The same unique path, on the registry that wants a login."""
    return f"{env['BUILDSPEC_AUTH_REGISTRY']}/{unique_repo.partition('/')[2]}"


def docker_config_with_login(directory: Path, registry: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return directory


def test_auth_registry_with_credentials(
    env: Mapping[str, str], auth_repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = env["BUILDSPEC_AUTH_USER"]
    password = Path(env["BUILDSPEC_AUTH_PASSWORD_FILE"]).read_text().strip()
    creds = f"{user}:{password}"
    base = env["BUILDSPEC_BASE_IMAGE"]
    amd64 = copy_platform(base, f"{auth_repo}:amd64", "amd64", tmp_path, creds=creds)
    arm64 = copy_platform(base, f"{auth_repo}:arm64", "arm64", tmp_path, creds=creds)
    config = docker_config_with_login(tmp_path / "docker", env["BUILDSPEC_AUTH_REGISTRY"], user, password)
    # Found through DOCKER_CONFIG, as `docker` would find it.
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with RegistryClient() as client:
        published = publish_index(
            client,
            auth_repo,
            [
                IndexEntry(Platform.parse("linux/amd64"), amd64),
                IndexEntry(Platform.parse("linux/arm64"), arm64),
            ],
            ["1"],
        )
        # Loopback, so insecure: HTTPS without verification, no plain HTTP fallback.
        assert client._base_urls[env["BUILDSPEC_AUTH_REGISTRY"]].startswith("https://")
    body = raw(f"{auth_repo}:1", creds=creds)
    assert sha256_digest(body) == published.digest
    assert [p for p, _, _ in platforms_of(body)] == ["linux/amd64", "linux/arm64"]


def test_auth_registry_without_credentials(env: Mapping[str, str], auth_repo: str, tmp_path: Path) -> None:
    registry = env["BUILDSPEC_AUTH_REGISTRY"]
    password = Path(env["BUILDSPEC_AUTH_PASSWORD_FILE"]).read_text().strip()
    client = RegistryClient(docker_config=str(tmp_path / "docker"))
    entry = IndexEntry(Platform.parse("linux/amd64"), "sha256:" + "0" * 64)
    with pytest.raises(RegistryError) as caught:
        publish_index(client, auth_repo, [entry], ["1"])
    assert str(caught.value) == (
        f"{auth_repo}: authentication required: no credentials for {registry} "
        f"in {tmp_path}/docker/config.json (run `docker login {registry}`)"
    )
    assert password not in "".join(traceback.format_exception(caught.value))


def test_auth_registry_with_a_wrong_password(env: Mapping[str, str], auth_repo: str, tmp_path: Path) -> None:
    registry = env["BUILDSPEC_AUTH_REGISTRY"]
    user = env["BUILDSPEC_AUTH_USER"]
    password = Path(env["BUILDSPEC_AUTH_PASSWORD_FILE"]).read_text().strip()
    wrong = password[::-1] + "-wrong"
    config = docker_config_with_login(tmp_path / "docker", registry, user, wrong)
    client = RegistryClient(docker_config=str(config))
    entry = IndexEntry(Platform.parse("linux/amd64"), "sha256:" + "0" * 64)
    with pytest.raises(RegistryError) as caught:
        publish_index(client, auth_repo, [entry], ["1"])
    message = str(caught.value)
    assert message.startswith(f"{auth_repo}: HTTP 401: the registry rejected user '{user}'")
    assert f"run `docker login {registry}`" in message
    shown = "\n".join(
        [
            message,
            repr(caught.value),
            repr(client),
            "".join(traceback.format_exception(caught.value)),
        ]
    )
    for secret in (password, wrong):
        assert secret not in shown
