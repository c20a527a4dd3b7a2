"""Copy an image (its manifest and blobs) from one repository to another, by digest.

This is what publishing one build to several repositories needs (`repository =
[...]`): the builds push to the first repository, and each platform image is
copied to the others before the index is pushed there, as ``skopeo copy`` or
``crane copy`` would, but by digest and verified:

* a blob the target already has (HEAD) is not sent again;
* within one registry, a blob is *mounted* from the source repository (``POST
  /blobs/uploads/?mount=DIGEST&from=REPO``): no bytes move. A registry that
  declines (it answers 202 with an upload session) gets the bytes instead;
* across registries, the blob is downloaded to a temporary file (in memory up to
  16 MiB), its digest checked, then uploaded in one PUT. The target's digest
  check at the end of the upload is the registry's own.

The manifest is pushed last, by digest, so the target never holds a manifest
whose blobs are missing. Nothing here moves a tag.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import urlencode

from buildspec.errors import RegistryError
from buildspec.registry.client import RegistryClient
from buildspec.registry.reference import Reference, as_reference

SPOOL_IN_MEMORY = 16 * 1024 * 1024
CHUNK = 1024 * 1024
_MOUNTED, _PRESENT, _COPIED = "mounted", "present", "copied"


def copy_image(client: RegistryClient, source: str, target: str, digest: str,
               log: Callable[[str], None] = lambda _: None) -> None:
    """Make ``target@digest`` exist with the same bytes as ``source@digest`` (an image manifest)."""
    src, dst = as_reference(source).repository_only(), as_reference(target).repository_only()
    if client.manifest_digest(dst.with_digest(digest)) == digest:
        log(f"{dst.name}@{digest}: already there")
        return
    manifest = client.get_manifest(src.with_digest(digest))
    if manifest.is_index:
        raise RegistryError(f"{src.name}@{digest}: expected an image manifest, found an index")
    counts = {_MOUNTED: 0, _PRESENT: 0, _COPIED: 0}
    for blob, size in _blobs_of(manifest.json(), f"{src.name}@{digest}"):
        counts[copy_blob(client, src, dst, blob, size)] += 1
    client.put_manifest(dst, digest, manifest.media_type, manifest.body)
    log(f"copied {src.name}@{digest} to {dst.name}: {counts[_MOUNTED]} blobs mounted, "
        f"{counts[_COPIED]} copied, {counts[_PRESENT]} already there")


def _blobs_of(document: dict[str, Any], where: str) -> Iterator[tuple[str, int | None]]:
    """The config and layers of an image manifest; layers with ``urls`` (foreign
    layers, Windows base images) stay where they are, as registries expect."""
    descriptors = [document.get("config"), *(document.get("layers") or [])]
    for descriptor in descriptors:
        if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
            raise RegistryError(f"{where}: the manifest has a descriptor without a digest")
        if descriptor.get("urls"):
            continue
        size = descriptor.get("size")
        yield descriptor["digest"], size if isinstance(size, int) else None


def blob_exists(client: RegistryClient, repository: Reference, digest: str) -> bool:
    response = client.request("HEAD", repository, f"blobs/{digest}", allow_redirects=True)
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    raise client.error(repository, f"cannot check blob {digest}", response)


def copy_blob(client: RegistryClient, source: Reference, target: Reference, digest: str,
              size: int | None = None) -> str:
    """Put blob ``digest`` of ``source`` into ``target``: "present", "mounted" or "copied"."""
    if blob_exists(client, target, digest):
        return _PRESENT
    location = None
    if source.registry == target.registry:
        response = client.request("POST", target, "blobs/uploads/?" + urlencode(
            {"mount": digest, "from": source.repository}))
        if response.status_code == 201:
            return _MOUNTED
        if response.status_code != 202:
            raise client.error(target, f"cannot mount blob {digest} from {source.repository}", response)
        location = response.headers.get("Location")  # the registry declined: upload here
    with _download(client, source, digest, size) as body:
        _upload(client, target, digest, body, location)
    return _COPIED


class _Spool:
    """A verified download in a temporary file, rewound for reading."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.size = 0

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def _download(client: RegistryClient, source: Reference, digest: str, size: int | None) -> _Spool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise RegistryError(f"{source.name}: cannot verify digest {digest}: unsupported algorithm")
    response = client.request("GET", source, f"blobs/{digest}", allow_redirects=True, stream=True)
    with response:
        if response.status_code != 200:
            raise client.error(source, f"cannot get blob {digest}", response)
        hasher = hashlib.new(algorithm)
        spool = _Spool()
        try:
            for chunk in response.iter_content(CHUNK):
                hasher.update(chunk)
                spool.file.write(chunk)
                spool.size += len(chunk)
        except Exception as error:  # a reset mid-body: requests raises its own errors here
            spool.file.close()
            raise RegistryError(f"{source.name}: GET blob {digest} broke off after {spool.size} bytes "
                                f"({type(error).__name__})") from None
    if hasher.hexdigest() != expected or (size is not None and spool.size != size):
        spool.file.close()
        raise RegistryError(f"{source.name}: blob {digest} came back with other content "
                            f"({spool.size} bytes, digest {algorithm}:{hasher.hexdigest()})")
    spool.file.seek(0)
    return spool


def _upload(client: RegistryClient, target: Reference, digest: str, body: _Spool, location: str | None) -> None:
    if location is None:
        response = client.request("POST", target, "blobs/uploads/")
        if response.status_code != 202 or not response.headers.get("Location"):
            raise client.error(target, "cannot start a blob upload", response)
        location = response.headers["Location"]
    url = location + ("&" if "?" in location else "?") + urlencode({"digest": digest})
    # urllib3 rewinds a file body before each retry.
    response = client.request("PUT", target, url, data=body.file, headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(body.size)})
    if response.status_code in (201, 204):
        return
    # A retried PUT may find the upload already completed by the first attempt.
    if response.status_code == 404 and blob_exists(client, target, digest):
        return
    raise client.error(target, f"cannot upload blob {digest}", response)
