"""What a running task can do (``TaskContext``): start children in process groups of
their own, write its log, read its dependencies' results. The scheduler is executor.py;
the module docstring there says why every child leads its own process group."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

from buildspec.tasks import TaskResult


class Cancelled(Exception):
    """Raised by ``TaskContext.run`` once the run is being interrupted."""


class TaskContext:
    """What an action gets: a log, a way to run children, its dependencies' results."""

    def __init__(
        self,
        task_id: str,
        log_path: Path,
        cancelled: threading.Event,
        children: ProcessGroups,
        dependency_result: Callable[[str], TaskResult],
    ) -> None:
        self.task_id = task_id
        self.log_path = log_path
        self.cancelled = cancelled
        self._children = children
        self._dependency_result = dependency_result

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        """Run ``argv`` (never through a shell) with its output appended to the log.

        Returns the exit status, negative when a signal killed the child (as
        ``subprocess`` does). ``env`` replaces the environment, as in
        ``subprocess``: pass ``{**os.environ, ...}`` to extend it. Once the run is
        interrupted no child is started: the action is stopped with an exception
        the executor turns into INTERRUPTED.
        """
        argv = list(argv)
        where = f"  (in {cwd})" if cwd is not None else ""
        self.log(f"$ {shlex.join(argv)}{where}")
        with self.log_path.open("ab") as log:
            try:
                child = self._children.start(argv, stdout=log, env=env, cwd=cwd)
            except Cancelled:
                log.write(b"not started: the run is being interrupted\n")
                raise
            except OSError as exc:
                log.write(f"cannot start {argv[0]}: {exc}\n".encode())
                raise
        return self._children.wait(child)

    def log(self, line: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(line.rstrip("\n") + "\n")

    def results_of(self, task_id: str) -> TaskResult:
        """The result of a task this one needs (directly or not); KeyError otherwise."""
        return self._dependency_result(task_id)


class ProcessGroups:
    """The children of running tasks, each the leader of its own process group.

    One lock covers "is the run cancelled?", starting a child and signalling the
    groups, so no child can start after the groups were told to terminate.
    """

    def __init__(self, cancelled: threading.Event) -> None:
        self._cancelled = cancelled
        self._lock = threading.Lock()
        self._leaders: set[int] = set()
        self.on_child: Callable[[int], None] | None = None

    def start(
        self,
        argv: list[str],
        *,
        stdout: IO[bytes],
        env: Mapping[str, str] | None,
        cwd: Path | None,
    ) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._cancelled.is_set():
                raise Cancelled(f"not starting {argv[0]}: the run is being interrupted")
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            self._leaders.add(child.pid)
            if self.on_child is not None:
                self.on_child(child.pid)
        return child

    def wait(self, child: subprocess.Popen[bytes]) -> int:
        # Wait without reaping: while the exited leader is a zombie its pid still
        # names the group, so killing the group's leftovers cannot hit a stranger.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._leaders.discard(child.pid)
            _signal_group(child.pid, signal.SIGKILL)
        return child.wait()

    def signal_all(self, signum: signal.Signals) -> None:
        with self._lock:
            for leader in self._leaders:
                _signal_group(leader, signum)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pgid, signum)


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._@+=-]")
_MAX_NAME = 200  # file systems allow 255 bytes; leave room for "-2.log"


def log_file_name(task_id: str) -> str:
    """A readable file name (no extension) for a task's log.

    ``/`` and ``:`` become ``-``, ``@`` stays (it is safe everywhere), anything
    else unusual becomes ``_``: ``build:app@linux/arm64`` -> ``build-app@linux-arm64``.
    ``execute`` adds ``-2``, ``-3``... should two ids of one run map to one name.
    """
    name = _UNSAFE_CHARS.sub("_", task_id.replace("/", "-").replace(":", "-"))
    name = name.lstrip(".") or "task"  # never hidden, never "." or ".."
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(task_id.encode()).hexdigest()[:12]
        name = f"{name[: _MAX_NAME - 13]}-{digest}"
    return name


def tail_of_log(result: TaskResult, n: int = 30) -> list[str]:
    """The last ``n`` lines of a task's log (none if it has no log)."""
    if result.log_path is None:
        return []
    try:
        with result.log_path.open(encoding="utf-8", errors="replace") as log:
            return [line.rstrip("\n") for line in deque(log, maxlen=n)]
    except FileNotFoundError:
        return []
