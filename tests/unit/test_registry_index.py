"""Index assembly rules, on the pure functions (no registry needed).

The same rules run end to end against the real registry in
tests/e2e/test_registry_publish.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from buildspec.errors import RegistryError
from buildspec.platform import Platform
from buildspec.registry.client import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from buildspec.registry.index import ResolvedChild, index_platform, render_index, select_child

P = Platform.parse
WHERE = "127.0.0.1:5000/t/x@sha256:abc (linux/arm64)"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def descriptor(platform: str, n: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    os_, arch, *variant = platform.split("/")
    entry: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": digest(n),
        "size": 100,
        "platform": {
            "architecture": arch,
            "os": os_,
            **({"variant": variant[0]} if variant else {}),
        },
    }
    if annotations:
        entry["annotations"] = annotations
    return entry


def buildx_index(*platforms: str) -> dict[str, Any]:
    """What buildx pushes with provenance: images plus one attestation each."""
    manifests = [descriptor(p, i) for i, p in enumerate(platforms)]
    manifests += [
        descriptor(
            "unknown/unknown",
            100 + i,
            {
                "vnd.docker.reference.digest": digest(i),
                "vnd.docker.reference.type": "attestation-manifest",
            },
        )
        for i in range(len(platforms))
    ]
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


# -- choosing the image inside a buildx index ------------------------------------------


def test_select_child_skips_attestations() -> None:
    assert select_child(buildx_index("linux/arm64"), P("linux/arm64"), WHERE)["digest"] == digest(0)


def test_attestation_is_recognized_by_annotation_alone() -> None:
    index = {
        "manifests": [
            descriptor("linux/arm64", 1, {"vnd.docker.reference.type": "attestation-manifest"}),
            descriptor("linux/arm64", 2),
        ]
    }
    assert select_child(index, P("linux/arm64"), WHERE)["digest"] == digest(2)


def test_select_child_in_a_multi_platform_index() -> None:
    index = buildx_index("linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm/v7")
    assert select_child(index, P("linux/arm64"), WHERE)["digest"] == digest(1)
    assert select_child(index, P("linux/arm64/v8"), WHERE)["digest"] == digest(1)
    assert select_child(index, P("linux/arm/v7"), WHERE)["digest"] == digest(3)


def test_select_child_without_the_platform() -> None:
    with pytest.raises(RegistryError) as caught:
        select_child(buildx_index("linux/amd64"), P("linux/arm64"), WHERE)
    assert str(caught.value) == (
        f"{WHERE}: this index has no image for linux/arm64 (it has: linux/amd64): "
        "the builder did not build the requested platform"
    )


def test_select_child_ambiguous() -> None:
    index = buildx_index("linux/arm/v6", "linux/arm/v7")
    with pytest.raises(RegistryError, match="several images matching linux/arm"):
        select_child(index, P("linux/arm"), WHERE)


# -- checking the config's platform ----------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "config", "listed"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64"),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64"}, "linux/arm64"),
        # kaniko writes no variant: the index still needs it.
        ("linux/arm/v7", {"os": "linux", "architecture": "arm"}, "linux/arm/v7"),
        ("linux/arm", {"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v6"),
        ("linux/arm64", {"os": "linux", "architecture": "aarch64"}, "linux/arm64"),
    ],
)
def test_index_platform(requested: str, config: dict[str, str], listed: str) -> None:
    assert str(index_platform(P(requested), config, WHERE)) == listed


@pytest.mark.parametrize(
    ("requested", "config", "built"),
    [
        ("linux/arm64", {"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v6"),
        ("windows/amd64", {"os": "linux", "architecture": "amd64"}, "linux/amd64"),
    ],
)
def test_wrong_platform_means_the_builder_ignored_it(requested: str, config: dict[str, str], built: str) -> None:
    with pytest.raises(RegistryError) as caught:
        index_platform(P(requested), config, WHERE)
    assert str(caught.value) == (
        f"{WHERE}: the image was built for {built}, but {requested} was requested: the builder ignored the platform"
    )


def test_config_without_platform() -> None:
    with pytest.raises(RegistryError, match="no os/architecture"):
        index_platform(P("linux/amd64"), {"os": "linux"}, WHERE)


# -- the index document ----------------------------------------------------------------


def child(platform: str, n: int, media_type: str = DOCKER_MANIFEST, **extra: Any) -> ResolvedChild:
    return ResolvedChild(media_type, digest(n), 500 + n, P(platform), **extra)


def test_all_docker_children_make_a_docker_manifest_list() -> None:
    media_type, body = render_index([child("linux/amd64", 1), child("linux/arm/v7", 2)])
    assert media_type == DOCKER_MANIFEST_LIST
    assert json.loads(body) == {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": digest(1),
                "size": 501,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": digest(2),
                "size": 502,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
            },
        ],
    }


def test_any_oci_child_makes_an_oci_index() -> None:
    media_type, body = render_index([child("linux/amd64", 1), child("linux/arm64", 2, OCI_MANIFEST)])
    document = json.loads(body)
    assert media_type == OCI_INDEX == document["mediaType"]
    assert [m["mediaType"] for m in document["manifests"]] == [DOCKER_MANIFEST, OCI_MANIFEST]
    assert "annotations" not in document


def test_annotations_force_an_oci_index_and_are_sorted() -> None:
    annotations = {"org.opencontainers.image.version": "1.0", "com.example.b": "x"}
    media_type, body = render_index([child("linux/amd64", 1)], annotations)
    assert media_type == OCI_INDEX
    assert list(json.loads(body)["annotations"]) == [
        "com.example.b",
        "org.opencontainers.image.version",
    ]


def test_output_is_deterministic_and_keeps_entry_order() -> None:
    children = [child("linux/s390x", 3), child("linux/amd64", 1), child("linux/arm64", 2)]
    first = render_index(children, {"a": "1", "b": "2"})
    again = render_index(list(children), {"b": "2", "a": "1"})
    assert first == again
    platforms = [m["platform"]["architecture"] for m in json.loads(first[1])["manifests"]]
    assert platforms == ["s390x", "amd64", "arm64"]
    assert list(json.loads(first[1])) == ["schemaVersion", "mediaType", "manifests", "annotations"]


def test_each_platform_once() -> None:
    with pytest.raises(RegistryError) as caught:
        render_index([child("linux/arm64", 1), child("linux/amd64", 2), child("linux/arm64", 3)])
    assert str(caught.value) == f"platform linux/arm64 appears twice: {digest(1)} and {digest(3)}"


def test_windows_os_version_distinguishes_images() -> None:
    children = [
        child("windows/amd64", 1, os_version="10.0.17763.1"),
        child("windows/amd64", 2, os_version="10.0.20348.1", os_features=("win32k",)),
    ]
    manifests = json.loads(render_index(children)[1])["manifests"]
    assert manifests[1]["platform"] == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.20348.1",
        "os.features": ["win32k"],
    }


def test_empty_index_is_refused() -> None:
    with pytest.raises(RegistryError, match="at least one"):
        render_index([])


def test_attestations_follow_all_platform_images_and_force_an_oci_index() -> None:
    from buildspec.registry.index import attestations_of

    def attestation(n: int, subject: str) -> dict[str, Any]:
        return {"mediaType": OCI_MANIFEST, "digest": digest(n), "size": 800,
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                "vnd.docker.reference.digest": subject}}

    buildx_index = {"manifests": [{"mediaType": DOCKER_MANIFEST, "digest": digest(1), "size": 501,
                                   "platform": {"architecture": "amd64", "os": "linux"}},
                                  attestation(11, digest(1)), attestation(12, digest(9))]}
    assert attestations_of(buildx_index, digest(1)) == (attestation(11, digest(1)),)
    media_type, body = render_index([child("linux/amd64", 1, attestations=(attestation(11, digest(1)),)),
                                     child("linux/arm64", 2, attestations=(attestation(12, digest(2)),))])
    document = json.loads(body)
    assert media_type == OCI_INDEX  # a Docker manifest list cannot hold attestations
    assert [m["digest"] for m in document["manifests"]] == [digest(1), digest(2), digest(11), digest(12)]
    assert document["manifests"][2] == attestation(11, digest(1))
