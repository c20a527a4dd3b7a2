"""What `run` asks a registry, against an in-memory one (tests/fake_registry.py): each
answer is asked for once and handed on (issue 12: buildspec made the registry work for
requests bake never sends).

* the HTTPS-or-HTTP probe of an insecure registry happens once per registry, whatever
  the number of threads and clients of the run asking at once;
* a base image is resolved once for the builds that ended before the question
  (``Checker.inputs(again=True, not_before=...)``), never before a build ended;
* images a build already checked are not fetched again by the manifest step;
* a bake batch's registry work runs beside the others', and one image's failure there
  fails that image only.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fake_registry import FakeRegistry

from buildspec import publish
from buildspec.errors import RegistryError
from buildspec.executor import Outcome, Task, TaskContext, execute
from buildspec.jobs import BakeCall
from buildspec.load import load
from buildspec.platform import Platform
from buildspec.pushed import Bake
from buildspec.registry import client as client_module
from buildspec.registry.client import RegistryClient
from buildspec.registry.index import IndexEntry, resolve_entry
from buildspec.registry.reference import as_reference
from buildspec.registry.transport import speaks_tls
from buildspec.reporting import make_reporter
from buildspec.uptodate.check import Checker

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(docker_config=str(tmp_path / "no-docker-config"), retries=1) as client:
        yield client


def test_plain_http_and_a_closed_port_do_not_speak_tls() -> None:
    with FakeRegistry() as registry:
        assert speaks_tls(registry.address, 5) is False
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert speaks_tls(f"127.0.0.1:{port}", 5) is False


def test_one_probe_per_registry_for_all_threads_and_clients_of_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[str] = []

    def counting(host: str, timeout: float) -> bool:
        probes.append(host)
        time.sleep(0.05)  # long enough for every thread to be asking meanwhile
        return speaks_tls(host, timeout)

    monkeypatch.setattr(client_module, "speaks_tls", counting)
    with FakeRegistry() as registry, \
            RegistryClient(docker_config=str(tmp_path / "none"), retries=1) as first, \
            RegistryClient(docker_config=str(tmp_path / "none"), retries=1, schemes_of=first) as second:
        repositories = [f"{registry.address}/r{i}/app" for i in range(16)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            found = list(pool.map(lambda pair: pair[0].find_manifest(f"{pair[1]}:1"),
                                  [(first if i % 2 else second, repo) for i, repo in enumerate(repositories)]))
        assert found == [None] * 16
        assert probes == [registry.address]
        assert first._base_urls[registry.address] == f"http://{registry.address}/v2/"
        assert len([r for r in registry.requests if r.path.endswith("/manifests/1")]) == 16


def _project(tmp_path: Path, registry: FakeRegistry) -> tuple[Any, Any]:
    digest, body = registry.add_image("base", arch="amd64")
    registry.manifests[("base", "1")] = ("application/vnd.oci.image.manifest.v1+json", body)
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {registry.address}/base:1\nCOPY f /f\n")
    (context / "f").write_text("f\n")
    (tmp_path / "Buildfile").write_text(
        f'registry = "{registry.address}/acme"\nplatforms = [linux/amd64, linux/arm64]\n'
        'image app {\n    context = "app"\n    tags = ["1"]\n}\n')
    project, _ = load(tmp_path / "Buildfile", {}, {})
    return project, digest


def test_a_base_image_is_asked_once_for_the_builds_that_ended_before_the_question(
        tmp_path: Path, client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        project, _ = _project(tmp_path, registry)
        checker = Checker(project, lambda _: "buildx", client, state_dir=tmp_path / ".buildspec")
        image = project.images["app"]

        def asked() -> int:
            return len([r for r in registry.requests if r.method == "GET" and r.path == "/v2/base/manifests/1"])

        first = checker.inputs(image, AMD64, {})
        assert asked() == 1
        checker.inputs(image, ARM64, {})  # before the builds: one answer for every platform
        assert asked() == 1
        checker.inputs(image, AMD64, {}, again=True)  # anew, with no time given: always asked
        assert asked() == 2
        ended = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            again = list(pool.map(lambda p: checker.inputs(image, p, {}, again=True, not_before=ended),
                                  [AMD64, ARM64] * 4))
        assert asked() == 3  # one question, asked after the builds ended, for all of them
        assert again[0].key == first.key
        later = time.monotonic()
        checker.inputs(image, AMD64, {}, again=True, not_before=later)  # a build that ended after it
        assert asked() == 4


def test_a_base_image_that_moved_during_the_build_is_seen(tmp_path: Path, client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        project, _ = _project(tmp_path, registry)
        checker = Checker(project, lambda _: "buildx", client, state_dir=tmp_path / ".buildspec")
        image = project.images["app"]
        before = checker.inputs(image, AMD64, {})
        _, moved = registry.add_image("base", arch="amd64", seed="moved")
        registry.manifests[("base", "1")] = ("application/vnd.oci.image.manifest.v1+json", moved)
        after = checker.inputs(image, AMD64, {}, again=True, not_before=time.monotonic())
        assert after.key != before.key


def test_images_a_build_checked_are_not_fetched_again_by_the_manifest_step(client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        repo = f"{registry.address}/a/app"
        entries = [IndexEntry(AMD64, registry.add_image("a/app", arch="amd64")[0]),
                   IndexEntry(ARM64, registry.add_image("a/app", arch="arm64")[0])]
        known = {entry: resolve_entry(client, as_reference(repo), entry) for entry in entries}
        before = len(registry.requests)
        staged = publish.stage_index(client, "app", (repo,), entries, ("1",), {}, lambda _: None, known=known)
        assert [(r.method, r.path) for r in registry.requests[before:]] == [
            ("PUT", f"/v2/a/app/manifests/{staged.digest}")]
        # the same index as one assembled from scratch
        scratch = publish.stage_index(client, "app", (repo,), entries, ("1",), {}, lambda _: None)
        assert scratch.body == staged.body


def test_a_bake_batch_finishes_its_builds_beside_each_other_and_a_failure_stays_with_its_image(
        tmp_path: Path) -> None:
    nodes = [f"build:img{i}@linux/amd64+linux/arm64" for i in range(6)]
    call = BakeCall("bake-1", None, dict.fromkeys(nodes), ["true"], {}, tmp_path / "bake")  # type: ignore[arg-type]
    bake = Bake(call)
    running, most = [0], [0]
    guard = threading.Lock()

    def finisher(node: str) -> Any:
        def finish(log: Any, ended: float, digest: str | None) -> Outcome:
            with guard:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.1)
            with guard:
                running[0] -= 1
            log(f"registry work of {node}")
            if node.startswith("build:img3@"):
                raise RegistryError("img3: cannot push manifest: HTTP 500")
            return Outcome(True, "pushed", {"digests": {}})
        return finish

    for node in nodes:
        bake.finishers[node] = finisher(node)

    def action(node: str) -> Any:
        def run(ctx: TaskContext) -> Outcome:
            assert bake.build(ctx)
            try:
                return bake.outcome(node, ctx)
            except RegistryError as e:
                return Outcome(False, str(e))
        return run

    result = execute([Task(node, (), action(node)) for node in nodes], jobs=2, keep_going=True,
                     reporter=make_reporter("plain", io.StringIO()), log_dir=tmp_path / "logs")
    assert most[0] > 2  # beside each other, not one per build slot (-j 2)
    failed = {node: r.detail for node, r in result.results.items() if r.status.value == "failed"}
    assert failed == {"build:img3@linux/amd64+linux/arm64": "img3: cannot push manifest: HTTP 500"}
    for node, r in result.results.items():
        assert r.log_path is not None and f"registry work of {node}" in r.log_path.read_text()
    assert sum("$ true" in r.log_path.read_text() for r in result.results.values() if r.log_path) == 1


def test_the_tag_step_asks_where_every_tag_points_before_it_pushes_one(client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        staged = []
        for name in ("a", "b", "c"):
            repo = f"{registry.address}/{name}/app"
            entries = [IndexEntry(AMD64, registry.add_image(f"{name}/app", arch="amd64")[0])]
            staged.append(publish.stage_index(client, name, (repo,), entries, ("1.0", "latest"), {}, lambda _: None))
        # b's 1.0 already points at its index (a rerun after a partial tag step)
        registry.manifests[("b/app", "1.0")] = registry.manifests[("b/app", staged[1].digest)]
        before = len(registry.requests)
        report = publish.move_tags(client, staged, lambda _: None, pause=0)
        methods = [r.method for r in registry.requests[before:]]
        assert methods == ["HEAD"] * 6 + ["PUT"] * 5
        assert [(m.image, m.tag, m.state) for m in report.moves] == [
            ("a", "1.0", "pushed"), ("a", "latest", "pushed"), ("b", "1.0", "unchanged"),
            ("b", "latest", "pushed"), ("c", "1.0", "pushed"), ("c", "latest", "pushed")]
        for name, index in zip("abc", staged, strict=True):
            assert registry.tags(f"{name}/app") == {"1.0": index.digest, "latest": index.digest}


def test_the_environment_s_proxy_settings_still_apply_read_once_per_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{unused.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    with FakeRegistry() as registry, RegistryClient(docker_config=str(tmp_path / "none"), retries=0) as client:
        for _ in range(2):
            with pytest.raises(RegistryError, match="cannot connect"):
                client.find_manifest(f"{registry.address}/a/app:1")
        assert not registry.requests  # nothing reached the registry: everything went to the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with FakeRegistry() as registry, RegistryClient(docker_config=str(tmp_path / "none"), retries=0) as client:
        assert client.find_manifest(f"{registry.address}/a/app:1") is None
        assert client.find_manifest(f"{registry.address}/a/app:2") is None
        assert len(registry.requests) == 2


def test_docker_py_is_loaded_only_to_read_a_docker_config(tmp_path: Path) -> None:
    probe = ("import sys\nfrom buildspec.registry.client import RegistryClient\n"
             "from buildspec.registry.auth import load_credentials\n"
             "with RegistryClient(docker_config=sys.argv[1], retries=0) as client:\n"
             "    assert client.find_manifest(sys.argv[2] + '/a/app:1') is None\n"
             "print('docker' in sys.modules)\n"
             "load_credentials('example.org', sys.argv[3])\n"
             "print('docker' in sys.modules)\n")
    config = tmp_path / "with-config"
    config.mkdir()
    (config / "config.json").write_text('{"auths": {}}')
    with FakeRegistry() as registry:
        result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "none"), registry.address, str(config)],
                                capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
