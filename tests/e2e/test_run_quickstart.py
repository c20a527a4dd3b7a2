"""`buildspec run` on examples/quickstart, checked the way a user would check it.

Two images (base, and app built FROM image(base)) for linux/amd64 and
linux/arm64 are built by buildx and published as indexes under every tag that
`buildspec plan --format json` announces. Everything is read back with skopeo
(tests/oci_reader.py), never with buildspec's own registry code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import UNAME, CliResult, bookkeeping_tags, copy_example, manifest_digest, run_cli, tags_of

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

PLATFORMS = ["linux/amd64", "linux/arm64"]
REF_LINE = re.compile(r"^(?P<repo>[^@\s]+):(?P<tag>\w[\w.-]*)@(?P<digest>sha256:[0-9a-f]{64})$")


def test_quickstart_publishes_both_images_for_both_platforms(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_example("quickstart", tmp_path)
    sets = ["--set", f"registry={unique_repo}", "--set", f"busybox={env.base_image}"]

    metadata_file = tmp_path / "metadata.json"
    with ThreadPoolExecutor(max_workers=2) as pool:  # the plan does not wait for the run
        planning = pool.submit(run_cli, ["plan", "--format", "json", *sets], cwd=project)
        running = pool.submit(run_cli, ["run", *sets, "--metadata-file", str(metadata_file)], cwd=project)
        plan, run = planning.result(), running.result()
    assert plan.code == 0, plan
    planned = {image["name"]: image for image in json.loads(plan.stdout)["images"]}
    assert set(planned) == {"base", "app"}, plan
    for image in planned.values():
        assert image["repository"] == f"{unique_repo}/{image['name']}"
        assert image["platforms"] == PLATFORMS
        assert image["tags"], f"the plan gives {image['name']} no tag"

    assert run.code == 0, run

    # stdout: exactly one `repo:tag@digest` line per image and tag, nothing else
    published = _published_refs(run)
    assert set(published) == {
        (image["repository"], tag) for image in planned.values() for tag in image["tags"]
    }, run

    metadata = json.loads(metadata_file.read_text())
    by_name = {image["name"]: image for image in metadata["images"]}
    assert set(by_name) == {"base", "app"}, metadata

    for name, image in planned.items():
        repository = image["repository"]
        digests = {tag: manifest_digest(f"{repository}:{tag}") for tag in image["tags"]}
        # one index, reachable under every tag, the one stdout and the metadata name
        assert len(set(digests.values())) == 1, f"{name}: tags name other manifests: {digests}"
        index_digest = next(iter(digests.values()))
        assert {published[(repository, tag)] for tag in image["tags"]} == {index_digest}
        record = by_name[name]
        assert record["repository"] == repository
        assert record["tags"] == image["tags"]
        assert record["index_digest"] == index_digest
        assert record["status"] == "succeeded"
        assert tags_of(repository) == sorted([*image["tags"], *image["platform_tags"].values()]), (
            "the registry has tags that neither the scheme nor the platform tags explain"
        )
        # and one input-key record per platform image, under its key and as the newest build
        records = bookkeeping_tags(repository)
        assert len(records["buildspec-key-"]) == len(PLATFORMS), records
        assert sorted(records["buildspec-last-"]) == [f"buildspec-last-{name}-linux-{a}" for a in ("amd64", "arm64")]

        index = oci_reader.raw_manifest(f"{repository}@{index_digest}")
        assert index["mediaType"] in oci_reader.INDEX_TYPES, index
        # each real platform exactly once: no attestation, no unknown/unknown
        entries = sorted(oci_reader.platform_string(m["platform"]) for m in index["manifests"])
        assert entries == PLATFORMS, index
        assert set(record["platform_digests"]) == set(PLATFORMS), record
        for platform in PLATFORMS:
            child = oci_reader.platform_ref(f"{repository}@{index_digest}", platform)
            assert child == f"{repository}@{record['platform_digests'][platform]}", record
            config = oci_reader.image_config(child)
            assert f"{config['os']}/{config['architecture']}" == platform, config

    index = {name: f"{image['repository']}:{image['tags'][0]}" for name, image in planned.items()}
    base_of = {p: oci_reader.layers(index["base"], platform=p) for p in PLATFORMS}
    assert base_of["linux/amd64"][0] != base_of["linux/arm64"][0], "one busybox layer for both"
    for platform in PLATFORMS:
        app_layers = oci_reader.layers(index["app"], platform=platform)
        base_layers = base_of[platform]
        # image(base) pinned app to base's build for the same platform
        assert app_layers[: len(base_layers)] == base_layers, (platform, base_layers, app_layers)
        assert len(app_layers) > len(base_layers)
        # app's RUN step really ran on that architecture (under qemu for arm64)
        content = oci_reader.read_file(index["app"], "/etc/quickstart/app-arch", platform=platform)
        assert content.decode() == f"{UNAME[platform.split('/')[1]]}\n", platform

    # the app builds were given base's per-platform digest, as their logs show
    logs = project / ".buildspec" / "logs"
    for platform in PLATFORMS:
        log = (logs / f"build-app@{platform.replace('/', '-')}.log").read_text()
        pinned = f"{planned['base']['repository']}@{by_name['base']['platform_digests'][platform]}"
        assert f"BASE_IMAGE={pinned}" in log, f"build:app@{platform} did not use {pinned}"


def _published_refs(run: CliResult) -> dict[tuple[str, str], str]:
    refs: dict[tuple[str, str], str] = {}
    for line in run.stdout.splitlines():
        match = REF_LINE.match(line)
        assert match, f"stdout has a line that is not repo:tag@digest: {line!r}\n{run}"
        key = (match["repo"], match["tag"])
        assert key not in refs, f"{line} is printed twice"
        refs[key] = match["digest"]
    return refs
