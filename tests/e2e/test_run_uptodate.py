"""Make semantics, end to end: `run` skips the builds whose input key is in the registry.

Every test builds for real (buildx, buildah, the kaniko stand-in) against the
local registry, changes one input, and checks what a user would: which builds
ran (the summary's counts, the logs, `--metadata-file`), the reasons `plan` and
the logs give, and what the registry holds afterwards (read with skopeo).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faulty_proxy
import oci_reader
import pytest
import requests
from runner import CliResult, copy_example, copy_tree, manifest_digest, run_cli, tags_of

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]
STANDIN = TESTS / "kaniko" / "executor"
COUNTS = re.compile(r"^images: (\d+) built, (\d+) up to date, (\d+) retagged$", re.M)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

SMALL_BUILDFILE = """\
registry  = "{registry}"
busybox   = "{busybox}"
mode      = "1"
platforms = [{platforms}]

image app {{
    context = "app"
    args {{ BUSYBOX = "{{busybox}}"  MODE = "{{mode}}" }}
    tags = ["1.0.0"]
}}
"""
SMALL_DOCKERFILE = "ARG BUSYBOX\nFROM ${BUSYBOX}\nARG MODE\nCOPY . /app\nRUN echo \"$MODE\" > /mode\n"


def counts(result: CliResult) -> tuple[int, int, int]:
    """(built, up to date, retagged) from the summary's last line."""
    found = COUNTS.search(result.stderr)
    assert found, f"no build counts in the summary\n{result}"
    return int(found[1]), int(found[2]), int(found[3])


def logs(project: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (project / ".buildspec" / "logs").glob("*.log")}


def build_commands(project: Path) -> list[str]:
    """The build tools a run started, as its logs show them."""
    tools = ("docker buildx", "buildah", "kaniko", "executor")
    return [line for text in logs(project).values() for line in text.splitlines()
            if line.startswith("$ ") and any(tool in line for tool in tools)]


def plan_nodes(project: Path, *args: str) -> dict[str, dict[str, Any]]:
    result = run_cli(["plan", "--format", "json", *args], cwd=project)
    assert result.code == 0, result
    return {node["id"]: node for node in json.loads(result.stdout)["nodes"] if node["kind"] == "build"}


def small_project(folder: Path, registry: str, busybox: str, platforms: str = "linux/amd64") -> Path:
    project = folder / "small"
    (project / "app").mkdir(parents=True)
    (project / "Buildfile").write_text(SMALL_BUILDFILE.format(registry=registry, busybox=busybox, platforms=platforms))
    (project / "app" / "Dockerfile").write_text(SMALL_DOCKERFILE)
    (project / "app" / ".dockerignore").write_text("*.tmp\n")
    (project / "app" / "a.txt").write_text("alpha\n")
    return project


def run_ok(project: Path, *args: str) -> CliResult:
    result = run_cli(["run", *args], cwd=project)
    assert result.code == 0, result
    return result


def all_tags(repository: str) -> dict[str, str]:
    return {tag: manifest_digest(f"{repository}:{tag}") for tag in tags_of(repository)}


def test_quickstart_second_run_builds_nothing_and_a_base_change_rebuilds_base_and_app(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_example("quickstart", tmp_path)
    sets = ["--set", f"registry={unique_repo}", "--set", f"busybox={env.base_image}"]
    first = run_ok(project, *sets)
    assert counts(first) == (2, 0, 0)
    repositories = [f"{unique_repo}/base", f"{unique_repo}/app"]
    before = {repo: all_tags(repo) for repo in repositories}

    nodes = plan_nodes(project, *sets)
    assert {n: node["status"] for n, node in nodes.items()} == dict.fromkeys(nodes, "up to date"), nodes
    for node in nodes.values():
        assert set(node["digests"]) == set(node["platforms"])

    metadata = tmp_path / "metadata.json"
    second = run_ok(project, *sets, "--metadata-file", str(metadata))
    assert counts(second) == (0, 2, 0)
    assert "base  succeeded  (up to date)" in second.stderr
    assert build_commands(project) == [], "an up-to-date run started a build"
    assert {repo: all_tags(repo) for repo in repositories} == before, "a tag moved"
    document = json.loads(metadata.read_text())
    assert {i["name"]: i["build"] for i in document["images"]} == {"base": "up to date", "app": "up to date"}
    assert {n["id"]: n["build"] for n in document["nodes"] if n["id"].startswith("build:")} == dict.fromkeys(
        nodes, "up to date")

    # One file of base changes what base's image holds: base and its dependent build again.
    dockerfile = project / "base" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("/etc/quickstart/base-arch", "/etc/quickstart/base-arch2"))
    nodes = plan_nodes(project, *sets)
    reasons = {n: node.get("reasons") for n, node in nodes.items()}
    assert reasons == {
        "build:base@linux/amd64+linux/arm64": ["Dockerfile changed"],
        "build:app@linux/amd64": ["image(base) will be rebuilt"],
        "build:app@linux/arm64": ["image(base) will be rebuilt"],
    }, reasons
    third = run_ok(project, *sets, "--metadata-file", str(metadata))
    assert counts(third) == (2, 0, 0)
    app_logs = [text for name, text in logs(project).items() if name.startswith("build-app@")]
    assert len(app_logs) == 2 and all("will build: image(base) was rebuilt" in text for text in app_logs)
    after = {repo: all_tags(repo) for repo in repositories}
    for repo in repositories:
        assert after[repo]["1.0.0"] != before[repo]["1.0.0"], f"{repo}: the release did not move"
    content = oci_reader.read_file(f"{unique_repo}/app:1.0.0", "/etc/quickstart/base-arch2", platform="linux/arm64")
    assert content == b"aarch64\n"


def test_a_new_version_and_commit_retag_the_same_images(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo", "git")
    project = copy_example("quickstart", tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=project, check=True)
    sets = ["--set", f"registry={unique_repo}", "--set", f"busybox={env.base_image}"]
    assert counts(run_ok(project, *sets)) == (2, 0, 0)

    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "two"], cwd=project, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True, capture_output=True,
                         text=True).stdout.strip()
    second = run_ok(project, *sets, "--set", "version=1.1.0")
    assert counts(second) == (0, 0, 2), second
    assert build_commands(project) == []
    for name in ("base", "app"):
        repository = f"{unique_repo}/{name}"
        old = oci_reader.raw_manifest(f"{repository}:1.0.0")
        new = oci_reader.raw_manifest(f"{repository}:1.1.0")
        assert [m["digest"] for m in new["manifests"]] == [m["digest"] for m in old["manifests"]], name
        # per-release metadata is on the index, not on the (shared) platform images
        assert new["annotations"]["org.opencontainers.image.version"] == "1.1.0"
        assert new["annotations"]["org.opencontainers.image.revision"] == sha
        labels = oci_reader.image_config(f"{repository}:1.1.0-linux-arm64")["config"].get("Labels") or {}
        assert "org.opencontainers.image.version" not in labels and "org.opencontainers.image.revision" not in labels
        assert labels["org.opencontainers.image.title"] == name
        assert f"sha-{sha[:7]}" in tags_of(repository)
        assert manifest_digest(f"{repository}:1.1.0-linux-arm64") == manifest_digest(f"{repository}:1.0.0-linux-arm64")


def test_each_input_change_is_seen_and_named(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "buildah", "skopeo")
    project = small_project(tmp_path, unique_repo, env.base_image)
    app = project / "app"

    def step(*args: str) -> tuple[tuple[int, int, int], str]:
        result = run_ok(project, *args)
        reasons = [line.removeprefix("will build: ") for line in logs(project)["build-app@linux-amd64.log"]
                   .splitlines() if line.startswith("will build: ")]
        return counts(result), "; ".join(reasons)

    assert step() == ((1, 0, 0), "no image with this key")
    (app / "scratch.tmp").write_text("ignored by .dockerignore\n")
    assert step() == ((0, 1, 0), "")
    (app / "a.txt").rename(app / "b.txt")
    assert step() == ((1, 0, 0), "a.txt renamed to b.txt")
    (app / "b.txt").chmod(0o755)
    assert step() == ((1, 0, 0), "b.txt mode 0644 -> 0755")
    (app / "b.txt").write_text("beta\n")
    assert step() == ((1, 0, 0), "b.txt changed")
    assert step("--set", "mode=2") == ((1, 0, 0), "arg MODE 1 -> 2")
    assert step("--set", "mode=2", "--backend", "buildah") == ((1, 0, 0), "backend buildx -> buildah")
    assert step("--set", "mode=2", "--backend", "buildah") == ((0, 1, 0), "")
    assert step("--set", "mode=2", "--backend", "buildah", "-B") == ((1, 0, 0), "-B (--always-make)")
    assert oci_reader.read_file(f"{unique_repo}/app:1.0.0", "/mode", platform="linux/amd64") == b"2\n"

    # A second clone in another folder finds the same keys.
    clone = copy_tree(project, tmp_path / "elsewhere" / "small")
    result = run_ok(clone, "--set", "mode=2", "--backend", "buildah")
    assert counts(result) == (0, 1, 0)
    # Back to inputs built before: that image is found again, nothing is built.
    result = run_ok(clone, "--set", "mode=1")
    assert counts(result) == (0, 0, 1), result


def test_a_record_of_another_key_version_is_never_a_hit(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = small_project(tmp_path, unique_repo, env.base_image)
    run_ok(project)
    (node,) = plan_nodes(project).values()
    assert node["status"] == "up to date"
    key = node["keys"]["linux/amd64"]
    url = f"http://{env.registry}/v2/{unique_repo.split('/', 1)[1]}/app/manifests/buildspec-key-{key}"
    document = requests.get(url, headers={"Accept": OCI_INDEX}, timeout=10).json()
    document["annotations"]["dev.buildspec.key-version"] = "0"
    put = requests.put(url, data=json.dumps(document).encode(), headers={"Content-Type": OCI_INDEX}, timeout=10)
    assert put.status_code == 201, put.text
    (node,) = plan_nodes(project).values()
    assert (node["status"], node["reasons"]) == ("will build", ["no image with this key"])
    assert counts(run_ok(project)) == (1, 0, 0)


def test_a_base_image_moved_for_one_platform_rebuilds_that_platform_only(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    busybox = f"{unique_repo}/busybox:1"
    oci_reader.skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                      f"docker://{env.base_image}", f"docker://{busybox}")
    project = copy_example("quickstart", tmp_path)
    sets = ["--set", f"registry={unique_repo}", "--set", f"busybox={busybox}", "--no-merge"]
    assert counts(run_ok(project, *sets)) == (2, 0, 0)

    # busybox:1 moves: a new arm64 image, the same amd64 one.
    context = tmp_path / "newer"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {env.base_image}\nRUN echo newer > /newer\n")
    subprocess.run(["docker", "buildx", "build", "--platform", "linux/arm64", "--provenance=false",
                    "-t", f"{unique_repo}/busybox:newer-arm64", "--push", str(context)],
                   check=True, capture_output=True)
    newer = oci_reader.skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{unique_repo}/busybox:newer-arm64")
    index = oci_reader.raw_manifest(busybox)
    for entry in index["manifests"]:
        if entry.get("platform", {}).get("architecture") == "arm64":
            entry.update(digest="sha256:" + hashlib.sha256(newer).hexdigest(), size=len(newer),
                         mediaType=json.loads(newer)["mediaType"])
    path = busybox.split("/", 1)[1].replace(":", "/manifests/")
    put = requests.put(f"http://{env.registry}/v2/{path}", data=json.dumps(index).encode(),
                       headers={"Content-Type": index["mediaType"]}, timeout=10)
    assert put.status_code == 201, put.text

    nodes = plan_nodes(project, *sets)
    status = {n: node["status"] for n, node in nodes.items()}
    assert status == {"build:base@linux/amd64": "up to date", "build:base@linux/arm64": "will build",
                      "build:app@linux/amd64": "up to date", "build:app@linux/arm64": "will build"}, nodes
    (reason,) = nodes["build:base@linux/arm64"]["reasons"]
    assert reason.startswith(f"FROM {busybox} moved to sha256:"), reason
    metadata = tmp_path / "metadata.json"
    run_ok(project, *sets, "--metadata-file", str(metadata))
    builds = {n["id"]: n["build"] for n in json.loads(metadata.read_text())["nodes"] if "build" in n}
    assert builds == {"build:base@linux/amd64": "up to date", "build:base@linux/arm64": "built",
                      "build:app@linux/amd64": "up to date", "build:app@linux/arm64": "built"}
    assert "will build: image(base) was rebuilt" in logs(project)["build-app@linux-arm64.log"]
    assert oci_reader.read_file(f"{unique_repo}/app:1.0.0", "/newer", platform="linux/arm64") == b"newer\n"


@pytest.mark.parametrize("backend", ["kaniko", "buildah"])
def test_ci_split_jobs_skip_what_is_up_to_date(
    backend: str, env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("buildah", "skopeo")
    project = small_project(tmp_path, unique_repo, env.base_image, platforms="linux/amd64, linux/arm64")
    options = ["--backend", backend, "--kaniko-executor", str(STANDIN)]

    def release() -> list[CliResult]:
        jobs = [run_ok(project, *options, "--platform", p) for p in ("linux/amd64", "linux/arm64")]
        return [*jobs, run_ok(project, *options, "--manifests-only")]

    first = release()
    assert [counts(r) for r in first[:2]] == [(1, 0, 0), (1, 0, 0)]
    before = all_tags(f"{unique_repo}/app")
    assert set(before) == {"1.0.0", "1.0.0-linux-amd64", "1.0.0-linux-arm64"}
    second = release()
    assert [counts(r) for r in second[:2]] == [(0, 1, 0), (0, 1, 0)], second
    assert all_tags(f"{unique_repo}/app") == before


def test_a_registry_that_cannot_be_read_means_build(
    env: Env, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    with faulty_proxy.FaultyProxy(env.registry, 1000, path_pattern=r"/manifests/buildspec-") as proxy:
        project = small_project(tmp_path, f"{proxy.address}/t/uptodate-unreadable", env.base_image)
        first = run_ok(project)
        assert counts(first) == (1, 0, 0)
        log = logs(project)["build-app@linux-amd64.log"]
        assert "will build: cannot read the registry:" in log, log
        assert "warning: cannot record the key" in log
        (node,) = plan_nodes(project).values()
        assert node["status"] == "will build"
        assert node["reasons"][0].startswith("cannot read the registry: "), node
        assert counts(run_ok(project)) == (1, 0, 0)



THREE_BUILDFILE = """\
registry  = "{registry}"
busybox   = "{busybox}"
version   = "1.0.0"
platforms = [linux/amd64, linux/arm64]

image one   {{ context = "one"    args {{ BUSYBOX = "{{busybox}}" }}  tags = ["{{version}}"] }}
image two   {{ context = "two"    args {{ BUSYBOX = "{{busybox}}" }}  tags = ["{{version}}"] }}
image three {{ context = "three"  args {{ BUSYBOX = "{{busybox}}" }}  tags = ["{{version}}"] }}
"""


def three_images(folder: Path, registry: str, busybox: str) -> Path:
    project = folder / "three"
    for name in ("one", "two", "three"):
        (project / name).mkdir(parents=True)
        (project / name / "Dockerfile").write_text(
            "ARG BUSYBOX\nFROM ${BUSYBOX}\nCOPY f /f\nRUN test \"$(cat /f)\" != fail\n")
        (project / name / "f").write_text(f"{name}\n")
    (project / "Buildfile").write_text(THREE_BUILDFILE.format(registry=registry, busybox=busybox))
    return project


def test_up_to_date_images_are_left_out_of_the_bake(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = three_images(tmp_path, unique_repo, env.base_image)
    result = run_cli(["plan", "--format", "json"], cwd=project)
    assert [b["nodes"] for b in json.loads(result.stdout)["batches"]] == [[
        "build:one@linux/amd64+linux/arm64", "build:two@linux/amd64+linux/arm64",
        "build:three@linux/amd64+linux/arm64"]], result
    assert counts(run_ok(project)) == (3, 0, 0)
    for name in ("one", "three"):
        (project / name / "f").write_text(f"{name} again\n")
    plan = json.loads(run_cli(["plan", "--format", "json"], cwd=project).stdout)
    assert [b["nodes"] for b in plan["batches"]] == [[
        "build:one@linux/amd64+linux/arm64", "build:three@linux/amd64+linux/arm64"]], plan["batches"]
    second = run_ok(project)
    assert counts(second) == (2, 1, 0)
    assert sum(line.startswith("$ docker buildx bake") for line in build_commands(project)) == 1
    assert oci_reader.read_file(f"{unique_repo}/three:1.0.0", "/f", platform="linux/arm64") == b"three again\n"


def test_a_new_platform_builds_only_that_platform(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = small_project(tmp_path, unique_repo, env.base_image)
    assert counts(run_ok(project, "--no-merge")) == (1, 0, 0)
    both = ["--no-merge", "--set", "platforms=linux/amd64,linux/arm64"]
    nodes = plan_nodes(project, *both)
    assert {n: node["status"] for n, node in nodes.items()} == {
        "build:app@linux/amd64": "up to date", "build:app@linux/arm64": "will build"}, nodes
    metadata = tmp_path / "metadata.json"
    run_ok(project, *both, "--metadata-file", str(metadata))
    builds = {n["id"]: n["build"] for n in json.loads(metadata.read_text())["nodes"] if "build" in n}
    assert builds == {"build:app@linux/amd64": "up to date", "build:app@linux/arm64": "built"}
    assert oci_reader.index_platforms(f"{unique_repo}/app:1.0.0") == ["linux/amd64", "linux/arm64"]


def test_a_release_that_only_retags_is_still_atomic(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = three_images(tmp_path, unique_repo, env.base_image)
    assert counts(run_ok(project)) == (3, 0, 0)
    (project / "two" / "f").write_text("fail\n")  # two's build fails from now on
    result = run_cli(["run", "-k", "--set", "version=1.1.0"], cwd=project)
    assert result.code == 1, result
    for name in ("one", "two", "three"):
        assert "1.1.0" not in tags_of(f"{unique_repo}/{name}"), f"{name}: a tag of a failed release was pushed"
        assert "1.0.0" in tags_of(f"{unique_repo}/{name}")
