"""One `buildspec run` of a Buildfile at a time, and nothing left over from a killed one.

* ``run.lock`` in the run's state folder (``.buildspec/`` next to the Buildfile, or
  its folder under ``$XDG_STATE_HOME``) is held with ``flock`` for the whole run. A
  second run of the same Buildfile says so and waits (two CI jobs, two terminals):
  the two would otherwise push the same platform tags at once and write the same
  logs and bake files. The kernel drops the lock when its process dies, even by
  SIGKILL, so a killed run never blocks the next one.
* ``children`` in the same folder lists every process group the run started (with
  its start time, so that a reused pid is never mistaken for one). A run killed
  with SIGKILL cannot stop its builds (each is the leader of its own group, so that
  Ctrl-C stops them as a whole): the next run, once it holds the lock, stops the
  groups still alive (SIGTERM, then SIGKILL), before its own builds push the same
  tags. A run that ends normally leaves the file empty.
* A work folder with less than 4 MiB free stops the run before anything is built
  or pushed, with a message that names the folder (a full disk would otherwise
  fail the first build on its first log line).
* Containers that a run starts (kaniko container mode) carry the label
  ``buildspec.state=<folder id>`` and a name of their own; the next run removes
  those a killed run left (``remove_containers``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from buildspec.errors import BuildspecError

LOCK_FILE = "run.lock"
CHILDREN_FILE = "children"
CONTAINER_LABEL = "buildspec.state"
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a leftover group
MIN_FREE = 4 * 1024 * 1024  # a run writes logs and small files: below this, say so before building


def state_id(state_dir: Path) -> str:
    """A short id of a state folder: the label value of the containers its runs start."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


class Children:
    """The process groups of this run, in ``children`` (``pid start-time`` lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def add(self, pid: int) -> None:
        started = _start_time(pid)
        if started is None:
            return  # already gone
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(f"{pid} {started}\n")

    def clear(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            self.path.write_text("")

    def stop_leftovers(self) -> int:
        """Stop the groups an earlier (killed) run left running; how many there were."""
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except OSError:
            return 0
        alive: list[tuple[int, str]] = []
        for line in lines:
            text, _, since = line.partition(" ")
            if text.isdigit() and since and _start_time(int(text)) == since:
                alive.append((int(text), since))
        for pid, _ in alive:
            _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(_start_time(pid) == started for pid, started in alive) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, started in alive:
            if _start_time(pid) == started:
                _kill_group(pid, signal.SIGKILL)
        self.clear()
        return len(alive)


@contextlib.contextmanager
def run_lock(state_dir: Path, out: TextIO) -> Iterator[Children]:
    """Hold the run lock of ``state_dir`` (waiting for another run), stop what a killed
    run left, and yield the record of this run's children."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        free = shutil.disk_usage(state_dir).free
    except OSError as error:
        raise BuildspecError(f"cannot use the work folder {state_dir}: {error.strerror}") from None
    if free < MIN_FREE:
        os.close(fd)
        raise BuildspecError(
            f"the work folder {state_dir} has {free // 1024} KiB free: logs, digests and bake files go there; "
            f"free at least {MIN_FREE // 1024 // 1024} MiB (or point XDG_STATE_HOME elsewhere when it is under it)")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            out.write(f"buildspec: another run of this Buildfile is running (pid {holder}); "
                      f"waiting for it to finish ({state_dir / LOCK_FILE})\n")
            out.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        children = Children(state_dir / CHILDREN_FILE)
        stopped = children.stop_leftovers()
        if stopped:
            out.write(f"buildspec: stopped {stopped} build process group(s) left running by an earlier, "
                      "killed run of this Buildfile\n")
        try:
            yield children
        finally:
            children.clear()
    finally:
        os.close(fd)  # releases the lock


def remove_containers(state_dir: Path, out: TextIO, docker: str = "docker") -> int:
    """Remove the containers labelled for ``state_dir`` (left by a killed run); how many."""
    if shutil.which(docker) is None:
        return 0
    listed = subprocess.run([docker, "ps", "-aq", "--filter", f"label={CONTAINER_LABEL}={state_id(state_dir)}"],
                            capture_output=True, text=True, timeout=60, check=False)
    ids = listed.stdout.split()
    if listed.returncode != 0 or not ids:
        return 0
    subprocess.run([docker, "rm", "-f", *ids], capture_output=True, timeout=120, check=False)
    out.write(f"buildspec: removed {len(ids)} container(s) left by an earlier, killed run of this Buildfile\n")
    return len(ids)


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), None if no such live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


def _kill_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except OSError as error:
        if error.errno not in (errno.ESRCH, errno.EPERM):
            raise
