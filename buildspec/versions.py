"""Version strings: parse, order, and decide whether a release is the latest.

A version is parsed under one scheme and never raises on bad input:

``semver`` (the default)
    Strict SemVer 2.0 (the regular expression published on semver.org, ASCII
    digits only), with an optional leading ``v``/``V``. ``text`` is the
    normalised form without the ``v`` and without build metadata
    (``v1.2.3-rc.1+build.5`` -> ``1.2.3-rc.1``), which is what
    docker/metadata-action renders for ``{{version}}`` (node-semver drops build
    metadata, and ``+`` is not allowed in an OCI tag anyway); ``build`` keeps
    the metadata.
``pep440``
    ``packaging.version.Version``. ``text`` is the PEP 440 normal form
    (``1.0RC1`` -> ``1.0rc1``; a local part ``+abc`` is kept, as PEP 440
    normalisation keeps it). ``major``/``minor``/``patch`` are the first three
    release numbers, missing ones being ``"0"`` (``2024.1`` -> ``2024``, ``1``,
    ``0``); ``prerelease`` is the pre-release and dev parts (``rc1``, ``dev3``,
    ``rc1.dev3``); ``build`` is the local part. A post-release is stable.

Anything that does not parse under the asked scheme becomes scheme ``raw``:
``text == raw``, every part ``None``, not stable. An unknown *scheme name* is a
programming error and raises ``ValueError``.

Parts are strings so that major version 0 is ``"0"`` (set, and distinguishable
from unset ``None``), as the Buildfile templates need.

``{version}`` in a template renders ``Version.text`` (also ``str(version)``);
``Version.as_template_values()`` gives the names after ``version.``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SCHEMES", "SemverKey", "Version", "is_latest", "parse_version", "semver_key"]

SCHEMES = ("semver", "pep440")

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*"
_BUILD_ID = r"[0-9a-zA-Z-]+"
_SEMVER = re.compile(
    rf"[vV]?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<prerelease>(?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?",
    re.ASCII,
)


@dataclass(frozen=True)
class Version:
    """A parsed version. See the module docstring for what each field holds."""

    raw: str
    text: str
    scheme: str  # "semver" | "pep440" | "raw"
    major: str | None = None
    minor: str | None = None
    patch: str | None = None
    prerelease: str | None = None
    build: str | None = None

    @property
    def is_semver(self) -> bool:
        return self.scheme == "semver"

    @property
    def is_pep440(self) -> bool:
        return self.scheme == "pep440"

    @property
    def stable(self) -> bool:
        """Parsed, and no pre-release (for PEP 440: no pre and no dev part)."""
        return self.scheme != "raw" and self.prerelease is None

    def __str__(self) -> str:
        return self.text

    def as_template_values(self) -> dict[str, str | bool | None]:
        """The names after ``version.`` in templates (``{version}`` itself is ``text``)."""
        return {
            "raw": self.raw,
            "text": self.text,
            "scheme": self.scheme,
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "prerelease": self.prerelease,
            "build": self.build,
            "stable": self.stable,
            "is_semver": self.is_semver,
            "is_pep440": self.is_pep440,
        }


def parse_version(text: str, scheme: str = "semver") -> Version:
    """Parse ``text`` under ``scheme``; what does not parse is a ``raw`` version."""
    if scheme == "semver":
        return _parse_semver(text) or Version(raw=text, text=text, scheme="raw")
    if scheme == "pep440":
        return _parse_pep440(text) or Version(raw=text, text=text, scheme="raw")
    raise ValueError(f"unknown version scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def _parse_semver(text: str) -> Version | None:
    m = _SEMVER.fullmatch(text)
    if m is None:
        return None
    major, minor, patch, pre, build = m.group("major", "minor", "patch", "prerelease", "build")
    normal = f"{major}.{minor}.{patch}" + (f"-{pre}" if pre is not None else "")
    return Version(
        raw=text,
        text=normal,
        scheme="semver",
        major=major,
        minor=minor,
        patch=patch,
        prerelease=pre,
        build=build,
    )


def _parse_pep440(text: str) -> Version | None:
    from packaging.version import InvalidVersion  # only for PEP 440 versions (start-up time)
    from packaging.version import Version as Pep440Version

    try:
        v = Pep440Version(text)
    except InvalidVersion:
        return None
    pre_parts: list[str] = []
    if v.pre is not None:
        pre_parts.append(f"{v.pre[0]}{v.pre[1]}")
    if v.dev is not None:
        pre_parts.append(f"dev{v.dev}")
    return Version(
        raw=text,
        text=str(v),
        scheme="pep440",
        major=str(v.major),
        minor=str(v.minor),
        patch=str(v.micro),
        prerelease=".".join(pre_parts) if pre_parts else None,
        build=v.local,
    )


SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def semver_key(v: Version) -> SemverKey:
    """A sort key that orders SemVer versions by SemVer 2.0 precedence.

    ``(major, minor, patch, release, identifiers)``: ``release`` is 1 for a
    release and 0 for a pre-release, so a release outranks every pre-release of
    the same numbers. Each pre-release identifier is ``(0, n)`` when numeric and
    ``(1, s)`` when alphanumeric: numeric ones compare numerically and below
    alphanumeric ones (compared in ASCII order), and tuple comparison makes a
    shorter list that is a prefix of a longer one sort first. Build metadata is
    ignored (equal precedence gives equal keys). Raises ``ValueError`` for a
    version that is not SemVer.
    """
    if not v.is_semver or v.major is None or v.minor is None or v.patch is None:
        raise ValueError(f"not a SemVer version: {v.raw!r}")
    if v.prerelease is None:
        return (int(v.major), int(v.minor), int(v.patch), 1, ())
    ids = tuple((0, int(part)) if part.isdigit() else (1, part) for part in v.prerelease.split("."))
    return (int(v.major), int(v.minor), int(v.patch), 0, ids)


def is_latest(version: Version, existing_tags: Iterable[str]) -> bool:
    """Whether ``version`` deserves ``latest`` given the tags that already exist.

    True only when ``version`` is stable and no *stable SemVer* tag among
    ``existing_tags`` is higher (so a 1.9.5 patch release made after 2.0.0
    does not take ``latest``). Tags that are not SemVer (``latest``, ``1.2``,
    ``sha-abc``, build numbers) and SemVer pre-releases are ignored; an equal
    one does not block (re-running a release keeps it latest). A stable PEP
    440 version is compared with those SemVer tags in PEP 440 order.
    """
    if not version.stable:
        return False
    if version.is_semver:
        mine = semver_key(version)
        for tag in existing_tags:
            other = _parse_semver(tag)
            if other is not None and other.stable and semver_key(other) > mine:
                return False
        return True
    from packaging.version import Version as Pep440Version

    mine_pep = Pep440Version(version.raw)
    for tag in existing_tags:
        other_pep = _parse_pep440(tag)
        if other_pep is None or not other_pep.stable:
            continue
        theirs = Pep440Version(other_pep.raw)
        # A release has two numbers at least: a lone number is a date, a build number or a SHA.
        if len(theirs.release) >= 2 and theirs > mine_pep:
            return False
    return True
