"""An in-memory OCI distribution registry on a loopback port (for unit tests).

Just what publishing needs: manifests by tag and digest (GET, HEAD, PUT), blobs
(GET, HEAD), monolithic uploads (POST then PUT ?digest=) and cross-repository
mounts (POST ?mount=&from=, declined when ``mount`` is False, as registries with
mounts disabled answer: 202 and an upload session). Digests are checked as a
registry checks them. ``fault(request)`` may answer a request instead (return a
Reply) to inject failures; every request is recorded in ``requests``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

from faulty_proxy import Reply, Request, ScriptedServer

_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<id>[^/]*)$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(status: int, code: str) -> Reply:
    return Reply(status, {"Content-Type": "application/json"},
                 json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode())


class FakeRegistry:
    def __init__(self, *, mount: bool = True, fault: Callable[[Request], Reply | None] | None = None) -> None:
        self.mount = mount
        self.fault = fault
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag or digest) -> (type, body)
        self.blobs: dict[tuple[str, str], bytes] = {}  # (repo, digest) -> bytes
        self._uploads: dict[str, str] = {}  # id -> repo
        self._ids = itertools.count(1)
        self.server = ScriptedServer(self._answer)

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.stop()

    # -- filling it -------------------------------------------------------------------

    def add_blob(self, repo: str, data: bytes) -> str:
        self.blobs[(repo, digest_of(data))] = data
        return digest_of(data)

    def add_image(self, repo: str, os: str = "linux", arch: str = "amd64", layers: int = 2,
                  seed: str = "") -> tuple[str, bytes]:
        """An image manifest with its config and layers; returns (digest, manifest bytes)."""
        config = json.dumps({"os": os, "architecture": arch, "rootfs": {"type": "layers"}, "seed": seed}).encode()
        layer_blobs = [f"layer {i} of {seed}{arch}".encode() for i in range(layers)]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.add_blob(repo, config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.add_blob(repo, b), "size": len(b)} for b in layer_blobs],
        }).encode()
        digest = digest_of(manifest)
        self.manifests[(repo, digest)] = ("application/vnd.oci.image.manifest.v1+json", manifest)
        return digest, manifest

    def tags(self, repo: str) -> dict[str, str]:
        """tag -> digest of what it points at."""
        return {ref: digest_of(body) for (r, ref), (_, body) in self.manifests.items()
                if r == repo and not ref.startswith("sha256:")}

    # -- serving ----------------------------------------------------------------------

    def _answer(self, request: Request) -> Reply:
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if url.path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        if match := _MANIFEST.match(url.path):
            return self._manifest(request, match["repo"], match["ref"])
        if match := _UPLOAD.match(url.path):
            return self._upload(request, match["repo"], match["id"], query)
        if match := _BLOB.match(url.path):
            data = self.blobs.get((match["repo"], match["digest"]))
            if data is None:
                return _error(404, "BLOB_UNKNOWN")
            return Reply(200, {"Content-Length": str(len(data)), "Docker-Content-Digest": match["digest"]},
                         b"" if request.method == "HEAD" else data)
        return _error(404, "NOT_FOUND")

    def _manifest(self, request: Request, repo: str, ref: str) -> Reply:
        if request.method == "PUT":
            digest = digest_of(request.body)
            if ref.startswith("sha256:") and ref != digest:
                return _error(400, "DIGEST_INVALID")
            document = json.loads(request.body)
            for child in [*document.get("manifests", [])]:
                if (repo, child["digest"]) not in self.manifests:
                    return _error(400, "MANIFEST_BLOB_UNKNOWN")
            for blob in [document.get("config"), *document.get("layers", [])]:
                if blob and (repo, blob["digest"]) not in self.blobs:
                    return _error(400, "MANIFEST_BLOB_UNKNOWN")
            media_type = request.headers.get("Content-Type", "")
            self.manifests[(repo, ref)] = self.manifests[(repo, digest)] = (media_type, request.body)
            return Reply(201, {"Docker-Content-Digest": digest})
        stored = self.manifests.get((repo, ref))
        if stored is None:
            return _error(404, "MANIFEST_UNKNOWN")
        media_type, body = stored
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body),
                   "Content-Length": str(len(body))}
        return Reply(200, headers, b"" if request.method == "HEAD" else body)

    def _upload(self, request: Request, repo: str, upload: str, query: dict[str, list[str]]) -> Reply:
        if request.method == "POST":
            if "mount" in query and self.mount:
                digest, source = query["mount"][0], query.get("from", [""])[0]
                if (source, digest) in self.blobs:
                    self.blobs[(repo, digest)] = self.blobs[(source, digest)]
                    return Reply(201, {"Docker-Content-Digest": digest})
            upload = str(next(self._ids))
            self._uploads[upload] = repo
            return Reply(202, {"Location": f"/v2/{repo}/blobs/uploads/{upload}?_state=x"})
        if request.method == "PUT":
            if self._uploads.pop(upload, None) != repo:
                return _error(404, "BLOB_UPLOAD_UNKNOWN")
            digest = query.get("digest", [""])[0]
            if digest_of(request.body) != digest:
                return _error(400, "DIGEST_INVALID")
            self.blobs[(repo, digest)] = request.body
            return Reply(201, {"Docker-Content-Digest": digest})
        return _error(405, "UNSUPPORTED")
