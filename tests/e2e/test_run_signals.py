"""Ctrl-C in the middle of `buildspec run` (fixtures/slow: `RUN ... sleep 30`).

buildspec is started in a session of its own, as a terminal would start it, and
gets SIGINT once both per-platform builds are inside their RUN step. It must stop
the run: exit 130 well before the sleep would have ended, push no tag, and leave
no process behind: neither a child it started (docker buildx build) nor the RUN
step's processes that the builds started in BuildKit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from runner import copy_fixture, start_cli, tags_of

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo, require_tools

pytestmark = pytest.mark.integration

PLATFORMS = ("linux/amd64", "linux/arm64")
STARTUP_TIMEOUT = 180.0  # until both RUN steps print (a cold, loaded machine is slow)
EXIT_TIMEOUT = 15.0  # from SIGINT to exit: buildspec waits 10 s before SIGKILL
GRACE = 10.0  # for processes to disappear once buildspec has exited

Process = tuple[int, str]  # (pid, start time in clock ticks): a pid may be reused


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may contain spaces; it is the text in parentheses
    return text[text.rindex(")") + 2 :].split()  # fields 3.. (state is index 0)


def _alive(process: Process) -> bool:
    pid, started = process
    fields = _stat(pid)
    # a zombie has exited: its parent just did not reap it yet
    return fields is not None and fields[19] == started and fields[0] != "Z"


def _descendants(pid: int) -> dict[Process, str]:
    """Every living descendant of ``pid``, with its command line."""
    found: dict[Process, str] = {}
    stack = [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in map(int, children):
                fields = _stat(child)
                if fields is None:
                    continue
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                found[(child, fields[19])] = cmdline.replace(b"\0", b" ").decode(errors="replace")
                stack.append(child)
    return found


def _with_environment(entry: str) -> dict[Process, str]:
    """Processes whose environment holds ``entry``: the RUN step's, wherever they run."""
    found: dict[Process, str] = {}
    needle = entry.encode() + b"\0"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes() + b"\0"
            cmdline = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = _stat(int(proc.name))
        if fields is not None and needle in environ:
            found[(int(proc.name), fields[19])] = cmdline.replace(b"\0", b" ").decode()
    return found


def _wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_sigint_stops_the_run_and_leaves_nothing_behind(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_fixture("slow", tmp_path)
    nonce = uuid.uuid4().hex  # a new RUN step: never a cache hit
    # context "." holds the Buildfile's folder, so buildspec keeps its logs under
    # $XDG_STATE_HOME (never inside a build context): point that at the test's folder.
    state_home = tmp_path / "state"
    logs_glob = "buildspec/*/logs/build-slow@*.log"
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    children: dict[Process, str] = {}
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = start_cli(
            [
                "run",
                "--set", f"registry={unique_repo}",
                "--set", f"busybox={env.base_image}",
                "--set", f"nonce={nonce}",
                "--no-merge",  # two builds running at once: both must be stopped
            ],
            cwd=project,
            env={**os.environ, "XDG_STATE_HOME": str(state_home)},
            stdout=out,
            stderr=err,
        )
    try:
        # BuildKit prints the step's output as `#N 0.123 sleeping-<nonce>`
        printed = re.compile(rf"^#\d+ [\d.]+ sleeping-{nonce}$", re.M)

        def both_sleeping() -> bool:
            if process.poll() is not None:
                return True  # it ended early: the asserts below say why
            # One log per platform, or one for a merged build of both: each platform's RUN prints.
            texts = [log.read_text(errors="replace") for log in state_home.glob(logs_glob)]
            return sum(len(printed.findall(text)) for text in texts) >= len(PLATFORMS)

        assert _wait_until(both_sleeping, STARTUP_TIMEOUT), (
            f"the builds did not reach their RUN step:\n{err_path.read_text()}"
        )
        assert process.poll() is None, f"the run ended by itself:\n{err_path.read_text()}"

        children = _descendants(process.pid)
        # `docker buildx build` (each runs the docker-buildx plugin as its own child)
        builds = [cmd for cmd in children.values() if cmd.split()[:3] == ["docker", "buildx", "build"]]
        assert len(builds) == len(PLATFORMS), f"expected one buildx per platform: {children}"
        run_steps = _with_environment(f"NONCE={nonce}")
        assert run_steps, "no RUN step process found"

        os.kill(process.pid, signal.SIGINT)
        signalled = time.monotonic()
        try:
            code = process.wait(timeout=EXIT_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - signalled

        stderr = err_path.read_text(errors="replace")
        print(f"exit {code} {elapsed:.1f}s after SIGINT; {len(children)} descendants, "
              f"{len(run_steps)} RUN step processes: {sorted(run_steps.values())}")
        assert code == 130, f"exit {code} after SIGINT\n{stderr}"
        assert elapsed < EXIT_TIMEOUT, f"took {elapsed:.1f}s to stop after SIGINT\n{stderr}"
        for platform in PLATFORMS:  # the builds that were running say so
            assert re.search(rf"^\[[ \d.]+s\] build:slow@{platform}  interrupted\b", stderr, re.M), stderr
        assert re.search(r"^interrupted: ", stderr, re.M), stderr
        assert out_path.read_text() == "", "an interrupted run printed published references"

        # nothing of ours is left: the children buildspec started, and the RUN steps
        _wait_until(lambda: not any(map(_alive, [*children, *run_steps])), GRACE)
        left = {p: cmd for p, cmd in children.items() if _alive(p)}
        assert not left, f"children still alive {GRACE}s after buildspec exited: {left}"
        steps_left = {p: cmd for p, cmd in run_steps.items() if _alive(p)}
        assert not steps_left, f"RUN step processes still alive: {steps_left}"
    finally:
        # whatever a failed assert left running: buildspec's group, then its children
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid, started in children:
            if _alive((pid, started)):
                os.kill(pid, signal.SIGKILL)

    tags = tags_of(f"{unique_repo}/slow")
    assert not {"1.0.0", "latest"} & set(tags), f"an interrupted run pushed tags: {tags}"
