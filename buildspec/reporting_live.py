"""The terminal side of reporting.py, and the only module that imports rich (about
25 ms of start-up, which a run in CI or a pipe does without): the live view of every
node while a run happens, and the summary as a table."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from buildspec.executor import RunResult, Status, Task, TaskResult
from buildspec.reporting_text import ANSI, STATE_OF, STYLES, SYMBOLS, counts_line, duration, first_line

if TYPE_CHECKING:
    from buildspec.reporting import ImageSummary


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
            self._spinners[task_id] = Spinner("dots", style=STYLES["running"])

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
            table.add_row(*cells, style=None if state == "running" else STYLES[state])
        header = Text(counts_line(state for state, _ in rows), style="bold")
        return Group(header, table)

    def _row(self, task: Task, now: float) -> tuple[str, list[RenderableType]]:
        name = task.id if not task.label or task.label == task.id else f"{task.id} ({task.label})"
        result = self._results.get(task.id)
        if result is not None:
            state = STATE_OF[result.status]
            detail = "" if result.status is Status.SUCCEEDED else first_line(result.detail)
            return state, [SYMBOLS[state], name, duration(result.duration), detail]
        if task.id in self._started:
            elapsed = duration(now - self._started[task.id])
            return "running", [self._spinners[task.id], name, elapsed, ""]
        return "waiting", [SYMBOLS["waiting"], name, "", ""]


def print_rich_summary(images: Sequence[ImageSummary], outcome: Sequence[tuple[str, str]], counts: str,
                       stream: TextIO) -> bool:
    """The summary as rich shows it on a terminal (``outcome``: reporting._outcome_lines,
    ``counts``: reporting.build_counts); False (nothing written) when rich finds ``stream``
    is not one."""
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        return False
    if images:
        console.print(_image_table(images))
    for text, style in outcome:
        # Text.from_ansi keeps a tool's colours on a terminal.
        console.print(Text("  | ") + Text.from_ansi(text) if style == ANSI else Text(text, style=style),
                      soft_wrap=True)
    if counts:
        console.print(Text(counts, style="bold"))
    return True


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
            duration(image.duration),
        )
    return table


def _image_style(status: str) -> str:
    return STYLES.get(status.replace("_", " "), "")
