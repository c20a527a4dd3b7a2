"""``check --format json``: the same diagnostics as the text, for editors and pre-commit hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "expected.txt").is_file())


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    status = main(["check", "--format", "json", *argv])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


@pytest.mark.parametrize("name", CASES)
def test_every_bad_buildfile_gives_its_diagnostic(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> None:
    """The JSON says what the text says (tests/bad/*/expected.txt): place, message, hint, notes."""
    monkeypatch.chdir(REPO)
    file = f"tests/bad/{name}/Buildfile"
    status, result, err = check_json(capsys, "-f", file)
    assert (status, err) == (2, "")
    assert result["ok"] is False and result["file"] == file
    (diagnostic,) = result["diagnostics"]  # type: ignore[misc]
    expected = (BAD / name / "expected.txt").read_text().splitlines()
    place = f"{diagnostic['file']}:{diagnostic['line']}:{diagnostic['column']}" if diagnostic["line"] \
        else diagnostic["file"]
    assert expected[0] == f"{place}: error: {diagnostic['message']}"
    hints = [line.removeprefix("  hint: ") for line in expected if line.startswith("  hint: ")]
    assert ([diagnostic["hint"]] if diagnostic["hint"] else []) == hints[:1]
    notes = [line for line in expected if ": note: " in line]
    assert [f"{n['file']}:{n['line']}:{n['column']}: note: {n['message']}" for n in diagnostic["notes"]] == notes
    carets = [line for line in expected[1:] if line.lstrip().startswith("|") and "^" in line]
    if diagnostic["line"] and carets:  # (not-utf8 shows no source line: it cannot be decoded)
        # The caret of the text output covers [column, end_column).
        assert carets[0].count("^") == diagnostic["end_column"] - diagnostic["column"]


def test_a_valid_buildfile(capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]) -> None:
    status, result, _ = check_json(capsys, "-f", str(REPO / "examples" / "quickstart" / "Buildfile"))
    assert status == 0
    assert result == {"file": str(REPO / "examples" / "quickstart" / "Buildfile"), "ok": True,
                      "images": 2, "builds": 4, "diagnostics": []}


def test_a_bad_set_is_a_diagnostic_without_position(
    capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    status, result, _ = check_json(capsys, "-f", str(REPO / "examples" / "quickstart" / "Buildfile"), "--set", "x")
    assert status == 2
    assert result["diagnostics"] == [{
        "file": str(REPO / "examples" / "quickstart" / "Buildfile"), "line": 0, "column": 0, "end_line": 0,
        "end_column": 0, "severity": "error", "message": "--set expects NAME=VALUE, got 'x'", "hint": None,
        "notes": [],
    }]
