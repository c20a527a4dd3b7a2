"""A small OCI distribution client: manifests, blobs and tags, nothing more.

Only what assembling and pushing an image index needs is here; images themselves
are pushed by the build backends.

Transport rules, as the Docker Engine applies them (the HTTP details are in
transport.py):

* Retries: urllib3's ``Retry`` for connection errors, read errors and HTTP
  429/500/502/503/504 (GET, HEAD, PUT, POST), with backoff and ``Retry-After``;
  here, a GET whose body breaks off (reset, cut, read timeout) or fails its check
  (wrong digest, cut JSON) is asked again, ``retries`` times. Timeout:
  ``BUILDSPEC_REGISTRY_TIMEOUT`` seconds (default 30) to connect and per read.
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

import logging
import re
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning, LocationValueError

from buildspec import __version__
from buildspec.errors import RegistryError
from buildspec.registry.auth import Authenticator
from buildspec.registry.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    config_of,
    media_type_from_body,
)
from buildspec.registry.reference import (
    Reference,
    as_reference,
    is_loopback,
    validate_digest,
    validate_tag,
)
from buildspec.registry.transport import (
    BACKOFF_FACTOR,
    DEFAULT_CERTS_DIR,
    ContextAdapter,
    EnvironmentOnceSession,
    certs_d_context,
    describe_body_error,
    describe_network_error,
    digest_matches,
    env_timeout,
    error_codes,
    error_details,
    retry_policy,
    sha256_digest,
    speaks_tls,
)

# Re-exported: index.py, blobs.py, publish.py and the tests import them from here.
__all__ = ["DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST", "INDEX_MEDIA_TYPES", "OCI_INDEX", "OCI_MANIFEST", "Manifest",
           "RegistryClient", "config_of", "is_loopback", "sha256_digest"]

log = logging.getLogger(__name__)

# Connections kept per registry: a run asks from up to 16 manifest steps and 8 lookups
# at once; beyond urllib3's default of 10, connections would be closed after each use.
POOL_SIZE = 32

class RegistryClient:
    """Talks the OCI distribution API to any number of registries.

    One client keeps one HTTP session (connection reuse), the scheme each insecure
    registry turned out to speak, and the authentication answers of each registry.
    """

    def __init__(
        self,
        insecure_registries: Collection[str] = (),
        docker_config: str | None = None,
        timeout: float | None = None,
        retries: int = 4,
        *,
        certs_dir: str | Path = DEFAULT_CERTS_DIR,
        schemes_of: RegistryClient | None = None,
    ) -> None:
        """``schemes_of``: share that client's HTTPS-or-HTTP answers (one probe per
        registry per run, whichever client asks first)."""
        self.insecure_registries = frozenset(insecure_registries)
        self.timeout = timeout if timeout is not None else env_timeout()
        self.retries = retries
        self.certs_dir = Path(certs_dir)
        self._retry = retry_policy(retries)
        self._session = self._new_session(HTTPAdapter(max_retries=self._retry, pool_maxsize=POOL_SIZE))
        # Hosts with a certs.d folder get a session of their own, made on first use,
        # so the shared session is never changed while other threads use it.
        self._sessions: dict[str, requests.Session] = {}
        self._base_urls: dict[str, str] = schemes_of._base_urls if schemes_of else {}
        # One probe per registry: the threads that ask meanwhile wait for its answer.
        self._probes: dict[str, threading.Lock] = schemes_of._probes if schemes_of else {}
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

        def check(body: bytes) -> str | None:
            if ref.digest and not digest_matches(ref.digest, body):
                return (f"manifest {ref.digest} came back with content of digest {sha256_digest(body)}: "
                        "the registry (or something between) altered it")
            return None

        response = self._get_verified(ref, f"manifests/{ref.identifier}", f"manifest {ref.identifier}", check,
                                      headers={"Accept": MANIFEST_ACCEPT})
        return self._manifest(ref, response)

    def _manifest(self, ref: Reference, response: requests.Response) -> Manifest:
        body = response.content
        digest = sha256_digest(body)
        if ref.digest:
            if not digest_matches(ref.digest, body):
                raise RegistryError(
                    f"{ref.name}: manifest {ref.digest} came back with content of digest "
                    f"{digest}: the registry (or something between) altered it"
                )
            digest = ref.digest
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = media_type_from_body(body) or media_type
        return Manifest(media_type, digest, body)

    def find_manifest(self, ref: Reference | str) -> Manifest | None:
        """Like ``get_manifest``, but None when the registry has no such manifest (404)."""
        ref = as_reference(ref)
        response = self._request("GET", ref, f"manifests/{ref.identifier}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(ref, f"cannot get manifest {ref.identifier}", response)
        return self._manifest(ref, response)

    def manifest_exists(self, ref: Reference | str) -> bool:
        """Whether the registry has a manifest for ``ref`` (a HEAD request)."""
        ref = as_reference(ref)
        response = self._request("HEAD", ref, f"manifests/{ref.identifier}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error(ref, f"cannot check manifest {ref.identifier}", response)

    def manifest_digest(self, ref: Reference | str) -> str | None:
        """The digest of the manifest ``ref`` names, or None if there is none (a HEAD
        request; a GET when the registry does not send Docker-Content-Digest)."""
        ref = as_reference(ref)
        response = self._request("HEAD", ref, f"manifests/{ref.identifier}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(ref, f"cannot check manifest {ref.identifier}", response)
        digest = response.headers.get("Docker-Content-Digest")
        if digest and not validate_digest(digest):
            return digest
        return self.get_manifest(ref).digest

    def request(self, method: str, ref: Reference | str, path: str, **kwargs: Any) -> requests.Response:
        """One authenticated request to ``ref``'s repository (``path`` relative to
        ``/v2/<repository>/``, or an absolute URL the registry gave), with retries:
        for registry operations this client does not wrap (blob uploads)."""
        return self._request(method, as_reference(ref).repository_only(), path, **kwargs)

    def error(self, ref: Reference | str, what: str, response: requests.Response) -> RegistryError:
        """The RegistryError for an unexpected answer, naming registry, repository and status."""
        return self._error(as_reference(ref), what, response)

    def get_blob(self, repository_ref: Reference | str, digest: str) -> bytes:
        """Fetch a blob (following redirects to storage) and verify its digest."""
        ref = as_reference(repository_ref)
        problem = validate_digest(digest)
        if problem:
            raise RegistryError(f"{ref.name}: {problem}")
        def check(body: bytes) -> str | None:
            if not digest_matches(digest, body):
                return f"blob {digest} came back with content of digest {sha256_digest(body)}"
            return None

        return self._get_verified(ref, f"blobs/{digest}", f"blob {digest}", check, allow_redirects=True).content

    def _get_verified(self, ref: Reference, path: str, what: str, check: Callable[[bytes], str | None],
                      **kwargs: Any) -> requests.Response:
        """GET ``path`` until ``check(body)`` finds no problem: a body altered on the way
        (a wrong digest, cut JSON) is asked for again, ``retries`` times."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(BACKOFF_FACTOR * 2 ** (attempt - 1))
            response = self._request("GET", ref, path, **kwargs)
            if response.status_code != 200:
                raise self._error(ref, f"cannot get {what}", response)
            problem = check(response.content) or ""
            if not problem:
                return response
            log.debug("%s: %s (attempt %d)", ref.name, problem, attempt + 1)
        times = f" ({self.retries + 1} times)" if self.retries else ""
        raise RegistryError(f"{ref.name}: {problem}{times}")

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
            for attempt in range(self.retries + 1):  # a cut or garbled answer is asked for again
                if attempt:
                    time.sleep(BACKOFF_FACTOR * 2 ** (attempt - 1))
                response = self._request("GET", ref, url, params=params)
                if response.status_code == 404 and "NAME_UNKNOWN" in error_codes(response):
                    return []
                if response.status_code != 200:
                    raise self._error(ref, "cannot list tags", response)
                try:
                    page = response.json().get("tags") or []
                    break
                except (ValueError, AttributeError):
                    page = None
            if page is None:
                raise RegistryError(f"{ref.name}: the tag list is not valid JSON")
            tags.extend(str(tag) for tag in page)
            next_link = response.links.get("next", {}).get("url")
            url, params = (next_link, {}) if next_link else (None, params)
        return tags

    def check_access(self, repository: Reference | str) -> None:
        """Raise RegistryError unless ``repository`` can be read: one request, the first page
        of its tags (a repository the registry does not know yet is fine)."""
        ref = as_reference(repository).repository_only()
        response = self._request("GET", ref, "tags/list", params={"n": "1"})
        if response.status_code == 404 and "NAME_UNKNOWN" in error_codes(response):
            return
        if response.status_code != 200:
            raise self._error(ref, "cannot list tags", response)

    # -- transport --------------------------------------------------------------------

    @staticmethod
    def _new_session(adapter: HTTPAdapter) -> requests.Session:
        session = EnvironmentOnceSession()
        # As Docker does (docker/26.1 go/...): registries' logs tell who asked.
        session.headers["User-Agent"] = f"buildspec/{__version__} {requests.utils.default_user_agent()}"
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _session_for(self, host: str) -> requests.Session:
        """The shared session, or the one trusting ``host``'s certs.d certificates."""
        with self._lock:
            if host not in self._sessions:
                context = None if self.is_insecure(host) else self._certs_d_context(host)
                adapter = ContextAdapter(context, self._retry) if context else None
                self._sessions[host] = self._new_session(adapter) if adapter else self._session
            return self._sessions[host]

    def _base_url(self, host: str) -> str:
        """``scheme://host/v2/`` for a registry, deciding the scheme on first use."""
        known = self._base_urls.get(host)
        if known is not None:
            return known
        with self._lock:
            probe = self._probes.setdefault(host, threading.Lock())
        with probe:
            known = self._base_urls.get(host)
            if known is not None:  # another thread probed it meanwhile
                return known
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
            return self._base_urls.setdefault(host, base)

    def _speaks_tls(self, host: str) -> bool:
        return speaks_tls(host, self.timeout)

    def _certs_d_context(self, host: str) -> ssl.SSLContext | None:
        return certs_d_context(self.certs_dir, host)

    def _verify(self, url: str) -> bool:
        host = urlsplit(url).netloc
        return not self.is_insecure(host)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange (with the mounted retries); network failures become RegistryError.

        urllib3 retries what happens before an answer's headers. A GET's body is read
        here too, so that an answer that breaks off (a reset, a truncated body, a read
        timeout mid-body) is asked again, ``retries`` times with backoff."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        parts = urlsplit(url)
        read_body = method == "GET" and not kwargs.get("stream")
        for attempt in range(self.retries + 1):
            try:
                session = self._session_for(parts.netloc)
                # stream=True: requests would read the body inside request(), where a
                # broken body cannot be told from a failed connection.
                response = session.request(method, url, verify=self._verify(url),
                                           **({**kwargs, "stream": True} if read_body else kwargs))
            except requests.exceptions.RequestException as error:
                reason = describe_network_error(error)
                message = f"{parts.netloc}: {method} {parts.path} failed: {reason}"
                raise RegistryError(self._auth.scrub(message)) from None
            except LocationValueError as error:  # urllib3 refuses the host (a DNS label past 63 characters)
                message = f"{parts.netloc}: {method} {parts.path} failed: not a usable host name ({error})"
                raise RegistryError(self._auth.scrub(message)) from None
            if not read_body:
                break
            try:
                _ = response.content
                break
            except requests.exceptions.RequestException as error:
                reason = describe_body_error(error)
                log.debug("%s %s: the answer broke off (%s), attempt %d", method, url, reason, attempt + 1)
                if attempt == self.retries:
                    raise RegistryError(self._auth.scrub(
                        f"{parts.netloc}: {method} {parts.path} failed: the answer broke off ({reason}), "
                        f"{self.retries + 1} times")) from None
                time.sleep(BACKOFF_FACTOR * 2**attempt)
        log.debug("%s %s -> %s", method, url, response.status_code)
        return response

    def _request(self, method: str, ref: Reference, path: str, **kwargs: Any) -> requests.Response:
        """A request to ``ref``'s repository that answers authentication challenges.

        ``path`` is relative to ``/v2/<repository>/`` or an absolute path/URL (a
        pagination link).
        """
        base = self._base_url(ref.api_host)
        url = urljoin(f"{base}{ref.repository}/", path)
        scope = f"repository:{ref.repository}:{'pull,push' if method in ('PUT', 'POST', 'PATCH') else 'pull'}"
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
        details = error_details(response)
        if details:
            text += f" ({details})"
        if response.status_code == 403:
            text += f" (access denied; check the permissions of the credentials for {ref.registry})"
        return RegistryError(self._auth.scrub(text))
