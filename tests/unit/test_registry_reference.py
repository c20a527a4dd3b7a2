"""Image references: the distribution grammar and Docker's defaults."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildspec.errors import UsageError
from buildspec.registry.reference import (
    InvalidReference,
    Reference,
    validate_digest,
    validate_repository,
    validate_tag,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Reference("docker.io", "library/busybox")),
        ("busybox:1.36", Reference("docker.io", "library/busybox", "1.36")),
        ("acme/app:v1", Reference("docker.io", "acme/app", "v1")),
        ("index.docker.io/acme/app", Reference("docker.io", "acme/app")),
        ("docker.io/busybox", Reference("docker.io", "library/busybox")),
        ("localhost/app", Reference("localhost", "app")),
        ("localhost:5000/a/b/c:t", Reference("localhost:5000", "a/b/c", "t")),
        ("127.0.0.1:5000/t/x:arm64", Reference("127.0.0.1:5000", "t/x", "arm64")),
        ("ghcr.io/o/r@" + DIGEST, Reference("ghcr.io", "o/r", None, DIGEST)),
        ("ghcr.io/o/r:1@" + DIGEST, Reference("ghcr.io", "o/r", "1", DIGEST)),
        ("[::1]:5000/app", Reference("[::1]:5000", "app")),
        ("registry.example.com/a__b.c-d--e/f", Reference("registry.example.com", "a__b.c-d--e/f")),
    ],
)
def test_parse(text: str, expected: Reference) -> None:
    assert Reference.parse(text) == expected


def test_str_is_the_full_name_and_round_trips() -> None:
    ref = Reference.parse("busybox:1")
    assert str(ref) == "docker.io/library/busybox:1"
    assert Reference.parse(str(ref)) == ref
    assert str(Reference.parse("h:5000/a@" + DIGEST)) == "h:5000/a@" + DIGEST


def test_helpers() -> None:
    ref = Reference.parse("127.0.0.1:5000/t/x:arm64")
    assert ref.name == "127.0.0.1:5000/t/x"
    assert ref.identifier == "arm64"
    assert ref.with_digest(DIGEST).identifier == DIGEST
    assert ref.with_digest(DIGEST).tag is None
    assert ref.repository_only().identifier == "latest"
    assert Reference.parse("busybox").api_host == "registry-1.docker.io"
    assert ref.api_host == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Acme/app", "must be lowercase"),
        ("ghcr.io/Acme/app", "must be lowercase ('Acme')"),
        ("ghcr.io/a//b", "empty path component"),
        ("ghcr.io/a/-b", "path component '-b'"),
        ("ghcr.io/a/b_", "path component 'b_'"),
        ("ghcr.io/a/b:-x", "cannot start with '.' or '-'"),
        ("ghcr.io/a/b:" + "x" * 129, "at most 128"),
        ("ghcr.io/a@sha256:abc", "digest"),
        ("ghcr.io/a@sha256:" + "AB" * 32, "lowercase hex"),
        ("ghcr.io/", "no path"),
        ("-bad.io/a", "not a valid host"),
        ("", "empty"),
        ("ghcr.io/a\n", "path component"),
    ],
)
def test_invalid_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        Reference.parse(text)
    assert reason in str(caught.value)
    # A bad reference is the user's mistake: exit 2, no traceback.
    assert isinstance(caught.value, UsageError)


def test_name_length_limit() -> None:
    assert validate_repository("a/" + "b" * 253) is None
    problem = validate_repository("a/" + "b" * 254)
    assert problem is not None and "255" in problem


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "1.0-linux-arm64", "A" * 128, "a_b.c-D"])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) is None


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a/b", "a:b", "a+b", "ü", "A" * 129, "a\n", " a"])
def test_invalid_tags(tag: str) -> None:
    assert validate_tag(tag) is not None


@pytest.mark.parametrize("name", ["app", "acme/app", "localhost:5000/a", "h.io/a.b/c-d/e__f", "h.io:443/x"])
def test_valid_repositories(name: str) -> None:
    assert validate_repository(name) is None


def test_digest_validation() -> None:
    assert validate_digest(DIGEST) is None
    assert validate_digest("sha512:" + "0" * 128) is None
    assert validate_digest("sha256:" + "0" * 63) is not None
    assert validate_digest("md5") is not None


@given(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z"))
def test_every_grammar_tag_is_accepted(tag: str) -> None:
    assert validate_tag(tag) is None
    assert Reference.parse(f"h.io/a:{tag}").tag == tag


@given(st.text(max_size=140))
def test_validate_tag_agrees_with_the_grammar(tag: str) -> None:
    grammar = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag, flags=re.ASCII)
    assert (validate_tag(tag) is None) == (grammar is not None)
