"""A small OCI distribution client: manifests, blobs and tags, nothing more.

Only what assembling and pushing an image index needs is here; images themselves
are pushed by the build backends.

Transport rules, as the Docker Engine applies them:

* Retries live in urllib3's ``Retry`` mounted on the session, not in loops here:
  connection errors, read errors and HTTP 500/502/503/504 are retried with
  exponential backoff, honouring ``Retry-After`` (capped, so that a registry asking
  for an hour does not hang a build). GET, HEAD and PUT are retried: a manifest PUT
  by tag or digest is idempotent.
* A registry is *insecure* when it is on loopback (``localhost``, 127.0.0.0/8,
  ``::1``) or named in ``insecure_registries``: HTTPS without certificate
  verification is tried first and plain HTTP is used when TLS fails.
  Every other registry uses verified HTTPS, trusting in addition any ``*.crt``
  in ``/etc/docker/certs.d/<host[:port]>/`` (and a ``client.cert``/``client.key``
  pair there for mutual TLS).

Every failure is a RegistryError whose message names the registry, the repository
and the HTTP status, and never contains a credential.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import ssl
import threading
import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.retry import Retry

from buildspec.errors import RegistryError
from buildspec.registry.auth import Authenticator
from buildspec.registry.reference import (
    Reference,
    as_reference,
    is_loopback,
    validate_digest,
    validate_tag,
)

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
BACKOFF_FACTOR = 0.5
MAX_RETRY_AFTER = 30.0
_MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry stored it: the bytes are what the digest covers."""

    media_type: str
    digest: str
    body: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return document


class _Retry(Retry):
    """urllib3's Retry with Retry-After capped at MAX_RETRY_AFTER seconds."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _retry_policy(retries: int) -> Retry:
    return _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        # TLS handshake failures and the like are not transient: fail at once
        # (that is also what makes the HTTPS-then-HTTP fallback quick).
        other=0,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "PUT"}),
        respect_retry_after_header=True,
        # Hand back the last 5xx response so the error can say what the registry said.
        raise_on_status=False,
    )


class _ContextAdapter(HTTPAdapter):
    """An adapter whose TLS uses a given SSLContext (system CAs plus certs.d ones)."""

    def __init__(self, context: ssl.SSLContext, max_retries: Retry) -> None:
        self._context = context
        super().__init__(max_retries=max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _digest_matches(digest: str, data: bytes) -> bool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise RegistryError(f"cannot verify digest {digest}: unsupported algorithm {algorithm}")
    return hashlib.new(algorithm, data).hexdigest() == expected


class RegistryClient:
    """Talks the OCI distribution API to any number of registries.

    One client keeps one HTTP session (connection reuse), the scheme each insecure
    registry turned out to speak, and the authentication answers of each registry.
    """

    def __init__(
        self,
        insecure_registries: Collection[str] = (),
        docker_config: str | None = None,
        timeout: float = 30,
        retries: int = 4,
        *,
        certs_dir: str | Path = DEFAULT_CERTS_DIR,
    ) -> None:
        self.insecure_registries = frozenset(insecure_registries)
        self.timeout = timeout
        self.retries = retries
        self.certs_dir = Path(certs_dir)
        self._retry = _retry_policy(retries)
        self._session = self._new_session(HTTPAdapter(max_retries=self._retry))
        # Hosts with a certs.d folder get a session of their own, made on first use,
        # so the shared session is never changed while other threads use it.
        self._sessions: dict[str, requests.Session] = {}
        self._base_urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._auth = Authenticator(self._send, docker_config)

    def __repr__(self) -> str:
        insecure = sorted(self.insecure_registries)
        return f"RegistryClient(insecure_registries={insecure!r}, auth={self._auth!r})"

    def close(self) -> None:
        for session in {self._session, *self._sessions.values()}:
            session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -------------------------------------------------------------------

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` (host[:port]) gets unverified TLS and the HTTP fallback."""
        return host in self.insecure_registries or is_loopback(host)

    def get_manifest(self, ref: Reference | str) -> Manifest:
        """Fetch the manifest ``ref`` points at; verify its bytes when fetched by digest."""
        ref = as_reference(ref)
        response = self._request("GET", ref, f"manifests/{ref.identifier}", headers={"Accept": _MANIFEST_ACCEPT})
        if response.status_code != 200:
            raise self._error(ref, f"cannot get manifest {ref.identifier}", response)
        return self._manifest(ref, response)

    def _manifest(self, ref: Reference, response: requests.Response) -> Manifest:
        body = response.content
        digest = sha256_digest(body)
        if ref.digest:
            if not _digest_matches(ref.digest, body):
                raise RegistryError(
                    f"{ref.name}: manifest {ref.digest} came back with content of digest "
                    f"{digest}: the registry (or something between) altered it"
                )
            digest = ref.digest
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = _media_type_from_body(body) or media_type
        return Manifest(media_type, digest, body)

    def find_manifest(self, ref: Reference | str) -> Manifest | None:
        """Like ``get_manifest``, but None when the registry has no such manifest (404)."""
        ref = as_reference(ref)
        response = self._request("GET", ref, f"manifests/{ref.identifier}", headers={"Accept": _MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(ref, f"cannot get manifest {ref.identifier}", response)
        return self._manifest(ref, response)

    def manifest_exists(self, ref: Reference | str) -> bool:
        """Whether the registry has a manifest for ``ref`` (a HEAD request)."""
        ref = as_reference(ref)
        response = self._request("HEAD", ref, f"manifests/{ref.identifier}", headers={"Accept": _MANIFEST_ACCEPT})
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error(ref, f"cannot check manifest {ref.identifier}", response)

    def get_blob(self, repository_ref: Reference | str, digest: str) -> bytes:
        """Fetch a blob (following redirects to storage) and verify its digest."""
        ref = as_reference(repository_ref)
        problem = validate_digest(digest)
        if problem:
            raise RegistryError(f"{ref.name}: {problem}")
        response = self._request("GET", ref, f"blobs/{digest}", allow_redirects=True)
        if response.status_code != 200:
            raise self._error(ref, f"cannot get blob {digest}", response)
        if not _digest_matches(digest, response.content):
            raise RegistryError(
                f"{ref.name}: blob {digest} came back with content of digest {sha256_digest(response.content)}"
            )
        return response.content

    def put_manifest(self, repository_ref: Reference | str, tag_or_digest: str, media_type: str, body: bytes) -> str:
        """Push ``body`` under a tag or digest; return its digest once the registry
        confirmed it stored exactly these bytes."""
        ref = as_reference(repository_ref).repository_only()
        # A tag never contains ':', a digest always does.
        problem = validate_digest(tag_or_digest) if ":" in tag_or_digest else validate_tag(tag_or_digest)
        if problem:
            raise RegistryError(f"{ref.name}: {problem}")
        expected = sha256_digest(body)
        headers = {"Content-Type": media_type}
        response = self._request("PUT", ref, f"manifests/{tag_or_digest}", headers=headers, data=body)
        if response.status_code not in (200, 201, 202):
            raise self._error(ref, f"cannot push manifest {tag_or_digest}", response)
        returned = response.headers.get("Docker-Content-Digest")
        if returned is None:
            # The header is optional in the OCI spec: fetching by our digest proves
            # the registry holds exactly these bytes (get_manifest verifies them).
            self.get_manifest(ref.with_digest(expected))
        elif returned != expected:
            raise RegistryError(
                f"{ref.name}: the registry stored manifest {tag_or_digest} as {returned}, "
                f"but the bytes sent have digest {expected}"
            )
        log.debug("pushed %s:%s (%s)", ref.name, tag_or_digest, expected)
        return expected

    def list_tags(self, repository: Reference | str, *, page_size: int | None = None) -> list[str]:
        """All tags of ``repository``, following ``Link`` pagination.

        A repository the registry does not know has no tags: the empty list.
        """
        ref = as_reference(repository).repository_only()
        params: dict[str, str] = {"n": str(page_size)} if page_size else {}
        tags: list[str] = []
        url: str | None = "tags/list"
        while url is not None:
            response = self._request("GET", ref, url, params=params)
            if response.status_code == 404 and "NAME_UNKNOWN" in _error_codes(response):
                return []
            if response.status_code != 200:
                raise self._error(ref, "cannot list tags", response)
            try:
                page = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{ref.name}: the tag list is not valid JSON") from None
            tags.extend(str(tag) for tag in page)
            next_link = response.links.get("next", {}).get("url")
            url, params = (next_link, {}) if next_link else (None, params)
        return tags

    def check_access(self, repository: Reference | str) -> None:
        """Raise RegistryError unless ``repository`` can be read: one request, the first page
        of its tags (a repository the registry does not know yet is fine)."""
        ref = as_reference(repository).repository_only()
        response = self._request("GET", ref, "tags/list", params={"n": "1"})
        if response.status_code == 404 and "NAME_UNKNOWN" in _error_codes(response):
            return
        if response.status_code != 200:
            raise self._error(ref, "cannot list tags", response)

    # -- transport --------------------------------------------------------------------

    @staticmethod
    def _new_session(adapter: HTTPAdapter) -> requests.Session:
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _session_for(self, host: str) -> requests.Session:
        """The shared session, or the one trusting ``host``'s certs.d certificates."""
        with self._lock:
            if host not in self._sessions:
                context = None if self.is_insecure(host) else self._certs_d_context(host)
                adapter = _ContextAdapter(context, self._retry) if context else None
                self._sessions[host] = self._new_session(adapter) if adapter else self._session
            return self._sessions[host]

    def _base_url(self, host: str) -> str:
        """``scheme://host/v2/`` for a registry, deciding the scheme on first use."""
        with self._lock:
            if host in self._base_urls:
                return self._base_urls[host]
        scheme = "https"
        if self.is_insecure(host):
            # The user (or loopback) made this registry insecure: a warning per
            # request about the unverified certificate would only be noise.
            hostname = urlsplit(f"//{host}").hostname or host
            warnings.filterwarnings(
                "ignore",
                message=f"Unverified HTTPS request is being made to host '{re.escape(hostname)}'",
                category=InsecureRequestWarning,
            )
            scheme = "https" if self._speaks_tls(host) else "http"
        base = f"{scheme}://{host}/v2/"
        log.debug("registry %s: using %s", host, base)
        with self._lock:
            # Two threads may both probe a new registry; they reach the same answer.
            return self._base_urls.setdefault(host, base)

    def _speaks_tls(self, host: str) -> bool:
        """Probe an insecure registry: does it answer HTTPS at all?"""
        try:
            # Unverified on purpose: only insecure registries are probed.
            response = requests.get(
                f"https://{host}/v2/",
                verify=False,  # noqa: S501
                timeout=self.timeout,
                allow_redirects=False,
            )
            response.close()
            return True
        except requests.exceptions.SSLError:
            return False
        except requests.exceptions.ConnectionError:
            # As Docker: any failure over TLS means try plain HTTP; if that fails too,
            # the error the user sees is the HTTP one.
            return False

    def _certs_d_context(self, host: str) -> ssl.SSLContext | None:
        """System CAs plus ``certs.d/<host>/*.crt`` (and a client pair), or None."""
        directory = self.certs_dir / host
        if not directory.is_dir():
            return None
        cas = sorted(directory.glob("*.crt"))
        certs = sorted(directory.glob("*.cert"))
        if not cas and not certs:
            return None
        context = ssl.create_default_context()
        try:
            for ca in cas:
                context.load_verify_locations(cafile=str(ca))
            for cert in certs:
                key = cert.with_suffix(".key")
                if not key.is_file():
                    raise RegistryError(f"{host}: client certificate {cert} has no {key.name}")
                context.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError) as error:
            raise RegistryError(f"{host}: cannot load certificates from {directory}: {error}") from None
        return context

    def _verify(self, url: str) -> bool:
        host = urlsplit(url).netloc
        return not self.is_insecure(host)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange (with the mounted retries); network failures become RegistryError."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        try:
            session = self._session_for(urlsplit(url).netloc)
            response = session.request(method, url, verify=self._verify(url), **kwargs)
        except requests.exceptions.RequestException as error:
            parts = urlsplit(url)
            reason = _describe_network_error(error)
            raise RegistryError(self._auth.scrub(f"{parts.netloc}: {method} {parts.path} failed: {reason}")) from None
        log.debug("%s %s -> %s", method, url, response.status_code)
        return response

    def _request(self, method: str, ref: Reference, path: str, **kwargs: Any) -> requests.Response:
        """A request to ``ref``'s repository that answers authentication challenges.

        ``path`` is relative to ``/v2/<repository>/`` or an absolute path/URL (a
        pagination link).
        """
        base = self._base_url(ref.api_host)
        url = urljoin(f"{base}{ref.repository}/", path)
        scope = f"repository:{ref.repository}:{'pull,push' if method == 'PUT' else 'pull'}"
        headers = dict(kwargs.pop("headers", {}))
        auth = self._auth.headers(ref.registry, scope)
        response = self._send(method, url, headers={**headers, **auth}, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate")
        if not challenge:
            raise self._error(ref, f"{method} {path} refused", response)
        # A rejected Bearer token may just have expired: get a new one, once.
        # Rejected Basic credentials will not get better by sending them again.
        if auth.get("Authorization", "").startswith("Basic "):
            raise RegistryError(self._auth.rejected_message(ref.registry, ref.name, 401))
        self._auth.forget(ref.registry, scope)
        self._auth.answer(ref.registry, scope, challenge, ref.name)
        response = self._send(method, url, headers={**headers, **self._auth.headers(ref.registry, scope)}, **kwargs)
        if response.status_code == 401:
            raise RegistryError(self._auth.rejected_message(ref.registry, ref.name, 401))
        return response

    def _error(self, ref: Reference, what: str, response: requests.Response) -> RegistryError:
        """``registry/repo: what: HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)``."""
        text = f"{ref.name}: {what}: HTTP {response.status_code} {response.reason}"
        details = _error_details(response)
        if details:
            text += f" ({details})"
        if response.status_code == 403:
            text += f" (access denied; check the permissions of the credentials for {ref.registry})"
        return RegistryError(self._auth.scrub(text))


def _registry_errors(response: requests.Response) -> list[dict[str, Any]]:
    """The ``errors`` array of a distribution error body, if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _error_codes(response: requests.Response) -> set[str]:
    return {str(error.get("code")) for error in _registry_errors(response)}


def _error_details(response: requests.Response) -> str:
    parts: Iterable[str] = (
        f"{error.get('code', 'ERROR')}: {error.get('message', '')}".rstrip(": ") for error in _registry_errors(response)
    )
    return "; ".join(parts)[:500]


def _describe_network_error(error: requests.exceptions.RequestException) -> str:
    """A one-line reason without urllib3's nested reprs."""
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error (certificate not trusted? add its CA to certs.d, or mark the registry insecure)"
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "cannot connect, even after retrying (is the registry running and reachable?)"
    return type(error).__name__


def _media_type_from_body(body: bytes) -> str | None:
    """The media type a manifest declares or, lacking that, the one its shape implies."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    return None


def config_of(manifest: Manifest | Mapping[str, Any]) -> str:
    """The config blob digest of an image manifest."""
    document = manifest.json() if isinstance(manifest, Manifest) else manifest
    config = document.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str):
        raise RegistryError("the image manifest has no config descriptor")
    return digest
