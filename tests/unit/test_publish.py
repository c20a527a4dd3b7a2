"""buildspec/publish.py and registry/blobs.py against an in-memory registry (tests/fake_registry.py).

Indexes go in by digest first and tags move last; a tag already at its index is
not pushed again; a failing tag stops the tag step and the report says which
tags moved; images are copied between repositories by mount within a registry
and by verified upload across registries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_registry import FakeRegistry, digest_of
from faulty_proxy import Reply, Request

from buildspec import publish
from buildspec.errors import RegistryError
from buildspec.platform import Platform
from buildspec.registry.blobs import copy_image
from buildspec.registry.client import RegistryClient
from buildspec.registry.index import IndexEntry

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(docker_config=str(tmp_path / "no-docker-config"), retries=1) as client:
        yield client


def _500(pattern: str, method: str = "PUT") -> object:
    def fault(request: Request) -> Reply | None:
        if request.method == method and re.search(pattern, request.path):
            return Reply(500, {"Content-Type": "application/json"}, b'{"errors":[{"code":"UNKNOWN"}]}')
        return None
    return fault


def _release(registry: FakeRegistry, repo: str) -> list[IndexEntry]:
    return [IndexEntry(AMD64, registry.add_image(repo, arch="amd64")[0]),
            IndexEntry(ARM64, registry.add_image(repo, arch="arm64")[0])]


def _methods(registry: FakeRegistry) -> list[tuple[str, str]]:
    return [(r.method, r.path.split("?")[0]) for r in registry.requests]


# ---------------------------------------------------------------- copying images


def test_copy_within_one_registry_mounts_every_blob(client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        digest, body = registry.add_image("a/app", layers=3)
        copy_image(client, f"{registry.address}/a/app", f"{registry.address}/b/app", digest)
        assert registry.manifests[("b/app", digest)][1] == body
        assert {d for (repo, d) in registry.blobs if repo == "b/app"} == {
            d for (repo, d) in registry.blobs if repo == "a/app"}
        posts = [r.path for r in registry.requests if r.method == "POST"]
        assert len(posts) == 4 and all("mount=" in p and "from=a%2Fapp" in p for p in posts), posts
        assert not any(m == "PUT" and "/blobs/uploads/" in p for m, p in _methods(registry))


def test_copy_across_registries_uploads_only_missing_blobs(client: RegistryClient) -> None:
    with FakeRegistry() as source, FakeRegistry() as target:
        digest, body = source.add_image("a/app", layers=2)
        config = json.loads(body)["config"]["digest"]
        target.blobs[("b/app", config)] = source.blobs[("a/app", config)]  # already there
        copy_image(client, f"{source.address}/a/app", f"{target.address}/b/app", digest)
        assert target.manifests[("b/app", digest)][1] == body
        uploads = [p for m, p in _methods(target) if m == "PUT" and "/blobs/uploads/" in p]
        assert len(uploads) == 2, uploads  # the two layers, not the config
        assert not any(r.method == "GET" and config in r.path for r in source.requests)


def test_a_declined_mount_falls_back_to_an_upload(client: RegistryClient) -> None:
    with FakeRegistry(mount=False) as registry:
        digest, _ = registry.add_image("a/app", layers=1)
        copy_image(client, f"{registry.address}/a/app", f"{registry.address}/b/app", digest)
        assert ("b/app", digest) in registry.manifests
        assert len([p for m, p in _methods(registry) if m == "PUT" and "/blobs/uploads/" in p]) == 2


def test_a_blob_with_other_content_is_not_copied(client: RegistryClient) -> None:
    with FakeRegistry() as source, FakeRegistry() as target:
        digest, body = source.add_image("a/app", layers=1)
        layer = json.loads(body)["layers"][0]["digest"]
        source.blobs[("a/app", layer)] = b"tampered"
        with pytest.raises(RegistryError, match=f"blob {layer} came back with other content"):
            copy_image(client, f"{source.address}/a/app", f"{target.address}/b/app", digest)
        assert ("b/app", digest) not in target.manifests  # no manifest without its blobs


def test_an_image_already_in_the_target_is_left_alone(client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        digest, _ = registry.add_image("a/app")
        copy_image(client, f"{registry.address}/a/app", f"{registry.address}/b/app", digest)
        before = len(registry.requests)
        copy_image(client, f"{registry.address}/a/app", f"{registry.address}/b/app", digest)
        assert [r.method for r in registry.requests[before:]] == ["HEAD"]


# ---------------------------------------------------------------- staging and moving tags


def test_stage_pushes_one_index_by_digest_to_every_repository_and_no_tag(client: RegistryClient) -> None:
    with FakeRegistry() as one, FakeRegistry() as other:
        entries = _release(one, "a/app")
        repos = (f"{one.address}/a/app", f"{one.address}/b/app", f"{other.address}/c/app")
        staged = publish.stage_index(client, "app", repos, entries, ("1.0.0", "latest"), {}, lambda _: None)
        assert staged.digest == digest_of(staged.body)
        for registry, repo in ((one, "a/app"), (one, "b/app"), (other, "c/app")):
            assert registry.manifests[(repo, staged.digest)][1] == staged.body
            assert registry.tags(repo) == {}
        assert [p for p, _ in staged.manifests] == ["linux/amd64", "linux/arm64"]


def test_a_failing_repository_fails_the_stage_before_any_tag(client: RegistryClient) -> None:
    with FakeRegistry() as one, FakeRegistry(fault=_500("/b/app/manifests/sha256:")) as other:  # type: ignore[arg-type]
        entries = _release(one, "a/app")
        repos = (f"{one.address}/a/app", f"{other.address}/b/app")
        with pytest.raises(RegistryError, match=r"b/app: cannot push manifest sha256:.*HTTP 500"):
            publish.stage_index(client, "app", repos, entries, ("1.0.0",), {}, lambda _: None)
        assert one.tags("a/app") == {} and other.tags("b/app") == {}


def test_move_tags_skips_tags_already_at_the_index(client: RegistryClient) -> None:
    with FakeRegistry() as registry:
        repo = f"{registry.address}/a/app"
        staged = publish.stage_index(client, "app", (repo,), _release(registry, "a/app"), ("1.0.0", "latest"), {},
                                     lambda _: None)
        first = publish.move_tags(client, [staged], lambda _: None, pause=0)
        assert [m.state for m in first.moves] == ["pushed", "pushed"] and first.complete
        before = len(registry.requests)
        second = publish.move_tags(client, [staged], lambda _: None, pause=0)
        assert [m.state for m in second.moves] == ["unchanged", "unchanged"]
        assert {r.method for r in registry.requests[before:]} == {"HEAD"}  # nothing pushed again
        assert registry.tags("a/app") == {"1.0.0": staged.digest, "latest": staged.digest}


def test_a_tag_that_keeps_failing_stops_the_tag_step_and_is_reported(client: RegistryClient) -> None:
    with FakeRegistry(fault=_500(r"/app/manifests/1\.0$")) as registry:  # type: ignore[arg-type]
        stages = [publish.stage_index(client, name, (f"{registry.address}/{name}/app",),
                                      _release(registry, f"{name}/app"), ("1.0.0", "1.0", "latest"), {},
                                      lambda _: None)
                  for name in ("base", "web")]
        report = publish.move_tags(client, stages, lambda _: None, pause=0)
        assert [(m.image, m.tag, m.state) for m in report.moves] == [
            ("base", "1.0.0", "pushed"), ("base", "1.0", "failed"), ("base", "latest", "not pushed"),
            ("web", "1.0.0", "not pushed"), ("web", "1.0", "not pushed"), ("web", "latest", "not pushed")]
        failed = report.moves[1]
        assert "HTTP 500" in failed.error
        # three attempts of the tag step, each one the client retried once
        assert len([r for r in registry.requests if r.method == "PUT" and r.path.endswith("/1.0")]) == 3 * 2
        assert registry.tags("base/app") == {"1.0.0": stages[0].digest} and registry.tags("web/app") == {}
        assert not report.complete
        lines = publish.report_lines(report, ["base", "web"])
        assert any(line.startswith("  failed      ") and "/base/app:1.0 -> " in line for line in lines)
        assert lines[-1].startswith("  rerun: buildspec run --manifests-only base web")
        document = publish.report_json(report, ["base", "web"])
        assert document["complete"] is False and str(document["rerun"]).startswith("buildspec run --manifests-only")


def test_a_tag_failing_once_more_than_the_client_retries_is_moved(client: RegistryClient) -> None:
    failures = iter(range(3))  # the client's two tries, then one more

    def fault(request: Request) -> Reply | None:
        if request.method == "PUT" and request.path.endswith("/manifests/latest") and next(failures, None) is not None:
            return Reply(503)
        return None

    with FakeRegistry(fault=fault) as registry:
        repo = f"{registry.address}/a/app"
        staged = publish.stage_index(client, "app", (repo,), _release(registry, "a/app"), ("latest",), {},
                                     lambda _: None)
        report = publish.move_tags(client, [staged], lambda _: None, pause=0)
        assert report.complete and registry.tags("a/app") == {"latest": staged.digest}


def test_an_interrupted_tag_step_pushes_nothing_more(client: RegistryClient) -> None:
    import threading

    cancelled = threading.Event()
    cancelled.set()
    with FakeRegistry() as registry:
        repo = f"{registry.address}/a/app"
        staged = publish.stage_index(client, "app", (repo,), _release(registry, "a/app"), ("1",), {}, lambda _: None)
        report = publish.move_tags(client, [staged], lambda _: None, cancelled=cancelled)
        assert [m.state for m in report.moves] == ["not pushed"] and registry.tags("a/app") == {}
