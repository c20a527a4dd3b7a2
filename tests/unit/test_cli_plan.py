"""`buildspec plan` and `buildspec check` on every example, in every format.

The examples are copied out of the repository (so its git state does not
matter) and run as a GitHub Actions push to main at a fixed commit, with
SOURCE_DATE_EPOCH and the terminal width fixed: the output is then the same
everywhere, and the quickstart's is compared with tests/golden/. Paths of the
temporary copy are replaced by ``<example>`` in golden files.

``--backend buildx`` throughout, so that nothing probes for a Docker daemon.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
EXAMPLES = ["root", *sorted(p.parent.name for p in REPO.glob("examples/*/Buildfile"))]
FORMATS = ["text", "json", "dot", "mermaid"]
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> dict[str, Path]:
    """Every example copied to tmp_path/<name>, run as a GitHub push of main at SHA."""
    places = {}
    for name in EXAMPLES:
        target = tmp_path / name
        if name == "root":
            target.mkdir()
            shutil.copy(REPO / "Buildfile", target)
            shutil.copy(REPO / "Dockerfile", target)
        else:
            shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns(".buildspec"))
        places[name] = target
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "repository": {"default_branch": "main"},
        "head_commit": {"id": SHA, "timestamp": "2026-01-02T04:05:06+01:00"},
    }))
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": SHA,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/examples",
    }.items():
        monkeypatch.setenv(key, value)
    return places


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def plan(capsys: pytest.CaptureFixture[str], buildfile: Path, *options: str) -> str:
    status, out, err = run(capsys, "plan", "--no-lookup", "-f", str(buildfile), "--backend", "buildx", *options)
    assert (status, err) == (0, ""), err
    return out


# ---------------------------------------------------------------- every example, every format


@pytest.mark.parametrize("name", EXAMPLES)
def test_check_every_example(name: str, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = workspace[name] / "Buildfile"
    status, out, err = run(capsys, "check", "-f", str(path))
    assert (status, err) == (0, "")
    assert out.startswith(f"{path}: ok (")


@pytest.mark.parametrize("commands", [False, True], ids=["plain", "commands"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_every_example(
    name: str, fmt: str, commands: bool, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = plan(capsys, workspace[name] / "Buildfile", "--format", fmt, *(["--commands"] if commands else []))
    if fmt == "json":
        data = json.loads(out)
        assert data["version"] == 1
        assert data["images"] and data["nodes"]
        builds = [n for n in data["nodes"] if n["kind"] == "build"]
        assert all(("commands" in n) is commands for n in builds)
        # Every dependency named is a node of the plan, and nodes come in run order.
        seen: set[str] = set()
        for node in data["nodes"]:
            assert set(node["needs"]) <= seen, node
            seen.add(node["id"])
    elif fmt == "dot":
        assert out.startswith("digraph buildspec {") and out.endswith("}\n")
    elif fmt == "mermaid":
        assert out.startswith("flowchart LR\n")
    else:
        assert "Run order" in out
        assert ("$ docker buildx build" in out) is commands


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_does_not_depend_on_the_working_directory(
    name: str, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = plan(capsys, workspace[name] / "Buildfile", "--format", "json", "--commands")
    monkeypatch.chdir(workspace[name])
    here = plan(capsys, Path("Buildfile"), "--format", "json", "--commands")
    assert json.loads(here)["nodes"] == json.loads(elsewhere)["nodes"]


# ---------------------------------------------------------------- the quickstart in detail


def test_quickstart_json_shape(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    where = workspace["quickstart"]
    data = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "--no-merge"))
    assert data["version"] == 1
    assert data["buildfile"] == str(where / "Buildfile")
    assert data["publish"] == "atomic"
    assert data["context"] == {
        "source": "github", "branch": "main", "tag": None, "sha": SHA, "default_branch": "main",
        "is_default_branch": True, "pr": None, "dirty": False, "version": "1.0.0",
    }
    base, app = data["images"]
    created = "2026-01-02T03:05:06Z"
    assert base == {
        "name": "base",
        "repository": "127.0.0.1:5000/quickstart/base",
        "platforms": ["linux/amd64", "linux/arm64"],
        "tags": ["1.0.0", "1.0", "latest", "sha-0123456"],
        "platform_tags": {"linux/amd64": "1.0.0-linux-amd64", "linux/arm64": "1.0.0-linux-arm64"},
        "backend": "buildx",
        "backend_reason": "--backend buildx",
        "args": {"BUSYBOX": "127.0.0.1:5000/busybox:1"},
        "labels": {
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.revision": SHA,
            "org.opencontainers.image.source": "https://github.com/acme/examples",
            "org.opencontainers.image.url": "https://github.com/acme/examples",
            "org.opencontainers.image.version": "1.0.0",
            "org.opencontainers.image.title": "base",
        },
    } | {k: base[k] for k in base.keys() - {
        "name", "repository", "platforms", "tags", "platform_tags", "backend", "backend_reason", "args", "labels"}}
    assert app["name"] == "app"
    assert app["args"] == {"BASE_IMAGE": "image(base)"}
    assert app["labels"]["org.opencontainers.image.description"] == "buildspec quickstart app"
    assert app["labels"]["org.opencontainers.image.title"] == "app"

    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["build:app@linux/arm64"] == {
        "id": "build:app@linux/arm64", "kind": "build", "image": "app", "platform": "linux/arm64",
        "platforms": ["linux/arm64"], "needs": ["build:base@linux/arm64"],
    }
    assert nodes["build:base@linux/amd64"]["needs"] == []
    assert nodes["manifest:base"]["kind"] == "manifest"
    assert "platform" not in nodes["manifest:base"]
    assert nodes["publish"]["kind"] == "gate"
    assert set(nodes["publish"]["needs"]) == {
        "build:base@linux/amd64", "build:base@linux/arm64", "build:app@linux/amd64", "build:app@linux/arm64"}
    assert "publish" in nodes["manifest:app"]["needs"]
    assert data["waves"] == [
        ["build:base@linux/amd64", "build:base@linux/arm64"],
        ["build:app@linux/amd64", "build:app@linux/arm64"],
        ["publish"],
        ["manifest:base", "manifest:app"],
        ["tags"],
    ]
    assert nodes["tags"]["kind"] == "tags"
    assert nodes["tags"]["needs"] == ["manifest:base", "manifest:app"]


def test_quickstart_merges_the_platforms_of_base_but_not_of_app(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # base has nothing per platform: one buildx call builds both. app pins base's image per
    # platform (image(base)), so each of its platforms is a build of its own.
    data = json.loads(plan(capsys, workspace["quickstart"] / "Buildfile", "--format", "json", "--commands"))
    nodes = {n["id"]: n for n in data["nodes"]}
    merged = nodes["build:base@linux/amd64+linux/arm64"]
    assert merged["platforms"] == ["linux/amd64", "linux/arm64"]
    (argv,) = merged["commands"]
    assert argv[:5] == ["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64"]
    assert argv[argv.index("--tag") + 1] == "127.0.0.1:5000/quickstart/base:1.0.0-linux-amd64"
    assert nodes["build:app@linux/arm64"]["needs"] == ["build:base@linux/amd64+linux/arm64"]
    assert data["waves"][:2] == [["build:base@linux/amd64+linux/arm64"],
                                 ["build:app@linux/amd64", "build:app@linux/arm64"]]


def test_matrix_cells_ready_together_are_one_bake(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The four merged matrix cells need nothing: one bake builds them; its file holds, per
    cell, what the cell's own buildx call passes (which a failed bake falls back to)."""
    where = workspace["matrix"]
    data = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "--commands"))
    cells = [f"build:runtime-{flavor}-{level}@linux/amd64+linux/arm64"
             for flavor in ("slim", "full") for level in (1, 2)]
    (batch,) = data["batches"]
    assert (batch["id"], batch["nodes"]) == ("bake-1", cells)
    state = where / ".buildspec" / "work" / "bake-1"
    assert batch["commands"] == [["docker", "buildx", "bake", "--file", str(state / "bake.json"), "--provenance=false",
                                  "--push", "--metadata-file", str(state / "metadata.json"), "--progress=plain"]]
    nodes = {n["id"]: n for n in data["nodes"]}
    for cell in cells:
        assert nodes[cell]["batch"] == "bake-1"
        (argv,) = nodes[cell]["commands"]
        target = batch["file"]["target"][nodes[cell]["image"]]
        assert argv[argv.index("--tag") + 1] == target["tags"][0]
        assert [a for a in argv if "=" in a and a.split("=", 1)[0] in target["args"]] == [
            f"{k}={v}" for k, v in target["args"].items()]
    assert "batch" not in nodes["build:tool@linux/arm64"]
    text = plan(capsys, where / "Buildfile", "--commands")
    assert "bake-1  one docker buildx bake for 4 images" in text
    assert text.count("$ docker buildx bake --file") == 1
    unbatched = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "--no-bake"))
    assert unbatched["batches"] == [] and not any("batch" in n for n in unbatched["nodes"])


def test_quickstart_commands_in_json(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    where = workspace["quickstart"]
    data = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "--commands"))
    (argv,) = next(n for n in data["nodes"] if n["id"] == "build:app@linux/arm64")["commands"]
    assert argv[:5] == ["docker", "buildx", "build", "--platform", "linux/arm64"]
    assert "BASE_IMAGE=127.0.0.1:5000/quickstart/base@<digest of base for linux/arm64>" in argv
    assert argv[argv.index("--tag") + 1] == "127.0.0.1:5000/quickstart/app:1.0.0-linux-arm64"
    assert argv[-1] == str(where / "app")


def test_plan_of_one_target_is_that_target_and_its_dependencies(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    where = workspace["quickstart"]
    base_only = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "base"))
    assert [i["name"] for i in base_only["images"]] == ["base"]
    app = json.loads(plan(capsys, where / "Buildfile", "--format", "json", "app"))
    assert [i["name"] for i in app["images"]] == ["base", "app"]


def test_eager_publishing_has_no_gate(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(plan(capsys, workspace["quickstart"] / "Buildfile", "--format", "json", "--publish", "eager"))
    assert data["publish"] == "eager"
    assert "publish" not in {n["id"] for n in data["nodes"]}


def test_set_changes_the_plan(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(plan(capsys, workspace["quickstart"] / "Buildfile", "--format", "json",
                           "--set", "version=2.1.0-rc.1", "--set", "registry=localhost:5000/other"))
    base = data["images"][0]
    assert base["repository"] == "localhost:5000/other/base"
    assert base["tags"] == ["2.1.0-rc.1", "sha-0123456"]


def test_explain_says_why_each_tag_exists(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(plan(capsys, workspace["tags"] / "Buildfile", "--format", "json", "--explain"))
    decisions = {d["template"]: (d["tag"], d["reason"]) for d in data["images"][0]["tag_decisions"]}
    assert decisions["edge"] == ("edge", "added")
    assert decisions["{git.branch|slug}"] == ("main", "added")
    assert decisions["pr-{git.pr}"] == (None, "condition false")
    assert decisions["sha-{git.short_sha}"] == ("sha-0123456", "added")


# ---------------------------------------------------------------- golden files


def normalised(out: str, where: Path) -> str:
    return out.replace(str(where), "<example>")


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("text", ["--commands"]), ("text", ["--explain"]), ("json", ["--commands"]), ("dot", []), ("mermaid", [])],
    ids=["text-commands", "text-explain", "json-commands", "dot", "mermaid"],
)
def test_quickstart_golden(
    fmt: str,
    options: list[str],
    workspace: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    golden: Callable[[Path, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = workspace["quickstart"]
    if "--commands" in options:
        # rich wraps long lines at the console width, and where depends on the length of the
        # temporary path: wide enough that no command wraps (see the report on plan.py).
        monkeypatch.setenv("COLUMNS", "4000")
    out = plan(capsys, where / "Buildfile", "--format", fmt, *options)
    suffix = {"text": "txt", "json": "json", "dot": "dot", "mermaid": "mmd"}[fmt]
    name = "-".join(["quickstart-plan", *(o.removeprefix("--") for o in options)])
    golden(GOLDEN / f"{name}.{suffix}", normalised(out, where))


def test_user_text_is_not_rich_markup(workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The tags example drops "{version}" when it is not SemVer, so any text gets through to the header."""
    for version in ("[bold]x", "[/x]"):
        out = plan(capsys, workspace["tags"] / "Buildfile", "--set", f"version={version}")
        assert f"version {version}" in out


def test_plan_shows_every_repository_of_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Buildfile").write_text(
        'platforms = [linux/amd64]\n'
        'image app {\n repository = ["127.0.0.1:5000/acme/app", "registry.gitlab.com/acme/app"]\n'
        ' tags = ["1.0.0"]\n}\n')
    assert main(["plan", "-f", str(tmp_path / "Buildfile"), "--backend", "buildx", "--format", "json"]) == 0
    image = json.loads(capsys.readouterr().out)["images"][0]
    assert image["repository"] == "127.0.0.1:5000/acme/app"
    assert image["repositories"] == ["127.0.0.1:5000/acme/app", "registry.gitlab.com/acme/app"]
    assert main(["plan", "-f", str(tmp_path / "Buildfile"), "--backend", "buildx"]) == 0
    text = capsys.readouterr().out
    assert "manifest:app  -> index 127.0.0.1:5000/acme/app : 1.0.0  (by digest" in text, text
    assert "-> index registry.gitlab.com/acme/app : 1.0.0  (by digest" in text, text
