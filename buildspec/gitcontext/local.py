"""The local repository's part of the git context: at most four ``git`` processes at once.

What each command reads is in the package docstring. The processes are started by
``start_local`` and read by ``read_local``, so that a caller can start them early and do
other work meanwhile (load.load_project starts them before parsing: start-up time).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from buildspec.gitcontext.remote import normalize_remote_url

GIT_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Local:
    sha: str | None
    branch: str | None
    tags: tuple[str, ...]
    commit_date: str | None
    dirty: bool
    origin_head: str | None
    remote_url: str | None


_LOG_ARGS = (
    "log",
    "-1",
    "--no-show-signature",
    "--no-color",
    "--decorate=full",
    # Explicit filters override log.excludeDecoration. "HEAD -> refs/heads/X"
    # needs both HEAD and the branch itself among the decorations.
    "--decorate-refs=HEAD",
    "--decorate-refs=refs/heads/",
    "--decorate-refs=refs/tags/",
    "--format=%H%x00%ct%x00%D",
    "HEAD",
    "--",
)
_STATUS_ARGS = ("status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-uno")
_ORIGIN_HEAD_ARGS = ("symbolic-ref", "-q", "refs/remotes/origin/HEAD")
_REMOTE_URL_ARGS = ("ls-remote", "--get-url", "origin")


class StartedGit:
    """The git processes of one read, running; ``results`` waits for them (once)."""

    def __init__(self, cwd: Path | None, commands: dict[str, tuple[str, ...]]) -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._results: dict[str, str | None] | None = None if cwd is not None else {}
        self._commands = commands
        self._deadline = time.monotonic() + GIT_TIMEOUT_SECONDS
        if cwd is None:
            return
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
        for name, args in commands.items():
            try:
                self._procs[name] = subprocess.Popen(
                    ["git", "-C", str(cwd), *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            except OSError:  # git is not installed, or cannot be run
                self.close()
                self._results = dict.fromkeys(commands)
                return

    def results(self) -> dict[str, str | None]:
        """Each command's stdout, or None if it failed or did not answer in time; {} without a folder."""
        if self._results is None:
            results: dict[str, str | None] = dict.fromkeys(self._commands)
            try:
                for name, proc in self._procs.items():
                    try:
                        stdout, _ = proc.communicate(timeout=max(0.0, self._deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        continue
                    if proc.returncode == 0:
                        results[name] = stdout.decode("utf-8", errors="replace")
            finally:
                self.close()
            self._results = results
        return self._results

    def close(self) -> None:
        """Stop what still runs (a read that is not needed after all, or timed out)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs = {}


def start_local(path: Path, *, want_origin_head: bool, want_remote_url: bool) -> StartedGit:
    """Start the git processes that read the repository at or above ``path``."""
    if path.is_dir():
        cwd: Path | None = path
    elif path.exists():  # a file, such as the Buildfile itself
        cwd = path.parent
    else:
        cwd = None
    commands: dict[str, tuple[str, ...]] = {"log": _LOG_ARGS, "status": _STATUS_ARGS}
    if want_origin_head:
        commands["origin_head"] = _ORIGIN_HEAD_ARGS
    if want_remote_url:
        commands["remote_url"] = _REMOTE_URL_ARGS
    return StartedGit(cwd, commands)


def read_local(started: StartedGit) -> Local | None:
    """What the started processes found; None without a repository (or git)."""
    out = started.results()
    log, status = out.get("log"), out.get("status")
    if log is None and status is None:
        return None  # not a repository (or no git, or git refused it)

    sha = branch = commit_date = None
    tags: list[str] = []
    if log is not None:
        fields = log.rstrip("\n").split("\0")
        if len(fields) == 3:
            sha = fields[0] or None
            commit_date = _timestamp_to_iso(fields[1])
            for item in fields[2].split(", "):
                if item.startswith("HEAD -> refs/heads/"):
                    branch = item.removeprefix("HEAD -> refs/heads/")
                elif item.startswith("tag: refs/tags/"):
                    tags.append(item.removeprefix("tag: refs/tags/"))

    dirty = False
    if status is not None:  # None in a bare repository
        for line in status.splitlines():
            if line.startswith("# branch.head "):
                # Also right for an unborn branch, where `git log` fails.
                head = line.removeprefix("# branch.head ")
                branch = None if head == "(detached)" else head
            elif line.strip() and not line.startswith("#"):
                dirty = True

    origin_head = None
    if (target := out.get("origin_head")) is not None:
        origin_head = target.strip().removeprefix("refs/remotes/origin/") or None
    remote_url = None
    if (url := out.get("remote_url")) is not None:
        remote_url = normalize_remote_url(url)
    return Local(
        sha=sha,
        branch=branch,
        tags=tuple(sorted(tags)),
        commit_date=commit_date,
        dirty=dirty,
        origin_head=origin_head,
        remote_url=remote_url,
    )


def _timestamp_to_iso(seconds: str) -> str | None:
    try:
        when = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
