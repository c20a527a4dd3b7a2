"""The TextMate grammar (editors/textmate/buildfile.tmLanguage.json), as VS Code runs it.

vscode-textmate with the Oniguruma regex engine (npm packages that
scripts/setup-env.sh installs under /var/lib/buildspec-env/textmate) compiles
every regex of the grammar and highlights the reference sample of
docs/language.md and every example; the tests check the scopes a reader sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAMMAR = REPO / "editors" / "textmate" / "buildfile.tmLanguage.json"
TOKENIZE = Path(__file__).resolve().parent / "textmate_tokenize.js"
MODULES = Path(os.environ.get("BUILDSPEC_TEXTMATE_MODULES", "/var/lib/buildspec-env/textmate/node_modules"))


def node(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not (MODULES / "vscode-textmate").is_dir():
        pytest.fail(f"node or {MODULES}/vscode-textmate is missing; run `scripts/setup-env.sh` as root first")
    return subprocess.run(["node", str(TOKENIZE), *args], env={**os.environ, "NODE_PATH": str(MODULES)},
                          capture_output=True, text=True, timeout=60, check=False)


def tokens(path: Path) -> list[tuple[int, str, list[str]]]:
    done = node(str(GRAMMAR), str(path))
    assert done.returncode == 0, done.stderr
    found = []
    for line in done.stdout.splitlines():
        token = json.loads(line)
        found.append((token["line"], token["text"], [s.removesuffix(".buildfile") for s in token["scopes"][1:]]))
    return found


def scopes_of(found: list[tuple[int, str, list[str]]], line: int, text: str) -> list[str]:
    matches = [scopes for n, t, scopes in found if n == line and t == text]
    assert matches, f"no token {text!r} on line {line}: {[t for n, t, _ in found if n == line]}"
    return matches[0]


def test_the_grammar_is_json_and_every_include_exists() -> None:
    grammar = json.loads(GRAMMAR.read_text())
    assert grammar["scopeName"] == "source.buildfile" and grammar["fileTypes"] == ["Buildfile"]
    includes = set(re.findall(r'"include": "#([^"]+)"', GRAMMAR.read_text()))
    assert includes and includes <= set(grammar["repository"]), includes - set(grammar["repository"])


def test_every_regex_compiles_with_oniguruma() -> None:
    done = node("--compile", str(GRAMMAR))
    assert done.returncode == 0, done.stdout + done.stderr
    count = int(re.search(r"compiled (\d+) regexes, 0 failed", done.stdout).group(1))  # type: ignore[union-attr]
    assert count >= 30


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first example of docs/language.md: it uses every construct of the language."""
    text = (REPO / "docs" / "language.md").read_text()
    block = re.search(r"```\n(# Buildfile for the acme service\n.*?)```", text, re.S)
    assert block, "docs/language.md no longer starts with the acme example"
    path = tmp_path_factory.mktemp("sample") / "Buildfile"
    path.write_text(block.group(1) + 'x = "a # not a comment"  # a comment\n')
    return path


def test_the_reference_sample_is_highlighted(sample: Path) -> None:
    found = tokens(sample)
    lines = sample.read_text().split("\n")

    def at(text: str, occurrence: str) -> list[str]:
        line = next(i for i, source in enumerate(lines, 1) if occurrence in source)
        return scopes_of(found, line, text)

    assert at("#", "# Buildfile for the acme service")[0] == "comment.line.number-sign"
    assert at("registry", 'registry  = "localhost') == ["support.type.property-name"]
    assert at("env", "version   = env(") == ["support.function.builtin"]
    assert at("linux/arm64", "platforms = [linux/amd64, linux/arm64]") == ["constant.other.platform"]
    assert at("tags", "tags release {") == ["storage.type.tags"]
    assert at("release", "tags release {") == ["entity.name.type"]
    assert at("image", "image base {") == ["storage.type.image"]
    assert at("app", "image app {") == ["entity.name.type"]
    assert at("group", "group default") == ["storage.type.group"]
    assert at("if", '"latest"') == ["keyword.control.conditional"]
    assert at("and", "git.branch and not") == ["keyword.operator.logical"]
    assert at("not", "git.branch and not") == ["keyword.operator.logical"]
    assert at("is_default_branch", "git.branch and not") == ["variable.other.property"]
    assert at("version.major", '"{version.major}.{version.minor}"') == [
        "string.quoted.double", "meta.interpolation", "variable.other.template"]
    assert at("slug", '"{git.branch|slug}"') == [
        "string.quoted.double", "meta.interpolation", "support.function.filter"]
    assert at("matrix", "matrix {") == ["storage.type.block"]
    assert at("image", "BASE_IMAGE = image(base)") == ["support.function.builtin"]
    assert at("BASE_IMAGE", "BASE_IMAGE = image(base)") == ["variable.other.assignment"]
    assert at(" a dependency: base is built first", "# a dependency") == ["comment.line.number-sign"]
    assert at('"org.opencontainers.image.title"', '"org.opencontainers.image.title"') == ["string.quoted.double.key"]
    # A '#' inside a string is not a comment; the one after it is.
    assert at("a # not a comment", '"a # not a comment"') == ["string.quoted.double"]
    assert at(" a comment", '"a # not a comment"') == ["comment.line.number-sign"]


@pytest.mark.parametrize("name", sorted(p.parent.name for p in (REPO / "examples").glob("*/Buildfile")))
def test_every_example_tokenizes_and_keeps_its_comments(name: str) -> None:
    path = REPO / "examples" / name / "Buildfile"
    found = tokens(path)
    assert found
    comments = {n for n, _, scopes in found if scopes and scopes[0] == "comment.line.number-sign"}
    expected = {i for i, line in enumerate(path.read_text().split("\n"), 1)
                if re.match(r'^(?:[^"#]|"(?:[^"\\]|\\.)*")*#', line)}
    assert comments == expected
