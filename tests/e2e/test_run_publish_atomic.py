"""Atomic publishing to the end: indexes by digest first, then tags (buildspec/publish.py).

The quickstart (base, and app built on base: a two-image release) runs through a
FaultyProxy in front of the plain registry, three ways at once:

* ``index``: every index push of ``app`` (a PUT by digest; builds push platform
  tags) gets HTTP 500 for ever: the run fails, and NO tag of either image moved
  (before publish.py, base's tags were published).
* ``tag``: every push of the tag ``app:1.0`` gets 500 for ever: the tags before it
  moved, ``app:1.0`` failed, ``app:latest`` was not pushed; stderr and the
  metadata file say exactly that, and what to rerun. The rerun it names
  (``--manifests-only``, against the registry itself) completes the release and
  leaves the tags already there alone (HEAD first).
* ``flaky``: the first 6 pushes of ``app:latest`` fail (more than the HTTP
  client's own retries): the tag step's retry moves it, the run succeeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faulty_proxy
import pytest
from runner import CliResult, copy_example, manifest_digest, run_cli, tags_of, unique_prefix

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

TAGS = ["1.0", "1.0.0", "latest"]  # the quickstart's tags outside git, sorted
PLATFORM_TAGS = ["1.0.0-linux-amd64", "1.0.0-linux-arm64"]
FAULTS = {
    "index": dict(failures=10_000, path_pattern=r"/app/manifests/sha256:"),
    "tag": dict(failures=10_000, path_pattern=r"/app/manifests/1\.0$"),
    "flaky": dict(failures=6, path_pattern=r"/app/manifests/latest$"),
}


@dataclass(frozen=True)
class Outcome:
    proxy: faulty_proxy.FaultyProxy
    project: Path
    result: CliResult
    prefix: str  # in the real registry, where it is read back
    metadata: dict[str, Any]


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    proxies = {mode: faulty_proxy.FaultyProxy(env.registry, status=500, methods=("PUT",), **fault)  # type: ignore[arg-type]
               for mode, fault in FAULTS.items()}
    folders = {mode: tmp_path_factory.mktemp(f"atomic-{mode}") for mode in FAULTS}

    def one(mode: str) -> Outcome:
        project = copy_example("quickstart", folders[mode])
        path = unique_prefix("x", f"atomic-{mode}").split("/", 1)[1]
        metadata = folders[mode] / "metadata.json"
        result = run_cli(["run", "--metadata-file", str(metadata)], cwd=project, env=_env(env, proxies[mode].address,
                                                                                           path))
        return Outcome(proxies[mode], project, result, f"{env.registry}/{path}", json.loads(metadata.read_text()))

    with ExitStack() as stack:
        for proxy in proxies.values():
            stack.enter_context(proxy)
        with ThreadPoolExecutor(max_workers=len(proxies)) as pool:
            futures = {mode: pool.submit(one, mode) for mode in proxies}
            yield {mode: future.result() for mode, future in futures.items()}


def _env(env: Env, host: str, path: str) -> dict[str, str]:
    import os

    return {**os.environ, "REGISTRY": f"{host}/{path}", "BUSYBOX_IMAGE": env.base_image}


def _states(outcome: Outcome) -> dict[str, str]:
    """``image:tag`` -> its state in the metadata file's publish section."""
    return {f"{t['image']}:{t['tag']}": t["state"] for t in outcome.metadata["publish"]["tags"]}


def test_a_failing_index_push_moves_no_tag_of_any_image(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["index"]
    assert outcome.result.code == 1, outcome.result
    assert re.search(r"^FAILED manifest:app\b.*500", outcome.result.stderr, re.M), outcome.result
    assert any(r.method == "PUT" for r in outcome.proxy.failed), "the fault was never injected"
    # base built and its index went in (by digest), but none of its tags moved
    assert tags_of(f"{outcome.prefix}/base") == PLATFORM_TAGS
    assert tags_of(f"{outcome.prefix}/app") == PLATFORM_TAGS
    assert outcome.result.stdout == ""
    assert outcome.metadata["publish"] == {"complete": False, "tags": [], "rerun": None}
    assert all(image["tags"] == [] for image in outcome.metadata["images"])


def test_a_failing_tag_push_is_reported_tag_by_tag_and_the_rerun_completes_it(
    env: Env, runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["tag"]
    result = outcome.result
    assert result.code == 1, result
    assert _states(outcome) == {
        "base:1.0.0": "pushed", "base:1.0": "pushed", "base:latest": "pushed",
        "app:1.0.0": "pushed", "app:1.0": "failed", "app:latest": "not pushed",
    }
    assert len(outcome.proxy.failed) >= 3 * 5, "the tag push was not retried (3 attempts of 1 + 4 HTTP retries)"
    # the registry agrees with the report
    assert tags_of(f"{outcome.prefix}/base") == sorted([*TAGS, *PLATFORM_TAGS])
    assert tags_of(f"{outcome.prefix}/app") == sorted(["1.0.0", *PLATFORM_TAGS])
    host = outcome.proxy.address
    assert sorted(result.stdout.splitlines()) == sorted(
        f"{host}/{outcome.prefix.split('/', 1)[1]}/{ref}@{_digest(outcome, ref)}"
        for ref in ("base:1.0.0", "base:1.0", "base:latest", "app:1.0.0")
    ), result
    assert "TAGS PARTLY MOVED" in result.stderr, result
    assert re.search(r"^\s+failed\s+\S+/app:1\.0 -> sha256:\w+: .*500", result.stderr, re.M), result
    assert re.search(r"^\s+not pushed\s+\S+/app:latest ", result.stderr, re.M), result
    rerun = outcome.metadata["publish"]["rerun"]
    assert rerun.startswith("buildspec run --manifests-only base app"), rerun
    app = next(i for i in outcome.metadata["images"] if i["name"] == "app")
    assert app["tags"] == ["1.0.0"] and app["status"] == "failed", app

    # the rerun it names, against the registry itself, completes the release
    metadata = outcome.project.parent / "rerun.json"
    again = run_cli(["run", "--manifests-only", "base", "app", "--metadata-file", str(metadata)],
                    cwd=outcome.project, env=_env(env, env.registry, outcome.prefix.split("/", 1)[1]))
    assert again.code == 0, again
    states = {f"{t['image']}:{t['tag']}": t["state"] for t in json.loads(metadata.read_text())["publish"]["tags"]}
    assert states == {
        "base:1.0.0": "unchanged", "base:1.0": "unchanged", "base:latest": "unchanged",
        "app:1.0.0": "unchanged", "app:1.0": "pushed", "app:latest": "pushed",
    }
    assert tags_of(f"{outcome.prefix}/app") == sorted([*TAGS, *PLATFORM_TAGS])
    assert len({manifest_digest(f"{outcome.prefix}/app:{tag}") for tag in TAGS}) == 1


def test_a_tag_push_failing_beyond_http_retries_is_retried_and_the_run_succeeds(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["flaky"]
    assert outcome.result.code == 0, outcome.result
    assert len(outcome.proxy.failed) == 6
    assert outcome.metadata["publish"]["complete"] is True
    assert set(_states(outcome).values()) == {"pushed"}
    for image in ("base", "app"):
        assert tags_of(f"{outcome.prefix}/{image}") == sorted([*TAGS, *PLATFORM_TAGS])
        assert len({manifest_digest(f"{outcome.prefix}/{image}:{tag}") for tag in TAGS}) == 1


def _digest(outcome: Outcome, ref: str) -> str:
    return manifest_digest(f"{outcome.prefix}/{ref}")
