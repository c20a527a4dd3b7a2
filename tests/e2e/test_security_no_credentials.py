"""Credentials appear in no output of buildspec (docs/security.md).

A project publishes to both local registries (the TLS + auth one needs the
password, from a DOCKER_CONFIG made for the test), from a git checkout whose
origin URL carries a token (``https://ci-user:TOKEN@...``, as CI checkouts do).
Every command is run (``check``, ``plan`` in every format with ``--commands`` and
``--explain``, ``run`` with ``--progress json`` and ``--metadata-file``, and a run
with a wrong password), and then EVERY output is scanned for the password, the
base64 ``auth`` value and the git token: stdout and stderr, every file under the
state folders (logs, work files, bake files), the metadata file, and what was
pushed: each manifest, index, config and (decompressed) layer in both registries.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import CliResult, copy_fixture, run_cli, secrets_in_files, unique_prefix

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

GIT_TOKEN = "ghp_s3cr3tT0kenForTheLeakCheck0123456789"
BUILDFILE = """\
first   = env("FIRST", "")
second  = env("SECOND", "")
busybox = env("BUSYBOX_IMAGE", "")
platforms = [linux/amd64, linux/arm64]

image single {
    context    = "."
    repository = ["{first}", "{second}"]
    args { BUSYBOX = "{busybox}" }
    tags = ["1.0.0", "sha-{git.short_sha}"]
}
"""


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def test_no_output_of_any_command_contains_a_credential(
    env: Env, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo", "git")
    encoded = base64.b64encode(f"{env.auth_user}:{env.auth_password}".encode()).decode()
    secrets = (env.auth_password, encoded, GIT_TOKEN)
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {env.auth_registry: {"auth": encoded}}}))
    wrong = tmp_path / "docker-config-wrong"
    wrong.mkdir()
    wrong_password = "wrong-" + env.auth_password[::-1]
    wrong_encoded = base64.b64encode(f"{env.auth_user}:{wrong_password}".encode()).decode()
    (wrong / "config.json").write_text(json.dumps({"auths": {env.auth_registry: {"auth": wrong_encoded}}}))

    project = copy_fixture("single", tmp_path)
    (project / "Buildfile").write_text(BUILDFILE)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "release")
    _git(project, "remote", "add", "origin", f"https://ci-user:{GIT_TOKEN}@git.example.com/acme/single.git")
    repositories = (f"{unique_prefix(env.registry, 'leak')}/single",
                    f"{unique_prefix(env.auth_registry, 'leak')}/single")
    state = tmp_path / "state"
    variables = {**os.environ, "DOCKER_CONFIG": str(config), "XDG_STATE_HOME": str(state),
                 "FIRST": repositories[0], "SECOND": repositories[1], "BUSYBOX_IMAGE": env.base_image}
    for name in ("GITHUB_ACTIONS", "GITLAB_CI"):
        variables.pop(name, None)
    metadata = tmp_path / "metadata.json"
    results: list[CliResult] = [run_cli(args, cwd=project, env=variables) for args in (
        ["check"],
        ["plan", "--commands", "--explain"],
        ["plan", "--format", "json", "--commands", "--explain"],
        ["plan", "--format", "dot"],
        ["plan", "--format", "mermaid"],
        ["run", "--progress", "json", "--metadata-file", str(metadata)],
    )]
    assert all(r.code == 0 for r in results), [str(r) for r in results if r.code]
    failing = run_cli(["run", "--metadata-file", str(tmp_path / "failing.json")], cwd=project,
                      env={**variables, "DOCKER_CONFIG": str(wrong)})
    assert failing.code == 1 and "rejected user" in failing.stderr, failing
    secrets += (wrong_password, wrong_encoded)

    # the checks find what they look for
    assert secrets_in_files(config, secrets)
    assert oci_reader.layers_contain(f"{repositories[0]}:1.0.0", b"aarch64", platform="linux/arm64")

    for result in [*results, failing]:
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            leaked = [s[:3] for s in secrets if s in text]
            assert not leaked, f"`buildspec {' '.join(result.argv)}` {stream} holds a credential ({leaked}...)"
    # everything under the test's folder but the inputs it made: the docker configs and git's own config
    leaks = [f for f in secrets_in_files(tmp_path, secrets) if "/docker-config" not in f and "/.git/" not in f]
    assert any("/state/buildspec/" in f for f in _files(state)), "the run wrote no state: nothing was scanned"
    assert not leaks, f"credentials written to files: {leaks}"

    creds = {repositories[0]: None, repositories[1]: f"{env.auth_user}:{env.auth_password}"}
    for repository, login in creds.items():
        for tag in ("1.0.0",):
            index = oci_reader.raw_manifest(f"{repository}:{tag}", creds=login)
            assert not any(s in json.dumps(index) for s in secrets), f"{repository}: the index holds a credential"
            for platform in ("linux/amd64", "linux/arm64"):
                ref = f"{repository}:{tag}"
                config_doc = json.dumps(oci_reader.image_config(oci_reader.platform_ref(ref, platform, creds=login),
                                                                creds=login))
                assert not any(s in config_doc for s in secrets), f"{repository} {platform}: config holds a credential"
                for secret in secrets:
                    assert not oci_reader.layers_contain(ref, secret.encode(), platform=platform, creds=login), (
                        f"{repository} {platform}: a layer holds a credential")
    # the source label is the remote without its credentials
    labels = oci_reader.image_config(oci_reader.platform_ref(f"{repositories[0]}:1.0.0", "linux/amd64"))["config"]
    assert labels["Labels"]["org.opencontainers.image.source"] == "https://git.example.com/acme/single"


def _files(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file()]
