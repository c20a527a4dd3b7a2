"""Credentials (Docker config, credential helpers) and the Bearer token flow.

The token flow runs against a registry double (``ScriptedServer``): the real test
registries use Basic auth, and a token server is what they cannot provide. Basic
auth is tested against the real TLS + htpasswd registry in tests/e2e.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from buildspec.errors import RegistryError
from buildspec.registry.auth import Credentials, load_credentials, parse_challenge
from buildspec.registry.client import RegistryClient
from tests.faulty_proxy import Reply, Request, ScriptedServer

PASSWORD = "pa55-W0rd-never-shown"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [],
    }
).encode()


def write_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def login(tmp_path: Path, host: str, user: str, password: str) -> Path:
    """What `docker login` leaves behind without a credential store."""
    return write_config(tmp_path / "docker", {"auths": {host: {"auth": basic(user, password)}}})


# -- WWW-Authenticate parsing ---------------------------------------------------------


def test_parse_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }


def test_parse_basic_and_odd_spacing_and_escapes() -> None:
    assert parse_challenge('Basic realm="Registry Realm"') == parse_challenge('basic   realm = "Registry Realm"')
    challenge = parse_challenge(r'Bearer realm="a\"b", error=insufficient_scope ,service=s')
    assert challenge is not None
    assert challenge.params == {"realm": 'a"b', "error": "insufficient_scope", "service": "s"}


def test_parse_unreadable_challenges() -> None:
    assert parse_challenge("") is None
    challenge = parse_challenge("Negotiate")
    assert challenge is not None and challenge.scheme == "negotiate" and not challenge.params


# -- Docker configuration -------------------------------------------------------------


@pytest.fixture
def fake_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``docker-credential-fake`` on PATH: knows 127.0.0.1:5999 and the token user.

    It logs each server it is asked about, so tests can see it was used.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper.log"
    script = bin_dir / "docker-credential-fake"
    script.write_text(
        f"""#!/bin/sh
[ "$1" = get ] || exit 1
read -r server
echo "$server" >> {log}
case "$server" in
  127.0.0.1:5999) user=helperuser;;
  token.example.com) user="<token>";;
  *) echo "credentials not found in native keychain"; exit 1;;
esac
printf '{{"ServerURL":"%s","Username":"%s","Secret":"{PASSWORD}"}}' "$server" "$user"
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_auths_entry_with_base64_auth(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "docker",
        {"auths": {"127.0.0.1:5999": {"auth": basic("alice", PASSWORD)}}},
    )
    creds = load_credentials("127.0.0.1:5999", str(config))
    assert creds == Credentials("alice", PASSWORD)
    assert load_credentials("127.0.0.1:5998", str(config)) is None


def test_docker_config_environment_variable_and_legacy_url_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path / "docker",
        {"auths": {"https://registry.example.com/v1/": {"auth": basic("bob", PASSWORD)}}},
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert load_credentials("registry.example.com") == Credentials("bob", PASSWORD)


def test_no_config_file_means_no_credentials(tmp_path: Path) -> None:
    assert load_credentials("127.0.0.1:5999", str(tmp_path / "nowhere")) is None


def test_cred_helpers(tmp_path: Path, fake_helper: Path) -> None:
    config = write_config(tmp_path / "docker", {"credHelpers": {"127.0.0.1:5999": "fake"}})
    assert load_credentials("127.0.0.1:5999", str(config)) == Credentials("helperuser", PASSWORD)
    assert fake_helper.read_text().split() == ["127.0.0.1:5999"]
    # A registry without a helper entry does not run it.
    assert load_credentials("127.0.0.1:5998", str(config)) is None
    assert fake_helper.read_text().split() == ["127.0.0.1:5999"]


def test_creds_store_then_auths_fallback(tmp_path: Path, fake_helper: Path) -> None:
    config = write_config(
        tmp_path / "docker",
        {
            "credsStore": "fake",
            "auths": {"127.0.0.1:5998": {"auth": basic("carol", PASSWORD)}},
        },
    )
    assert load_credentials("127.0.0.1:5999", str(config)) == Credentials("helperuser", PASSWORD)
    # Not in the store: the auths entry is used, as Docker does.
    assert load_credentials("127.0.0.1:5998", str(config)) == Credentials("carol", PASSWORD)
    assert load_credentials("127.0.0.1:5997", str(config)) is None
    assert "127.0.0.1:5997" in fake_helper.read_text()


def test_identity_token_from_helper(tmp_path: Path, fake_helper: Path) -> None:
    config = write_config(tmp_path / "docker", {"credsStore": "fake"})
    creds = load_credentials("token.example.com", str(config))
    assert creds == Credentials("", "", PASSWORD)


def test_missing_helper_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"credHelpers": {"127.0.0.1:5999": "absent"}})
    with pytest.warns(UserWarning), pytest.raises(RegistryError) as caught:
        load_credentials("127.0.0.1:5999", str(config))
    assert "docker-credential-absent" in str(caught.value)
    assert "127.0.0.1:5999" in str(caught.value)


def test_corrupt_auth_entry_is_not_echoed(tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"auths": {"127.0.0.1:5999": {"auth": "no-colon" + PASSWORD}}})
    with pytest.raises(RegistryError) as caught:
        load_credentials("127.0.0.1:5999", str(config))
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("alice", PASSWORD, "identity-" + PASSWORD)
    assert PASSWORD not in repr(creds)
    assert PASSWORD not in str(creds)
    assert "alice" in repr(creds)


# -- Bearer token flow against a double -----------------------------------------------


class TokenRegistry:
    """A registry that wants Bearer tokens from its own /token endpoint.

    ``users`` maps user to password; with ``anonymous`` the token server also
    serves requests without credentials.
    """

    def __init__(self, users: dict[str, str], anonymous: bool = False, field_name: str = "token") -> None:
        self.users = users
        self.anonymous = anonymous
        self.field_name = field_name
        self.issued: dict[str, str] = {}  # token -> scope
        self.token_requests: list[Request] = []
        self.revoke_next = False
        self.server = ScriptedServer(self.answer)

    def answer(self, request: Request) -> Reply:
        url = urlsplit(request.path)
        if url.path == "/token":
            return self.token(request, parse_qs(url.query))
        needed = "pull,push" if request.method == "PUT" else "pull"
        repository = url.path.split("/")[2]
        scope = f"repository:{repository}:{needed}"
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        granted = self.issued.get(token, "")
        if self.revoke_next and granted:
            self.revoke_next = False
            self.issued.pop(token)
            granted = ""
        if not authorization.startswith("Bearer ") or not granted.endswith(needed):
            challenge = f'Bearer realm="http://{self.server.address}/token",service="double",scope="{scope}"'
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            return Reply(401, {"WWW-Authenticate": challenge}, body)
        if request.method == "PUT":
            digest = "sha256:" + __import__("hashlib").sha256(request.body).hexdigest()
            return Reply(201, {"Docker-Content-Digest": digest})
        media = "application/vnd.oci.image.manifest.v1+json"
        return Reply(200, {"Content-Type": media}, MANIFEST)

    def token(self, request: Request, query: dict[str, list[str]]) -> Reply:
        self.token_requests.append(request)
        authorization = request.headers.get("Authorization", "")
        if authorization:
            user, _, password = base64.b64decode(authorization.split()[1]).decode().partition(":")
            if self.users.get(user) != password:
                return Reply(401, {}, b'{"details":"invalid credentials"}')
        elif not self.anonymous:
            return Reply(401, {}, b'{"details":"anonymous access denied"}')
        token = f"tok{len(self.issued)}-{'x' * 20}"
        self.issued[token] = query["scope"][0]
        body = json.dumps({self.field_name: token, "expires_in": 300}).encode()
        return Reply(200, {"Content-Type": "application/json"}, body)


@pytest.fixture
def token_registry() -> Iterator[TokenRegistry]:
    double = TokenRegistry({"alice": PASSWORD})
    with double.server:
        yield double


def test_bearer_flow_with_credentials_and_token_cache(token_registry: TokenRegistry, tmp_path: Path) -> None:
    host = token_registry.server.address
    config = login(tmp_path, host, "alice", PASSWORD)
    client = RegistryClient(docker_config=str(config))

    assert client.get_manifest(f"{host}/app:1").body == MANIFEST
    assert client.get_manifest(f"{host}/app:2").body == MANIFEST
    assert len(token_registry.token_requests) == 1  # cached for the pull scope
    first = token_registry.token_requests[0]
    assert parse_qs(urlsplit(first.path).query) == {
        "service": ["double"],
        "scope": ["repository:app:pull"],
    }
    assert first.headers["Authorization"] == "Basic " + basic("alice", PASSWORD)

    # Pushing needs another scope, hence another token.
    client.put_manifest(f"{host}/app", "3", "application/vnd.oci.image.manifest.v1+json", b"{}")
    assert len(token_registry.token_requests) == 2
    assert "pull%2Cpush" in token_registry.token_requests[1].path


def test_anonymous_token(tmp_path: Path) -> None:
    double = TokenRegistry({}, anonymous=True, field_name="access_token")
    with double.server:
        client = RegistryClient(docker_config=str(tmp_path / "empty"))
        assert client.get_manifest(f"{double.server.address}/app:1").body == MANIFEST
        assert "Authorization" not in double.token_requests[0].headers


def test_anonymous_refused_names_the_missing_login(tmp_path: Path) -> None:
    double = TokenRegistry({"alice": PASSWORD})
    with double.server:
        client = RegistryClient(docker_config=str(tmp_path / "empty"))
        with pytest.raises(RegistryError) as caught:
            client.get_manifest(f"{double.server.address}/app:1")
    host = double.server.address
    assert str(caught.value) == (
        f"{host}/app: authentication required: no credentials for {host} "
        f"in {tmp_path}/empty/config.json (run `docker login {host}`)"
    )


def test_expired_or_revoked_token_is_renewed_once(token_registry: TokenRegistry, tmp_path: Path) -> None:
    host = token_registry.server.address
    config = login(tmp_path, host, "alice", PASSWORD)
    client = RegistryClient(docker_config=str(config))
    client.get_manifest(f"{host}/app:1")
    token_registry.revoke_next = True
    assert client.get_manifest(f"{host}/app:1").body == MANIFEST
    assert len(token_registry.token_requests) == 2


def test_failed_auth_never_shows_the_password(
    token_registry: TokenRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = token_registry.server.address
    wrong = "wrong-" + PASSWORD
    config = login(tmp_path, host, "alice", wrong)
    client = RegistryClient(docker_config=str(config))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{host}/app:1")

    message = str(caught.value)
    assert message.startswith(f"{host}/app: HTTP 401: the token server rejected user 'alice'")
    assert "docker login" in message
    everything = "\n".join(
        [
            message,
            repr(caught.value),
            repr(client),
            repr(client._auth),
            repr(client._auth.credentials(host)),
            "".join(traceback.format_exception(caught.value)),
            caplog.text,
        ]
    )
    encoded = basic("alice", wrong)
    assert PASSWORD not in everything
    assert encoded not in everything


def test_server_echoing_a_token_is_scrubbed(tmp_path: Path) -> None:
    """A registry that quotes the Authorization header back gets it redacted."""
    double = TokenRegistry({}, anonymous=True)

    def echoing(request: Request) -> Reply:
        reply = double.answer(request)
        if reply.status == 200 and request.path.startswith("/v2/"):
            token = request.headers["Authorization"]
            body = json.dumps({"errors": [{"code": "DENIED", "message": f"bad {token}"}]})
            return Reply(403, {}, body.encode())
        return reply

    double.server = ScriptedServer(echoing)
    with double.server:
        client = RegistryClient(docker_config=str(tmp_path / "empty"))
        with pytest.raises(RegistryError) as caught:
            client.get_manifest(f"{double.server.address}/app:1")
    (token,) = double.issued
    assert "HTTP 403" in str(caught.value)
    assert "DENIED: bad Bearer ***" in str(caught.value)
    assert token not in str(caught.value)


def test_credentials_are_never_sent_to_a_plain_http_token_server_elsewhere(tmp_path: Path) -> None:
    """A registry naming a token server over plain HTTP on another host gets no password."""
    realm = "http://tokens.example.com/token"

    def answer(request: Request) -> Reply:
        return Reply(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'})

    with ScriptedServer(answer) as server:
        client = RegistryClient(docker_config=str(login(tmp_path, server.address, "alice", PASSWORD)))
        with pytest.raises(RegistryError, match=r"token server http://tokens.example.com is not HTTPS"):
            client.get_manifest(f"{server.address}/app:1")
    assert len(server.requests) == 1
