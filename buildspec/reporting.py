"""What a run looks like while it happens, and the summary afterwards.

The only module that imports rich. Three reporters implement one small protocol:

* ``LiveReporter``: a rich live view of every node, for a terminal;
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from buildspec.executor import RunResult, Status, Task, TaskResult, tail_of_log

LOG_TAIL_LINES = 30

# The order counts are listed in, and how each state looks.
_STATES = ("succeeded", "running", "failed", "interrupted", "not run", "waiting")
_STYLES = {
    "succeeded": "green",
    "running": "cyan",
    "failed": "bold red",
    "interrupted": "yellow",
    "not run": "dim",
    "waiting": "dim",
}
_SYMBOLS = {"succeeded": "✓", "failed": "✗", "interrupted": "!", "not run": "-", "waiting": "·"}
_STATE_OF = {
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.INTERRUPTED: "interrupted",
    Status.NOT_RUN: "not run",
}


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
        counts = _counts(_STATE_OF[r.status] for r in run.results.values())
        self._line(f"interrupted: {counts}" if run.interrupted else counts)

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self._start
        with self._lock:
            self._stream.write(f"[{elapsed:5.1f}s] {text}\n")
            self._stream.flush()  # a CI log should show progress as it happens


def _plain_state(result: TaskResult) -> str:
    detail = _first_line(result.detail)
    if result.status is Status.SUCCEEDED:
        return f"succeeded ({_duration(result.duration)})"
    if result.status is Status.FAILED:
        return f"FAILED ({detail})" if detail else f"FAILED ({_duration(result.duration)})"
    if result.status is Status.INTERRUPTED:
        return f"interrupted ({_duration(result.duration)})"
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


class LiveReporter:
    """A rich live view: a count line, then every node with its state and time."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 6) -> None:
        self._console = Console(stderr=True) if console is None else console
        self._refresh_per_second = refresh_per_second
        self._lock = threading.Lock()  # the refresh thread renders while workers report
        self._tasks: list[Task] = []
        self._started: dict[str, float] = {}
        self._spinners: dict[str, Spinner] = {}  # kept, or each frame would restart them
        self._results: dict[str, TaskResult] = {}
        self._live: Live | None = None

    def started(self, tasks: Sequence[Task]) -> None:
        with self._lock:
            self._tasks = list(tasks)
        self._live = Live(
            get_renderable=self._render,
            console=self._console,
            refresh_per_second=self._refresh_per_second,
            transient=False,  # the final state stays on screen
        )
        self._live.start()

    def task_started(self, task_id: str) -> None:
        with self._lock:
            self._started[task_id] = time.monotonic()
            self._spinners[task_id] = Spinner("dots", style=_STYLES["running"])

    def task_finished(self, result: TaskResult) -> None:
        with self._lock:
            self._results[result.id] = result

    def finished(self, run: RunResult) -> None:
        with self._lock:
            self._results.update(run.results)
        if self._live is not None:
            self._live.stop()  # renders the final state once more
            self._live = None

    def _render(self) -> RenderableType:
        with self._lock:
            now = time.monotonic()
            rows = [self._row(task, now) for task in self._tasks]
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(no_wrap=True)  # the node
        table.add_column(justify="right", no_wrap=True)  # the time
        table.add_column(overflow="ellipsis", no_wrap=True)  # a failure's detail
        for state, cells in rows:
            table.add_row(*cells, style=None if state == "running" else _STYLES[state])
        header = Text(_counts(state for state, _ in rows), style="bold")
        return Group(header, table)

    def _row(self, task: Task, now: float) -> tuple[str, list[RenderableType]]:
        name = task.id if not task.label or task.label == task.id else f"{task.id} ({task.label})"
        result = self._results.get(task.id)
        if result is not None:
            state = _STATE_OF[result.status]
            detail = "" if result.status is Status.SUCCEEDED else _first_line(result.detail)
            return state, [_SYMBOLS[state], name, _duration(result.duration), detail]
        if task.id in self._started:
            elapsed = _duration(now - self._started[task.id])
            return "running", [self._spinners[task.id], name, elapsed, ""]
        return "waiting", [_SYMBOLS["waiting"], name, "", ""]


def _counts(states: Iterable[str]) -> str:
    """``7/12 done, 2 running, 1 failed``: only the states that occur, besides done."""
    counts = Counter(states)
    total = sum(counts.values())
    done = total - counts["running"] - counts["waiting"]
    parts = [f"{done}/{total} done"]
    parts += [f"{counts[s]} {s}" for s in _STATES if s != "waiting" and counts[s]]
    return ", ".join(parts)


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

    On a terminal the images are a rich table; elsewhere plain lines that never
    wrap a digest, so a CI log can be grepped and digests copied.
    """
    console = Console(file=console_stream, highlight=False)
    if console.is_terminal:
        if images:
            console.print(_image_table(images))
        for line in _outcome_lines(run):
            console.print(line, soft_wrap=True)
        if build_counts(images):
            console.print(Text(build_counts(images), style="bold"))
        return
    counts = [Text(build_counts(images))] if build_counts(images) else []
    for line in [*_image_lines(images), *_outcome_lines(run), *counts]:
        console_stream.write(line.plain + "\n")
    console_stream.flush()


def _image_table(images: Sequence[ImageSummary]) -> Table:
    table = Table(title="Images", title_justify="left", show_lines=True)
    table.add_column("Image")
    table.add_column("Platforms")
    table.add_column("Tags")
    table.add_column("Index digest", overflow="fold")  # a digest is never cut short
    table.add_column("Time", justify="right")
    for image in images:
        name = Text(image.name, style=_image_style(image.status))
        if image.status != "succeeded":
            name.append(f" ({image.status})")
        elif image.build:
            name.append(f" ({image.build})", style="dim")
        name.append("".join(f"\n{r}" for r in image.repositories or (image.repository,)), style="dim")
        table.add_row(
            name,
            "\n".join(image.platforms),
            "\n".join(image.tags),
            image.index_digest or "-",
            _duration(image.duration),
        )
    return table


def _image_style(status: str) -> str:
    return _STYLES.get(status.replace("_", " "), "")


def _image_lines(images: Sequence[ImageSummary]) -> list[Text]:
    lines: list[Text] = []
    for image in images:
        build = f"  ({image.build})" if image.build else ""
        lines.append(Text(f"{image.name}  {image.status}{build}  {_duration(image.duration)}"))
        for repository in image.repositories or (image.repository,):
            lines.append(Text(f"  repository  {repository}"))
        lines.append(Text(f"  platforms   {', '.join(image.platforms)}"))
        lines.append(Text(f"  tags        {', '.join(image.tags)}"))
        lines.append(Text(f"  index       {image.index_digest or '-'}"))
        for platform, digest in image.platform_digests.items():
            lines.append(Text(f"  {platform:<11} {digest}"))
    return lines


def _outcome_lines(run: RunResult) -> list[Text]:
    """Failures with the tail of their log, interrupted nodes, then the counts."""
    lines: list[Text] = []
    for result in run.results.values():
        if result.status not in (Status.FAILED, Status.INTERRUPTED):
            continue
        state = _STATE_OF[result.status]
        heading = Text(f"{state.upper()} {result.id}", style=_STYLES[state])
        if result.detail:
            heading.append(f": {_first_line(result.detail)}")
        lines.append(Text())
        lines.append(heading)
        if result.log_path is not None:
            lines.append(Text(f"  log: {result.log_path}", style="dim"))
        if result.status is Status.FAILED:
            # Text.from_ansi keeps a tool's colours on a terminal and drops them elsewhere.
            tail = tail_of_log(result, LOG_TAIL_LINES)
            lines.extend(Text("  | ") + Text.from_ansi(line) for line in tail)
    counts = _counts(_STATE_OF[r.status] for r in run.results.values())
    lines.append(Text())
    ending = "interrupted" if run.interrupted else ("ok" if run.ok else "failed")
    lines.append(Text(f"{ending}: {counts}", style="bold"))
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


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
