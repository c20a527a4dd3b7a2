"""``buildspec doctor`` against this machine: the real daemon, buildx, binfmt and registries.

And against broken setups, made for the test without touching the machine: a
platform without a binfmt handler (linux/s390x: qemu-user-static is installed,
but setup-env.sh registers only qemu-aarch64 and qemu-arm), a registry that
refuses the credentials (a wrong password for the TLS + htpasswd registry),
a registry with none, a Docker daemon that does not answer (DOCKER_HOST at a
socket that does not exist) and a registry whose certificate is not trusted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from runner import CliResult, run_cli, tags_of

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

DOCKERFILE = "ARG BUSYBOX\nFROM ${BUSYBOX}\nRUN uname -m > /arch\n"


def project(folder: Path, repository: str, platforms: str, base_image: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "Buildfile").write_text(
        f'registry  = "{repository.rsplit("/", 1)[0]}"\n'
        f"platforms = [{platforms}]\n{extra}\n"
        f'image {repository.rsplit("/", 1)[1]} {{\n'
        f'    args {{ BUSYBOX = "{base_image}" }}\n'
        '    tags = ["1"]\n'
        "}\n"
    )
    return folder


def doctor(folder: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(["doctor", *args], cwd=folder, env=env, timeout=120)


def lines(result: CliResult) -> dict[str, str]:
    """check name -> 'status detail', from --format json."""
    report = json.loads(result.stdout)
    return {c["check"]: f"{c['status']} {c['detail']}" for c in report["checks"]}


def test_a_machine_that_can_build_for_arm(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "buildah")
    folder = project(tmp_path / "p", unique_repo, "linux/amd64, linux/arm64, linux/arm/v7", env.base_image)
    result = doctor(folder)
    assert result.code == 0, result
    assert result.stdout.endswith("ok: `buildspec run` can succeed on this machine (2 warnings)\n"), result
    assert "warn  git/CI context " in result.stdout  # tmp_path is no git checkout
    text = result.stdout
    assert "ok    docker daemon " in text and "ok    buildx " in text
    assert "ok    image store " in text and "containerd image store" in text
    # Foreign platforms are proved by running a program of their architecture.
    assert "ran a program for arm64 (exit 42) through binfmt_misc qemu-aarch64 (flags" in text
    assert "ran a program for arm (exit 42) through binfmt_misc qemu-arm (flags" in text
    registry = unique_repo.split("/", 1)[0]
    assert f"ok    registry {registry} " in text and "plain HTTP (loopback); no authentication required" in text
    assert f"ok    push {unique_repo} " in text
    # BuildKit here does not list linux/arm/v7 (qemu-arm registered after it started): a warning, with why.
    assert "warn  builder (default) " in text and "does not list linux/arm/v7" in text
    # The push check wrote nothing.
    assert tags_of(unique_repo) == []

    as_json = json.loads(doctor(folder, "--format", "json").stdout)
    assert as_json["ok"] is True and as_json["file"] == "Buildfile"
    statuses = {c["check"]: c["status"] for c in as_json["checks"]}
    assert statuses["platform linux/arm64"] == "ok" and statuses[f"push {unique_repo}"] == "ok"


def test_a_platform_without_binfmt_fails(env: Env, unique_repo: str, tmp_path: Path) -> None:
    assert not Path("/proc/sys/fs/binfmt_misc/qemu-s390x").exists(), "this machine runs s390x: pick another"
    folder = project(tmp_path / "p", unique_repo, "linux/amd64, linux/s390x", env.base_image)
    result = doctor(folder)
    assert result.code == 1, result
    assert re.search(r"^fail  platform linux/s390x +this machine cannot run s390x programs "
                     r"\(exec format error: no binfmt_misc handler\), so RUN steps would fail$", result.stdout, re.M)
    assert "fix: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-s390x" \
        in result.stdout
    assert result.stdout.endswith("1 check failed: `buildspec run` would fail on this machine\n")
    found = lines(doctor(folder, "--format", "json"))
    assert found["platform linux/s390x"].startswith("fail this machine cannot run s390x programs")
    assert found["platform linux/amd64"] == "ok native (linux/amd64)"


@pytest.fixture
def auth_configs(env: Env, tmp_path: Path) -> Iterator[dict[str, Path]]:
    """DOCKER_CONFIG folders: the right password, a wrong one, and no credentials at all."""
    configs = {}
    for name, password in (("right", env.auth_password), ("wrong", "not-the-password-42"), ("none", None)):
        folder = tmp_path / f"docker-{name}"
        folder.mkdir()
        auths = {}
        if password is not None:
            auths[env.auth_registry] = {"auth": base64.b64encode(f"{env.auth_user}:{password}".encode()).decode()}
        (folder / "config.json").write_text(json.dumps({"auths": auths}))
        configs[name] = folder
    yield configs


def test_registry_credentials(env: Env, tmp_path: Path, auth_configs: dict[str, Path]) -> None:
    repository = f"{env.auth_registry}/t/doctor-auth"
    folder = project(tmp_path / "p", repository, "linux/amd64", env.base_image)

    def run_with(config: str) -> CliResult:
        return doctor(folder, "--format", "json", env={**os.environ, "DOCKER_CONFIG": str(auth_configs[config])})

    right = run_with("right")
    assert right.code == 0, right
    found = lines(right)
    assert found[f"registry {env.auth_registry}"].startswith("ok HTTPS")
    assert f"authentication required, user '{env.auth_user}'" in found[f"registry {env.auth_registry}"]
    assert found[f"pull {repository}"].startswith("ok allowed")
    assert found[f"push {repository}"] == "ok allowed (an upload was started and cancelled; nothing was written)"

    wrong = run_with("wrong")
    assert wrong.code == 1, wrong
    found = lines(wrong)
    assert found[f"pull {repository}"].startswith(f"fail {repository}: HTTP 401: the registry rejected user "
                                                  f"'{env.auth_user}'")
    assert "not-the-password-42" not in wrong.stdout + wrong.stderr
    assert env.auth_password not in right.stdout + right.stderr

    none = run_with("none")
    assert none.code == 1, none
    assert lines(none)[f"registry {env.auth_registry}"].startswith("fail HTTPS")
    assert "asks for credentials and there are none" in lines(none)[f"registry {env.auth_registry}"]


def test_a_docker_daemon_that_does_not_answer(env: Env, unique_repo: str, tmp_path: Path) -> None:
    folder = project(tmp_path / "p", unique_repo, "linux/amd64", env.base_image, extra="backend = buildx")
    result = doctor(folder, env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.code == 1, result
    assert "fail  docker daemon " in result.stdout
    assert "fix: start dockerd (or point DOCKER_HOST at a running daemon)" in result.stdout


@pytest.fixture
def untrusted_https(tmp_path: Path) -> Iterator[str]:
    """``hostname:port`` of an HTTPS server whose certificate no CA of this machine signed."""
    from faulty_proxy import Reply, Request, ScriptedServer
    from test_registry_tls import make_certificates

    hostname = socket.gethostname()
    pki = tmp_path / "pki"
    pki.mkdir()
    make_certificates(pki, hostname)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")

    def answer(request: Request) -> Reply:
        return Reply(200, {}, b"{}")

    with ScriptedServer(answer, tls=context, host=socket.gethostbyname(hostname)) as server:
        yield f"{hostname}:{server.port}"


def test_a_registry_whose_certificate_is_not_trusted(env: Env, tmp_path: Path, untrusted_https: str) -> None:
    repository = f"{untrusted_https}/team/app"
    folder = project(tmp_path / "p", repository, "linux/amd64", env.base_image)
    result = doctor(folder)
    assert result.code == 1, result
    assert f"fail  registry {untrusted_https}" in result.stdout
    assert "TLS verification failed" in result.stdout
    assert f"fix: give Docker and buildspec the registry's CA: /etc/docker/certs.d/{untrusted_https}/ca.crt" \
        in result.stdout


def test_a_builder_that_does_not_exist(env: Env, unique_repo: str, tmp_path: Path) -> None:
    folder = project(tmp_path / "p", unique_repo, "linux/amd64", env.base_image,
                     extra='backend = buildx\nbuilder = "no-such-builder-4f1c"')
    result = doctor(folder)
    assert result.code == 1, result
    assert re.search(r"^fail  builder no-such-builder-4f1c +.*no-such-builder-4f1c", result.stdout, re.M), result
    assert "fix: docker buildx create --name no-such-builder-4f1c" in result.stdout


def test_buildah_when_chosen(env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]) -> None:
    require_tools("buildah")
    folder = project(tmp_path / "p", unique_repo, "linux/arm64", env.base_image)
    found = lines(doctor(folder, "--format", "json", "--backend", "buildah"))
    assert found["backend buildah"] == "ok buildah (--backend buildah)"
    assert re.fullmatch(r"ok buildah \d+\.\d+\.\d+", found["buildah"])
    assert "docker daemon" not in found  # buildah needs no daemon, so doctor does not ask for one
    assert found["platform linux/arm64"].startswith("ok ran a program for arm64 (exit 42)")


def test_every_repository_of_an_image_is_checked(
    env: Env, unique_repo: str, tmp_path: Path, auth_configs: dict[str, Path]
) -> None:
    second = f"{env.auth_registry}/t/doctor-second"
    folder = project(tmp_path / "p", unique_repo, "linux/amd64", env.base_image)
    buildfile = folder / "Buildfile"
    buildfile.write_text(buildfile.read_text().replace(
        '    tags = ["1"]', f'    repository = ["{unique_repo}", "{second}"]\n    tags = ["1"]'))
    run_env = {**os.environ, "DOCKER_CONFIG": str(auth_configs["wrong"])}
    result = doctor(folder, "--format", "json", env=run_env)
    assert result.code == 1, result
    found = lines(result)
    assert found[f"push {unique_repo}"].startswith("ok allowed")
    assert found[f"pull {second}"].startswith("fail ")  # the second registry refuses these credentials
