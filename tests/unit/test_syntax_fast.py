"""The fast parser (syntax_fast.py) builds exactly Lark's tree, or hands the text to Lark.

Lark (grammar/buildfile.lark) defines the language. For every text below, either the fast
parser raises ``Unsupported`` or Lark accepts the text and builds an equal tree, spans
included. The valid Buildfiles of the repository and a generated large one must take the
fast path (otherwise the speed-up is gone without a failing test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from buildspec.errors import BuildfileError
from buildspec.syntax import parse
from buildspec.syntax_fast import Unsupported, parse_fast
from buildspec.syntax_lark import parse_statements
from buildspec.syntax_tree import Statement

REPO = Path(__file__).resolve().parents[2]
VALID = sorted(
    p for p in [REPO / "Buildfile", *REPO.glob("examples/*/Buildfile"), *REPO.glob("tests/e2e/**/Buildfile")]
    if p.is_file()
)
BAD = sorted(p for p in (REPO / "tests" / "bad").glob("*/Buildfile") if p.is_file())


def large_buildfile(n: int) -> str:
    """Every construct of the grammar, n times (as bench/plan_scale.py, plus conditions and calls)."""
    out = [
        'registry = env("REGISTRY", "localhost:5000/x")  # a comment',
        "platforms = [linux/amd64, linux/arm64, linux/arm/v7,]",
        "short_sha_length = 8",
        '"quoted key" = "v\\"a\\\\l\\tue"',
        "tags release {",
        '    "{version}"',
        '    "{version.major}.{version.minor}" if version.stable',
        '    "latest" if git.is_default_branch and not git.pr',
        '    "edge" if not not (git.branch == "main" or git.branch != "dev") and match(git.tag, "^v")',
        '    "x" if 1 == version.major or "a" != git.sha',
        '    "{git.pr}" [prefix = "pr-", suffix = env("S", "-x"),] if git.pr',
        '    "{version}" [latest] if version.stable',
        '    "{git.sha}" [] ',
        '    "k" = "v"',
        "}",
    ]
    for i in range(n):
        out += [
            f"image img{i} {{",
            f'    context = "ctx/img{i}"',
            "    args {",
            *([f"        BASE = image(img{i - 1})"] if i else []),
            '        EMPTY = [] CALL = f()  NESTED = [[a, 1.5], g(h(x,), "s",)]',
            "    }",
            '    labels { "org.opencontainers.image.description" = "image {name}" }',
            "    tags = release",
            "    matrix { v = [1, 2] }",
            "}",
        ]
    out.append(f"group default = [{', '.join(f'img{i}' for i in range(n))}]")
    return "\n".join(out) + "\n"


def lark_or_error(text: str) -> tuple[Statement, ...] | str:
    try:
        return parse_statements(text, "F")
    except BuildfileError as e:
        return f"error: {e.message}"


def assert_same(text: str) -> bool:
    """True when the fast parser took the text (and then built Lark's tree)."""
    try:
        fast = parse_fast(text, "F")
    except Unsupported:
        return False
    assert fast == lark_or_error(text)
    return True


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(REPO)))
def test_valid_buildfiles_take_the_fast_path_and_build_larks_tree(path: Path) -> None:
    assert assert_same(path.read_text(encoding="utf-8"))


def test_a_large_generated_buildfile_takes_the_fast_path() -> None:
    text = large_buildfile(200)
    assert assert_same(text)
    assert parse(text, "F").statements == parse_statements(text, "F")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.parent.name)
def test_bad_buildfiles_are_left_to_lark_or_parsed_the_same(path: Path) -> None:
    assert_same(path.read_text(encoding="utf-8", errors="replace").replace("\x00", ""))


@pytest.mark.parametrize("text", [
    "not = 1\n",                             # keywords are names where no keyword is expected
    "x = if\n",
    'tags t {\n    "a" if x == not\n}\n',
    'tags t {\n    "a"\n    and = 1\n}\n',
    "image a/b { }\n",                       # a platform where a name must be
    "x = abc/\n",
    "x = [,]\n",
    "group g = [a]\nimage i { group g = [b] }\n",
    'tags t {\n    "a" if x == y == z\n}\n',
    "x = \v1\n",
    'x = "unterminated\n',
    "image x {",
])
def test_texts_the_fast_parser_hands_to_lark(text: str) -> None:
    assert not assert_same(text)


_WORDS = [
    "{", "}", "[", "]", "(", ")", "=", "==", "!=", ",", "\n", " ", "#c\n", '"s"', '"a\\"b"', "'",
    "image", "tags", "group", "x", "git.branch", "1", "1.5", "linux/amd64", "a-b", "_", "f", "if", "and", "or",
    "not", "\t", "/", "\\",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_WORDS), max_size=30).map(" ".join))
@example('tags t { "a" if not x == "b" or (y and f(z, [1],)) }')
@example("x = [a, [b, c(d)], e,]\ng h = 1\n")
def test_token_soup_never_parses_differently(text: str) -> None:
    assert_same(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(min_value=0), st.sampled_from(_WORDS), st.integers(0, 3))
def test_mutated_buildfiles_never_parse_differently(path: Path, seed: int, word: str, cut: int) -> None:
    text = path.read_text(encoding="utf-8")
    at = seed % (len(text) + 1)
    assert_same(text[:at] + word + text[at + cut :])


def test_statements_need_no_newlines() -> None:
    assert assert_same("x = 1 y = 2 image i { a = b }")


def test_deep_nesting_is_left_to_lark() -> None:
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    assert not assert_same(deep)
    nots = 'tags t {\n    "a" if ' + "not " * 300 + "x\n}\n"
    assert assert_same(nots)
