"""`buildspec run` through a proxy that injects the faults real registries produce
(tests/faulty_proxy.py, in front of the real plain registry), one scenario each.

Every scenario runs fixtures/single (two platforms, tags 1.0.0 and stable) with
``--no-merge``, so buildx pushes only platform tags (no manifest by digest) and the
faults, aimed at digests, config blobs, scheme tags and the tag list, hit
buildspec's own requests (its User-Agent: the Docker daemon reads what BuildKit
pushed through the same paths). All scenarios run at once, each through its own proxy
into a repository of its own; afterwards the registry itself is read with skopeo.

* transient (the fault stops after a few requests): the run succeeds, with the
  same index (same digest) as a run without faults;
* persistent: the run fails, the message names the registry, the request and the
  cause, and no tag moved.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faulty_proxy
import oci_reader
import pytest
from runner import CliResult, copy_fixture, manifest_digest, run_cli, tags_of, unique_prefix

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

TAGS = ["1.0.0", "stable"]
PLATFORM_TAGS = ["1.0.0-linux-amd64", "1.0.0-linux-arm64"]
INDEX = r"/single/manifests/sha256:"  # buildspec's index push (PUT) and image reads (GET)
CONFIG = r"/single/blobs/sha256:"  # buildspec reads each image's config
SCHEME_TAG = r"/single/manifests/(1\.0\.0|stable)$"
TIMEOUT = "1.5"  # BUILDSPEC_REGISTRY_TIMEOUT of every run: a slow body must outlast it

# name -> FaultyProxy arguments
TRANSIENT: dict[str, dict[str, Any]] = {
    "clean": dict(failures=0),
    "reset-download": dict(fault="reset", methods=("GET",), path_pattern=INDEX, failures=2),
    "truncated-blob": dict(fault="truncate", methods=("GET",), path_pattern=CONFIG, failures=2),
    "slow-body": dict(fault="slow", delay=4.0, methods=("GET",), path_pattern=INDEX, failures=1),
    "429-retry-after": dict(status=429, retry_after=1, methods=("PUT",), path_pattern=INDEX, failures=2),
    "502-burst": dict(status=502, methods=("PUT",), path_pattern=SCHEME_TAG, failures=3),
    "500-burst": dict(status=500, methods=("PUT",), path_pattern=INDEX, failures=3),
    "garbled-manifest": dict(fault="garble", methods=("GET",), path_pattern=INDEX, failures=2),
    "reset-upload": dict(fault="reset-upload", methods=("PUT",), path_pattern=INDEX, failures=2),
    "restart": dict(fault="down", down_for=2.0, methods=("GET",), path_pattern=CONFIG),
}
PERSISTENT: dict[str, tuple[dict[str, Any], str]] = {  # arguments, what the message must say
    "reset-download-forever": (dict(fault="reset", methods=("GET",), path_pattern=INDEX, failures=10_000),
                               r"GET /v2/\S+/single/manifests/sha256:\w+ failed: the answer broke off"),
    "wrong-digest-forever": (dict(fault="wrong-digest", methods=("PUT",), path_pattern=INDEX, failures=10_000),
                             r"/single: the registry stored manifest sha256:\w+ as sha256:0{64}, but the bytes "
                             r"sent have digest sha256:\w+"),
    "429-forever": (dict(status=429, retry_after=1, methods=("PUT",), path_pattern=INDEX, failures=10_000),
                    r"/single: cannot push manifest sha256:\w+: HTTP 429"),
    "garbled-forever": (dict(fault="garble", methods=("GET",), path_pattern=CONFIG, failures=10_000),
                        r"/single: blob sha256:\w+ came back with content of digest sha256:\w+ \(5 times\)"),
}


@dataclass(frozen=True)
class Outcome:
    proxy: faulty_proxy.FaultyProxy
    result: CliResult
    repository: str  # in the real registry
    pushed_as: str  # through the proxy


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    arguments = {**TRANSIENT, **{name: args for name, (args, _) in PERSISTENT.items()}}
    proxies = {name: faulty_proxy.FaultyProxy(env.registry, agent="buildspec/", **args)
               for name, args in arguments.items()}
    folders = {name: tmp_path_factory.mktemp(f"fault-{name}") for name in arguments}

    def one(name: str) -> Outcome:
        project = copy_fixture("single", folders[name])
        prefix = unique_prefix(proxies[name].address, f"fault-{name}")
        result = run_cli(["run", "--no-merge", "--set", f"registry={prefix}", "--set", f"busybox={env.base_image}"],
                         cwd=project, env={**os.environ, "BUILDSPEC_REGISTRY_TIMEOUT": TIMEOUT})
        path = prefix.split("/", 1)[1]
        return Outcome(proxies[name], result, f"{env.registry}/{path}/single", f"{prefix}/single")

    with ExitStack() as stack:
        for proxy in proxies.values():
            stack.enter_context(proxy)
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {name: pool.submit(one, name) for name in arguments}
            yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_a_transient_fault_is_survived_with_the_same_result(
    name: str, runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs[name]
    assert outcome.result.code == 0, outcome.result
    if name != "clean":
        assert outcome.proxy.failed, "the fault was never injected"
    digests = {manifest_digest(f"{outcome.repository}:{tag}") for tag in TAGS}
    assert len(digests) == 1, digests
    digest = digests.pop()
    assert oci_reader.index_platforms(f"{outcome.repository}@{digest}") == ["linux/amd64", "linux/arm64"]
    assert tags_of(outcome.repository) == sorted([*TAGS, *PLATFORM_TAGS])
    clean = runs["clean"]
    assert digest == manifest_digest(f"{clean.repository}:1.0.0"), "another index than without the fault"
    assert sorted(outcome.result.stdout.splitlines()) == sorted(f"{outcome.pushed_as}:{t}@{digest}" for t in TAGS)


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_a_persistent_fault_fails_naming_registry_request_and_cause_and_moves_no_tag(
    name: str, runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs[name]
    result = outcome.result
    assert result.code == 1, result
    assert re.search(r"^FAILED manifest:single: ", result.stderr, re.M), result
    failure = next(line for line in result.stderr.splitlines() if line.startswith("FAILED manifest:single"))
    assert outcome.proxy.address in failure, failure  # the registry
    assert re.search(PERSISTENT[name][1], failure), failure  # the request and the cause
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert tags_of(outcome.repository) == PLATFORM_TAGS  # no release tag moved
