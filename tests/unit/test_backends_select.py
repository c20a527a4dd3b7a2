"""Choosing a backend, with fake PATHs and a fake (or absent) Docker daemon."""

from __future__ import annotations

import json
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import buildspec.backends.select as select
from buildspec.backends.buildah import BuildahBackend
from buildspec.backends.buildx import BuildxBackend
from buildspec.backends.kaniko import KanikoBackend
from buildspec.errors import UsageError


def fake_tool(folder: Path, name: str, exit_status: int = 0) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\nexit {exit_status}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class FakeClient:
    pings = 0

    def ping(self) -> bool:
        FakeClient.pings += 1
        return True

    def close(self) -> None:
        pass


class FakeDaemon:
    """A unix socket that answers Docker's ``GET /_ping`` as dockerd does (or with ``status``)."""

    def __init__(self, path: Path, status: bytes = b"200 OK", driver_status: object = None) -> None:
        self.path, self.status, self.pings, self.infos = path, status, 0, 0
        self.driver_status = driver_status  # GET /info's DriverStatus
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(1024)
                if request.startswith(b"GET /info "):
                    self.infos += 1
                    body = json.dumps({"Driver": "overlayfs", "DriverStatus": self.driver_status,
                                       "Images": 3, "Name": "fake"}).encode()
                    conn.sendall(b"HTTP/1.0 " + self.status + b"\r\nContent-Type: application/json\r\n\r\n" + body)
                    continue
                if request.startswith(b"GET /_ping "):
                    self.pings += 1
                conn.sendall(b"HTTP/1.1 " + self.status + b"\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nOK")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    # no daemon: a socket that does not exist
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    # no buildx plugin file but the ones a test puts there
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setattr(select, "PLUGIN_DIRS", (str(tmp_path / "system-plugins"),))
    select.reset_probes()
    yield folder
    select.reset_probes()


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(tmp_path / "docker.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake.path}")
    yield fake
    fake.close()


def no_kaniko(tmp_path: Path) -> str:
    return str(tmp_path / "no-kaniko-executor")


def test_registry_names() -> None:
    assert {
        "buildx": BuildxBackend,
        "kaniko": KanikoBackend,
        "buildah": BuildahBackend,
    } == select.BACKENDS


@pytest.mark.parametrize("name", ["buildx", "buildah", "kaniko"])
def test_explicit_names_are_not_probed(bin_dir: Path, name: str) -> None:
    backend, reason = select.choose_backend(name, kaniko_executor=None, kaniko_image=None)
    assert backend.name == name
    assert f"--backend {name}" in reason


def test_explicit_kaniko_modes(bin_dir: Path) -> None:
    backend, reason = select.choose_backend("kaniko", kaniko_executor="/opt/executor", kaniko_image=None)
    assert isinstance(backend, KanikoBackend) and backend.executor == "/opt/executor"
    assert "executor /opt/executor" in reason
    backend, reason = select.choose_backend("kaniko", kaniko_executor=None, kaniko_image="k:1")
    assert isinstance(backend, KanikoBackend) and backend.image == "k:1"
    assert "image k:1" in reason


def test_unknown_name(bin_dir: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown backend .podman.*auto, buildx, kaniko, buildah"):
        select.choose_backend("podman", kaniko_executor=None, kaniko_image=None)


def test_auto_prefers_buildx(bin_dir: Path, daemon: FakeDaemon, tmp_path: Path) -> None:
    fake_tool(bin_dir, "docker")
    fake_tool(bin_dir, "buildah")
    backend, reason = select.choose_backend("auto", kaniko_executor=None, kaniko_image=None)
    assert isinstance(backend, BuildxBackend)
    assert "daemon answers" in reason and "buildx" in reason


def test_auto_daemon_without_buildx_plugin_falls_to_kaniko(bin_dir: Path, daemon: FakeDaemon, tmp_path: Path) -> None:
    fake_tool(bin_dir, "docker", exit_status=1)  # `docker buildx version` fails
    executor = fake_tool(tmp_path, "executor")
    backend, reason = select.choose_backend("auto", kaniko_executor=str(executor), kaniko_image=None)
    assert isinstance(backend, KanikoBackend)
    assert backend.executor == str(executor)
    assert str(executor) in reason


def test_auto_no_daemon_no_kaniko_uses_buildah(bin_dir: Path, tmp_path: Path) -> None:
    fake_tool(bin_dir, "docker")  # the CLI alone is not enough
    buildah = fake_tool(bin_dir, "buildah")
    backend, reason = select.choose_backend("auto", kaniko_executor=no_kaniko(tmp_path), kaniko_image=None)
    assert isinstance(backend, BuildahBackend)
    assert str(buildah) in reason


def test_auto_kaniko_image_needs_the_daemon(bin_dir: Path, daemon: FakeDaemon, tmp_path: Path) -> None:
    backend, reason = select.choose_backend("auto", kaniko_executor=no_kaniko(tmp_path), kaniko_image="kaniko:1")
    assert isinstance(backend, KanikoBackend) and backend.image == "kaniko:1"
    assert "kaniko image kaniko:1" in reason


def test_auto_non_executable_kaniko_is_not_chosen(bin_dir: Path, tmp_path: Path) -> None:
    executor = tmp_path / "executor"
    executor.write_text("not executable")
    fake_tool(bin_dir, "buildah")
    backend, _ = select.choose_backend("auto", kaniko_executor=str(executor), kaniko_image=None)
    assert isinstance(backend, BuildahBackend)


def test_auto_nothing_usable_says_what_and_how(bin_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        select.choose_backend("auto", kaniko_executor=no_kaniko(tmp_path), kaniko_image=None)
    message = str(caught.value)
    assert "no Docker daemon answered" in message
    assert f"no executable {no_kaniko(tmp_path)}" in message
    assert "buildah: not on PATH" in message
    assert "apt-get install docker.io docker-buildx" in message
    assert "--kaniko-executor" in message
    assert "apt-get install buildah" in message


def test_probes_are_cached_per_process(bin_dir: Path, daemon: FakeDaemon) -> None:
    fake_tool(bin_dir, "docker")
    for _ in range(3):
        select.choose_backend("auto", kaniko_executor=None, kaniko_image=None)
    assert daemon.pings == 1
    assert select.buildx_plugin_present.cache_info().hits == 2
    select.reset_probes()
    select.choose_backend("auto", kaniko_executor=None, kaniko_image=None)
    assert daemon.pings == 2


def test_a_socket_that_does_not_answer_200_is_no_daemon(bin_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDaemon(tmp_path / "broken.sock", status=b"500 Internal Server Error")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake.path}")
    try:
        assert select.docker_daemon_answers() is False
        assert fake.pings == 1
    finally:
        fake.close()


@pytest.mark.parametrize("where", ["config", "system"])
def test_buildx_plugin_file_is_found_without_running_the_cli(bin_dir: Path, tmp_path: Path, where: str) -> None:
    fake_tool(bin_dir, "docker", exit_status=1)  # running `docker buildx version` would say no
    folder = tmp_path / ("docker-config/cli-plugins" if where == "config" else "system-plugins")
    folder.mkdir(parents=True)
    plugin = fake_tool(folder, "docker-buildx")
    assert select.buildx_plugin_present() is True
    select.reset_probes()
    plugin.chmod(0o644)  # not executable: the CLI decides, and says no
    assert select.buildx_plugin_present() is False


def test_buildx_plugin_without_a_docker_cli_is_absent(bin_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "system-plugins"
    folder.mkdir()
    fake_tool(folder, "docker-buildx")
    assert select.buildx_plugin_present() is False


def test_daemon_probe_survives_docker_errors(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    monkeypatch.setenv("DOCKER_HOST", "ssh://nobody@127.0.0.1")  # hosts other than plain sockets: docker-py

    def broken(**kwargs: object) -> object:
        raise docker.errors.DockerException("Error while fetching server API version")

    monkeypatch.setattr(docker, "from_env", broken)
    assert select.docker_daemon_answers() is False


def test_real_daemon_probe_without_daemon(bin_dir: Path) -> None:
    # DOCKER_HOST points at a missing socket: docker-py fails fast, the probe says no
    assert select.docker_daemon_answers() is False


def test_tls_and_ssh_hosts_are_pinged_through_docker_py(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    FakeClient.pings = 0
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: FakeClient())
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    assert select.docker_daemon_answers() is True
    assert FakeClient.pings == 1


CONTAINERD = [["driver-type", "io.containerd.snapshotter.v1"]]


@pytest.mark.real_buildkit_probe
@pytest.mark.parametrize(("driver_status", "expected"), [
    (CONTAINERD, True),
    ([["Backing Filesystem", "extfs"], ["Supports d_type", "true"]], False),  # overlay2: buildx pushes
    (None, False),
    ("not a list", False),
])
def test_buildkit_pushes_itself_on_the_containerd_image_store(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver_status: object, expected: bool,
) -> None:
    fake = FakeDaemon(tmp_path / "info.sock", driver_status=driver_status)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake.path}")
    try:
        assert select.buildkit_pushes_itself() is expected
        assert select.buildkit_pushes_itself() is expected
        assert fake.infos == 1  # asked once per process
    finally:
        fake.close()


@pytest.mark.real_buildkit_probe
def test_buildkit_push_is_not_assumed_for_other_builders_contexts_or_daemons(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeDaemon(tmp_path / "info.sock", driver_status=CONTAINERD)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake.path}")
    config = tmp_path / "docker-config"
    (config / "buildx").mkdir(parents=True)

    def answer() -> bool:
        select.reset_probes()
        return select.buildkit_pushes_itself()

    try:
        assert answer() is True
        for builder in ("", "default"):
            monkeypatch.setenv("BUILDX_BUILDER", builder)
            assert answer() is True
        monkeypatch.setenv("BUILDX_BUILDER", "multi")  # a builder of any driver: unknown
        assert answer() is False
        monkeypatch.delenv("BUILDX_BUILDER")
        current = config / "buildx" / "current"  # `docker buildx use multi`
        current.write_text(json.dumps({"Key": "unix:///var/run/docker.sock", "Name": "multi", "Global": False}))
        assert answer() is False
        current.write_text(json.dumps({"Key": "unix:///var/run/docker.sock", "Name": "", "Global": False}))
        assert answer() is True
        current.write_text("{not json")
        assert answer() is False
        current.unlink()
        # A Docker context names another daemon than DOCKER_HOST's... unless DOCKER_HOST is set.
        (config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
        assert answer() is True
        monkeypatch.delenv("DOCKER_HOST")
        assert answer() is False
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
        assert answer() is False
        monkeypatch.setenv("DOCKER_HOST", f"unix://{fake.path}")
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")  # not a plain socket: not asked
        assert answer() is False
    finally:
        fake.close()
