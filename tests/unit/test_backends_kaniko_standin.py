"""The kaniko stand-in's command-line contract (nothing here builds anything).

Every case fails before the stand-in would call buildah, as real kaniko fails
in its flag parsing and PersistentPreRunE. Builds, pushes and the digest file
are covered by tests/e2e/test_backends_kaniko.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXECUTOR = Path(__file__).resolve().parents[1] / "kaniko" / "executor"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXECUTOR), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM scratch\n")
    return folder


def test_is_an_executable_python_script() -> None:
    assert EXECUTOR.stat().st_mode & 0o111
    assert EXECUTOR.read_text().startswith("#!/usr/bin/env python3\n")


def test_rejects_an_unknown_flag(context: Path) -> None:
    result = run("--context", str(context), "--no-push", "--bogus-flag", "x")
    assert result.returncode == 1
    assert "Error: unknown flag: --bogus-flag" in result.stderr


def test_rejects_an_unknown_shorthand(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "-x")
    assert result.returncode == 1
    assert "unknown shorthand flag: 'x' in -x" in result.stderr


@pytest.mark.parametrize(
    "flag",
    [
        "--dest",  # an abbreviation of --destination: pflag has none
        "--custom_platform",
        "--platform",  # buildx's spelling, not kaniko's
        "--build-args",
        "--digestfile",  # buildah's spelling
        "--tls-verify",
    ],
)
def test_rejects_other_tools_spellings(context: Path, flag: str) -> None:
    result = run("-c", str(context), "--no-push", f"{flag}=x")
    assert result.returncode == 1
    assert f"unknown flag: {flag}" in result.stderr


def test_requires_destination_unless_no_push(context: Path) -> None:
    result = run("--context", f"dir://{context}")
    assert result.returncode == 1
    assert "you must provide --destination, or use --no-push" in result.stderr


def test_boolean_flags_take_no_separate_value(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--insecure", "true")
    assert result.returncode == 1
    assert 'unknown command "true" for "executor"' in result.stderr


def test_boolean_flags_parse_go_spellings_only(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--cache=yes")
    assert result.returncode == 1
    assert 'invalid argument "yes" for "--cache" flag' in result.stderr


def test_value_flag_needs_a_value(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--custom-platform")
    assert result.returncode == 1
    assert "flag needs an argument: --custom-platform" in result.stderr


def test_push_retry_is_an_integer(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--push-retry", "many")
    assert result.returncode == 1
    assert 'invalid argument "many" for "--push-retry"' in result.stderr


def test_unimplemented_kaniko_flags_are_refused_not_ignored(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--tar-path=/tmp/x.tar")
    assert result.returncode == 1
    assert "kaniko flag --tar-path is not implemented by this stand-in" in result.stderr


def test_cache_with_no_push_needs_cache_repo(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "--cache=true")
    assert result.returncode == 1
    assert "if using cache with --no-push, specify cache repo with --cache-repo" in result.stderr


def test_verbosity_levels(context: Path) -> None:
    result = run("-c", str(context), "--no-push", "-v", "loud")
    assert result.returncode == 1
    assert 'not a valid logrus Level: "loud"' in result.stderr


@pytest.mark.parametrize("context_arg", ["gs://bucket/ctx.tar.gz", "git://github.com/x/y"])
def test_only_dir_contexts(context_arg: str) -> None:
    result = run("--context", context_arg, "--no-push")
    assert result.returncode == 1
    assert "contexts are not implemented by this stand-in" in result.stderr


def test_missing_dockerfile(context: Path, tmp_path: Path) -> None:
    result = run("-c", str(context), "-f", "Nope.Dockerfile", "--no-push", cwd=tmp_path)
    assert result.returncode == 1
    assert "please provide a valid path to a Dockerfile within the build context" in (result.stderr)


@pytest.mark.parametrize("platform", ["linux", "linux/arm64/v8/x"])
def test_invalid_platform(context: Path, platform: str) -> None:
    result = run("-c", str(context), "--no-push", f"--custom-platform={platform}")
    assert result.returncode == 1
    assert f'Invalid platform "{platform}"' in result.stderr


def test_destination_must_be_a_tag(context: Path) -> None:
    result = run("-c", str(context), "-d", "127.0.0.1:5000/app@sha256:" + "a" * 64)
    assert result.returncode == 1
    assert "a digest must not be given in --destination" in result.stderr


def test_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout
