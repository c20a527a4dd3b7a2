"""Verified TLS with an extra CA from certs.d, as Docker trusts a private registry.

The real test registries listen on loopback, which is insecure by rule, so they
cannot show verification. This test serves HTTPS under the machine's host name
(not loopback by name, so verified) with a certificate signed by a CA that
``openssl`` makes for the test, and checks both outcomes: trusted through
``certs.d/<host:port>/ca.crt``, refused without it.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildspec.errors import RegistryError
from buildspec.registry.client import OCI_MANIFEST, RegistryClient, is_loopback
from tests.faulty_proxy import Reply, Request, ScriptedServer

pytestmark = pytest.mark.integration

BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()


def openssl(command: str, *extra: str, cwd: Path) -> None:
    """``openssl`` with ``command`` split on spaces, then ``extra`` arguments as they are."""
    subprocess.run(["openssl", *command.split(), *extra], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path, hostname: str) -> None:
    """ca.crt, and server.crt/server.key for ``hostname`` signed by it."""
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        "-subj",
        "/CN=buildspec test CA",
        cwd=directory,
    )
    (directory / "server.ext").write_text(
        f"subjectAltName=DNS:{hostname}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr", "-subj", f"/CN={hostname}", cwd=directory)
    openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out server.crt -extfile server.ext",
        cwd=directory,
    )


@pytest.fixture
def https_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(``hostname:port`` of an HTTPS registry double, the folder holding its ca.crt)."""
    hostname = socket.gethostname()
    assert not is_loopback(hostname), f"host name {hostname!r} is loopback by name"
    address = socket.gethostbyname(hostname)  # fails loudly if the name does not resolve
    pki = tmp_path / "pki"
    pki.mkdir()
    make_certificates(pki, hostname)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")

    def answer(request: Request) -> Reply:
        return Reply(200, {"Content-Type": OCI_MANIFEST}, BODY)

    with ScriptedServer(answer, tls=context, host=address) as server:
        yield f"{hostname}:{server.port}", pki


def test_certs_d_ca_is_trusted(https_registry: tuple[str, Path], tmp_path: Path) -> None:
    host, pki = https_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / host).mkdir(parents=True)
    (certs_d / host / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    client = RegistryClient(docker_config=str(tmp_path), certs_dir=certs_d, retries=0)
    assert client.get_manifest(f"{host}/app:1").body == BODY
    assert client._base_urls[host] == f"https://{host}/v2/"


def test_unknown_ca_is_refused(https_registry: tuple[str, Path], tmp_path: Path) -> None:
    host, _ = https_registry
    client = RegistryClient(docker_config=str(tmp_path), certs_dir=tmp_path / "none", retries=0)
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{host}/app:1")
    assert str(caught.value) == (
        f"{host}: GET /v2/app/manifests/1 failed: TLS error (certificate not trusted? "
        "add its CA to certs.d, or mark the registry insecure)"
    )


def test_insecure_registry_skips_verification(https_registry: tuple[str, Path], tmp_path: Path) -> None:
    host, _ = https_registry
    client = RegistryClient(insecure_registries=[host], docker_config=str(tmp_path), certs_dir=tmp_path / "none")
    assert client.get_manifest(f"{host}/app:1").body == BODY
    # HTTPS worked, so there was no fallback to plain HTTP.
    assert client._base_urls[host] == f"https://{host}/v2/"
