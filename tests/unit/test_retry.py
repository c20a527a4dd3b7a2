"""buildspec/retry.py: which build failures are run again, and how often."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from buildspec.executor import Outcome, TaskContext
from buildspec.retry import retrying, transient_error

BUILDKIT_503 = ('ERROR: failed to solve: failed to push 127.0.0.1:5000/a:1: failed commit on ref "manifest-sha256:ab": '
                "unexpected status from PUT request to http://127.0.0.1:5000/v2/a/manifests/1: 503 Service Unavailable")
BUILDKIT_400 = ("ERROR: failed to solve: failed to push r/a:1: failed commit on ref \"m\": unexpected status from PUT "
                "request to http://r/v2/a/manifests/1: 400 Bad Request")
BUILDAH_502 = ('Error: pushing image "r/a:1": writing manifest: uploading manifest 1 to r/a: received unexpected HTTP '
               "status: 502 Bad Gateway")
KANIKO_BLOB = "error pushing image: failed to push to destination r/a:1: BLOB_UNKNOWN: blob unknown to registry"
RESET = "error: failed to copy: read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer"


@pytest.mark.parametrize("line", [BUILDKIT_503, BUILDKIT_400, BUILDAH_502, KANIKO_BLOB, RESET])
def test_transient_registry_errors_are_recognised(tmp_path: Path, line: str) -> None:
    log = tmp_path / "log"
    log.write_text(f"#5 RUN make\n#5 DONE 1.0s\n{line}\n")
    assert transient_error(log, 0) == line


@pytest.mark.parametrize("line", [
    'ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2',
    "ERROR: failed to solve: failed to push r/a:1: unexpected status: 401 Unauthorized",
    "Error: pushing image: requested access to the resource is denied",
    "COPY failed: file not found in build context",
])
def test_other_failures_are_not(tmp_path: Path, line: str) -> None:
    log = tmp_path / "log"
    log.write_text(f"#5 RUN make\n{line}\n")
    assert transient_error(log, 0) is None


def test_only_the_attempts_own_output_counts(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text(BUILDKIT_503 + "\n")
    since = log.stat().st_size
    with log.open("a") as file:
        file.write("exit code: 2\n")
    assert transient_error(log, since) is None


class _Ctx:
    """What retrying uses of a TaskContext: the log and the cancellation flag."""

    def __init__(self, log: Path) -> None:
        self.log_path = log
        self.cancelled = threading.Event()

    def log(self, line: str) -> None:
        with self.log_path.open("a") as file:
            file.write(line + "\n")


def _builds(ctx: _Ctx, outputs: list[str]) -> list[int]:
    """An action that prints the next output and fails, or succeeds when none is left."""
    calls: list[int] = []

    def action(_: TaskContext) -> Outcome:
        calls.append(1)
        if len(calls) <= len(outputs):
            ctx.log(outputs[len(calls) - 1])
            return Outcome(False, "exit 1")
        return Outcome(True, "sha256:ok", {"digests": {}})

    return calls, action  # type: ignore[return-value]


def test_a_transient_failure_is_built_again_and_counted(tmp_path: Path) -> None:
    ctx = _Ctx(tmp_path / "log")
    calls, action = _builds(ctx, [BUILDKIT_503])  # type: ignore[misc]
    outcome = retrying(action, 1)(ctx)  # type: ignore[arg-type]
    assert outcome.ok and outcome.data == {"digests": {}, "retries": 1} and len(calls) == 2
    assert "transient registry error, building again (retry 1 of 1)" in ctx.log_path.read_text()


def test_retries_stop_at_the_limit_and_at_a_non_transient_failure(tmp_path: Path) -> None:
    ctx = _Ctx(tmp_path / "log")
    calls, action = _builds(ctx, [BUILDKIT_503] * 5)  # type: ignore[misc]
    outcome = retrying(action, 2)(ctx)  # type: ignore[arg-type]
    assert not outcome.ok and outcome.data["retries"] == 2 and len(calls) == 3
    ctx = _Ctx(tmp_path / "log2")
    calls, action = _builds(ctx, [BUILDKIT_503, "exit code: 2"])  # type: ignore[misc]
    outcome = retrying(action, 5)(ctx)  # type: ignore[arg-type]
    assert not outcome.ok and outcome.data["retries"] == 1 and len(calls) == 2
    ctx = _Ctx(tmp_path / "log3")
    calls, action = _builds(ctx, [BUILDKIT_503])  # type: ignore[misc]
    assert not retrying(action, 0)(ctx).ok and len(calls) == 1  # type: ignore[arg-type]
