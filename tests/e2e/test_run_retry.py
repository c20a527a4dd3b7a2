"""`buildspec run` through a registry that answers 503 for a while (tests/faulty_proxy.py).

The proxy listens on another loopback port in front of the plain registry, and
the whole run goes through it: buildx pushes the per-platform images through it
and the manifest and tag steps push the index through it. Only the tag pushes (PUT
of a scheme tag, which buildx never sends: it pushes platform tags) get the
injected 503s, so what is tested is buildspec's own retrying.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import faulty_proxy
import oci_reader
import pytest
from runner import CliResult, copy_fixture, manifest_digest, run_cli, tags_of, unique_prefix

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

TAGS = ("1.0.0", "stable")
INDEX_PUT = r"/manifests/(1\.0\.0|stable)$"


@dataclass(frozen=True)
class Outcome:
    proxy: faulty_proxy.FaultyProxy
    result: CliResult
    repository: str  # in the real registry, where it is read back
    pushed_as: str  # through the proxy, as buildspec names it


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Side by side: ``flaky`` (two 503s, then fine) and ``down`` (503 for ever)."""
    failures = {"flaky": 2, "down": 1000}
    proxies = {
        # PUTs only: the tag step first asks (HEAD) whether a tag already points at the index
        mode: faulty_proxy.FaultyProxy(env.registry, n, path_pattern=INDEX_PUT, methods=("PUT",))
        for mode, n in failures.items()
    }

    # mktemp is not thread-safe (the base folder is made lazily): make the folders first.
    folders = {mode: tmp_path_factory.mktemp(mode) for mode in failures}

    def one(mode: str) -> Outcome:
        proxy = proxies[mode]
        project = copy_fixture("single", folders[mode])
        prefix = unique_prefix(proxy.address, f"retry-{mode}")
        result = run_cli(
            ["run", "--set", f"registry={prefix}", "--set", f"busybox={env.base_image}"],
            cwd=project,
        )
        path = prefix.split("/", 1)[1]
        return Outcome(proxy, result, f"{env.registry}/{path}/single", f"{prefix}/single")

    with ExitStack() as stack:
        for proxy in proxies.values():
            stack.enter_context(proxy)
        with ThreadPoolExecutor(max_workers=len(proxies)) as pool:
            futures = {mode: pool.submit(one, mode) for mode in proxies}
            yield {mode: future.result() for mode, future in futures.items()}


def test_run_succeeds_when_the_registry_answers_503_twice(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["flaky"]
    result, proxy = outcome.result, outcome.proxy
    assert result.code == 0, result
    # the 503s really happened, to index pushes, and the same push then went through
    assert len(proxy.failed) == 2, [(r.method, r.path) for r in proxy.failed]
    failed = {(r.method, r.path) for r in proxy.failed}
    assert all(method == "PUT" for method, _ in failed), failed
    forwarded = [(r.method, r.path) for r in proxy.forwarded]
    assert failed <= set(forwarded), f"a failed push was not repeated: {failed}"
    assert any(re.search(r"/manifests/1\.0\.0-linux-(amd64|arm64)$", p) for _, p in forwarded), (
        "buildx did not push through the proxy"
    )

    digests = {manifest_digest(f"{outcome.repository}:{tag}") for tag in TAGS}
    assert len(digests) == 1, digests
    index_digest = digests.pop()
    index_ref = f"{outcome.repository}@{index_digest}"
    assert oci_reader.raw_manifest(index_ref)["mediaType"] in oci_reader.INDEX_TYPES
    assert oci_reader.index_platforms(index_ref) == ["linux/amd64", "linux/arm64"]
    assert sorted(result.stdout.splitlines()) == sorted(
        f"{outcome.pushed_as}:{tag}@{index_digest}" for tag in TAGS
    ), result


def test_run_fails_clearly_when_the_registry_stays_unavailable(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["down"]
    result = outcome.result
    assert result.code == 1, result
    # the indexes are in by digest; the tag step is what fails (publish.py)
    assert re.search(r"^FAILED tags: tag \S+:1\.0\.0 failed: .*503", result.stderr, re.M), result
    assert result.stdout == ""
    assert len(outcome.proxy.failed) > 1, "the index push was not retried"
    assert not set(TAGS) & set(tags_of(outcome.repository))
