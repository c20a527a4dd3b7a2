"""Several repositories for one image (`repository = [...]`, `registry = [...]`):
one build, one index digest in every repository, and atomic across them.

Scenarios, run at once, each on a copy of fixtures/single (two platforms):

* ``registries`` (buildx): the plain registry first (where the build pushes), the
  TLS + auth registry second (credentials from a DOCKER_CONFIG made for the test):
  the images are copied blob by blob across registries.
* ``mounted`` (buildx, ``registry = [...]``): two repositories of the plain
  registry: the blobs are mounted, not copied.
* ``buildah`` and ``kaniko`` (the strict stand-in): the same release by the
  daemonless backends, across the two registries and within one.
* ``failing``: the second repository is behind a proxy that answers 500 to every
  index push: the run fails and no tag moved in either repository.

Each is read back with skopeo in every repository.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faulty_proxy
import oci_reader
import pytest
from runner import CliResult, copy_fixture, manifest_digest, run_cli, secrets_in_files, tags_of, unique_prefix
from test_contract_backends import backend_args, own_store

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

TAGS = ["1.0.0", "stable"]
PLATFORMS = ["linux/amd64", "linux/arm64"]
PLATFORM_TAGS = ["1.0.0-linux-amd64", "1.0.0-linux-arm64"]

BY_REPOSITORY = """\
first   = env("FIRST", "")
second  = env("SECOND", "")
busybox = env("BUSYBOX_IMAGE", "")
platforms = [linux/amd64, linux/arm64]

image single {
    context    = "."
    repository = ["{first}", "{second}"]
    args { BUSYBOX = "{busybox}" }
    tags = ["1.0.0", "stable"]
}
"""
BY_REGISTRY = BY_REPOSITORY.replace('repository = ["{first}", "{second}"]', "").replace(
    'platforms =', 'registry = ["{first}", "{second}"]\nplatforms =')


@dataclass(frozen=True)
class Scenario:
    backend: str
    buildfile: str
    second_registry: str  # "plain", "auth" or "proxy"


SCENARIOS = {
    "registries": Scenario("buildx", BY_REPOSITORY, "auth"),
    "mounted": Scenario("buildx", BY_REGISTRY, "plain"),
    "buildah": Scenario("buildah", BY_REPOSITORY, "auth"),
    "kaniko": Scenario("kaniko", BY_REGISTRY, "plain"),
    "failing": Scenario("buildx", BY_REPOSITORY, "proxy"),
}


@dataclass(frozen=True)
class Outcome:
    result: CliResult
    repositories: tuple[str, str]  # as buildspec names them
    readable: tuple[str, str]  # the same, where skopeo reads them (the proxy's: the registry behind it)
    metadata: dict[str, Any]
    project: Path


@dataclass(frozen=True)
class Runs:
    outcomes: dict[str, Outcome]
    creds: str
    secrets: tuple[str, ...]


@pytest.fixture(scope="module")
def runs(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    encoded = base64.b64encode(f"{env.auth_user}:{env.auth_password}".encode()).decode()
    config = tmp_path_factory.mktemp("docker-config")
    (config / "config.json").write_text(json.dumps({"auths": {env.auth_registry: {"auth": encoded}}}))
    proxy = faulty_proxy.FaultyProxy(env.registry, 10_000, r"/manifests/sha256:", status=500, methods=("PUT",))
    folders = {name: tmp_path_factory.mktemp(f"repos-{name}") for name in SCENARIOS}

    def one(name: str) -> Outcome:
        scenario = SCENARIOS[name]
        project = copy_fixture("single", folders[name])
        (project / "Buildfile").write_text(scenario.buildfile)
        first = unique_prefix(env.registry, f"repos-{name}")
        host = {"plain": env.registry, "auth": env.auth_registry, "proxy": proxy.address}[scenario.second_registry]
        second = unique_prefix(host, f"repos-{name}-2")
        repositories = (first, second)
        if scenario.buildfile is BY_REGISTRY:
            repositories = (f"{first}/single", f"{second}/single")
        readable = (repositories[0], repositories[1].replace(proxy.address, env.registry))
        metadata = folders[name] / "metadata.json"
        with ExitStack() as stack:
            variables = {**os.environ, "DOCKER_CONFIG": str(config), "FIRST": first, "SECOND": second,
                         "BUSYBOX_IMAGE": env.base_image}
            if scenario.backend != "buildx":
                variables = stack.enter_context(own_store(folders[name], variables))
            result = run_cli(["run", *backend_args(scenario.backend), "--metadata-file", str(metadata)],
                             cwd=project, env=variables)
        document = json.loads(metadata.read_text()) if metadata.is_file() else {}
        return Outcome(result, repositories, readable, document, project)

    with proxy, ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {name: pool.submit(one, name) for name in SCENARIOS}
        yield Runs({name: f.result() for name, f in futures.items()}, f"{env.auth_user}:{env.auth_password}",
                   (env.auth_password, encoded))


def _creds(repository: str, runs: Runs, env: Env) -> str | None:
    return runs.creds if repository.startswith(env.auth_registry) else None


@pytest.mark.parametrize("name", ["registries", "mounted", "buildah", "kaniko"])
def test_one_build_is_published_with_one_index_digest_in_every_repository(
    name: str, runs: Runs, env: Env, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "buildah", "skopeo")
    outcome = runs.outcomes[name]
    assert outcome.result.code == 0, outcome.result
    digests = {manifest_digest(f"{repo}:{tag}", creds=_creds(repo, runs, env))
               for repo in outcome.repositories for tag in TAGS}
    assert len(digests) == 1, digests  # one index, byte for byte, everywhere
    digest = digests.pop()
    children = []
    for repo in outcome.repositories:
        ref = f"{repo}@{digest}"
        creds = _creds(repo, runs, env)
        assert oci_reader.index_platforms(ref, creds=creds) == PLATFORMS
        children.append([m["digest"] for m in oci_reader.raw_manifest(ref, creds=creds)["manifests"]])
        # what runs inside is the build's: the image is whole in this repository
        arch = oci_reader.read_file(ref, "/single-arch", platform="linux/arm64", creds=creds)
        assert arch.strip() == b"aarch64", (repo, arch)
    assert children[0] == children[1]
    # the builds pushed to the first repository only; the index went to both
    assert tags_of(outcome.repositories[0]) == sorted([*TAGS, *PLATFORM_TAGS])
    assert tags_of(outcome.repositories[1], creds=_creds(outcome.repositories[1], runs, env)) == TAGS
    assert sorted(outcome.result.stdout.splitlines()) == sorted(
        f"{repo}:{tag}@{digest}" for repo in outcome.repositories for tag in TAGS)
    image = outcome.metadata["images"][0]
    assert image["repositories"] == list(outcome.repositories)
    assert image["index_digest"] == digest and image["tags"] == TAGS
    for text in (outcome.result.stdout, outcome.result.stderr):
        assert not any(secret in text for secret in runs.secrets)
    assert not secrets_in_files(outcome.project / ".buildspec", runs.secrets)


def test_a_failing_second_repository_moves_no_tag_in_either(
    runs: Runs, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    outcome = runs.outcomes["failing"]
    assert outcome.result.code == 1, outcome.result
    assert "manifest:single" in outcome.result.stderr and "500" in outcome.result.stderr, outcome.result
    assert tags_of(outcome.readable[0]) == PLATFORM_TAGS  # the builds' own tags, no release tag
    assert tags_of(outcome.readable[1]) == []
    assert outcome.result.stdout == ""
    assert outcome.metadata["publish"]["tags"] == []


def test_plan_lists_every_repository(runs: Runs) -> None:
    outcome = runs.outcomes["registries"]
    plan = run_cli(["plan", "--format", "json"], cwd=outcome.project, env={
        **os.environ, "FIRST": outcome.repositories[0], "SECOND": outcome.repositories[1], "BUSYBOX_IMAGE": "b"})
    assert plan.code == 0, plan
    assert json.loads(plan.stdout)["images"][0]["repositories"] == list(outcome.repositories)
    text = run_cli(["plan"], cwd=outcome.project, env={
        **os.environ, "FIRST": outcome.repositories[0], "SECOND": outcome.repositories[1], "BUSYBOX_IMAGE": "b"})
    assert text.code == 0, text
    for repository in outcome.repositories:
        assert f"-> index {repository} : 1.0.0, stable" in text.stdout, text
