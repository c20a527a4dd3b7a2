"""The bad-input corpus: every mistake in tests/bad/<case>/Buildfile gets exactly its message.

Each case is a folder with a ``Buildfile`` (plus whatever Dockerfiles and
contexts it needs, so that only the intended mistake fires) and
``expected.txt``: the exact stderr of ``buildspec check -f
tests/bad/<case>/Buildfile`` run from the repository root. To add a case,
create the folder and run ``BUILDSPEC_UPDATE_GOLDEN=1 pytest
tests/unit/test_bad_buildfiles.py``, then read the new expected.txt: the
message must point at the right line and column and read well.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
UPDATING = os.environ.get("BUILDSPEC_UPDATE_GOLDEN") == "1"


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45
    for name in CASES:
        assert (BAD / name / "expected.txt").is_file() or UPDATING, f"{name}: no expected.txt"


@pytest.mark.parametrize("name", CASES)
def test_bad_buildfile(
    name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    buildspec_env: dict[str, str],
    golden: Callable[[Path, str], None],
) -> None:
    monkeypatch.chdir(REPO)
    status, out, err = check(capsys, "-f", f"tests/bad/{name}/Buildfile")
    assert "Traceback" not in err
    assert out == ""
    assert status == 2, err
    # The first line is FILE[:LINE:COL]: error: ..., always about this file.
    assert err.startswith(f"tests/bad/{name}/Buildfile"), err
    assert ": error: " in err.splitlines()[0]
    golden(BAD / name / "expected.txt", err)


def test_messages_point_into_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> None:
    """Every caret sits under a character of the line shown above it."""
    monkeypatch.chdir(REPO)
    for name in CASES:
        _, _, err = check(capsys, "-f", f"tests/bad/{name}/Buildfile")
        lines = err.splitlines()
        for source, caret in itertools.pairwise(lines):
            if caret.lstrip().startswith("|") and "^" in caret:
                code = source.split(" | ", 1)[1]
                column = caret.index("^") - (caret.index("|") + 2)
                width = caret.count("^")
                assert column + width <= len(code) + 1, f"{name}: caret past the end of the line\n{err}"


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("version", "buildspec: error: --set expects NAME=VALUE, got 'version'\n"),
        ("=1.0.0", "buildspec: error: --set expects NAME=VALUE, got '=1.0.0'\n"),
        ("my version=1", "buildspec: error: --set expects NAME=VALUE, got 'my version=1'\n"),
        (
            "verison=2.0.0",
            "buildspec: error: --set verison=...: the Buildfile has no variable 'verison'; "
            "did you mean 'version'?\n",
        ),
    ],
)
def test_malformed_set(
    argument: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    buildspec_env: dict[str, str],
) -> None:
    monkeypatch.chdir(REPO)
    status, out, err = check(capsys, "-f", "examples/quickstart/Buildfile", "--set", argument)
    assert (status, out, err) == (2, "", message)


def test_set_overrides_a_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> None:
    monkeypatch.chdir(REPO)
    status, out, err = check(capsys, "-f", "examples/quickstart/Buildfile", "--set", "busybox=busybox:1")
    assert (status, err) == (0, "")
    assert out == "examples/quickstart/Buildfile: ok (2 images, 4 builds)\n"


def test_set_value_that_breaks_a_tag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> None:
    """A --set value is checked like any other: the tag it produces is reported where it is used."""
    monkeypatch.chdir(REPO)
    status, _, err = check(capsys, "-f", "examples/quickstart/Buildfile", "--set", "version=1.0 beta")
    assert status == 2
    assert err.startswith("examples/quickstart/Buildfile:8:5: error: ")
    assert "'1.0 beta'" in err


def test_unknown_target_on_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]
) -> None:
    monkeypatch.chdir(REPO / "examples" / "quickstart")
    status = main(["plan", "--no-lookup", "--backend", "buildx", "ap"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == "buildspec: error: no target named 'ap'; did you mean 'app'?\n"


# ---------------------------------------------------------------- evaluation problems found by this suite


def _check_text(tmp: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str]:
    (tmp / "Buildfile").write_text('registry = "localhost:5000/acme"\nplatforms = [linux/amd64]\n' + text)
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    status, _, err = check(capsys, "-f", str(tmp / "Buildfile"))
    return status, err


def test_short_sha_length_out_of_range_is_a_buildfile_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    status, err = _check_text(tmp_path, capsys, "short_sha_length = 2\nimage app {\n}\n")
    assert status == 2
    assert "short_sha_length" in err


def test_image_pin_by_the_declared_name_of_a_renamed_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    status, err = _check_text(
        tmp_path, capsys, 'image base {\n name = "base-image"\n}\nimage app {\n args { B = image(base) }\n}\n')
    assert status == 2
    assert "matrix" not in err
    assert "base-image" in err


def test_an_invalid_tag_is_described_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    status, err = _check_text(tmp_path, capsys, 'image app {\n tags = ["a b"]\n}\n')
    assert status == 2
    assert err.splitlines()[0].count("'a b'") == 1


def test_colliding_matrix_cells_point_at_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], buildspec_env: dict[str, str]
) -> None:
    status, err = _check_text(tmp_path, capsys, 'image rt {\n matrix { a = [1, 2] }\n name = "rt"\n}\n')
    assert status == 2
    first, *rest = [line for line in err.splitlines() if ": error: " in line or ": note: " in line]
    assert all(line.split(": ")[0] != first.split(": ")[0] for line in rest), err
