"""Retrying a build that failed on a transient registry error.

A build pushes its image from inside BuildKit, buildah or kaniko, where
buildspec's own registry client (and its retries) cannot help. BuildKit retries
a push a few times itself, but gives up after about 8 s of 5xx, and a registry
2.8 "blob unknown" race during a manifest PUT fails at once. So when a build
fails and the last lines of *its own* output (this attempt's, not an earlier
one's) end in such an error, the build is run again, ``build_retries`` times
(``run --build-retries N``, default 1): the layer cache is warm, so a retry
costs the push, not the build. The node's log keeps every attempt, and the
summary counts the retries.

A failure whose output names no transient registry error (a RUN step exiting
1, a missing file, a refused login) is never retried.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from buildspec.executor import Outcome, TaskContext

DEFAULT_BUILD_RETRIES = 1
LAST_LINES = 25  # how much of an attempt's output is examined

# What BuildKit (containerd's pusher), buildah/skopeo (containers/image) and kaniko
# (go-containerregistry) print for registry failures that a second attempt may not meet.
TRANSIENT = re.compile(
    "|".join((
        r"\b(?:429 Too Many Requests|500 Internal Server Error|502 Bad Gateway|503 Service Unavailable"
        r"|504 Gateway Timeout)\b",
        r"\bunexpected status(?: code)?:? (?:429|500|502|503|504)\b",
        r"\b(?:toomanyrequests|TOOMANYREQUESTS)\b",
        r"blob unknown to registry|\bBLOB_UNKNOWN\b|\bMANIFEST_BLOB_UNKNOWN\b|\bBLOB_UPLOAD_UNKNOWN\b",
        # BuildKit reports registry 2.8's "blob unknown" race on a manifest PUT as only this:
        r"unexpected status from PUT request to \S+/manifests/\S+: 400 Bad Request",
        r"connection reset by peer|broken pipe|i/o timeout|TLS handshake timeout|unexpected EOF"
        r"|server sent GOAWAY|connection refused",
    )),
    re.IGNORECASE,
)


def transient_error(log: Path, since: int) -> str | None:
    """The last line in the log after byte ``since`` that names a transient registry error."""
    try:
        with log.open("rb") as file:
            file.seek(since)
            lines = file.read().decode("utf-8", "replace").splitlines()[-LAST_LINES:]
    except OSError:
        return None
    found = [line for line in lines if TRANSIENT.search(line)]
    return found[-1].strip() if found else None


def retrying(action: Callable[[TaskContext], Outcome], retries: int) -> Callable[[TaskContext], Outcome]:
    """``action``, run again up to ``retries`` times while it fails on a transient registry error.

    The outcome's data gets ``retries``: how many times it was run again.
    """

    def run(ctx: TaskContext) -> Outcome:
        attempt = 0
        while True:
            since = _size(ctx.log_path)
            outcome = action(ctx)
            if outcome.ok or attempt >= retries or ctx.cancelled.is_set():
                break
            cause = transient_error(ctx.log_path, since)
            if cause is None:
                break
            attempt += 1
            ctx.log(f"buildspec: transient registry error, building again (retry {attempt} of {retries}): {cause}")
        if attempt:
            return Outcome(outcome.ok, outcome.detail, {**outcome.data, "retries": attempt})
        return outcome

    return run


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
