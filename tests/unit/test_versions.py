"""buildspec.versions: parsing under SemVer and PEP 440, precedence, latest."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildspec.versions import Version, is_latest, parse_version, semver_key

# (text, scheme) -> (scheme, text, major, minor, patch, prerelease, build, stable)
PARSE_CASES: list[
    tuple[str, str, tuple[str, str, str | None, str | None, str | None, str | None, str | None, bool]]
] = [
    # SemVer: plain, v-prefix, major 0
    ("1.2.3", "semver", ("semver", "1.2.3", "1", "2", "3", None, None, True)),
    ("v1.2.3", "semver", ("semver", "1.2.3", "1", "2", "3", None, None, True)),
    ("V1.2.3", "semver", ("semver", "1.2.3", "1", "2", "3", None, None, True)),
    ("0.1.0", "semver", ("semver", "0.1.0", "0", "1", "0", None, None, True)),
    ("0.0.0", "semver", ("semver", "0.0.0", "0", "0", "0", None, None, True)),
    ("10.20.30", "semver", ("semver", "10.20.30", "10", "20", "30", None, None, True)),
    (
        "99999999999999999999.0.0",
        "semver",
        ("semver", "99999999999999999999.0.0", "99999999999999999999", "0", "0", None, None, True),
    ),
    # SemVer: pre-releases and build metadata (build is dropped from text)
    ("1.2.3-rc.1", "semver", ("semver", "1.2.3-rc.1", "1", "2", "3", "rc.1", None, False)),
    ("v1.2.3-rc.1+build.5", "semver", ("semver", "1.2.3-rc.1", "1", "2", "3", "rc.1", "build.5", False)),
    ("1.2.3+20240101", "semver", ("semver", "1.2.3", "1", "2", "3", None, "20240101", True)),
    ("1.0.0-alpha", "semver", ("semver", "1.0.0-alpha", "1", "0", "0", "alpha", None, False)),
    ("1.0.0-0.3.7", "semver", ("semver", "1.0.0-0.3.7", "1", "0", "0", "0.3.7", None, False)),
    ("1.0.0-x.7.z.92", "semver", ("semver", "1.0.0-x.7.z.92", "1", "0", "0", "x.7.z.92", None, False)),
    ("1.0.0-x-y-z.--", "semver", ("semver", "1.0.0-x-y-z.--", "1", "0", "0", "x-y-z.--", None, False)),
    (
        "1.0.0+21AF26D3----117B344092BD",
        "semver",
        ("semver", "1.0.0", "1", "0", "0", None, "21AF26D3----117B344092BD", True),
    ),
    ("1.2.3-beta.01a", "semver", ("semver", "1.2.3-beta.01a", "1", "2", "3", "beta.01a", None, False)),
    # Not SemVer -> raw, never an exception
    ("1.2", "semver", ("raw", "1.2", None, None, None, None, None, False)),
    ("1.2.3.4", "semver", ("raw", "1.2.3.4", None, None, None, None, None, False)),
    ("01.2.3", "semver", ("raw", "01.2.3", None, None, None, None, None, False)),
    ("1.2.3-01", "semver", ("raw", "1.2.3-01", None, None, None, None, None, False)),
    ("1.2.3-", "semver", ("raw", "1.2.3-", None, None, None, None, None, False)),
    ("1.2.3+", "semver", ("raw", "1.2.3+", None, None, None, None, None, False)),
    ("1.2.3-rc..1", "semver", ("raw", "1.2.3-rc..1", None, None, None, None, None, False)),
    ("", "semver", ("raw", "", None, None, None, None, None, False)),
    ("latest", "semver", ("raw", "latest", None, None, None, None, None, False)),
    ("vv1.2.3", "semver", ("raw", "vv1.2.3", None, None, None, None, None, False)),
    (" 1.2.3", "semver", ("raw", " 1.2.3", None, None, None, None, None, False)),
    ("1.2.3\n", "semver", ("raw", "1.2.3\n", None, None, None, None, None, False)),
    ("\u0661.\u0662.\u0663", "semver", ("raw", "\u0661.\u0662.\u0663", None, None, None, None, None, False)),
    ("1.0rc1", "semver", ("raw", "1.0rc1", None, None, None, None, None, False)),
    # PEP 440
    ("1.0rc1", "pep440", ("pep440", "1.0rc1", "1", "0", "0", "rc1", None, False)),
    ("v1.0RC1", "pep440", ("pep440", "1.0rc1", "1", "0", "0", "rc1", None, False)),
    ("1.0.post1", "pep440", ("pep440", "1.0.post1", "1", "0", "0", None, None, True)),
    ("1!2.0", "pep440", ("pep440", "1!2.0", "2", "0", "0", None, None, True)),
    ("1.0.dev3", "pep440", ("pep440", "1.0.dev3", "1", "0", "0", "dev3", None, False)),
    ("1.0a1.dev2", "pep440", ("pep440", "1.0a1.dev2", "1", "0", "0", "a1.dev2", None, False)),
    ("1.0+local.7", "pep440", ("pep440", "1.0+local.7", "1", "0", "0", None, "local.7", True)),
    ("2024.1", "pep440", ("pep440", "2024.1", "2024", "1", "0", None, None, True)),
    ("1.2.3", "pep440", ("pep440", "1.2.3", "1", "2", "3", None, None, True)),
    ("1.2.3-rc.1", "pep440", ("pep440", "1.2.3rc1", "1", "2", "3", "rc1", None, False)),
    ("0.9", "pep440", ("pep440", "0.9", "0", "9", "0", None, None, True)),
    ("not a version", "pep440", ("raw", "not a version", None, None, None, None, None, False)),
    ("1.0-", "pep440", ("raw", "1.0-", None, None, None, None, None, False)),
]


@pytest.mark.parametrize(("raw", "scheme", "expected"), PARSE_CASES)
def test_parse_version(
    raw: str,
    scheme: str,
    expected: tuple[str, str, str | None, str | None, str | None, str | None, str | None, bool],
) -> None:
    v = parse_version(raw, scheme)
    assert (v.scheme, v.text, v.major, v.minor, v.patch, v.prerelease, v.build, v.stable) == expected
    assert v.raw == raw
    assert str(v) == v.text
    assert v.is_semver == (v.scheme == "semver")
    assert v.is_pep440 == (v.scheme == "pep440")


def test_default_scheme_is_semver() -> None:
    assert parse_version("v2.0.0").scheme == "semver"


def test_unknown_scheme_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown version scheme 'calver'"):
        parse_version("2024.01.01", "calver")


def test_template_values() -> None:
    assert parse_version("v0.4.1-rc.2+git.abc").as_template_values() == {
        "raw": "v0.4.1-rc.2+git.abc",
        "text": "0.4.1-rc.2",
        "scheme": "semver",
        "major": "0",
        "minor": "4",
        "patch": "1",
        "prerelease": "rc.2",
        "build": "git.abc",
        "stable": False,
        "is_semver": True,
        "is_pep440": False,
    }
    raw = parse_version("nightly").as_template_values()
    assert raw["text"] == "nightly"
    assert raw["stable"] is False
    assert raw["is_semver"] is False
    assert raw["major"] is None
    assert parse_version("1.0.post2", "pep440").as_template_values()["is_pep440"] is True


# ---------------------------------------------------------------- precedence

SEMVER_ORG_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "1.9.0",
    "1.10.0",
    "2.0.0-0",
    "2.0.0-1",
    "2.0.0-2.a",
    "2.0.0-10",
    "2.0.0-A",
    "2.0.0-a",
    "2.0.0",
    "10.0.0",
]


def test_semver_key_orders_the_semver_org_example() -> None:
    shuffled = list(reversed(SEMVER_ORG_ORDER))
    ordered = sorted(shuffled, key=lambda s: semver_key(parse_version(s)))
    assert ordered == SEMVER_ORG_ORDER
    keys = [semver_key(parse_version(s)) for s in SEMVER_ORG_ORDER]
    assert all(a < b for a, b in itertools.pairwise(keys))


def test_semver_key_ignores_v_prefix_and_build_metadata() -> None:
    assert semver_key(parse_version("v1.2.3+b.1")) == semver_key(parse_version("1.2.3+b.2"))
    assert semver_key(parse_version("1.2.3-rc.1+x")) == semver_key(parse_version("V1.2.3-rc.1"))


@pytest.mark.parametrize(("raw", "scheme"), [("1.2", "semver"), ("1.0rc1", "pep440")])
def test_semver_key_rejects_non_semver(raw: str, scheme: str) -> None:
    with pytest.raises(ValueError, match="not a SemVer version"):
        semver_key(parse_version(raw, scheme))


# --------------------------------------------------------------------- latest

LATEST_CASES: list[tuple[str, str, list[str], bool]] = [
    ("2.0.0", "semver", [], True),
    ("1.9.5", "semver", ["1.9.4", "2.0.0"], False),  # an older line's patch release
    ("v1.9.5", "semver", ["v2.0.0", "latest"], False),
    ("2.0.1", "semver", ["1.9.5", "2.0.0", "latest"], True),
    ("2.0.0", "semver", ["2.0.0"], True),  # re-running a release
    ("2.0.0", "semver", ["v2.0.0+build.7"], True),  # equal precedence
    ("2.0.0", "semver", ["3.0.0-rc.1", "2.1.0-beta"], True),  # pre-releases ignored
    ("2.0.0", "semver", ["latest", "3.0", "3", "20991231", "sha-abc1234", "main"], True),
    ("2.0.0-rc.1", "semver", [], False),  # pre-releases never get latest
    ("2.0.0-rc.1", "semver", ["1.0.0"], False),
    ("v2.0.0", "semver", ["v10.0.0"], False),  # numeric, not string, comparison
    ("1.10.0", "semver", ["1.9.0", "1.2.3"], True),
    ("0.1.0", "semver", ["0.0.9"], True),
    ("0.1.0", "semver", ["1.0.0"], False),
    ("nightly", "semver", [], False),  # raw
    ("1.0.post1", "pep440", ["1.0.0"], True),
    ("1.0.post1", "pep440", ["1.0.1"], False),
    ("1.0rc1", "pep440", [], False),
    ("2.0", "pep440", ["2.0.0", "1.9.9"], True),
]


@pytest.mark.parametrize(("raw", "scheme", "tags", "expected"), LATEST_CASES)
def test_is_latest(raw: str, scheme: str, tags: list[str], expected: bool) -> None:
    assert is_latest(parse_version(raw, scheme), tags) is expected


def test_is_latest_accepts_any_iterable() -> None:
    assert is_latest(parse_version("1.0.0"), iter(["0.9.0"])) is True
    assert is_latest(parse_version("1.0.0"), (t for t in ["1.0.1"])) is False


# ----------------------------------------------------------------- properties

_NUMERIC_ID = st.integers(min_value=0, max_value=12).map(str)
_ALNUM_ID = st.sampled_from(["a", "b", "alpha", "beta", "rc", "A", "Z", "x-y", "-", "1a", "0a"])
_PRE_ID = st.one_of(_NUMERIC_ID, _ALNUM_ID)
_SEMVERS = st.builds(
    lambda nums, pre, build, v: (
        f"{v}{nums[0]}.{nums[1]}.{nums[2]}" + (f"-{'.'.join(pre)}" if pre else "") + (f"+{build}" if build else "")
    ),
    st.tuples(*[st.integers(min_value=0, max_value=3)] * 3),
    st.lists(_PRE_ID, max_size=4),
    st.sampled_from(["", "build.1", "sha.5114f85", "001"]),
    st.sampled_from(["", "v"]),
)


def _reference_cmp(a: str, b: str) -> int:
    """SemVer 2.0 section 11, written out rule by rule, on the strings themselves."""

    def split(s: str) -> tuple[list[int], list[str]]:
        s = s.removeprefix("v").split("+", 1)[0]
        core, _, pre = s.partition("-")
        return [int(x) for x in core.split(".")], (pre.split(".") if pre else [])

    (core_a, pre_a), (core_b, pre_b) = split(a), split(b)
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    if not pre_a or not pre_b:
        return (not pre_a) - (not pre_b)  # a release is above its pre-releases
    for x, y in zip(pre_a, pre_b, strict=False):
        if x == y:
            continue
        x_num, y_num = re.fullmatch("[0-9]+", x), re.fullmatch("[0-9]+", y)
        if x_num and y_num:
            return -1 if int(x) < int(y) else 1
        if x_num or y_num:
            return -1 if x_num else 1  # numeric identifiers are below alphanumeric ones
        return -1 if x < y else 1  # ASCII order
    return (len(pre_a) > len(pre_b)) - (len(pre_a) < len(pre_b))


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


@given(_SEMVERS, _SEMVERS)
def test_semver_key_agrees_with_reference_comparison(a: str, b: str) -> None:
    va, vb = parse_version(a), parse_version(b)
    assert va.is_semver
    assert vb.is_semver
    ka, kb = semver_key(va), semver_key(vb)
    assert _sign((ka > kb) - (ka < kb)) == _sign(_reference_cmp(a, b))


@given(_SEMVERS)
def test_semver_text_round_trips(s: str) -> None:
    v = parse_version(s)
    again = parse_version(v.text)
    assert again.text == v.text
    assert semver_key(again) == semver_key(v)
    assert again.prerelease == v.prerelease


@given(st.text(max_size=40), st.sampled_from(["semver", "pep440"]))
def test_parse_never_raises(text: str, scheme: str) -> None:
    v = parse_version(text, scheme)
    assert isinstance(v, Version)
    assert v.raw == text
    if v.scheme == "raw":
        assert v.text == text
        assert (v.major, v.minor, v.patch, v.prerelease, v.build) == (None,) * 5
        assert not v.stable
