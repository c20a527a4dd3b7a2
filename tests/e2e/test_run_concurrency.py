"""Two runs of one Buildfile at once, and a rerun after `kill -9` (buildspec/lock.py).

fixtures/slow (`RUN sleep 30` on two platforms, a new nonce per test so the step
is never cached) gives the time to act while builds run:

* a second `buildspec run` of the same Buildfile says that another run holds it and
  waits; both succeed, and the second finds the release in place (same index,
  its tags "unchanged"): nothing corrupted;
* `kill -9` of buildspec leaves its builds running (each is its own process group,
  so that Ctrl-C can stop it whole, see test_run_signals.py); the rerun stops them
  before building, says so, and succeeds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from runner import copy_fixture, manifest_digest, run_cli, start_cli, tags_of
from test_run_signals import STARTUP_TIMEOUT, _alive, _descendants, _wait_until

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration


def _args(env: Env, repo: str, nonce: str, pause: int = 30) -> list[str]:
    """``pause``: the seconds of the RUN step's sleep (the fixture's default is 30)."""
    return ["run", "--no-merge", "--set", f"registry={repo}", "--set", f"busybox={env.base_image}",
            "--set", f"nonce={nonce}", "--set", f"pause={pause}"]


# The first run's RUN step sleeps this long once both platforms print: ample time for a
# second process to start and meet the lock, without waiting the fixture's full 30 s.
HOLD = 15


def _sleeping(state_home: Path, nonce: str, count: int) -> Callable[[], bool]:
    printed = re.compile(rf"^#\d+ [\d.]+ sleeping-{nonce}$", re.M)

    def check() -> bool:
        texts = [log.read_text(errors="replace") for log in state_home.glob("buildspec/*/logs/build-slow@*.log")]
        return sum(len(printed.findall(text)) for text in texts) >= count

    return check


def test_a_second_run_of_the_same_buildfile_waits_and_nothing_is_corrupted(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_fixture("slow", tmp_path)
    nonce = uuid.uuid4().hex
    variables = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    with (tmp_path / "a.out").open("wb") as out, (tmp_path / "a.err").open("wb") as err:
        first = start_cli([*_args(env, unique_repo, nonce, HOLD), "--metadata-file", str(tmp_path / "a.json")],
                          cwd=project, env=variables, stdout=out, stderr=err)
    try:
        assert _wait_until(_sleeping(tmp_path / "state", nonce, 2), STARTUP_TIMEOUT), (tmp_path / "a.err").read_text()
        second = run_cli([*_args(env, unique_repo, nonce, HOLD), "--metadata-file", str(tmp_path / "b.json")],
                         cwd=project, env=variables)
        assert first.wait(timeout=120) == 0, (tmp_path / "a.err").read_text()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert second.code == 0, second
    assert f"another run of this Buildfile is running (pid {first.pid}); waiting" in second.stderr, second
    repository = f"{unique_repo}/slow"
    digest = manifest_digest(f"{repository}:1.0.0")
    assert manifest_digest(f"{repository}:latest") == digest
    a, b = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert a["images"][0]["index_digest"] == b["images"][0]["index_digest"] == digest
    assert {t["state"] for t in a["publish"]["tags"]} == {"pushed"}
    assert {t["state"] for t in b["publish"]["tags"]} == {"unchanged"}  # the second found it all in place


def test_after_kill_9_the_rerun_stops_the_leftover_builds_and_succeeds(
    env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_fixture("slow", tmp_path)
    nonce = uuid.uuid4().hex
    variables = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    with (tmp_path / "a.out").open("wb") as out, (tmp_path / "a.err").open("wb") as err:
        killed = start_cli(_args(env, unique_repo, nonce), cwd=project, env=variables, stdout=out, stderr=err)
    children = {}
    try:
        assert _wait_until(_sleeping(tmp_path / "state", nonce, 2), STARTUP_TIMEOUT), (tmp_path / "a.err").read_text()
        children = {p: cmd for p, cmd in _descendants(killed.pid).items()
                    if cmd.split()[:3] == ["docker", "buildx", "build"]}
        assert len(children) == 2, children
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        time.sleep(1)
        assert all(map(_alive, children)), "the builds died with buildspec: nothing to clean up"

        # a new step that only has to succeed: a 1 s sleep (the killed run's builds sleep 30 s)
        rerun = run_cli(_args(env, unique_repo, uuid.uuid4().hex, 1), cwd=project, env=variables)
        assert not any(map(_alive, children)), f"left running: {children}"
        assert rerun.code == 0, rerun
        assert "stopped 2 build process group(s) left running by an earlier, killed run" in rerun.stderr, rerun
        assert {"1.0.0", "latest"} <= set(tags_of(f"{unique_repo}/slow"))
    finally:
        for pid, started in children:
            if _alive((pid, started)):
                os.killpg(pid, signal.SIGKILL)
