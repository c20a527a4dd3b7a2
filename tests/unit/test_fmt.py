"""``buildspec fmt``: canonical layout, comments kept, idempotent, same plan after formatting."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import test_fuzz_buildfiles as fuzz  # tests/unit: the mutations of the crash fuzzer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildspec.cli import main
from buildspec.errors import BuildfileError
from buildspec.fmt import format_text
from buildspec.syntax import parse

REPO = Path(__file__).resolve().parents[2]
# Every valid Buildfile of the repository: the examples, buildspec's own, the e2e corpus.
VALID = sorted(
    p.relative_to(REPO).as_posix()
    for pattern in ("Buildfile", "examples/*/Buildfile", "tests/e2e/*/*/Buildfile")
    for p in REPO.glob(pattern)
)
SHA = "0123456789abcdef0123456789abcdef01234567"
BAD = sorted(p.parent.name for p in (REPO / "tests" / "bad").glob("*/Buildfile") if p.is_file())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_corpus_is_found() -> None:
    assert len(VALID) >= 10 and "examples/quickstart/Buildfile" in VALID
    assert len(BAD) > 80


@pytest.fixture
def github_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buildspec_env: dict[str, str]) -> None:
    """A GitHub push of main, so that every tag scheme of the corpus resolves."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"},
                                 "head_commit": {"id": SHA, "timestamp": "2026-01-02T04:05:06+01:00"}}))
    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA,
                       "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event),
                       "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/examples"}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name", VALID)
def test_every_valid_buildfile_plans_the_same_after_fmt(
    name: str, tmp_path: Path, github_push: None, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "w"
    shutil.copytree((REPO / name).parent, folder, ignore=shutil.ignore_patterns(".buildspec", ".venv", ".git",
                                                                                  "tests", "bench", "docs"))
    buildfile = folder / "Buildfile"
    argv = ("plan", "-f", str(buildfile), "--format", "json", "--commands", "--backend", "buildx", "--no-lookup")
    status, before, err = run(capsys, *argv)
    assert status == 0, err
    original = buildfile.read_text()

    assert run(capsys, "fmt", str(buildfile))[0] == 0
    formatted = buildfile.read_text()
    status, after, err = run(capsys, *argv)
    assert status == 0, err
    assert after == before
    # Idempotent, and every comment is still there, in the same order.
    assert format_text(formatted) == formatted
    assert _comments(formatted) == _comments(original)
    assert run(capsys, "fmt", "--check", str(buildfile))[0] == 0


def _comments(text: str) -> list[str]:
    from buildspec.fmt.layout import Source

    return [c.text for c in Source.scan(text).comments]


@pytest.mark.parametrize("name", BAD)
def test_a_buildfile_with_a_semantic_mistake_keeps_it(
    name: str, tmp_path: Path, buildspec_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """fmt formats whatever parses; `check` then reports the same mistake (maybe elsewhere)."""
    folder = tmp_path / "w"
    shutil.copytree(REPO / "tests" / "bad" / name, folder)
    buildfile = folder / "Buildfile"
    try:
        text = buildfile.read_text(encoding="utf-8")
        parse(text)
    except (UnicodeDecodeError, BuildfileError):
        status, _, err = run(capsys, "fmt", "--check", str(buildfile))
        assert status == 2 and "Traceback" not in err and err.strip()
        return
    status, _, before = run(capsys, "check", "-f", str(buildfile))
    assert run(capsys, "fmt", str(buildfile))[0] == 0
    formatted = buildfile.read_text()
    assert format_text(formatted) == formatted
    status_after, _, after = run(capsys, "check", "-f", str(buildfile))
    assert status_after == status
    assert _message(after) == _message(before)


def _message(stderr: str) -> str:
    return stderr.splitlines()[0].split(" error: ", 1)[-1] if stderr else ""


# ---------------------------------------------------------------- the layout


MESSY = """\


# header comment

# second header
registry="x"   # where
  version = env("V",
     "1")  # trailing after a call over two lines
platforms = [
  linux/amd64,   # amd
  # own line in list
  linux/arm64
  # before close
]  # after close
image app {  # app header
  # first
  context = "."


  dockerfile = "Dockerfile"
  labels {
    org.label = "v"   # c1
    "other one" = "w"
  }
  args { A = image(base) }   # inline
  matrix {
  }
  tags {
    "a" if (x or y) and not (a == "b")   # t
    "bbbbbb" if not not x
    "c"
    "d" if x == "q" or
       (y)
  }
  # last in block

}   # end app
image base {
}
group default = [app, base,]
group all=[app]
# trailing file comment
"""

CANONICAL = """\
# header comment

# second header
registry = "x"            # where
version  = env("V", "1")  # trailing after a call over two lines
platforms = [
    linux/amd64,  # amd
    # own line in list
    linux/arm64,
    # before close
]  # after close

image app {  # app header
    # first
    context = "."

    dockerfile = "Dockerfile"
    labels {
        "org.label" = "v"  # c1
        "other one" = "w"
    }
    args { A = image(base) }  # inline
    matrix {}
    tags {
        "a"       if (x or y) and not (a == "b")  # t
        "bbbbbb"  if not not x
        "c"
        "d"       if x == "q" or y
    }
    # last in block
}  # end app

image base {}

group default = [app, base]
group all     = [app]
# trailing file comment
"""


def test_the_canonical_layout() -> None:
    assert format_text(MESSY) == CANONICAL
    assert format_text(CANONICAL) == CANONICAL


def test_crlf_and_tabs_become_canonical() -> None:
    assert format_text('image a {\r\n\tcontext = "."\r\n}\r\n') == 'image a {\n    context = "."\n}\n'


def test_a_comment_inside_an_expression_moves_above_it() -> None:
    text = 'x = env(  # what\n  # more\n  "A",  # and more\n  "b")\n'
    assert format_text(text) == '# more\n# and more\nx = env("A", "b")  # what\n'


def test_parentheses_only_where_the_grammar_needs_them() -> None:
    text = 'tags t {\n    "x" if not (a or b) and (c and d) or ((e == "1"))\n}\n'
    # (c and d) stays: without it the tree would lean the other way
    assert format_text(text) == 'tags t {\n    "x"  if not (a or b) and (c and d) or e == "1"\n}\n'
    text = 'tags t {\n    "x" if a and (b or c)\n}\n'
    assert format_text(text) == 'tags t {\n    "x"  if a and (b or c)\n}\n'


def test_empty_and_comment_only_files() -> None:
    assert format_text("") == ""
    assert format_text("\n\n# only\n\n\n# this\n") == "# only\n\n# this\n"


def test_check_names_the_files_that_would_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(CANONICAL)
    bad.write_text(MESSY)
    status, out, err = run(capsys, "fmt", "--check", str(good), str(bad))
    assert status == 1
    assert f"{bad}: not formatted" in err and str(good) not in err
    assert bad.read_text() == MESSY  # --check changes nothing

    status, out, err = run(capsys, "fmt", "--diff", str(bad))
    assert status == 0 and bad.read_text() == MESSY
    assert out.startswith(f"--- {bad} (original)\n+++ {bad} (formatted)\n")
    assert '-registry="x"   # where\n' in out and '+registry = "x"            # where\n' in out

    status, out, err = run(capsys, "fmt", str(bad), str(good))
    assert (status, out, err) == (0, "", f"formatted {bad}\n")
    assert bad.read_text() == CANONICAL


def test_a_syntax_error_changes_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, broken = tmp_path / "first", tmp_path / "broken"
    first.write_text(MESSY)
    broken.write_text("image a {\n")
    status, _out, err = run(capsys, "fmt", str(first), str(broken))
    assert status == 2
    assert err.startswith(f"{broken}:1:9: error: '{{' is not closed")
    assert first.read_text() == MESSY


def test_stdin_to_stdout(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    assert run(capsys, "fmt", "-") == (0, CANONICAL, "")


def test_the_repository_s_own_buildfiles_are_canonical(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(REPO / name) for name in VALID if not name.startswith("tests/")]
    assert run(capsys, "fmt", "--check", *files) == (0, "", "")


# ---------------------------------------------------------------- fuzzing


# Comments and blank lines anywhere, on top of the crash fuzzer's mutations.
_comments_and_blanks = st.builds(fuzz.Insert, st.floats(min_value=0, max_value=1),
                                 st.sampled_from([b"# c1\n", b"  # c2", b"\n# c3\n\n", b"#x", b"\n\n\n", b"\n"]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(fuzz.NAMES),
       st.lists(st.one_of(fuzz.mutations, _comments_and_blanks, _comments_and_blanks), min_size=1, max_size=6))
def test_whatever_parses_formats_idempotently_keeping_meaning_and_comments(
    name: str, changes: list[fuzz.Mutation]
) -> None:
    """Mutated Buildfiles (tests/unit/test_fuzz_buildfiles.py's mutations): fmt never fails on
    what parses (its own check of tree and comments included) and a second fmt changes nothing."""
    try:
        text = fuzz.mutated(name, changes).decode("utf-8")
        parse(text)
    except (UnicodeDecodeError, BuildfileError):
        return
    formatted = format_text(text)
    assert format_text(formatted) == formatted
    assert sorted(_comments(formatted)) == sorted(_comments(text))


def test_a_folder_stands_for_every_buildfile_below_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "a" / "Buildfile").write_text(CANONICAL)
    (tmp_path / "a" / "b" / "Buildfile").write_text(MESSY)
    (tmp_path / ".git" / "Buildfile").write_text(MESSY)  # never looked at
    (tmp_path / "a" / "notes.txt").write_text(MESSY)
    status, _, err = run(capsys, "fmt", "--check", str(tmp_path))
    messy = tmp_path / "a" / "b" / "Buildfile"
    assert (status, err) == (1, f"{messy}: not formatted (run: buildspec fmt {messy})\n")


def _doc_samples() -> list[tuple[str, int, str]]:
    samples = []
    for doc in ("README.md", "docs/language.md", "docs/tags.md", "docs/ci-without-docker.md"):
        text = (REPO / doc).read_text()
        for match in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
            try:
                parse(match.group(1))
            except BuildfileError:
                continue  # shell commands, JSON, YAML
            if match.group(1).strip():
                samples.append((doc, text.count("\n", 0, match.start()) + 1, match.group(1)))
    return samples


def test_every_buildfile_sample_of_the_docs_keeps_every_construct() -> None:
    """docs/language.md's sample uses every construct of the language: fmt keeps the tree
    (its own check) and every comment, and is idempotent on each sample of the docs."""
    samples = _doc_samples()
    assert any(doc == "docs/language.md" and "group default" in text for doc, _, text in samples)
    for doc, line, text in samples:
        formatted = format_text(text, f"{doc}:{line}")
        assert format_text(formatted) == formatted, (doc, line)
        assert _comments(formatted) == _comments(text), (doc, line)


def test_tag_line_options_are_kept(tmp_path: Path) -> None:
    text = ('registry = "r.example/a"\n\ntags release {\n'
            '    "pr-{git.pr}" [prefix="", suffix = "-x",latest] if git.pr\n}\n\nimage app {\n    tags = release\n}\n')
    formatted = format_text(text)
    assert '"pr-{git.pr}" [prefix = "", suffix = "-x", latest]  if git.pr' in formatted, formatted
    assert format_text(formatted) == formatted
