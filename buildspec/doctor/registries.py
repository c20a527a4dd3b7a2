"""The registries' side of ``doctor``: reachable, TLS, credentials, pull and push scope.

Everything goes through buildspec's own RegistryClient, so that doctor sees what
``run`` will see: the same TLS rules (verified unless loopback or
``--insecure-registry``; ``/etc/docker/certs.d/HOST/ca.crt`` trusted), the same
credentials (Docker's config.json) and the same Basic/Bearer handling.

Push scope is proved, not guessed: doctor starts a blob upload in each
repository (``POST /v2/<name>/blobs/uploads/``, what every push begins with) and
cancels it at once (``DELETE`` on the upload's location). Nothing is written:
no blob, no manifest, no tag. Credentials never appear in what doctor prints
(the client scrubs every secret it has seen from its messages).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from buildspec.doctor import Check
from buildspec.errors import RegistryError
from buildspec.registry.reference import Reference, is_loopback

if TYPE_CHECKING:  # client.py pulls in requests and docker-py
    from buildspec.registry.client import RegistryClient

_TLS_FIX = ("give Docker and buildspec the registry's CA: /etc/docker/certs.d/{host}/ca.crt "
            "(or, for a test registry only, --insecure-registry {host})")


def check_all(repositories: Sequence[str], insecure: Sequence[str]) -> list[Check]:
    from buildspec.registry.client import RegistryClient

    by_host: dict[str, list[Reference]] = {}
    for repository in repositories:
        ref = Reference.parse(repository)
        by_host.setdefault(ref.api_host, []).append(ref)
    checks: list[Check] = []
    with RegistryClient(insecure_registries=insecure, retries=1, timeout=10) as client:
        for host, refs in by_host.items():
            reachable = _reachable(client, host)
            checks.append(reachable)
            if reachable.status == "fail":
                continue
            for ref in refs:
                pull = _pull(client, ref)
                checks.append(pull)
                if pull.status != "fail":
                    checks.append(_push(client, ref))
    return checks


def _reachable(client: RegistryClient, host: str) -> Check:
    name = f"registry {host}"
    try:
        base = client._base_url(host)
        response = client._send("GET", base)
    except RegistryError as e:
        message = str(e)
        if "certificate" in message.lower() or "ssl" in message.lower():
            return Check(name, "fail", f"TLS verification failed: {message}", _TLS_FIX.format(host=host))
        return Check(name, "fail", f"not reachable: {message}",
                     "check the address and that the registry runs (and any proxy settings)")
    scheme = urlsplit(base).scheme
    if scheme == "http":
        transport = "plain HTTP (" + ("loopback" if is_loopback(host) else "--insecure-registry") + ")"
    elif client.is_insecure(host):
        transport = "HTTPS, certificate not verified (" + ("loopback" if is_loopback(host) else
                                                             "--insecure-registry") + ")"
    else:
        transport = "HTTPS, certificate verified"
    if response.status_code == 401:
        credentials = client._auth.credentials(host)
        if credentials is None:
            return Check(name, "fail", f"{transport}; asks for credentials and there are none in "
                         f"{client._auth.config_display}", f"docker login {host}")
        who = f"user '{credentials.username}'" if credentials.username else "an identity token"
        return Check(name, "ok", f"{transport}; authentication required, {who} from {client._auth.config_display}")
    if response.status_code >= 400:
        return Check(name, "fail", f"{transport}; GET /v2/ answered HTTP {response.status_code}",
                     "is this address a container registry (the OCI distribution API)?")
    return Check(name, "ok", f"{transport}; no authentication required")


def _pull(client: RegistryClient, ref: Reference) -> Check:
    name = f"pull {ref.name}"
    try:
        response = client._request("GET", ref, "tags/list")
    except RegistryError as e:
        return Check(name, "fail", str(e), f"docker login {ref.registry} with a user that may read {ref.repository}")
    if response.status_code == 200:
        return Check(name, "ok", "allowed (the repository exists)")
    if response.status_code == 404:
        return Check(name, "ok", "allowed (the repository does not exist yet)")
    return Check(name, "fail", f"GET tags/list answered HTTP {response.status_code} {response.reason}",
                 f"check that the credentials for {ref.registry} may read {ref.repository}")


def _push(client: RegistryClient, ref: Reference) -> Check:
    name = f"push {ref.name}"
    fix = f"docker login {ref.registry} with a user that may push to {ref.repository}"
    try:
        response = client._request("POST", ref, "blobs/uploads/")
    except RegistryError as e:
        return Check(name, "fail", str(e), fix)
    if response.status_code != 202:
        return Check(name, "fail", f"starting an upload answered HTTP {response.status_code} {response.reason}", fix)
    location = response.headers.get("Location")
    if location:
        # If the cancel fails, the registry purges the abandoned upload itself; the answer above counts.
        with contextlib.suppress(RegistryError):
            client._request("DELETE", ref, location)
    return Check(name, "ok", "allowed (an upload was started and cancelled; nothing was written)")
