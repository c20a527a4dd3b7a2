"""Run the ``buildspec`` CLI as a user does: a separate process, a working folder, an env.

The end-to-end tests of ``buildspec run`` never import buildspec: they start
``python -m buildspec`` with the interpreter running pytest (the project's venv),
so what they see is what a user sees: an exit code, stdout, stderr and the files
the run leaves. What a run pushed is read back with skopeo (tests/oci_reader.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import oci_reader  # tests/, on sys.path through tests/conftest.py

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = REPO_ROOT / "examples"

# A whole run of a small Buildfile takes seconds; this only stops a hung test.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class CliResult:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    duration: float  # seconds

    def __str__(self) -> str:  # what a failing assert shows
        return (
            f"$ buildspec {' '.join(self.argv)}\n-> exit {self.code} after {self.duration:.1f}s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def cli_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "buildspec", *args]


def cli_env(env: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: ours (or ``env``), never a terminal, plus ``extra``.

    ``CI`` keeps the reporter plain whatever pytest's own streams are; the
    project root on ``PYTHONPATH`` makes ``-m buildspec`` work from any folder.
    """
    result = dict(os.environ if env is None else env)
    result["CI"] = "true"
    result["PYTHONUNBUFFERED"] = "1"
    result.pop("TERM", None)
    path = result.get("PYTHONPATH")
    result["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    result.update(extra)
    return result


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CliResult:
    """Run ``buildspec ARGS`` in ``cwd`` and wait for it."""
    start = time.monotonic()
    done = subprocess.run(
        cli_argv(args),
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(tuple(args), done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def start_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    stdout: IO[bytes],
    stderr: IO[bytes],
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``buildspec ARGS`` in a session of its own (so a signal reaches only it)."""
    return subprocess.Popen(
        cli_argv(args),
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def copy_tree(source: Path, destination: Path) -> Path:
    """A private copy of a fixture or example, without state a previous run left."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".buildspec"))
    return destination


def copy_fixture(name: str, destination: Path) -> Path:
    return copy_tree(FIXTURES / name, destination / name)


def copy_example(name: str, destination: Path) -> Path:
    return copy_tree(EXAMPLES / name, destination / name)


# ---------------------------------------------------------------------------------------
# Reading the registry back, with skopeo (tests/oci_reader.py), never with buildspec.

UNAME = {"amd64": "x86_64", "arm64": "aarch64"}


def unique_prefix(registry: str, name: str) -> str:
    """``registry/t/<name>-<random>``: a repository prefix no other test uses.

    For module-scoped fixtures, which cannot use the function-scoped ``unique_repo``.
    """
    return f"{registry}/t/{name}-{uuid.uuid4().hex[:12]}"


def manifest_digest(ref: str, *, creds: str | None = None) -> str:
    """The digest of the manifest ``ref`` names: sha256 of the bytes skopeo reads."""
    raw = oci_reader.skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}", creds=creds)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


BOOKKEEPING = ("buildspec-key-", "buildspec-last-")  # input-key records (buildspec/uptodate/records.py)


def tags_of(repository: str, *, creds: str | None = None, bookkeeping: bool = False) -> list[str]:
    """Sorted tags of ``repository``; none when the registry does not know it (404).

    Without ``bookkeeping``, the input-key records' tags are left out (bookkeeping_tags)."""
    try:
        found = oci_reader.tags(repository, creds=creds)
    except oci_reader.SkopeoError as error:
        if "404" in str(error):
            return []
        raise
    return found if bookkeeping else [t for t in found if not t.startswith(BOOKKEEPING)]


def bookkeeping_tags(repository: str, *, creds: str | None = None) -> dict[str, list[str]]:
    """``{"buildspec-key-": [...], "buildspec-last-": [...]}``: the input-key records' tags."""
    found = tags_of(repository, creds=creds, bookkeeping=True)
    return {prefix: [t for t in found if t.startswith(prefix)] for prefix in BOOKKEEPING}


def secrets_in_files(folder: Path, secrets: Sequence[str]) -> list[str]:
    """``path: xx...`` for every file under ``folder`` that contains one of ``secrets``."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {s[:2]}..." for s in secrets if s.encode() in data]
    return found
