"""Mutated Buildfiles never crash buildspec: `check` exits 0 or 2, and never with a traceback.

Every valid Buildfile of the repository (``examples/*/Buildfile`` and the root
``Buildfile``) is copied, with its build contexts, into a temporary folder, then
mutated the way people (and editors) break files: a slice deleted, tokens
inserted, two tokens swapped, a line duplicated, random bytes (invalid UTF-8,
NUL) inserted. ``buildspec check`` runs in-process on the result. When it says
the file is fine, ``plan --format json`` must also succeed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "Buildfile", *sorted(REPO.glob("examples/*/Buildfile"))]

VOCABULARY = [
    "{", "}", "[", "]", "(", ")", "=", "==", "!=", ",", '"', "'", ":", "|", "#", "\\", "\n", " ",
    "image", "tags", "group", "matrix", "args", "labels", "needs", "platforms", "context", "name",
    "if", "not", "and", "or", "default", "release", "app", "base", "runtime", "runtime-slim-1",
    "version", "version.stable", "git.branch", "git.pr", "registry", "platform.arch", "1", "0.1",
    "linux/amd64", "linux/arm/v7", '"linux/arm64"', "linux", '"latest"', '"{version}"', '"{"', '"}"',
    '"{{"', '"{git.branch|slug}"', '"{date|%Y%m%d}"', '"{nope}"', '"a b"', '"UPPER"', '""',
    "image(base)", "image(app)", "image(runtime)", 'env("VERSION")', "env(", 'match(git.tag, "(")',
    "buildx", "kaniko", "true", "x" * 130,
]
# Whole lines, inserted at the start of a line: they reach evaluation more often than tokens do.
SNIPPETS = [
    "short_sha_length = 8", "short_sha_length = 2", "short_sha_length = 100",
    "version_scheme = pep440", "version_scheme = calver",
    "default_branch = develop", "publish = eager", "backend = kaniko", "builder = b", "platforms = []",
    'platforms = "linux/arm64"', 'version = "v2.0.0-rc.1"', 'version = ""', 'registry = "Upper/Case"',
    'name = "x"', 'name = "{nope}"', 'platform_tag = "{tag}-{platform.variant}"', "affix_latest = false",
    'prefix = "v"', 'suffix = "-{name}"', "matrix { a = [1, 2] }", "matrix { a = [] }", "needs = [base]",
    "needs = [app]", "needs = [runtime]", "args { X = image(base) }", "args { X = image(runtime-slim-1) }",
    'labels { "k" = "{git.sha}" }', "group default = [app]", "group g = [g]", "tags = []", 'tags = ["{date|%Y}"]',
    'context = "nope"', 'dockerfile = "../Buildfile"', "image x { }", "tags t { }", '"x" if ' + "not " * 150 + "a",
    '"{version}" if ' + " and ".join(["version.stable"] * 120),
]
_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|[A-Za-z0-9_./\-]+|\S')


@dataclass(frozen=True)
class Delete:
    at: float
    length: int


@dataclass(frozen=True)
class Insert:
    at: float
    text: bytes


@dataclass(frozen=True)
class InsertLine:
    at: float
    text: bytes


@dataclass(frozen=True)
class Swap:
    first: float
    second: float


@dataclass(frozen=True)
class DuplicateLine:
    at: float


Mutation = Delete | Insert | InsertLine | Swap | DuplicateLine

_fraction = st.floats(min_value=0, max_value=1, allow_nan=False)
mutations = st.one_of(
    st.builds(Delete, _fraction, st.integers(min_value=1, max_value=40)),
    st.builds(Insert, _fraction, st.sampled_from(VOCABULARY).map(str.encode)),
    st.builds(Insert, _fraction, st.lists(st.sampled_from(VOCABULARY), min_size=2, max_size=6)
              .map(lambda words: " ".join(words).encode())),
    st.builds(Insert, _fraction, st.binary(min_size=1, max_size=4)),
    st.builds(InsertLine, _fraction, st.sampled_from(SNIPPETS).map(str.encode)),
    st.builds(Swap, _fraction, _fraction),
    st.builds(DuplicateLine, _fraction),
)


def _index(fraction: float, size: int) -> int:
    return min(int(fraction * size), max(size - 1, 0))


def mutate(data: bytes, mutation: Mutation) -> bytes:
    if isinstance(mutation, Delete):
        at = _index(mutation.at, len(data))
        return data[:at] + data[at + mutation.length :]
    if isinstance(mutation, Insert):
        at = _index(mutation.at, len(data) + 1)
        return data[:at] + mutation.text + data[at:]
    if isinstance(mutation, InsertLine):
        lines = data.split(b"\n")
        at = _index(mutation.at, len(lines) + 1)
        return b"\n".join([*lines[:at], mutation.text, *lines[at:]])
    if isinstance(mutation, Swap):
        tokens = list(_TOKEN.finditer(data))
        if len(tokens) < 2:
            return data
        a, b = sorted((tokens[_index(mutation.first, len(tokens))], tokens[_index(mutation.second, len(tokens))]),
                      key=lambda m: m.start())
        if a.start() == b.start():
            return data
        return data[: a.start()] + b.group() + data[a.end() : b.start()] + a.group() + data[b.end() :]
    lines = data.split(b"\n")
    at = _index(mutation.at, len(lines))
    return b"\n".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Each source's folder copied (contexts included), in a fixed environment without git."""
    root = tmp_path_factory.mktemp("fuzz")
    places: dict[str, Path] = {}
    for source in SOURCES:
        name = "root" if source.parent == REPO else source.parent.name
        target = root / name
        if source.parent == REPO:
            target.mkdir()
            shutil.copy(REPO / "Buildfile", target / "Buildfile")
            shutil.copy(REPO / "Dockerfile", target / "Dockerfile")
        else:
            shutil.copytree(source.parent, target, ignore=shutil.ignore_patterns(".buildspec"))
        places[name] = target
    empty_bin = root / "bin"
    empty_bin.mkdir()
    environ = {
        # No git on PATH: the git context is empty and no process is started per check.
        "PATH": str(empty_bin),
        "HOME": str(root),
        "SOURCE_DATE_EPOCH": "1767323045",
        "GIT_CEILING_DIRECTORIES": str(root),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key not in ("PYTHONPATH", "SYSTEMROOT", "TMPDIR", "LANG", "LC_ALL"):
                patch.delenv(key)
        for key, value in environ.items():
            patch.setenv(key, value)
        yield places


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def check_survives(places: dict[str, Path], name: str, data: bytes) -> None:
    path = places[name] / "Fuzzfile"
    path.write_bytes(data)
    status, out, err = run("check", "-f", str(path))
    assert "Traceback" not in out + err
    assert status in (0, 2), err
    if status == 2:
        assert err.strip(), "exit 2 without a message"
        assert err.startswith((str(path), "buildspec: error: ")), err
        return
    assert out.startswith(f"{path}: ok"), out
    status, out, err = run("plan", "--no-lookup", "-f", str(path), "--backend", "buildx", "--format", "json",
                           "--commands")
    assert status == 0, f"check passed but plan failed:\n{err}"
    assert json.loads(out)["version"] == 1
    status, out, err = run("plan", "--no-lookup", "-f", str(path), "--backend", "buildx", "--explain")
    assert status == 0, f"check passed but plan --explain failed:\n{err}"


NAMES = ["root" if s.parent == REPO else s.parent.name for s in SOURCES]


def mutated(name: str, changes: list[Mutation]) -> bytes:
    data = (REPO / "Buildfile" if name == "root" else REPO / "examples" / name / "Buildfile").read_bytes()
    for change in changes:
        data = mutate(data, change)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.lists(mutations, min_size=1, max_size=3))
@example("quickstart", [Insert(0.0, b"\xff\xfe")])
@example("matrix", [Insert(0.5, b"\x00")])
@example("tags", [Delete(0.9, 40)])
def test_mutated_buildfiles_never_crash(
    workspace: dict[str, Path], name: str, changes: list[Mutation]
) -> None:
    check_survives(workspace, name, mutated(name, changes))


@pytest.mark.parametrize("name", NAMES)
def test_unmutated_sources_pass(workspace: dict[str, Path], name: str) -> None:
    """The starting points are valid, so that mutations start from a file that checks."""
    source = REPO / "Buildfile" if name == "root" else REPO / "examples" / name / "Buildfile"
    path = workspace[name] / "Fuzzfile"
    path.write_bytes(source.read_bytes())
    status, _, err = run("check", "-f", str(path))
    assert (status, err == "") == (0, True), err


# Inputs that once escaped as exceptions (or still do), kept as regressions.
REGRESSIONS = [
    pytest.param("quickstart", [InsertLine(0.3, b'tags deep { "x" if ' + b"not " * 3000 + b"a }")],
                 id="3000-nots-RecursionError"),
    pytest.param("quickstart", [InsertLine(0.3, b'tags deep { "x" if ' + b" and ".join([b"a"] * 3000) + b" }")],
                 id="3000-ands-RecursionError"),
    pytest.param("tags", [InsertLine(0.2, b"short_sha_length = 2")], id="short_sha_length-ValueError"),
]


@pytest.mark.parametrize(("name", "changes"), REGRESSIONS)
def test_regressions(workspace: dict[str, Path], name: str, changes: list[Mutation]) -> None:
    check_survives(workspace, name, mutated(name, changes))
