"""Fixtures shared by the language tests: a fixed environment and golden files.

``BUILDSPEC_UPDATE_GOLDEN=1 pytest tests/unit`` rewrites every golden file the
tests compare with (``tests/bad/*/expected.txt``, ``tests/golden/*``) instead
of failing; review the diff before committing it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UPDATE_GOLDEN = os.environ.get("BUILDSPEC_UPDATE_GOLDEN") == "1"

# 2026-01-02T03:04:05Z: {date} and everything derived from it is reproducible.
SOURCE_DATE_EPOCH = "1767323045"

# Variables that the CI detection, git or the example Buildfiles read.
_CLEARED_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "GIT_")
_CLEARED = (
    "CI", "REGISTRY", "VERSION", "BUSYBOX_IMAGE", "PYTHON_IMAGE",
    # rich: the plan's width and colours
    "COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
)


def fixed_environ(tmp: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` without CI, git or Buildfile variables, and with git pointed at nothing.

    ``GIT_DIR`` at a folder that does not exist makes every git command fail, so the
    git context is "none" whatever repository the tests run in.
    """
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_CLEARED_PREFIXES) and k not in _CLEARED
    }
    environ.update(
        GIT_DIR=str(tmp / "no-git-here"),
        GIT_CEILING_DIRECTORIES=str(tmp),
        SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH,
        TZ="UTC",
        COLUMNS="160",  # plan's text output is at least 160 wide when piped; never wider
    )
    environ.update(extra)
    return environ


def use_fixed_environ(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> dict[str, str]:
    """Make :func:`fixed_environ` ``os.environ`` until ``monkeypatch`` is undone."""
    environ = fixed_environ(tmp)
    for key in list(os.environ):
        if key not in environ:
            monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return environ


@pytest.fixture
def buildspec_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Run with :func:`fixed_environ` as ``os.environ`` (``cli.main`` reads os.environ)."""
    yield use_fixed_environ(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def module_buildspec_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """:func:`buildspec_env` for a module-scoped fixture (one environment for the whole module)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield use_fixed_environ(monkeypatch, tmp_path_factory.mktemp("environ"))


@pytest.fixture
def golden() -> Callable[[Path, str], None]:
    """``golden(path, actual)``: compare with the file, or rewrite it under BUILDSPEC_UPDATE_GOLDEN=1."""

    def check(path: Path, actual: str) -> None:
        if UPDATE_GOLDEN:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != actual:
                path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing; run with BUILDSPEC_UPDATE_GOLDEN=1 to create it"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"output differs from {path.relative_to(REPO)}"

    return check


@pytest.fixture(autouse=True)
def classic_buildx_push(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """buildx argv as on a daemon without the containerd image store (``--push``): whether
    BuildKit pushes by itself is a question for this machine's daemon
    (select.buildkit_pushes_itself), and a unit test's argv must not depend on it. Tests
    marked ``real_buildkit_probe`` get the probe itself."""
    if "real_buildkit_probe" in request.keywords:
        return
    from buildspec.backends import select

    monkeypatch.setattr(select, "buildkit_pushes_itself", functools.cache(lambda: False))
