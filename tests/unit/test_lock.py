"""buildspec/lock.py: one run of a Buildfile at a time; what a killed run left is stopped."""

from __future__ import annotations

import io
import subprocess
import threading
from pathlib import Path

import pytest

from buildspec.errors import BuildspecError
from buildspec.lock import CHILDREN_FILE, Children, run_lock


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_a_recorded_group_still_running_is_stopped_by_the_next_run(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        Children(tmp_path / CHILDREN_FILE).add(child.pid)  # the killed run recorded it
        out = io.StringIO()
        with run_lock(tmp_path, out):
            assert child.wait(timeout=10) is not None
        assert "stopped 1 build process group(s) left running" in out.getvalue()
        assert (tmp_path / CHILDREN_FILE).read_text() == ""
    finally:
        child.kill()


def test_a_reused_pid_is_never_killed(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        (tmp_path / CHILDREN_FILE).write_text(f"{child.pid} 1\n")  # another start time: not ours
        assert Children(tmp_path / CHILDREN_FILE).stop_leftovers() == 0
        assert child.poll() is None
    finally:
        child.kill()


def test_a_second_run_waits_for_the_first_and_says_so(tmp_path: Path) -> None:
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def first() -> None:
        with run_lock(tmp_path, io.StringIO()):
            order.append("first in")
            first_in.set()
            release.wait(10)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    out = io.StringIO()
    timer = threading.Timer(0.5, release.set)
    timer.start()
    with run_lock(tmp_path, out):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]
    assert "another run of this Buildfile is running" in out.getvalue()


def test_a_full_work_folder_is_refused_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr("buildspec.lock.shutil.disk_usage", lambda _: usage._replace(free=1024))
    with pytest.raises(BuildspecError, match=r"the work folder .* has 1 KiB free"), run_lock(tmp_path, io.StringIO()):
        pass
