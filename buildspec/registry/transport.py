"""The HTTP side of the registry client: retries, timeouts, TLS and error texts.

* Retries live in urllib3's ``Retry`` mounted on the session: connection errors,
  read errors and HTTP 429/500/502/503/504, with exponential backoff and
  ``Retry-After`` (capped at MAX_RETRY_AFTER). What urllib3 cannot retry (a body
  that breaks off, a body that fails its check) is retried in client.py.
* ``certs_d_context``: the system CAs plus ``/etc/docker/certs.d/<host>/*.crt``
  (and a client pair), as the Docker Engine trusts a registry.
* ``speaks_tls``: the probe that decides HTTPS or HTTP for an insecure registry.
* The error helpers turn a distribution error body or a requests exception into
  one line of text.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.util.retry import Retry

from buildspec.errors import RegistryError

DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
BACKOFF_FACTOR = 0.5
MAX_RETRY_AFTER = 30.0
DEFAULT_TIMEOUT = 30.0

class _Retry(Retry):
    """urllib3's Retry with Retry-After capped at MAX_RETRY_AFTER seconds."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def retry_policy(retries: int) -> Retry:
    return _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        # TLS handshake failures and the like are not transient: fail at once
        # (that is also what makes the HTTPS-then-HTTP fallback quick).
        other=0,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=(429, 500, 502, 503, 504),
        # POST only starts (or mounts) a blob upload: a repeated one leaves an unused
        # upload session, which the registry expires.
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "POST"}),
        respect_retry_after_header=True,
        # Hand back the last 5xx response so the error can say what the registry said.
        raise_on_status=False,
    )


class _NoNetrc(AuthBase):
    """A session's default auth that adds nothing: with none, requests fills in ``~/.netrc``."""

    def __call__(self, request: Any) -> Any:
        return request


class EnvironmentOnceSession(requests.Session):
    """A session that reads the environment once per registry, not once per request,
    and never reads ``~/.netrc``.

    ``requests`` looks up the proxies (``HTTPS_PROXY``, ``NO_PROXY``...) and the CA
    bundle (``REQUESTS_CA_BUNDLE``) in ``os.environ`` for every request: about a
    third of a millisecond of CPU each, on the 300 requests of a 20-image run. A run's
    environment does not change, so the answer for a scheme and host is kept. What
    requests does with it (and on redirects) is unchanged.

    ``.netrc``: requests would send the login it holds for a host (its port ignored) as
    Basic authentication on every request without one of its own, in place of the
    ``Authorization`` header buildspec set, and again after redirects. Docker never reads
    it: credentials come from Docker's config and helpers only (auth.py), so a git
    login for ``gitlab.example.com`` never reaches the registry ``gitlab.example.com:5050``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _NoNetrc()
        self._settings: dict[tuple[object, ...], Any] = {}

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """After a redirect: the ``Authorization`` header stays only on the same host, as
        in requests; no ``.netrc`` login is added."""
        headers = prepared_request.headers
        strip = self.should_strip_auth(  # type: ignore[no-untyped-call]  # (requests' own rule, unannotated)
            response.request.url, prepared_request.url)
        if "Authorization" in headers and strip:
            del headers["Authorization"]

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        found = self._settings.get(key)
        if found is None:
            found = self._settings.setdefault(key, super().merge_environment_settings(
                url, proxies, stream, verify, cert))
        return {**found, "proxies": dict(found["proxies"])}


class ContextAdapter(HTTPAdapter):
    """An adapter whose TLS uses a given SSLContext (system CAs plus certs.d ones)."""

    def __init__(self, context: ssl.SSLContext, max_retries: Retry) -> None:
        self._context = context
        super().__init__(max_retries=max_retries, pool_maxsize=32)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def env_timeout() -> float:
    """``BUILDSPEC_REGISTRY_TIMEOUT`` seconds (connect, and each read), else DEFAULT_TIMEOUT."""
    text = os.environ.get("BUILDSPEC_REGISTRY_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        value = DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_matches(digest: str, data: bytes) -> bool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise RegistryError(f"cannot verify digest {digest}: unsupported algorithm {algorithm}")
    return hashlib.new(algorithm, data).hexdigest() == expected

def speaks_tls(host: str, timeout: float) -> bool:
    """Probe an insecure registry: does it answer HTTPS at all?

    A bare TLS handshake, unverified on purpose (only insecure registries are probed):
    no HTTP request, and no CA bundle loaded (``requests`` with ``verify=False`` still
    reads the system's CAs, about 0.1 s of CPU per probe). When the environment names
    a proxy for the registry, the probe goes through it, as the requests will."""
    if requests.utils.get_environ_proxies(f"https://{host}/v2/"):
        return _speaks_tls_via_proxy(host, timeout)
    hostname = urlsplit(f"//{host}").hostname or host
    port = urlsplit(f"//{host}").port or 443
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((hostname, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=hostname):
            return True
    except (ssl.SSLError, OSError):
        # As Docker: any failure over TLS means try plain HTTP; if that fails too,
        # the error the user sees is the HTTP one.
        return False


def _speaks_tls_via_proxy(host: str, timeout: float) -> bool:
    try:
        # Unverified on purpose: only insecure registries are probed.
        response = requests.get(
            f"https://{host}/v2/",
            verify=False,  # noqa: S501
            timeout=timeout,
            allow_redirects=False,
        )
        response.close()
        return True
    except requests.exceptions.SSLError:
        return False
    except requests.exceptions.ConnectionError:
        return False

def certs_d_context(certs_dir: Path, host: str) -> ssl.SSLContext | None:
    """System CAs plus ``certs.d/<host>/*.crt`` (and a client pair), or None."""
    directory = certs_dir / host
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

def registry_errors(response: requests.Response) -> list[dict[str, Any]]:
    """The ``errors`` array of a distribution error body, if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def error_codes(response: requests.Response) -> set[str]:
    return {str(error.get("code")) for error in registry_errors(response)}


def error_details(response: requests.Response) -> str:
    parts: Iterable[str] = (
        f"{error.get('code', 'ERROR')}: {error.get('message', '')}".rstrip(": ") for error in registry_errors(response)
    )
    return "; ".join(parts)[:500]


def describe_network_error(error: requests.exceptions.RequestException) -> str:
    """A one-line reason without urllib3's nested reprs."""
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error (certificate not trusted? add its CA to certs.d, or mark the registry insecure)"
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "cannot connect, even after retrying (is the registry running and reachable?)"
    return type(error).__name__


def describe_body_error(error: requests.exceptions.RequestException) -> str:
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection closed or reset before the whole body came"
    if isinstance(error, requests.exceptions.ConnectionError) and "timed out" in str(error).lower():
        return "timed out while reading the body"
    return describe_network_error(error)
