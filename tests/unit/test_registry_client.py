"""RegistryClient transport rules against a registry double.

Only what the real registries in tests/e2e cannot be made to do is tested here:
flaky 5xx answers with Retry-After, wrong digests, storage redirects, echoed
secrets. Everything else runs against the real registry in
tests/e2e/test_registry_real_client.py.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildspec.errors import RegistryError
from buildspec.registry.client import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    RegistryClient,
    is_loopback,
    sha256_digest,
)
from buildspec.registry.reference import InvalidReference, Reference
from tests.faulty_proxy import Reply, Request, ScriptedServer

BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}}).encode()
DIGEST = sha256_digest(BODY)


def serve(answer: Callable[[Request], Reply]) -> ScriptedServer:
    return ScriptedServer(answer).start()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(docker_config=str(tmp_path / "no-docker-config"), retries=2) as client:
        yield client


def flaky(failures: int, ok: Reply, retry_after: str | None = None) -> Callable[[Request], Reply]:
    """Answer 503 ``failures`` times, then ``ok``."""
    count = 0

    def answer(request: Request) -> Reply:
        nonlocal count
        count += 1
        if count <= failures:
            headers = {"Retry-After": retry_after} if retry_after else {}
            return Reply(503, headers, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}')
        return ok

    return answer


def test_503s_are_retried(client: RegistryClient) -> None:
    server = serve(flaky(2, Reply(200, {"Content-Type": OCI_MANIFEST}, BODY)))
    try:
        manifest = client.get_manifest(f"{server.address}/app:1")
    finally:
        server.stop()
    assert manifest.body == BODY and manifest.digest == DIGEST
    assert manifest.media_type == OCI_MANIFEST
    assert len(server.requests) == 3


def test_retry_after_is_respected(client: RegistryClient) -> None:
    # The first retry has no backoff, so the wait can only come from Retry-After.
    server = serve(flaky(1, Reply(200, {"Content-Type": OCI_MANIFEST}, BODY), retry_after="1"))
    try:
        started = time.monotonic()
        client.get_manifest(f"{server.address}/app:1")
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert elapsed >= 1.0


def test_puts_are_retried(client: RegistryClient) -> None:
    ok = Reply(201, {"Docker-Content-Digest": DIGEST})
    server = serve(flaky(1, ok))
    try:
        assert client.put_manifest(f"{server.address}/app", "1", OCI_MANIFEST, BODY) == DIGEST
    finally:
        server.stop()
    assert [r.method for r in server.requests] == ["PUT", "PUT"]
    assert server.requests[1].body == BODY


def test_retries_exhausted_reports_the_status(client: RegistryClient) -> None:
    server = serve(flaky(100, Reply(200)))
    try:
        with pytest.raises(RegistryError) as caught:
            client.get_manifest(f"{server.address}/team/app:1")
    finally:
        server.stop()
    assert str(caught.value) == (
        f"{server.address}/team/app: cannot get manifest 1: HTTP 503 Service Unavailable (UNAVAILABLE: busy)"
    )
    assert len(server.requests) == 3  # retries=2


def test_unreachable_registry(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RegistryClient(docker_config=str(tmp_path), retries=0)
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"127.0.0.1:{port}/app:1")
    assert str(caught.value) == (
        f"127.0.0.1:{port}: GET /v2/app/manifests/1 failed: "
        "cannot connect, even after retrying (is the registry running and reachable?)"
    )
    assert caught.value.__suppress_context__


def test_a_host_urllib3_refuses_is_a_registry_error(tmp_path: Path) -> None:
    # Found by bench/fuzz.py: a DNS label past 63 characters made urllib3 raise its own
    # LocationParseError out of `plan`. References (and so Buildfiles) refuse such a host
    # now; the client still turns what urllib3 refuses into its own error.
    client = RegistryClient(docker_config=str(tmp_path), retries=0)
    host = "r" * 64 + ".example.com:5000"
    with pytest.raises(InvalidReference):
        Reference.parse(f"{host}/app:1")
    with pytest.raises(RegistryError) as caught:
        client.find_manifest(Reference(host, "app", tag="1"))
    assert str(caught.value).startswith(f"{host}: GET /v2/app/manifests/1 failed: not a usable host name")


def test_manifest_by_digest_is_verified(client: RegistryClient) -> None:
    server = serve(lambda request: Reply(200, {"Content-Type": OCI_MANIFEST}, BODY + b" "))
    try:
        with pytest.raises(RegistryError, match="altered"):
            client.get_manifest(f"{server.address}/app@{DIGEST}")
        # By tag there is nothing to verify against: the digest is computed.
        assert client.get_manifest(f"{server.address}/app:1").digest == sha256_digest(BODY + b" ")
    finally:
        server.stop()


def test_media_type_from_the_body_when_content_type_is_generic(client: RegistryClient) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST}).encode()
    server = serve(lambda request: Reply(200, {"Content-Type": "application/json"}, body))
    try:
        assert client.get_manifest(f"{server.address}/app:1").media_type == DOCKER_MANIFEST
    finally:
        server.stop()


def test_put_manifest_checks_the_returned_digest(client: RegistryClient) -> None:
    wrong = "sha256:" + "f" * 64
    server = serve(lambda request: Reply(201, {"Docker-Content-Digest": wrong}))
    try:
        with pytest.raises(RegistryError) as caught:
            client.put_manifest(f"{server.address}/app", "v1", OCI_MANIFEST, BODY)
    finally:
        server.stop()
    assert str(caught.value) == (
        f"{server.address}/app: the registry stored manifest v1 as {wrong}, but the bytes sent have digest {DIGEST}"
    )


def test_put_manifest_without_digest_header_verifies_by_fetching(client: RegistryClient) -> None:
    stored: dict[str, bytes] = {}

    def answer(request: Request) -> Reply:
        if request.method == "PUT":
            stored[DIGEST] = request.body
            return Reply(201)
        return Reply(200, {"Content-Type": OCI_MANIFEST}, stored[DIGEST])

    server = serve(answer)
    try:
        assert client.put_manifest(f"{server.address}/app", "v1", OCI_MANIFEST, BODY) == DIGEST
    finally:
        server.stop()
    assert [(r.method, r.path) for r in server.requests] == [
        ("PUT", "/v2/app/manifests/v1"),
        ("GET", f"/v2/app/manifests/{DIGEST}"),
    ]


def test_put_manifest_rejects_a_bad_tag(client: RegistryClient) -> None:
    with pytest.raises(RegistryError, match="cannot start with"):
        client.put_manifest("127.0.0.1:1/app", "-v1", OCI_MANIFEST, BODY)


def test_blob_redirects_are_followed_and_verified(client: RegistryClient) -> None:
    blob = b'{"architecture":"arm64","os":"linux"}'
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    def answer(request: Request) -> Reply:
        if request.path.startswith("/v2/"):  # as registries with S3 storage do
            return Reply(307, {"Location": "/storage/blob?signature=x"})
        return Reply(200, {}, blob)

    server = serve(answer)
    try:
        assert client.get_blob(f"{server.address}/app", digest) == blob
        with pytest.raises(RegistryError, match="came back with content of digest"):
            client.get_blob(f"{server.address}/app", "sha256:" + "0" * 64)
    finally:
        server.stop()


def test_plain_http_fallback_for_loopback(client: RegistryClient) -> None:
    server = serve(lambda request: Reply(200, {"Content-Type": OCI_MANIFEST}, BODY))
    try:
        client.get_manifest(f"{server.address}/app:1")
    finally:
        server.stop()
    assert client._base_urls[server.address] == f"http://{server.address}/v2/"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.3.2.1", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
        ("localhost.example.com:5000", False),
    ],
)
def test_loopback_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_insecure_registries_are_named_hosts() -> None:
    client = RegistryClient(insecure_registries=["registry.lan:5000"])
    assert client.is_insecure("registry.lan:5000")
    assert not client.is_insecure("registry.lan")
    assert not client.is_insecure("registry.example.com")
    assert client.is_insecure("localhost:5000")


# ------------------------------------------------- answers that break off or come back altered


def _sequence(*replies: Reply) -> Callable[[Request], Reply]:
    """Each reply once, in order, then the last one for ever."""
    queue = list(replies)

    def answer(request: Request) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


GOOD = Reply(200, {"Content-Type": OCI_MANIFEST}, BODY)


@pytest.mark.parametrize("broken", [
    Reply(200, {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(BODY))}, BODY, cut=10),
    Reply(200, {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(BODY))}, BODY, cut=10, reset=True),
    Reply(200, {"Content-Type": OCI_MANIFEST}, BODY[:10] + b" " * (len(BODY) - 10)),  # wrong digest
], ids=["truncated", "reset-mid-body", "altered"])
def test_a_broken_answer_is_asked_for_again(client: RegistryClient, broken: Reply) -> None:
    server = serve(_sequence(broken, broken, GOOD))
    try:
        manifest = client.get_manifest(f"{server.address}/app@{DIGEST}")
    finally:
        server.stop()
    assert manifest.body == BODY and len(server.requests) == 3


def test_an_answer_that_keeps_breaking_off_names_registry_request_and_cause(client: RegistryClient) -> None:
    cut = Reply(200, {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(BODY))}, BODY, cut=10)
    server = serve(_sequence(cut))
    try:
        with pytest.raises(RegistryError) as caught:
            client.get_manifest(f"{server.address}/team/app@{DIGEST}")
    finally:
        server.stop()
    assert str(caught.value) == (
        f"{server.address}: GET /v2/team/app/manifests/{DIGEST} failed: the answer broke off "
        "(connection closed or reset before the whole body came), 3 times")


def test_a_body_slower_than_the_timeout_is_asked_for_again(tmp_path: Path) -> None:
    slow = Reply(200, {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(BODY))}, BODY, delay=1.0)
    server = serve(_sequence(slow, GOOD))
    try:
        with RegistryClient(docker_config=str(tmp_path), retries=2, timeout=0.3) as client:
            assert client.get_manifest(f"{server.address}/app@{DIGEST}").body == BODY
    finally:
        server.stop()
    assert len(server.requests) == 2


def test_a_garbled_tag_list_is_asked_for_again(client: RegistryClient) -> None:
    tags = json.dumps({"name": "app", "tags": ["1.0.0", "latest"]}).encode()
    server = serve(_sequence(Reply(200, {"Content-Type": "application/json"}, tags[:12]),
                             Reply(200, {"Content-Type": "application/json"}, tags)))
    try:
        assert client.list_tags(f"{server.address}/app") == ["1.0.0", "latest"]
    finally:
        server.stop()


def test_429_is_retried_after_retry_after(client: RegistryClient) -> None:
    server = serve(_sequence(Reply(429, {"Retry-After": "1"}), GOOD))
    try:
        started = time.monotonic()
        client.get_manifest(f"{server.address}/app:1")
        assert time.monotonic() - started >= 1.0
    finally:
        server.stop()
    assert len(server.requests) == 2


def test_requests_say_they_come_from_buildspec(client: RegistryClient) -> None:
    server = serve(_sequence(GOOD))
    try:
        client.get_manifest(f"{server.address}/app:1")
    finally:
        server.stop()
    assert server.requests[-1].headers["User-Agent"].startswith("buildspec/")


def test_netrc_is_never_read_as_docker_never_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .netrc login for the registry's host (a git login, say) is never sent: neither in
    place of buildspec's own Authorization nor after a redirect."""
    blob = b'{"architecture":"arm64","os":"linux"}'
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login git-user password git-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    def answer(request: Request) -> Reply:
        if request.path.startswith("/v2/app/blobs/"):
            return Reply(307, {"Location": "/storage/blob?signature=x"})
        if request.path.startswith("/storage/"):
            return Reply(200, {}, blob)
        return Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": DIGEST}, BODY)

    server = serve(answer)
    try:
        with RegistryClient(docker_config=str(tmp_path / "no-docker-config"), retries=0) as client:
            assert client.get_manifest(f"{server.address}/app@{DIGEST}").digest == DIGEST
            assert client.get_blob(f"{server.address}/app", digest) == blob
        assert [r.path.split("?")[0] for r in server.requests][-3:] == [
            f"/v2/app/manifests/{DIGEST}", f"/v2/app/blobs/{digest}", "/storage/blob"]
        assert all("authorization" not in {k.lower() for k in r.headers} for r in server.requests)
        # what requests alone would have sent for that host
        import requests

        assert requests.utils.get_netrc_auth(f"http://{server.address}/v2/") == ("git-user", "git-secret")
    finally:
        server.stop()
