"""A build that fails on a transient registry error is built again (buildspec/retry.py).

The push happens inside BuildKit or buildah, out of reach of buildspec's client.
A FaultyProxy in front of the plain registry makes the builder's own push of
one platform image (``PUT .../manifests/1.0.0-linux-amd64``: with ``--no-merge``
nothing else sends it) fail:

* ``buildx-503``: 503 four times, which outlasts BuildKit's own retries (1 s, 2 s, 4 s);
* ``buildx-blob-unknown``: 400 MANIFEST_BLOB_UNKNOWN once, registry 2.8's race,
  which BuildKit does not retry;
* ``buildah-503``: 503 once (buildah does not retry a manifest PUT);
* ``buildx-down``: 503 for ever, with ``--build-retries 2``: three attempts, then
  the run fails, and no tag moved.

Each retry is counted in the summary and the metadata file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faulty_proxy
import pytest
from runner import CliResult, copy_fixture, manifest_digest, run_cli, tags_of, unique_prefix
from test_contract_backends import backend_args, own_store

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

PLATFORM_PUSH = r"/single/manifests/1\.0\.0-linux-amd64$"
BLOB_UNKNOWN = b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
SCENARIOS: dict[str, tuple[str, dict[str, Any], list[str]]] = {  # backend, proxy arguments, extra options
    "buildx-503": ("buildx", dict(failures=4, status=503), []),
    "buildx-blob-unknown": ("buildx", dict(failures=1, status=400, body=BLOB_UNKNOWN), []),
    "buildah-503": ("buildah", dict(failures=1, status=503), []),
    "buildx-down": ("buildx", dict(failures=10_000, status=503), ["--build-retries", "2"]),
}
NODE = "build:single@linux/amd64"


@dataclass(frozen=True)
class Outcome:
    proxy: faulty_proxy.FaultyProxy
    result: CliResult
    repository: str
    metadata: dict[str, Any]


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    proxies = {name: faulty_proxy.FaultyProxy(env.registry, path_pattern=PLATFORM_PUSH, methods=("PUT",), **args)
               for name, (_, args, _) in SCENARIOS.items()}
    folders = {name: tmp_path_factory.mktemp(f"retry-{name}") for name in SCENARIOS}

    def one(name: str) -> Outcome:
        backend, _, extra = SCENARIOS[name]
        project = copy_fixture("single", folders[name])
        prefix = unique_prefix(proxies[name].address, f"build-retry-{name}")
        metadata = folders[name] / "metadata.json"
        with ExitStack() as stack:
            variables = dict(os.environ)
            if backend != "buildx":
                variables = stack.enter_context(own_store(folders[name], variables))
            result = run_cli(["run", "--no-merge", *backend_args(backend), *extra, "--metadata-file", str(metadata),
                              "--set", f"registry={prefix}", "--set", f"busybox={env.base_image}"],
                             cwd=project, env=variables)
        return Outcome(proxies[name], result, f"{env.registry}/{prefix.split('/', 1)[1]}/single",
                       json.loads(metadata.read_text()))

    with ExitStack() as stack:
        for proxy in proxies.values():
            stack.enter_context(proxy)
        with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
            futures = {name: pool.submit(one, name) for name in SCENARIOS}
            yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", ["buildx-503", "buildx-blob-unknown", "buildah-503"])
def test_a_build_failing_on_a_transient_registry_error_is_built_again(
    name: str, runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "buildah", "skopeo")
    outcome = runs[name]
    result = outcome.result
    assert result.code == 0, result
    assert len(outcome.proxy.failed) == SCENARIOS[name][1]["failures"], "the fault was not injected as planned"
    assert outcome.metadata["retries"] == {NODE: 1}
    assert f"retried after a transient registry error: {NODE} (1x)" in result.stderr, result
    assert tags_of(outcome.repository) == ["1.0.0", "1.0.0-linux-amd64", "1.0.0-linux-arm64", "stable"]
    assert manifest_digest(f"{outcome.repository}:1.0.0") == manifest_digest(f"{outcome.repository}:stable")


def test_a_build_that_keeps_failing_is_built_build_retries_times_more_then_fails(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["buildx-down"]
    result = outcome.result
    assert result.code == 1, result
    assert outcome.metadata["retries"] == {NODE: 2}
    # BuildKit's own four attempts, three times
    assert len(outcome.proxy.failed) == 3 * 4, len(outcome.proxy.failed)
    assert f"FAILED {NODE}" in result.stderr, result
    assert "1.0.0" not in tags_of(outcome.repository)
