"""What a run looks like while it happens, and the summary afterwards.

Three reporters implement one small protocol:

* ``LiveReporter`` (reporting_live.py, the only module that imports rich): a rich
  live view of every node, for a terminal;
* ``PlainReporter``: one line per state change, for CI logs and pipes;
* ``JsonReporter``: one JSON object per event, for machines.

The executor calls them from its worker threads, so each one serialises its
own output. Reporters see ids, labels, statuses, details and durations - never
commands, environments or task data - so they have nothing secret to leak.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from buildspec.executor import RunResult, Status, Task, TaskResult, tail_of_log
from buildspec.reporting_text import ANSI, STATE_OF, STYLES, counts_line, duration, first_line

LOG_TAIL_LINES = 30

# What rich's Text drops from a string (rich.control.strip_control_codes): BEL, BS, VT, FF, CR.
_CONTROL_CODES = dict.fromkeys((7, 8, 11, 12, 13))
# A log line holding one of these is decoded by rich (Text.from_ansi): escape codes, a CR.
_ANSI_SIGNS = frozenset("\x1b\r\n")



class Reporter(Protocol):
    def started(self, tasks: Sequence[Task]) -> None: ...

    def task_started(self, task_id: str) -> None: ...

    def task_finished(self, result: TaskResult) -> None: ...

    def finished(self, run: RunResult) -> None: ...


def make_reporter(mode: str = "auto", stream: TextIO | None = None) -> Reporter:
    """``auto`` is ``live`` on an interactive terminal outside CI, else ``plain``."""
    stream = sys.stderr if stream is None else stream
    if mode == "auto":
        mode = "live" if _interactive(stream) else "plain"
    if mode == "live":
        from rich.console import Console  # rich only for a terminal: ~25 ms of a run's start

        from buildspec.reporting_live import LiveReporter

        return LiveReporter(Console(file=stream))
    if mode == "plain":
        return PlainReporter(stream)
    if mode == "json":
        return JsonReporter(stream)
    raise ValueError(f"unknown progress mode {mode!r}: expected auto, live, plain or json")


def _interactive(stream: TextIO) -> bool:
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainReporter:
    """``[  3.2s] build:app@linux/arm64  succeeded (12.1s)``, one line per change."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def started(self, tasks: Sequence[Task]) -> None:
        self._start = time.monotonic()

    def task_started(self, task_id: str) -> None:
        self._line(f"{task_id}  started")

    def task_finished(self, result: TaskResult) -> None:
        self._line(f"{result.id}  {_plain_state(result)}")

    def finished(self, run: RunResult) -> None:
        counts = counts_line(STATE_OF[r.status] for r in run.results.values())
        self._line(f"interrupted: {counts}" if run.interrupted else counts)

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self._start
        with self._lock:
            self._stream.write(f"[{elapsed:5.1f}s] {text}\n")
            self._stream.flush()  # a CI log should show progress as it happens


def _plain_state(result: TaskResult) -> str:
    detail = first_line(result.detail)
    if result.status is Status.SUCCEEDED:
        return f"succeeded ({duration(result.duration)})"
    if result.status is Status.FAILED:
        return f"FAILED ({detail})" if detail else f"FAILED ({duration(result.duration)})"
    if result.status is Status.INTERRUPTED:
        return f"interrupted ({duration(result.duration)})"
    return f"not run ({detail})" if detail else "not run"


class JsonReporter:
    """One JSON object per line and event: started, task_started, task_finished, finished."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def started(self, tasks: Sequence[Task]) -> None:
        nodes = [{"id": t.id, "label": t.label, "needs": list(t.needs)} for t in tasks]
        self._emit("started", tasks=nodes)

    def task_started(self, task_id: str) -> None:
        self._emit("task_started", id=task_id)

    def task_finished(self, result: TaskResult) -> None:
        self._emit(
            "task_finished",
            id=result.id,
            status=result.status.value,
            detail=result.detail,
            duration=_seconds(result.duration),
            log=None if result.log_path is None else str(result.log_path),
        )

    def finished(self, run: RunResult) -> None:
        counts = Counter(r.status.value for r in run.results.values())
        self._emit(
            "finished",
            ok=run.ok,
            exit_code=int(run.exit_code),
            interrupted=run.interrupted,
            counts=dict(counts),
        )

    def _emit(self, event: str, **fields: object) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 3), **fields})
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


@dataclass(frozen=True)
class ImageSummary:
    name: str
    repository: str
    platforms: tuple[str, ...]
    tags: tuple[str, ...]
    index_digest: str | None
    platform_digests: Mapping[str, str]
    duration: float | None
    status: str
    build: str | None = None  # built | up to date | retagged (None: no build node ran)
    repositories: tuple[str, ...] = ()  # every repository the index went to (repository first)


def build_counts(images: Sequence[ImageSummary]) -> str:
    """``images: 2 built, 3 up to date, 1 retagged`` (only the images whose builds ran)."""
    counts = Counter(image.build for image in images if image.build)
    if not counts:
        return ""
    parts = [f"{counts[k]} {k}" for k in ("built", "up to date", "retagged")]
    return "images: " + ", ".join(parts)


def print_summary(images: Sequence[ImageSummary], run: RunResult, console_stream: TextIO) -> None:
    """The end of a run: a table of images, then every failure with its log's tail.

    On a terminal the images are a rich table (reporting_live.py); elsewhere plain lines
    that never wrap a digest, so a CI log can be grepped and digests copied. rich decides
    what a terminal is; a stream that is no tty, in an environment without rich's
    overrides (``TTY_COMPATIBLE``, ``FORCE_COLOR``), is none for it, and rich is not even
    imported then: the lines are what rich's ``Text(...).plain`` would give.
    """
    if _maybe_terminal(console_stream):
        from buildspec.reporting_live import print_rich_summary

        if print_rich_summary(images, _outcome_lines(run), build_counts(images), console_stream):
            return
    counts = [build_counts(images)] if build_counts(images) else []
    lines = [*_image_lines(images), *(_plain(text, style) for text, style in _outcome_lines(run)), *counts]
    for line in lines:
        console_stream.write(line.translate(_CONTROL_CODES) + "\n")
    console_stream.flush()


def _maybe_terminal(stream: TextIO) -> bool:
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # rich's answer too: no isatty, or a closed stream
        return False


def _plain(text: str, style: str) -> str:
    """A summary line as rich's ``Text.plain`` gives it (control codes are dropped by the caller)."""
    if style != ANSI:
        return text
    if not _ANSI_SIGNS.intersection(text):
        return "  | " + text
    from rich.text import Text  # a tool's colours: rich decodes them

    return "  | " + Text.from_ansi(text).plain


def _image_lines(images: Sequence[ImageSummary]) -> list[str]:
    lines: list[str] = []
    for image in images:
        build = f"  ({image.build})" if image.build else ""
        lines.append(f"{image.name}  {image.status}{build}  {duration(image.duration)}")
        for repository in image.repositories or (image.repository,):
            lines.append(f"  repository  {repository}")
        lines.append(f"  platforms   {', '.join(image.platforms)}")
        lines.append(f"  tags        {', '.join(image.tags)}")
        lines.append(f"  index       {image.index_digest or '-'}")
        for platform, digest in image.platform_digests.items():
            lines.append(f"  {platform:<11} {digest}")
    return lines


def _outcome_lines(run: RunResult) -> list[tuple[str, str]]:
    """Failures with the tail of their log (styled ANSI), interrupted nodes, then the
    counts: (text, rich style) lines."""
    lines: list[tuple[str, str]] = []
    for result in run.results.values():
        if result.status not in (Status.FAILED, Status.INTERRUPTED):
            continue
        state = STATE_OF[result.status]
        heading = f"{state.upper()} {result.id}" + (f": {first_line(result.detail)}" if result.detail else "")
        lines += [("", ""), (heading, STYLES[state])]
        if result.log_path is not None:
            lines.append((f"  log: {result.log_path}", "dim"))
        if result.status is Status.FAILED:
            lines += [(line, ANSI) for line in tail_of_log(result, LOG_TAIL_LINES)]
    counts = counts_line(STATE_OF[r.status] for r in run.results.values())
    ending = "interrupted" if run.interrupted else ("ok" if run.ok else "failed")
    lines += [("", ""), (f"{ending}: {counts}", "bold")]
    return lines


def summary_json(images: Sequence[ImageSummary], run: RunResult) -> dict[str, object]:
    """The ``--metadata-file`` document."""
    return {
        "version": 1,
        "images": [
            {
                "name": image.name,
                "repository": image.repository,
                "repositories": list(image.repositories or (image.repository,)),
                "tags": list(image.tags),
                "index_digest": image.index_digest,
                "platform_digests": dict(image.platform_digests),
                "duration": _seconds(image.duration),
                "status": image.status,
                "build": image.build,
            }
            for image in images
        ],
        "nodes": [
            {
                "id": result.id,
                "status": result.status.value,
                "duration": _seconds(result.duration),
                "detail": result.detail,
                **({"build": result.data["fresh"], "reasons": list(result.data.get("reasons") or ())}  # type: ignore[call-overload]
                   if "fresh" in result.data else {}),
            }
            for result in run.results.values()
        ],
    }


def _seconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)  # nobody needs nanoseconds
