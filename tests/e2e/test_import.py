"""``buildspec import``: bake files written like bake's own documentation become Buildfiles
whose ``plan --commands`` builds what ``docker buildx bake --print`` says bake would build.

For each bake file, the real ``docker buildx bake --print`` is the reference: every
target it prints must be an image of the imported Buildfile with the same context,
Dockerfile, stage, platforms, build arguments, labels, repository and tags, read from
the exact ``docker buildx build`` argv of ``buildspec plan --format json --commands``;
a ``contexts = { NAME = "target:T" }`` must make T a dependency of the same platform.
"""

from __future__ import annotations

import json
import platform as host
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runner import run_cli

pytestmark = pytest.mark.integration

HOST = "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}[host.machine()]

# In the style of https://docs.docker.com/build/bake/ (variables, inherits, groups,
# matrices, contexts from targets).
HCL = """\
variable "TAG" {
  default = "latest"
}
variable "REGISTRY" {
  default = "127.0.0.1:5000/bake-import"
}

group "default" {
  targets = ["app", "db", "lint"]
}

target "_common" {
  args = {
    GO_VERSION = "1.22"
  }
}

target "base" {
  context = "base"
  platforms = ["linux/amd64", "linux/arm64"]
  tags = ["${REGISTRY}/base:${TAG}"]
}

target "app" {
  inherits = ["_common"]
  contexts = {
    baseapp = "target:base"
  }
  dockerfile = "app.Dockerfile"
  target = "runtime"
  labels = {
    "org.opencontainers.image.title" = "app"
  }
  platforms = ["linux/amd64", "linux/arm64"]
  tags = ["${REGISTRY}/app:${TAG}", "${REGISTRY}/app:1.0"]
}

target "db" {
  name = "db-${flavor}-${ver}"
  matrix = {
    flavor = ["pg", "mysql"]
    ver = ["1", "2"]
  }
  args = {
    FLAVOR = flavor
    VERSION = ver
  }
  tags = ["${REGISTRY}/db:${flavor}-${ver}"]
}

target "lint" {
  name = "lint-go${replace(go, ".", "")}"
  matrix = {
    go = ["1.21", "1.22"]
  }
  args = {
    GO_VERSION = go
  }
  tags = ["${REGISTRY}/lint:go${go}"]
  output = ["type=cacheonly"]
}
"""

JSON = {
    "group": {"default": {"targets": ["db", "webapp-dev"]}},
    "target": {
        "webapp-dev": {"dockerfile": "Dockerfile.webapp",
                       "tags": ["127.0.0.1:5000/bake-json/webapp", "127.0.0.1:5001/bake-json/webapp"],
                       "args": {"BRANCH": "{main}"}},
        "db": {"dockerfile": "Dockerfile.db", "tags": ["127.0.0.1:5000/bake-json/db"],
               "platforms": ["linux/arm64"]},
    },
}

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      args:
        MODE: release
    image: 127.0.0.1:5000/bake-compose/web:2.0
  worker:
    build:
      context: .
      dockerfile: worker.Dockerfile
      target: final
    image: 127.0.0.1:5000/bake-compose/worker
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def bake_print(folder: Path, bakefile: str) -> dict[str, Any]:
    done = subprocess.run(["docker", "buildx", "bake", "--print", "-f", bakefile], cwd=folder,
                          capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def import_and_plan(folder: Path, bakefile: str) -> tuple[str, dict[str, Any]]:
    imported = run_cli(["import", bakefile, "-o", "Buildfile"], cwd=folder)
    assert imported.code == 0, imported
    planned = run_cli(["plan", "--format", "json", "--commands", "--no-bake", "--no-merge", "--backend", "buildx"],
                      cwd=folder)
    assert planned.code == 0, f"{planned}\n--- Buildfile ---\n{(folder / 'Buildfile').read_text()}"
    return (folder / "Buildfile").read_text(), json.loads(planned.stdout)


def options(argv: list[str]) -> tuple[dict[str, list[str]], str]:
    """The options of a `docker buildx build` argv (name -> values) and its context."""
    found: dict[str, list[str]] = {}
    i = 3
    while i < len(argv) - 1:
        if (argv[i].startswith("--") and "=" not in argv[i] and argv[i] not in ("--push",)) or argv[i] == "-f":
            found.setdefault(argv[i], []).append(argv[i + 1])
            i += 2
        else:
            i += 1
    return found, argv[-1]


def assert_builds_the_same(folder: Path, bake: dict[str, Any], plan: dict[str, Any]) -> None:
    images = {image["name"]: image for image in plan["images"]}
    builds = {(n["image"], n["platform"]): n for n in plan["nodes"] if n["kind"] == "build"}
    assert set(images) == set(bake["target"]), (sorted(images), sorted(bake["target"]))
    for name, target in bake["target"].items():
        image = images[name]
        tags = {t if ":" in t.rsplit("/", 1)[-1] else f"{t}:latest" for t in target.get("tags", [])}
        assert {f"{repository}:{tag}" for repository in image["repositories"] for tag in image["tags"]} == tags, name
        platforms = target.get("platforms") or [HOST]
        assert image["platforms"] == platforms, name
        context = (folder / target.get("context", ".")).resolve()
        for platform in platforms:
            node = builds[(name, platform)]
            (argv,) = node["commands"]
            found, build_context = options(argv)
            assert Path(build_context) == context, name
            assert found["-f"] == [str(context / target.get("dockerfile", "Dockerfile"))], name
            assert found.get("--target", []) == ([target["target"]] if target.get("target") else []), name
            assert found["--platform"] == [platform]
            args = dict(a.split("=", 1) for a in found.get("--build-arg", []))
            pins = {k: v.removeprefix("target:") for k, v in target.get("contexts", {}).items()}
            assert {k: v for k, v in args.items() if k not in pins} == target.get("args", {}), name
            for arg, dependency in pins.items():
                assert args[arg] == f"{images[dependency]['repository']}@<digest of {dependency} for {platform}>"
                assert f"build:{dependency}@{platform}" in node["needs"]
            labels = dict(a.split("=", 1) for a in found.get("--label", []))
            assert labels | target.get("labels", {}) == labels, name


@pytest.fixture(autouse=True)
def _tools(require_tools: Callable[..., None]) -> None:
    require_tools("docker")


def test_hcl_with_inherits_groups_matrices_and_contexts(tmp_path: Path) -> None:
    folder = write(tmp_path, {"docker-bake.hcl": HCL, "Dockerfile": "FROM scratch\n",
                              "app.Dockerfile": "FROM scratch AS runtime\n", "base/Dockerfile": "FROM scratch\n"})
    bake = bake_print(folder, "docker-bake.hcl")
    buildfile, plan = import_and_plan(folder, "docker-bake.hcl")
    assert_builds_the_same(folder, bake, plan)
    # The foldable matrix became a buildspec matrix, with the axes named after the build arguments.
    assert 'name = "db-{flavor}-{version_axis}"' in buildfile
    assert 'flavor       = ["pg", "mysql"]' in buildfile and 'version_axis = ["1", "2"]' in buildfile
    # lint's cell names are not made of the values (replace() removed the dot): one image per cell.
    assert "image lint-go121 {" in buildfile and "image lint-go122 {" in buildfile
    assert "group lint    = [lint-go121, lint-go122]" in buildfile
    assert '# bake: output = ["type=cacheonly"] has no equivalent in buildspec' in buildfile
    assert "baseapp = image(base)" in buildfile and "write ARG baseapp and FROM ${baseapp}" in buildfile
    assert "group default = [app, db, lint]" in buildfile
    assert run_cli(["fmt", "--check"], cwd=folder).code == 0


def test_json_bake_file(tmp_path: Path) -> None:
    folder = write(tmp_path, {"docker-bake.json": json.dumps(JSON), "Dockerfile.webapp": "FROM scratch\n",
                              "Dockerfile.db": "FROM scratch\n"})
    bake = bake_print(folder, "docker-bake.json")
    buildfile, plan = import_and_plan(folder, "docker-bake.json")
    assert_builds_the_same(folder, bake, plan)
    assert 'BRANCH = "{{main}}"' in buildfile  # a literal brace stays literal
    # The same tags in two registries: one image published to both repositories.
    assert '"127.0.0.1:5000/bake-json/webapp", "127.0.0.1:5001/bake-json/webapp"]' in buildfile


def test_compose_file(tmp_path: Path) -> None:
    folder = write(tmp_path, {"compose.yaml": COMPOSE, "web/Dockerfile": "FROM scratch\n",
                              "worker.Dockerfile": "FROM scratch AS final\n"})
    bake = bake_print(folder, "compose.yaml")
    _, plan = import_and_plan(folder, "compose.yaml")
    assert_builds_the_same(folder, bake, plan)


def test_output_elsewhere_keeps_contexts_right(tmp_path: Path) -> None:
    folder = write(tmp_path / "src", {"compose.yaml": COMPOSE, "web/Dockerfile": "FROM scratch\n",
                                      "worker.Dockerfile": "FROM scratch AS final\n"})
    result = run_cli(["import", "compose.yaml", "-o", str(tmp_path / "out" / "Buildfile")], cwd=folder)
    assert result.code == 0, result
    assert result.stderr == f"wrote {tmp_path / 'out' / 'Buildfile'}\n"
    text = (tmp_path / "out" / "Buildfile").read_text()
    assert re.search(r'^    context += "\.\./src/web"$', text, re.M)
    assert re.search(r'^    context += "\.\./src"$', text, re.M)


def test_a_broken_bake_file_is_reported_with_bake_s_own_words(tmp_path: Path) -> None:
    folder = write(tmp_path, {"docker-bake.hcl": 'target "app" {\n  context = \n}\n'})
    result = run_cli(["import", "docker-bake.hcl"], cwd=folder)
    assert result.code == 2, result
    assert result.stderr.startswith("buildspec: error: `docker buildx bake --print --file docker-bake.hcl` failed:")
    assert "docker-bake.hcl:" in result.stderr and "Traceback" not in result.stderr
