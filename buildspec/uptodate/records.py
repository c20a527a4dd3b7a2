"""Where input keys live: in the image's own repository, next to the image.

After a build, buildspec pushes a small *key index* per platform image: an OCI
image index whose only entry is that image, with ``artifactType``
``application/vnd.buildspec.inputs.v1+json`` and annotations holding the key, the
key version and the compressed inputs record (key.py). It is pushed under two tags:

* ``buildspec-key-<key>``: found by the next run with one request, on any machine;
* ``buildspec-last-<image>-<platform>``: the newest build of that image and platform,
  read only on a miss, to say what changed.

Nothing else in the repository changes: the image itself is untouched (its digest
is what the release's index lists) and a key index is a valid image index, so
``docker pull REPO:buildspec-key-...`` gives that image.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildspec.errors import RegistryError
from buildspec.platform import Platform
from buildspec.registry.client import OCI_INDEX, Manifest, RegistryClient
from buildspec.registry.reference import as_reference
from buildspec.uptodate.key import KEY_VERSION, Inputs, decode

ARTIFACT_TYPE = "application/vnd.buildspec.inputs.v1+json"
KEY_ANNOTATION = "dev.buildspec.key"
VERSION_ANNOTATION = "dev.buildspec.key-version"
INPUTS_ANNOTATION = "dev.buildspec.inputs"
IMAGE_ANNOTATION = "dev.buildspec.image"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def key_tag(key: str) -> str:
    return f"buildspec-key-{key}"


def last_tag(image: str, platform: Platform) -> str:
    tag = _TAG_UNSAFE.sub("-", f"buildspec-last-{image}-{platform.normalized().slug}")
    if len(tag) <= 128:
        return tag
    return f"{tag[:100]}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Hit:
    digest: str  # of the platform image


def find(client: RegistryClient, repository: str, key: str) -> Hit | None:
    """The image built with ``key`` in ``repository``, if it is still there.

    RegistryError when the registry cannot be read (the caller then builds)."""
    ref = as_reference(repository)
    found = client.find_manifest(ref.with_tag(key_tag(key)))
    if found is None:
        return None
    try:
        document = found.json()
        annotations = document.get("annotations") or {}
        (entry,) = document.get("manifests") or [None]
        digest = entry["digest"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # not ours, or damaged: build
    if annotations.get(KEY_ANNOTATION) != key or annotations.get(VERSION_ANNOTATION) != str(KEY_VERSION):
        return None  # a record of another recipe never counts, whatever its tag says
    if not isinstance(digest, str):
        return None
    if not client.manifest_exists(ref.with_digest(digest)):
        return None  # the image itself was deleted: build it again
    return Hit(digest)


def last_inputs(client: RegistryClient, repository: str, image: str, platform: Platform) -> Mapping[str, Any] | None:
    """The inputs record of the newest build of ``image`` for ``platform``, if any."""
    found = client.find_manifest(as_reference(repository).with_tag(last_tag(image, platform)))
    if found is None:
        return None
    try:
        annotations = found.json().get("annotations") or {}
        return decode(annotations[INPUTS_ANNOTATION])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def record(client: RegistryClient, repository: str, image: str, platform: Platform, digest: str,
           inputs: Inputs, manifest: Manifest | None = None) -> None:
    """Push the key index for the image ``digest`` built from ``inputs``; ``manifest``:
    that image's manifest when the caller already fetched it (by digest, so verified)."""
    ref = as_reference(repository)
    if manifest is None or manifest.digest != digest:
        manifest = client.get_manifest(ref.with_digest(digest))
    if manifest.is_index:
        raise RegistryError(f"{repository}@{digest}: expected a platform image, found an index")
    normalized = platform.normalized()
    entry_platform: dict[str, str] = {"architecture": normalized.arch, "os": normalized.os}
    if normalized.variant:
        entry_platform["variant"] = normalized.variant
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": ARTIFACT_TYPE,
        "manifests": [{"mediaType": manifest.media_type, "digest": digest, "size": manifest.size,
                       "platform": entry_platform}],
        "annotations": {
            IMAGE_ANNOTATION: image,
            INPUTS_ANNOTATION: inputs.encode(),
            KEY_ANNOTATION: inputs.key,
            VERSION_ANNOTATION: str(inputs.version),
        },
    }
    body = json.dumps(document, indent=2).encode()
    client.put_manifest(ref, key_tag(inputs.key), OCI_INDEX, body)
    client.put_manifest(ref, last_tag(image, platform), OCI_INDEX, body)
