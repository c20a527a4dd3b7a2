"""`buildspec run` against the TLS + htpasswd registry (BUILDSPEC_AUTH_REGISTRY).

Credentials come the way Docker users keep them: a config.json with an
``auths`` entry (base64 ``user:password``) in a DOCKER_CONFIG folder made for
the test. buildx reads it for the per-platform pushes (and trusts the registry
through /etc/docker/certs.d), buildspec for the index. The same one-image
Buildfile (fixtures/single) is run twice, at once: with that DOCKER_CONFIG, and
with an empty one. The password is in no output, log or metadata of either run.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import oci_reader
import pytest
from runner import (
    CliResult,
    copy_fixture,
    manifest_digest,
    run_cli,
    secrets_in_files,
    tags_of,
    unique_prefix,
)

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

TAGS = ("1.0.0", "stable")
PLATFORMS = ["linux/amd64", "linux/arm64"]


@dataclass(frozen=True)
class Outcome:
    project: Path
    repository: str
    result: CliResult
    metadata_file: Path


@dataclass(frozen=True)
class Auth:
    host: str
    creds: str  # user:password, for skopeo
    secrets: tuple[str, str]  # the password and the base64 `auth` value
    runs: dict[str, Outcome]  # "with" and "without" credentials


@pytest.fixture(scope="module")
def auth(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Auth:
    host = env.auth_registry
    docker_ca = Path("/etc/docker/certs.d") / host / "ca.crt"
    assert docker_ca.is_file(), f"{docker_ca} is missing: Docker would not trust {host}"
    assert docker_ca.read_bytes() == Path(env.auth_ca).read_bytes(), f"{docker_ca} is another CA"

    encoded = base64.b64encode(f"{env.auth_user}:{env.auth_password}".encode()).decode()
    with_creds = tmp_path_factory.mktemp("docker-config")
    (with_creds / "config.json").write_text(json.dumps({"auths": {host: {"auth": encoded}}}))
    # the leak check finds what it looks for
    assert secrets_in_files(with_creds, (encoded,)), "secrets_in_files finds nothing"
    without_creds = tmp_path_factory.mktemp("docker-config-empty")
    configs = {"with": with_creds, "without": without_creds}

    def one(mode: str) -> Outcome:
        folder = tmp_path_factory.mktemp(f"auth-{mode}")
        project = copy_fixture("single", folder)
        prefix = unique_prefix(host, f"auth-{mode}")
        metadata = folder / "metadata.json"
        result = run_cli(
            [
                "run",
                "--set", f"registry={prefix}",
                "--set", f"busybox={env.base_image}",
                "--metadata-file", str(metadata),
            ],
            cwd=project,
            env={**os.environ, "DOCKER_CONFIG": str(configs[mode])},
        )
        return Outcome(project, f"{prefix}/single", result, metadata)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {mode: pool.submit(one, mode) for mode in configs}
        runs = {mode: future.result() for mode, future in futures.items()}
    return Auth(host, f"{env.auth_user}:{env.auth_password}", (env.auth_password, encoded), runs)


def _assert_no_secret(outcome: Outcome, secrets: tuple[str, str]) -> None:
    for name, text in (("stdout", outcome.result.stdout), ("stderr", outcome.result.stderr)):
        for secret in secrets:
            assert secret not in text, f"a credential is in {name}"
    leaks = secrets_in_files(outcome.project / ".buildspec", secrets)
    if outcome.metadata_file.is_file():
        leaks += secrets_in_files(outcome.metadata_file.parent, secrets)
    assert not leaks, f"credentials written to files: {leaks}"


def test_run_publishes_with_credentials_from_docker_config(
    auth: Auth, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = auth.runs["with"]
    assert outcome.result.code == 0, outcome.result
    digests = {manifest_digest(f"{outcome.repository}:{tag}", creds=auth.creds) for tag in TAGS}
    assert len(digests) == 1, digests
    index_digest = digests.pop()
    index_ref = f"{outcome.repository}@{index_digest}"
    assert oci_reader.raw_manifest(index_ref, creds=auth.creds)["mediaType"] in oci_reader.INDEX_TYPES
    assert oci_reader.index_platforms(index_ref, creds=auth.creds) == PLATFORMS
    assert sorted(outcome.result.stdout.splitlines()) == sorted(
        f"{outcome.repository}:{tag}@{index_digest}" for tag in TAGS
    ), outcome.result
    metadata: dict[str, Any] = json.loads(outcome.metadata_file.read_text())
    assert metadata["images"][0]["index_digest"] == index_digest
    _assert_no_secret(outcome, auth.secrets)


def test_run_without_credentials_fails_and_pushes_nothing(
    auth: Auth, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = auth.runs["without"]
    assert outcome.result.code == 1, outcome.result
    assert not set(TAGS) & set(tags_of(outcome.repository, creds=auth.creds))
    assert outcome.result.stdout == ""
    _assert_no_secret(outcome, auth.secrets)


# buildspec asks every target registry before building, so a missing login fails
# with its own "authentication required ... (run `docker login HOST`)" message.
def test_run_without_credentials_says_how_to_log_in(auth: Auth) -> None:
    result = auth.runs["without"].result
    assert re.search(r"authentication required", result.stderr, re.I), result
    assert f"docker login {auth.host}" in result.stderr, result
