"""The tool commands' pure parts: lazy imports, bake -> Buildfile translation, completion scripts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from buildspec.cli import _parser
from buildspec.completion import script
from buildspec.fmt import format_text
from buildspec.importer import translate
from buildspec.syntax import parse

REPO = Path(__file__).resolve().parents[2]


def test_version_imports_none_of_the_tool_modules() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "buildspec", "--version"],
                          capture_output=True, text=True, check=True, cwd=REPO)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = {"buildspec.fmt", "buildspec.doctor", "buildspec.importer", "buildspec.completion",
             "buildspec.syntax", "lark", "networkx", "docker", "requests"}
    assert not imported & heavy, imported & heavy
    assert done.stdout.startswith("buildspec ")


def bake(targets: dict[str, dict[str, object]], groups: dict[str, list[str]] | None = None) -> str:
    definition = {"target": targets, "group": {g: {"targets": m} for g, m in (groups or {}).items()}}
    text = translate(definition, cwd=Path("/src"), output_dir=Path("/src"), source="docker-bake.hcl")
    formatted = format_text(text)
    parse(formatted)
    return formatted


def test_the_same_tags_in_two_repositories_become_a_list_of_repositories() -> None:
    text = bake({"app": {"tags": ["r.io/a/app:1", "other.io/app:1", "r.io/a/app:latest", "other.io/app:latest"]}})
    assert re.search(r'^    repository += \["r.io/a/app", "other.io/app"\]$', text, re.M), text
    assert re.search(r'^    tags += \["1", "latest"\]$', text, re.M)
    assert "# bake:" not in text


def test_other_tags_in_another_repository_keep_the_first_and_say_so() -> None:
    text = bake({"app": {"context": ".", "tags": ["r.io/a/app:1", "other.io/app:2", "r.io/a/app:latest"]}})
    assert re.search(r'^    tags += \["1", "latest"\]$', text, re.M)
    assert "# bake: tag other.io/app:2 has no equivalent: buildspec pushes every tag of an image to each of " \
        "its repositories, and r.io/a/app has other tags" in text


def test_a_remote_context_and_unknown_fields_become_comments() -> None:
    text = bake({"app": {"context": "https://github.com/acme/app.git", "tags": ["r.io/app"],
                         "secret": ["id=npm,src=/tmp/npmrc"], "ssh": ["default"], "no-cache": True}})
    assert '# bake: context = "https://github.com/acme/app.git": a remote context has no equivalent' in text
    assert '# bake: secret = ["id=npm,src=/tmp/npmrc"] has no equivalent in buildspec' in text
    assert '# bake: ssh = ["default"] has no equivalent in buildspec' in text
    assert "# bake: no-cache = true has no equivalent in buildspec" in text


def test_braces_stay_literal_and_paths_are_relative() -> None:
    text = bake({"app": {"context": "/src/services/app", "dockerfile": "../Dockerfile.app",
                         "args": {"JSON": '{"a": 1}'}, "tags": ["r.io/app:1"]}})
    assert 'context    = "services/app"' in text and 'dockerfile = "../Dockerfile.app"' in text
    assert 'JSON = "{{\\"a\\": 1}}"' in text


def test_a_matrix_whose_cells_differ_elsewhere_is_not_folded() -> None:
    tags = {"1": "alpha", "2": "beta"}  # not made of the axis values: no template renders both
    cells = {f"t-{v}": {"args": {"V": v}, "tags": [f"r.io/t:{tags[v]}"]} for v in ("1", "2")}
    text = bake(cells, {"t": list(cells)})
    assert "image t-1 {" in text and "image t-2 {" in text and "group t = [t-1, t-2]" in text
    assert "matrix" not in text


def test_a_matrix_folds_every_field_made_of_its_values() -> None:
    cells = {f"t-{v}": {"args": {"V": v}, "tags": [f"r.io/t:{v}"], "target": "stage" + v} for v in ("1", "2")}
    text = bake(cells, {"t": list(cells)})
    assert 'v = ["1", "2"]' in text and 'target = "stage{v}"' in text and "group" not in text


def test_a_matrix_is_folded_with_values_that_look_alike() -> None:
    """`3.1` inside `3.12`: a template must render every cell exactly, or there is no matrix."""
    cells = {f"py-{v}": {"args": {"PYTHON": v}, "tags": [f"127.0.0.1:5000/py:{v}"]} for v in ("3.1", "3.12")}
    text = bake(cells, {"py": list(cells)})
    assert 'python = ["3.1", "3.12"]' in text and 'name = "py-{python}"' in text
    assert 'tags       = ["{python}"]' in text


def test_completion_scripts_name_every_command_and_option() -> None:
    parser = _parser()
    for shell in ("bash", "zsh", "fish"):
        text = script(shell, parser)
        for word in ("plan", "check", "run", "fmt", "doctor", "import", "completion", "__targets"):
            assert word in text, (shell, word)
        for option in ("format", "metadata-file", "insecure-registry", "keep-going"):
            assert (f"-l {option}" if shell == "fish" else f"--{option}") in text, (shell, option)
