"""Peer table: every row of docker/metadata-action's own __tests__/meta.test.ts.

The rows and fixtures are quoted in tests/peer/metadata_action/ (see its README). Each
row's inputs (``images``, ``tags``, ``flavor``) are translated into a Buildfile by
tests/peer/metadata_action/translate.py, which applies the mapping of docs/tags.md
mechanically; the Buildfile is evaluated with the row's own fixture environment
(the GitHub variables and event payload) and the suite's mocked clock; the tags must be
metadata-action's, in its order.

A row that does not give metadata-action's tags must be one of the deliberate
differences of docs/tags.md (``DIFFERENCES``: buildspec's tags are pinned too, so a
change either way fails here), and a row the mapping cannot express must say why
(``UNTRANSLATABLE``). ``test_counts`` is the summary the issue asks for.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from buildspec.load import load
from tests.peer.metadata_action.translate import Untranslatable, translate

HERE = Path(__file__).resolve().parents[1] / "peer" / "metadata_action"
DATA = json.loads((HERE / "meta_test_rows.json").read_text(encoding="utf-8"))
ROWS: list[dict[str, Any]] = DATA["rows"]
MOCKED_CLOCK = "2020-01-10T00:30:00Z"  # meta.test.ts mocks Date and moment() to this instant
MOCKED_EPOCH = "1578616200"
DEFAULT_BRANCH = json.loads((HERE / "fixtures" / "repo.json").read_text())["default_branch"]

# Rows where buildspec, following docs/tags.md, deliberately gives other tags: the
# docs/tags.md "Differences" entry, and buildspec's tags (per repository).
UNSET_NAME = "a name that is unset drops the line instead of rendering as empty text"
DIFFERENCES: dict[str, tuple[str, list[str]]] = {
    "push/push17": (UNSET_NAME, ["mytag-master", "mytag-20200110", "mytag-cd-20200110", "mytag-20200110-093000",
                                 "mytag-defbranch"]),
    "push/push21": (UNSET_NAME, ["mytag-master", "mytag-20200110", "mytag-20200110-093000", "mytag-src-20200110",
                                 "mytag-defbranch"]),
    "release/release02": (UNSET_NAME, ["v1.1.1", "latest"]),
    "tag/tag29": ("a PEP 440 post-release is stable", ["1.2.post1", "1.2", "1", "latest"]),
}
# Rows the documented mapping cannot write, and why.
UNTRANSLATABLE: dict[str, str] = {
    "null/null01": "fixture event_null.env is not in the stored copy of the suite",
    "push/push12": "semver and pep440 entries in one list",
    "push/push14": "semver and pep440 entries in one list",
    "pr/pr12": "handlebars reads an unquoted argument",
    "pr-head-sha/pr12": "handlebars reads an unquoted argument",
}


def row_id(row: dict[str, Any]) -> str:
    return f"{row['describe']}/{row['name']}"


def fixture_environ(row: dict[str, Any], tmp: Path) -> dict[str, str]:
    """The fixture's variables (dotenv syntax), the row's extra ones, and its payload.

    GITHUB_EVENT_PATH names the payload as the suite's checkout has it
    (``./__tests__/fixtures/X.json``): the copy here is used, with ``head_commit``
    set to the commit being built at the mocked clock (the suite's moment() mock
    makes every commit date that instant; buildspec reads a GitHub commit date from
    the payload's commit whose id is GITHUB_SHA).
    """
    environ: dict[str, str] = {}
    for line in (HERE / "fixtures" / row["env"]).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            environ[key] = value
    environ |= row.get("extra_env", {})
    if environ.get("GITHUB_EVENT_PATH"):
        payload = json.loads((HERE / "fixtures" / Path(environ["GITHUB_EVENT_PATH"]).name).read_text())
        payload["head_commit"] = {"id": environ["GITHUB_SHA"], "timestamp": MOCKED_CLOCK}
        path = tmp / "event.json"
        path.write_text(json.dumps(payload))
        environ["GITHUB_EVENT_PATH"] = str(path)
    environ["SOURCE_DATE_EPOCH"] = MOCKED_EPOCH
    return environ


def buildspec_tags(row: dict[str, Any], tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    """The image's tags and its repositories (metadata-action's ``images``)."""
    text = translate(row["images"], row["tags"], row["flavor"], DEFAULT_BRANCH)
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    (tmp / "Buildfile").write_text(text)
    project, _ = load(tmp / "Buildfile", None, fixture_environ(row, tmp))
    image = project.images["app"]
    return list(image.tags), image.repositories


def as_metadata_action_lists(row: dict[str, Any], result: tuple[list[str], tuple[str, ...]]) -> list[str]:
    """metadata-action lists every tag under each image, image after image; with
    ``images: []``, the bare tags."""
    tags, repositories = result
    return [f"{r}:{tag}" for r in repositories for tag in tags] if row["images"] else tags


@pytest.fixture(autouse=True)
def no_ambient_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "GITLAB_", "CI_", "DOCKER_METADATA_")) or name == "SOURCE_DATE_EPOCH":
            monkeypatch.delenv(name)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_row(row: dict[str, Any], tmp_path: Path) -> None:
    rid = row_id(row)
    if rid in UNTRANSLATABLE:
        reason = UNTRANSLATABLE[rid]
        if not (HERE / "fixtures" / row["env"]).exists():
            assert "is not in the stored copy" in reason
            return
        with pytest.raises(Untranslatable, match=re.escape(reason)):
            translate(row["images"], row["tags"], row["flavor"], DEFAULT_BRANCH)
        return
    result = buildspec_tags(row, tmp_path)
    if rid in DIFFERENCES:
        _, pinned = DIFFERENCES[rid]
        assert result[0] == pinned
        assert as_metadata_action_lists(row, result) != row["expected"]
        return
    assert as_metadata_action_lists(row, result) == row["expected"]


def test_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """128 rows; the ones that translate, pass, and differ on purpose, as the issue's note gives them."""
    translated = passed = 0
    for index, row in enumerate(ROWS):
        if not (HERE / "fixtures" / row["env"]).exists():
            continue
        try:
            folder = tmp_path / str(index)
            folder.mkdir()
            result = buildspec_tags(row, folder)
        except Untranslatable:
            continue
        translated += 1
        passed += as_metadata_action_lists(row, result) == row["expected"]
    counts = {"rows": len(ROWS), "translate": translated, "pass": passed, "differences": len(DIFFERENCES)}
    with capsys.disabled():
        print(f"\nmetadata-action meta.test.ts peer table: {counts}")
    assert counts == {"rows": 128, "translate": 123, "pass": 119, "differences": 4}
    assert counts["pass"] + counts["differences"] == counts["translate"]
    assert counts["translate"] + len(UNTRANSLATABLE) == counts["rows"]


def test_the_translator_writes_the_documented_lines() -> None:
    """docs/tags.md's table "From metadata-action, entry by entry" is what translate() writes:
    for each `tags:` entry of the table, the Buildfile lines the table gives."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tags.md").read_text(encoding="utf-8")
    section = docs.split("## From metadata-action, entry by entry", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for line in section.splitlines():
        m = re.fullmatch(r"\| `(type=[^`]+)` \| (.+) \|", line)
        if m is None:
            continue
        entry = m.group(1)
        documented = [part.replace("\\|", "|") for part in re.findall(r"`((?:[^`\\]|\\.)+)`", m.group(2))]
        text = translate(["registry.example/app"], [entry], ["latest=false"], "main")
        body = text.split("tags meta {\n", 1)[1].split("\n}", 1)[0]
        written = [b.strip() for b in body.splitlines()]
        variables = [v for v in text.split("\n\n", 1)[0].splitlines() if v.startswith("match_")]
        assert [*variables, *written] == documented, entry
        checked += 1
    assert checked >= 12
