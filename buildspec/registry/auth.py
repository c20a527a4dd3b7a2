"""Registry credentials and the token dance, the way the Docker CLI does them.

Credentials come from the Docker client configuration (``$DOCKER_CONFIG/config.json``
or ``~/.docker/config.json``): ``auths`` entries, ``credHelpers`` and ``credsStore``.
docker-py already implements that lookup, credential helpers included, so it is
reused here instead of being rewritten; this module only normalizes its answer.

A registry says how it wants to be authenticated by answering 401 with a
``WWW-Authenticate`` challenge (RFC 7235):

* ``Basic realm="..."``: send the credentials on every request to that registry.
* ``Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"``:
  GET the realm with ``service`` and ``scope`` (with Basic credentials when there
  are any, anonymously otherwise; a Docker identity token is exchanged with an
  OAuth2 ``refresh_token`` POST instead) and send the ``token`` (or ``access_token``)
  it returns as ``Authorization: Bearer``. Tokens are cached per registry and scope
  until they expire.

Secrets never leave this module except inside an ``Authorization`` header: they are
kept out of reprs, logs and error messages, and :meth:`Authenticator.scrub` removes
any that a server might echo back into a message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from buildspec.errors import RegistryError
from buildspec.registry.reference import DOCKER_HUB, is_loopback

log = logging.getLogger(__name__)

# Tokens without an expires_in live 60 seconds (distribution's token spec).
_DEFAULT_TOKEN_LIFETIME = 60.0
# Renew a little early so a token does not expire between check and use.
_TOKEN_MARGIN = 5.0

_SCHEME_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*")
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


@dataclass(frozen=True)
class Credentials:
    """What the Docker configuration holds for one registry.

    ``password`` and ``identity_token`` are excluded from repr (and so from str)
    so that a credentials object in a log line or a traceback shows no secret.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity_token) if s)


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge; ``scheme`` is lowercase."""

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="..."``; None if unreadable.

    Only the first challenge of a header is read: registries send one.
    """
    match = _SCHEME_RE.match(header)
    if not match:
        return None
    scheme = match.group(1).lower()
    params: dict[str, str] = {}
    pos = match.end()
    while pos < len(header):
        param = _PARAM_RE.match(header, pos)
        if not param or param.end() == pos:
            break
        value = param.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[param.group(1).lower()] = value
        pos = param.end()
    return Challenge(scheme, params)


def config_file(docker_config: str | os.PathLike[str] | None) -> Path:
    """The config.json that Docker would read: ``docker_config`` (a directory, like
    ``docker --config``), else ``$DOCKER_CONFIG``, else ``~/.docker``."""
    directory = docker_config or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
    return Path(directory) / "config.json"


def display_path(path: Path) -> str:
    """``path`` with the home directory shown as ``~``, as users know it."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def load_credentials(registry: str, docker_config: str | os.PathLike[str] | None = None) -> Credentials | None:
    """The credentials Docker would use for ``registry`` (host[:port]), or None.

    Raises RegistryError when the configuration is unreadable or a credential helper
    fails; the message never contains credential material.
    """
    path = config_file(docker_config)
    if not path.is_file():
        return None
    where = display_path(path)
    # Here, not at the top: docker-py costs ~40 ms of start-up, and most runs on a
    # loopback registry never read a Docker config (no ~/.docker/config.json).
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config(config_path=str(path))
        entry = config.resolve_authconfig(registry)
    except (docker.errors.DockerException, binascii.Error, ValueError, OSError) as error:
        # docker-py's messages name the registry or helper, never the secret; a
        # decoding error could only quote base64 text, so it is not repeated.
        detail = str(error) if isinstance(error, docker.errors.DockerException) else "unreadable"
        raise RegistryError(f"cannot read credentials for {registry} from {where}: {detail}") from None
    if not entry:
        return None
    # docker-py answers with lowercase keys for `auths` entries and capitalized
    # ones for credential helpers.
    normalized = {key.lower(): value for key, value in entry.items()}
    creds = Credentials(
        username=str(normalized.get("username") or ""),
        password=str(normalized.get("password") or ""),
        identity_token=str(normalized.get("identitytoken") or ""),
    )
    if not (creds.username or creds.identity_token):
        return None
    log.debug("credentials for %s found in %s (user %r)", registry, where, creds.username)
    return creds


def login_hint(registry: str) -> str:
    return "docker login" if registry == DOCKER_HUB else f"docker login {registry}"


@dataclass
class _Token:
    value: str
    expires_at: float


class Authenticator:
    """Answers registry challenges and remembers the answers.

    ``send`` performs one HTTP request with the client's TLS, timeout and retry
    rules; the authenticator never talks to the network by itself. It is safe to
    share between threads.
    """

    def __init__(
        self,
        send: Callable[..., requests.Response],
        docker_config: str | os.PathLike[str] | None = None,
    ) -> None:
        self._send = send
        self._docker_config = docker_config
        self._lock = threading.Lock()
        self._credentials: dict[str, Credentials | None] = {}
        self._basic: dict[str, str] = {}
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._secrets: set[str] = set()

    def __repr__(self) -> str:
        return f"Authenticator(config={display_path(config_file(self._docker_config))!r})"

    @property
    def config_display(self) -> str:
        return display_path(config_file(self._docker_config))

    def credentials(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry in self._credentials:
                return self._credentials[registry]
        creds = load_credentials(registry, self._docker_config)
        with self._lock:
            self._credentials[registry] = creds
            if creds:
                self._secrets.update(creds.secrets)
        return creds

    def headers(self, registry: str, scope: str) -> dict[str, str]:
        """The Authorization header already known for this registry and scope, if any."""
        with self._lock:
            token = self._tokens.get((registry, scope))
            if token and token.expires_at > time.monotonic():
                return {"Authorization": f"Bearer {token.value}"}
            basic = self._basic.get(registry)
        return {"Authorization": basic} if basic else {}

    def forget(self, registry: str, scope: str) -> None:
        """Drop a cached token the registry no longer accepts."""
        with self._lock:
            self._tokens.pop((registry, scope), None)

    def answer(self, registry: str, scope: str, www_authenticate: str, subject: str) -> None:
        """Prepare credentials for the challenge a registry answered with.

        ``subject`` (``registry/repository``) starts every error message. Raises
        RegistryError when there is nothing to answer with or the token server refuses.
        """
        challenge = parse_challenge(www_authenticate)
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            scheme = challenge.scheme if challenge else "an unreadable"
            raise RegistryError(
                f"{subject}: the registry asks for {scheme} authentication, "
                "which buildspec does not support (only Basic and Bearer)"
            )
        creds = self.credentials(registry)
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                raise RegistryError(self.missing_message(registry, subject))
            raw = f"{creds.username}:{creds.password}".encode()
            value = "Basic " + base64.b64encode(raw).decode("ascii")
            with self._lock:
                self._basic[registry] = value
                self._secrets.add(value.split(" ", 1)[1])
            return
        token = self._fetch_token(registry, scope, challenge, creds, subject)
        with self._lock:
            self._tokens[(registry, scope)] = token
            self._secrets.add(token.value)

    def missing_message(self, registry: str, subject: str) -> str:
        return (
            f"{subject}: authentication required: no credentials for {registry} "
            f"in {self.config_display} (run `{login_hint(registry)}`)"
        )

    def rejected_message(self, registry: str, subject: str, status: int, by: str = "registry") -> str:
        """Why a request failed although credentials were sent."""
        creds = self.credentials(registry)
        if creds is None:
            return self.missing_message(registry, subject)
        who = f"user '{creds.username}'" if creds.username else "the identity token"
        return (
            f"{subject}: HTTP {status}: the {by} rejected {who} "
            f"(credentials from {self.config_display}; run `{login_hint(registry)}` "
            "if they are wrong, or check that this user may access the repository)"
        )

    def scrub(self, text: str) -> str:
        """``text`` with every secret this authenticator has seen replaced by ``***``."""
        with self._lock:
            # Longest first, so a secret containing another is replaced whole. Scrubbing
            # a 1-3 character password would garble every message and protect nothing.
            secrets = sorted((s for s in self._secrets if len(s) >= 4), key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def _fetch_token(
        self,
        registry: str,
        scope: str,
        challenge: Challenge,
        creds: Credentials | None,
        subject: str,
    ) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"{subject}: the registry's Bearer challenge names no token realm")
        parts = urlsplit(realm)
        if creds and parts.scheme != "https" and not is_loopback(parts.netloc):
            # A registry (or something pretending to be one) must not get the password
            # sent in clear text to a host of its choosing.
            raise RegistryError(f"{subject}: the registry's token server {parts.scheme}://{parts.netloc} is not "
                                "HTTPS: buildspec sends credentials only over TLS (or to a loopback address)")
        # The registry knows best which scope the request needs; ours is the fallback.
        wanted = {
            "service": challenge.params.get("service"),
            "scope": challenge.params.get("scope"),
        }
        params = {key: value for key, value in wanted.items() if value}
        params.setdefault("scope", scope)
        if creds and creds.identity_token:
            form = {
                **params,
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "buildspec",
            }
            response = self._send("POST", realm, data=form)
        elif creds:
            basic = (creds.username, creds.password)
            response = self._send("GET", realm, params=params, auth=basic)
        else:
            response = self._send("GET", realm, params=params)
        if response.status_code in (401, 403):
            if creds is None:
                raise RegistryError(self.missing_message(registry, subject))
            raise RegistryError(self.rejected_message(registry, subject, response.status_code, by="token server"))
        if response.status_code != 200:
            raise RegistryError(
                f"{subject}: the token server {realm} answered HTTP {response.status_code} {response.reason}"
            )
        try:
            body: Any = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{subject}: the token server {realm} sent no token")
        return _Token(value, time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0))
