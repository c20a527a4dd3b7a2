"""The bake-named image attributes: evaluation, the argv of each backend, and the
plan-time refusals of what a backend cannot honour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildspec.cli import main
from buildspec.jobs import build_request
from buildspec.platform import Platform
from buildspec.support import SUPPORTED
from tests.unit.test_graph import load_text

pytestmark = pytest.mark.usefixtures("buildspec_env")

AMD64 = Platform("linux", "amd64")
EVERYTHING = {
    "secrets": 'secrets = ["id=npmrc,src=~/.npmrc", "id=token,env=NPM_TOKEN", "type=env,id=GH"]',
    "ssh": 'ssh = ["default", "git=keys/id"]',
    "contexts": 'contexts { b = image(base)  lib = "lib"  tool = "docker-image://localhost:5000/tool:1" }',
    "attest": 'attest = ["type=provenance,mode=max"]',
    "no_cache": "no_cache = true",
    "pull": "pull = true",
    "network": 'network = "none"',
    "hosts": 'hosts { "db.internal" = "10.1.2.3" }',
    "shm_size": 'shm_size = "256m"',
    "ulimits": 'ulimits = ["nofile=1024:2048", "nproc=512"]',
    "annotations": 'annotations { "org.example.team" = "core-{name}" }',
    "cache_from": 'cache_from = ["type=registry,ref=localhost:5000/acme/cache"]',
    "cache_to": 'cache_to = ["type=inline"]',
}


def project_with(tmp: Path, *attributes: str) -> Path:
    (tmp / "lib").mkdir(exist_ok=True)
    body = "\n    ".join(EVERYTHING[a] for a in attributes)
    load_text(tmp, f'registry = "localhost:5000/acme"\nplatforms = [linux/amd64]\nimage base {{ }}\n'
                   f"image app {{\n    {body}\n}}\n")
    return tmp / "Buildfile"


def test_every_attribute_is_evaluated_into_the_request(tmp_path: Path) -> None:
    project, graph = load_text(tmp_path, project_with(tmp_path, *EVERYTHING).read_text())
    app = project.images["app"]
    assert app.build_options.used() == list(EVERYTHING)
    assert ("build:base@linux/amd64", "build:app@linux/amd64") in graph.edges  # contexts' image() is an edge
    request = build_request(project, app, AMD64, state_dir=tmp_path,
                            pins={"base": "localhost:5000/acme/base@sha256:" + "a" * 64})
    assert [s.flag() for s in request.secrets] == [
        f"id=npmrc,src={Path.home() / '.npmrc'}", "id=token,env=NPM_TOKEN", "id=GH,env=GH"]
    assert request.ssh == ("default", f"git={tmp_path / 'keys' / 'id'}")
    assert dict(request.contexts) == {"b": "docker-image://localhost:5000/acme/base@sha256:" + "a" * 64,
                                      "lib": tmp_path / "lib", "tool": "docker-image://localhost:5000/tool:1"}
    assert request.ulimits == ("nofile=1024:2048", "nproc=512:512")
    assert dict(request.annotations) == {"org.example.team": "core-app"}
    assert (request.no_cache, request.pull, request.network, request.shm_size) == (True, True, "none", "256m")


def _argv(tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str], *attributes: str) -> list[str]:
    buildfile = project_with(tmp_path, *attributes)
    assert main(["plan", "-f", str(buildfile), "--backend", backend, "--format", "json", "--commands"]) == 0
    node = next(n for n in json.loads(capsys.readouterr().out)["nodes"] if n["id"] == "build:app@linux/amd64")
    argv: list[str] = node["commands"][0]
    return argv


def test_buildx_argv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = " ".join(_argv(tmp_path, "buildx", capsys, *EVERYTHING))
    for flag in ["--secret id=token,env=NPM_TOKEN", "--ssh default", "--build-context lib=" + str(tmp_path / "lib"),
                 "--build-context b=docker-image://localhost:5000/acme/base@<digest of base for linux/amd64>",
                 "--no-cache", "--pull", "--network none", "--add-host db.internal:10.1.2.3", "--shm-size 256m",
                 "--ulimit nofile=1024:2048", "--annotation org.example.team=core-app",
                 "--attest=type=provenance,mode=max", "--cache-from type=registry,ref=localhost:5000/acme/cache",
                 "--cache-to type=inline"]:
        assert flag in argv
    assert "--provenance=false" not in argv  # attest asks for it


def test_buildah_argv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = " ".join(_argv(tmp_path, "buildah", capsys, *sorted(SUPPORTED["buildah"])))
    for flag in ["--secret id=token,env=NPM_TOKEN", "--ssh default", "--build-context lib=", "--no-cache",
                 "--pull=always", "--network none", "--add-host db.internal:10.1.2.3", "--shm-size 256m",
                 "--ulimit nofile=1024:2048", "--annotation org.example.team=core-app"]:
        assert flag in argv


def test_kaniko_no_cache_drops_its_cache_and_pull_is_its_default(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    plain = _argv(tmp_path, "kaniko", capsys)
    assert _argv(tmp_path, "kaniko", capsys, "no_cache", "pull") == plain


@pytest.mark.parametrize("backend", ["buildah", "kaniko"])
def test_what_a_backend_cannot_honour_is_refused_at_plan_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str,
) -> None:
    for attribute in EVERYTHING:
        buildfile = project_with(tmp_path, attribute)
        code = main(["plan", "-f", str(buildfile), "--backend", backend])
        err = capsys.readouterr().err
        if attribute in SUPPORTED[backend]:
            assert code == 0, err
            continue
        assert code == 2, attribute
        assert "Buildfile:5:" in err, err  # at the attribute's value
        assert f"error: image 'app' sets {attribute}, which the {backend} backend cannot honour" in err
        assert "hint: " in err and "Traceback" not in err
    assert "cache = \"REPO\"" in err  # the last one, cache_to, points at the short form


def test_an_image_with_build_options_is_not_batched_into_bake(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Buildfile").write_text('registry = "localhost:5000/acme"\nplatforms = [linux/amd64, linux/arm64]\n'
                                        'image a { }\nimage b { }\nimage c { pull = true }\n')
    assert main(["plan", "-f", str(tmp_path / "Buildfile"), "--backend", "buildx", "--format", "json"]) == 0
    (batch,) = json.loads(capsys.readouterr().out)["batches"]
    assert batch["nodes"] == ["build:a@linux/amd64+linux/arm64", "build:b@linux/amd64+linux/arm64"]
