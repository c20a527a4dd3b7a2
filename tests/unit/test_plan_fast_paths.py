"""The speed-ups of `plan` (issue 12) change no byte of its output.

`plan` is run in-process twice on every example, the repository's own Buildfile, a
generated large Buildfile (bench/plan_scale.py's shape, with conditions, calls and
non-ASCII text) and a plan with up-to-date verdicts: once as shipped, once on the slow
paths (Lark for the parse, the standard library's json for the JSON). Both outputs must
be identical, in every format. tests/golden/ pins the quickstart's output across commits.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

import buildspec.jsonout as jsonout
import buildspec.syntax as syntax
from buildspec.cli import main
from buildspec.syntax_fast import Unsupported

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in REPO.glob("examples/*/Buildfile"))
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le")


def large(folder: Path, n: int) -> Path:
    folder.mkdir()
    lines = [
        'registry  = env("REGISTRY", "localhost:5000/bench")',
        'version   = env("VERSION", "1.2.3")',
        f"platforms = [{', '.join(PLATFORMS)}]",
        "tags release {",
        '    "{version}"',
        '    "{version.major}.{version.minor}"  if version.stable',
        '    "latest"                           if not git.pr and (version.stable or git.branch == "main")',
        '    "sha-{git.short_sha}"              if git.short_sha',
        "}",
    ]
    for i in range(n):
        (folder / f"ctx{i}").mkdir()
        (folder / f"ctx{i}" / "Dockerfile").write_text("FROM base\n" if i % 10 else "FROM busybox\n")
        lines += [
            f"image img{i} {{",
            f'    context = "ctx{i}"',
            "    args {",
            *([f"        BASE = image(img{i - 1})"] if i % 10 else []),
            '        IMAGE_NAME = "{name}"',
            "    }",
            '    labels { "org.opencontainers.image.description" = "bench image {name}: café ☕ 😀 \x7f" }',
            "    tags = release",
            "}",
        ]
    lines.append(f"group default = [{', '.join(f'img{i}' for i in range(n))}]")
    (folder / "Buildfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def plan(folder: Path, *args: str) -> str:
    out = io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stdout(out):
        assert main(["plan", "--backend", "buildx", "--no-lookup", *args]) == 0
    return out.getvalue()


def slow_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(text: str, file: str) -> object:
        raise Unsupported("slow path")

    monkeypatch.setattr(syntax, "parse_fast", unsupported)
    monkeypatch.setattr(jsonout, "write_indented", lambda data, out: out.write(jsonout.standard_dumps(data)))


@pytest.fixture
def places(tmp_path: Path, buildspec_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The examples, the root Buildfile and a large one, run as a GitHub push of main."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "repository": {"default_branch": "main"},
        "head_commit": {"id": "0123456789abcdef0123456789abcdef01234567", "timestamp": "2026-01-02T04:05:06+01:00"},
    }))
    for key, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/examples",
    }.items():
        monkeypatch.setenv(key, value)
    out = []
    for example in EXAMPLES:
        out.append(Path(shutil.copytree(example, tmp_path / example.name,
                                        ignore=shutil.ignore_patterns(".buildspec"))))
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(REPO / "Buildfile", root)
    shutil.copy(REPO / "Dockerfile", root)
    out.append(root)
    out.append(large(tmp_path / "large", 200))
    return out


@pytest.mark.parametrize("args", [
    ("--format", "json"),
    ("--format", "json", "--commands", "--explain"),
    ("--format", "text", "--commands", "--explain"),
    ("--format", "dot"),
    ("--format", "mermaid"),
], ids=lambda a: " ".join(a))
def test_plan_is_the_same_on_the_slow_paths(places: list[Path], args: tuple[str, ...],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [plan(folder, *args) for folder in places]
    slow_paths(monkeypatch)
    slow = [plan(folder, *args) for folder in places]
    for folder, a, b in zip(places, fast, slow, strict=True):
        assert a == b, f"{folder.name}: plan {' '.join(args)} differs on the slow paths"
    if args[1] == "json":
        large_plan = json.loads(fast[-1])
        assert len(large_plan["images"]) == 200
        assert "\\u2615 \\ud83d\\ude00 \\u007f" in fast[-1]  # escaped as json.dumps escapes them


@pytest.mark.parametrize("data", [
    {"big": 2**70},                      # past orjson's 64 bits
    {1: "int key"},                      # json turns keys into strings, orjson refuses
    {"s": "\x00\x1f\x7f\u2028\U0001f600", "f": [0.1, 1e300, -0.0], "n": None, "t": (1, 2), "e": [], "o": {}},
    # written in pieces: every level, what orjson refuses and escapes deep inside
    {"images": [{"name": "a\u00e9", "big": [2**70], "tags": ["x", "\U0001f600"]}, {}, [], {"k": {1: "v"}}],
     "\u00e9 key": {"nested": {"deeper": [1, [2, [3]]]}, "empty": []}, "scalar": 1, "list": [1, "two", None]},
    [],
    {},
    "top-level text \u2615",
    [{"a": 1}, [1, 2], [], {}],
])
def test_dumps_indented_is_json_dumps(data: object) -> None:
    assert jsonout.dumps_indented(data) == json.dumps(data, indent=2)
    for stream in (io.StringIO(), io.TextIOWrapper(io.BytesIO(), encoding="utf-8")):
        jsonout.write_indented(data, stream)
        stream.flush()
        written = stream.getvalue() if isinstance(stream, io.StringIO) else stream.buffer.getvalue().decode()
        assert written == json.dumps(data, indent=2)
