"""`buildspec run` when one image cannot be built (fixtures/failing).

``broken`` fails in a RUN step; ``fine`` does not depend on it; ``pinned`` uses
image(broken) and ``after`` has needs = [broken]. The same Buildfile is run twice,
at once, into two fresh repository prefixes:

* as it is (atomic publishing, fail-fast): exit 1 and not one tag of the scheme
  in the registry, for any image; per-platform "platform tags" may exist (they
  are documented as the build's own push);
* with ``--keep-going --publish eager``: ``fine`` is published, the others are
  not, still exit 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import oci_reader
import pytest
from runner import CliResult, copy_fixture, manifest_digest, run_cli, tags_of, unique_prefix

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

IMAGES = ("fine", "broken", "pinned", "after")
SCHEME_TAGS = {"1.0.0", "stable"}
PLATFORMS = ("linux/amd64", "linux/arm64")
PLATFORM_TAG = re.compile(r"^1\.0\.0-linux-(amd64|arm64)$")


@dataclass(frozen=True)
class Outcome:
    prefix: str
    result: CliResult
    metadata: dict[str, Any]


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Both runs, side by side: ``atomic`` (the default) and ``eager`` (-k --publish eager)."""
    extra = {"atomic": [], "eager": ["--keep-going", "--publish", "eager"]}

    # mktemp is not thread-safe (the base folder is made lazily): make the folders first.
    folders = {mode: tmp_path_factory.mktemp(mode) for mode in extra}

    def one(mode: str) -> Outcome:
        folder = folders[mode]
        project = copy_fixture("failing", folder)
        prefix = unique_prefix(env.registry, f"failing-{mode}")
        metadata = folder / "metadata.json"
        result = run_cli(
            [
                "run",
                "--set",
                f"registry={prefix}",
                "--set",
                f"busybox={env.base_image}",
                "--metadata-file",
                str(metadata),
                *extra[mode],
            ],
            cwd=project,
        )
        assert metadata.is_file(), f"no --metadata-file after a failed run\n{result}"
        return Outcome(prefix, result, json.loads(metadata.read_text()))

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {mode: pool.submit(one, mode) for mode in extra}
        return {mode: future.result() for mode, future in futures.items()}


def _nodes(outcome: Outcome) -> dict[str, str]:
    return {node["id"]: node["status"] for node in outcome.metadata["nodes"]}


def _assert_failure_reported(result: CliResult) -> None:
    assert result.code == 1, result
    # the failed node is named, with the tail of its log (the RUN step's own output)
    assert re.search(r"^FAILED build:broken@linux/(amd64|arm64)\b", result.stderr, re.M), result
    tail = [line for line in result.stderr.splitlines() if line.startswith("  | ")]
    assert any("broken-step-output: about to fail" in line for line in tail), result
    assert any("did not complete successfully" in line for line in tail), result


def _assert_dependents_not_run(outcome: Outcome) -> None:
    nodes = _nodes(outcome)
    for image in ("pinned", "after"):
        # One build per platform, or one merged build (build:after@linux/amd64+linux/arm64).
        builds = [node for node in nodes if node.startswith(f"build:{image}@")]
        assert sorted(p for node in builds for p in node.split("@", 1)[1].split("+")) == sorted(PLATFORMS), nodes
        for node in builds:
            assert nodes[node] == "not_run", nodes
            assert re.search(rf"^\[[ \d.]+s\] {re.escape(node)}  not run\b", outcome.result.stderr, re.M), (
                f"{node} is not reported as not run\n{outcome.result}"
            )
        assert nodes[f"manifest:{image}"] == "not_run", nodes


def test_atomic_run_fails_and_pushes_no_tag_at_all(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["atomic"]
    _assert_failure_reported(outcome.result)
    assert outcome.result.stdout == "", "a failed atomic run printed published references"
    for image in IMAGES:
        tags = set(tags_of(f"{outcome.prefix}/{image}"))
        assert not tags & SCHEME_TAGS, f"{image} has scheme tags {tags & SCHEME_TAGS}"
        assert all(PLATFORM_TAG.match(tag) for tag in tags), f"{image}: unexpected tags {tags}"
    nodes = _nodes(outcome)
    assert all(nodes[f"manifest:{image}"] == "not_run" for image in IMAGES), nodes
    assert nodes["publish"] == "not_run", nodes
    _assert_dependents_not_run(outcome)
    for record in outcome.metadata["images"]:
        assert record["tags"] == [] and record["index_digest"] is None, record


def test_keep_going_eager_publishes_the_independent_image(
    runs: dict[str, Outcome], require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs["eager"]
    _assert_failure_reported(outcome.result)
    fine = f"{outcome.prefix}/fine"
    digests = {manifest_digest(f"{fine}:{tag}") for tag in SCHEME_TAGS}
    assert len(digests) == 1, digests
    index_digest = digests.pop()
    index = oci_reader.raw_manifest(f"{fine}@{index_digest}")
    assert index["mediaType"] in oci_reader.INDEX_TYPES
    assert sorted(oci_reader.platform_string(m["platform"]) for m in index["manifests"]) == list(PLATFORMS)
    assert sorted(outcome.result.stdout.splitlines()) == sorted(
        f"{fine}:{tag}@{index_digest}" for tag in SCHEME_TAGS
    ), outcome.result
    for image in ("broken", "pinned", "after"):
        tags = set(tags_of(f"{outcome.prefix}/{image}"))
        assert not tags & SCHEME_TAGS, f"{image} has scheme tags {tags & SCHEME_TAGS}"
    nodes = _nodes(outcome)
    assert nodes["manifest:fine"] == "succeeded", nodes
    assert nodes["manifest:broken"] == "not_run", nodes
    _assert_dependents_not_run(outcome)
    by_name = {record["name"]: record for record in outcome.metadata["images"]}
    assert by_name["fine"]["status"] == "succeeded"
    assert by_name["fine"]["index_digest"] == index_digest


# An image whose build failed is reported "failed", not just "not_run" for its index.
@pytest.mark.parametrize("mode", ["atomic", "eager"])
def test_metadata_says_which_image_failed(runs: dict[str, Outcome], mode: str) -> None:
    by_name = {record["name"]: record for record in runs[mode].metadata["images"]}
    assert by_name["broken"]["status"] == "failed", by_name["broken"]
    assert by_name["pinned"]["status"] == "not_run", by_name["pinned"]
    assert by_name["after"]["status"] == "not_run", by_name["after"]
