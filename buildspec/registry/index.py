"""Assemble the per-platform images of one build into an image index and push it.

Each backend pushes one image per platform (to a platform tag in the target
repository); this module lists them in one index, the way ``docker manifest``,
manifest-tool and ``docker buildx imagetools create`` do, but checked:

* An entry may point at an index instead of an image: buildx with provenance on
  pushes an index holding the image plus attestation manifests (platform
  ``unknown/unknown``, annotation ``vnd.docker.reference.type``). The one child
  whose platform matches the entry is used, and the attestation manifests that
  name it (``vnd.docker.reference.digest``) are carried into the new index after
  all the platform images, as ``docker buildx build --push`` lays them out.
* The image's config is fetched and its os/architecture compared with the platform
  that was asked for (``arm64/v8`` is ``arm64``): a builder that ignored
  ``--platform`` must not produce an index that lies. A variant the config lacks
  is taken from the requested platform (kaniko never writes one, so linux/arm/v7
  comes out as plain ``arm`` in the config, but the index must say ``v7``).
* Every platform appears once; the manifests keep the order of the entries.

Which format the index gets:

* A Docker manifest list (``application/vnd.docker.distribution.manifest.list.v2+json``)
  when EVERY child is a Docker v2 schema 2 manifest and no annotations are asked
  for: older Docker clients and registries understand only that, and it is what
  ``docker manifest`` and manifest-tool produce for such images.
* An OCI image index (``application/vnd.oci.image.index.v1+json``) otherwise:
  any OCI child, a mixture (an OCI index may reference Docker media types), or
  annotations (a manifest list cannot carry them, and they must not be dropped).

The JSON is deterministic: fixed key order, annotations sorted, entries in the
order given, so the same inputs always give the same digest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from buildspec.errors import RegistryError
from buildspec.platform import Platform, PlatformError
from buildspec.registry.client import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    RegistryClient,
    config_of,
    sha256_digest,
)
from buildspec.registry.reference import Reference, as_reference, validate_digest, validate_tag

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_SUBJECT = "vnd.docker.reference.digest"
_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class IndexEntry:
    """One per-platform image: ``digest`` is its manifest (or buildx index) in the repository."""

    platform: Platform
    digest: str


@dataclass(frozen=True)
class PublishedIndex:
    repository: str  # registry/path
    digest: str
    media_type: str
    tags: tuple[str, ...]
    manifests: tuple[tuple[str, str], ...]  # (platform, digest), in entry order


@dataclass(frozen=True)
class ResolvedChild:
    """An image manifest checked against its platform, ready to be listed in an index."""

    media_type: str
    digest: str
    size: int
    platform: Platform
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    attestations: tuple[Mapping[str, Any], ...] = ()  # descriptors, copied as they are


def _descriptor_platform(descriptor: Mapping[str, Any]) -> Platform | None:
    """The platform of an index entry, or None for attestations and unknown/unknown."""
    annotations = descriptor.get("annotations") or {}
    if ATTESTATION_ANNOTATION in annotations:
        return None
    platform = descriptor.get("platform") or {}
    os_, arch = platform.get("os"), platform.get("architecture")
    if not os_ or not arch or os_ == "unknown" or arch == "unknown":
        return None
    text = f"{os_}/{arch}" + (f"/{platform['variant']}" if platform.get("variant") else "")
    try:
        return Platform.parse(text).normalized()
    except PlatformError:
        return None


def _compatible(a: Platform, b: Platform) -> bool:
    """Same os and arch, and variants equal or one of them unspecified."""
    a, b = a.normalized(), b.normalized()
    if (a.os, a.arch) != (b.os, b.arch):
        return False
    return a.variant == b.variant or a.variant is None or b.variant is None


def select_child(index: Mapping[str, Any], platform: Platform, where: str) -> Mapping[str, Any]:
    """The one descriptor in ``index`` that is the image for ``platform``.

    ``where`` (``repo@digest``) starts error messages.
    """
    descriptors = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    platforms = [(d, _descriptor_platform(d)) for d in descriptors]
    real = [(d, p) for d, p in platforms if p is not None]
    matches = [d for d, p in real if _compatible(p, platform)]
    if len(matches) > 1:
        exact = [d for d, p in real if p == platform.normalized()]
        matches = exact if len(exact) == 1 else matches
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(str(p) for _, p in real) or "no platform images"
    if not matches:
        raise RegistryError(
            f"{where}: this index has no image for {platform} (it has: {found}): "
            "the builder did not build the requested platform"
        )
    raise RegistryError(f"{where}: this index has several images matching {platform} ({found})")


def index_platform(requested: Platform, config: Mapping[str, Any], where: str) -> Platform:
    """The platform to list for an image: the config's, checked against ``requested``.

    Raises RegistryError when the image was built for another platform.
    """
    os_, arch, variant = config.get("os"), config.get("architecture"), config.get("variant")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        raise RegistryError(f"{where}: the image config has no os/architecture")
    try:
        built = Platform.parse(f"{os_}/{arch}" + (f"/{variant}" if variant else ""))
    except PlatformError:
        raise RegistryError(f"{where}: the image config names an unknown platform") from None
    wanted = requested.normalized()
    built = built.normalized()
    same_variant = wanted.variant is None or built.variant in (None, wanted.variant)
    if (built.os, built.arch) != (wanted.os, wanted.arch) or not same_variant:
        raise RegistryError(
            f"{where}: the image was built for {built}, but {requested} was requested: the builder ignored the platform"
        )
    return Platform(wanted.os, wanted.arch, wanted.variant or built.variant).normalized()


def resolve_entry(client: RegistryClient, repository: Reference, entry: IndexEntry) -> ResolvedChild:
    """Fetch an entry's manifest (and config), pick the image, check its platform."""
    where = f"{repository.name}@{entry.digest} ({entry.platform})"
    manifest = client.get_manifest(repository.with_digest(entry.digest))
    attestations: tuple[Mapping[str, Any], ...] = ()
    if manifest.is_index:
        child = select_child(manifest.json(), entry.platform, where).get("digest")
        if not isinstance(child, str) or validate_digest(child):
            raise RegistryError(f"{where}: the index entry for {entry.platform} has no valid digest")
        attestations = attestations_of(manifest.json(), child)
        manifest = client.get_manifest(repository.with_digest(child))
    return resolve_manifest(client, repository, entry.platform, manifest, attestations)


def resolve_manifest(client: RegistryClient, repository: Reference, platform: Platform, manifest: Manifest,
                     attestations: tuple[Mapping[str, Any], ...] = ()) -> ResolvedChild:
    """An image manifest already fetched from ``repository``: fetch its config and check
    its platform (what ``resolve_entry`` does once it holds the image's manifest)."""
    where = f"{repository.name}@{manifest.digest} ({platform})"
    if manifest.is_index:
        raise RegistryError(f"{where}: an index inside an index is not supported")
    if manifest.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise RegistryError(f"{where}: unsupported manifest type {manifest.media_type}")
    try:
        config: Any = json.loads(client.get_blob(repository, config_of(manifest)))
    except ValueError:
        raise RegistryError(f"{where}: the image config is not valid JSON") from None
    if not isinstance(config, dict):
        raise RegistryError(f"{where}: the image config is not a JSON object")
    features = config.get("os.features") or ()
    return ResolvedChild(
        media_type=manifest.media_type,
        digest=manifest.digest,
        size=manifest.size,
        platform=index_platform(platform, config, where),
        os_version=config.get("os.version") or None,
        os_features=tuple(str(f) for f in features),
        attestations=attestations,
    )


def attestations_of(index: Mapping[str, Any], subject: str) -> tuple[Mapping[str, Any], ...]:
    """The attestation manifests of ``index`` that describe the image ``subject``."""
    return tuple(
        d for d in index.get("manifests") or []
        if isinstance(d, dict) and isinstance(d.get("annotations"), dict)
        and d["annotations"].get(ATTESTATION_ANNOTATION) == "attestation-manifest"
        and d["annotations"].get(ATTESTATION_SUBJECT) == subject
    )


def render_index(
    children: Sequence[ResolvedChild], annotations: Mapping[str, str] = _NO_ANNOTATIONS
) -> tuple[str, bytes]:
    """The index document for ``children``: (media type, deterministic JSON bytes)."""
    if not children:
        raise RegistryError("an image index needs at least one platform image")
    seen: dict[tuple[Platform, str | None], ResolvedChild] = {}
    for child in children:
        key = (child.platform, child.os_version)
        if key in seen:
            raise RegistryError(f"platform {child.platform} appears twice: {seen[key].digest} and {child.digest}")
        seen[key] = child
    docker_list = not annotations and all(c.media_type == DOCKER_MANIFEST and not c.attestations for c in children)
    media_type = DOCKER_MANIFEST_LIST if docker_list else OCI_INDEX
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [_descriptor(child) for child in children]
        + [dict(a) for child in children for a in child.attestations],
    }
    if annotations:
        document["annotations"] = {key: annotations[key] for key in sorted(annotations)}
    return media_type, json.dumps(document, indent=2, ensure_ascii=False).encode()


def _descriptor(child: ResolvedChild) -> dict[str, Any]:
    platform: dict[str, Any] = {"architecture": child.platform.arch, "os": child.platform.os}
    if child.os_version:
        platform["os.version"] = child.os_version
    if child.os_features:
        platform["os.features"] = list(child.os_features)
    if child.platform.variant:
        platform["variant"] = child.platform.variant
    return {
        "mediaType": child.media_type,
        "digest": child.digest,
        "size": child.size,
        "platform": platform,
    }


def _repository(repository: str) -> Reference:
    ref = as_reference(repository)
    if ref.tag or ref.digest:
        raise RegistryError(f"'{repository}': expected a repository without tag or digest")
    return ref


def assemble_index(
    client: RegistryClient,
    repository: str,
    entries: Sequence[IndexEntry],
    annotations: Mapping[str, str] = _NO_ANNOTATIONS,
) -> tuple[str, bytes]:
    """The index listing ``entries`` (all in ``repository``): (media type, body)."""
    ref = _repository(repository)
    children = [resolve_entry(client, ref, entry) for entry in entries]
    return render_index(children, annotations)


def publish_index(
    client: RegistryClient,
    repository: str,
    entries: Sequence[IndexEntry],
    tags: Sequence[str],
    annotations: Mapping[str, str] = _NO_ANNOTATIONS,
) -> PublishedIndex:
    """Assemble the index and push the same bytes under every tag (by digest if none)."""
    ref = _repository(repository)
    for tag in tags:
        problem = validate_tag(tag)
        if problem:
            raise RegistryError(f"{ref.name}: {problem}")
    children = [resolve_entry(client, ref, entry) for entry in entries]
    media_type, body = render_index(children, annotations)
    digest = sha256_digest(body)
    for target in tags or [digest]:
        # put_manifest checks the registry's digest against these bytes.
        client.put_manifest(ref, target, media_type, body)
    return PublishedIndex(
        repository=ref.name,
        digest=digest,
        media_type=media_type,
        tags=tuple(tags),
        manifests=tuple((str(child.platform), child.digest) for child in children),
    )
