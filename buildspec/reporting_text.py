"""What reporting.py (plain text) and reporting_live.py (rich, on a terminal) share: the
states a node shows, their styles, and how counts and durations are written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from buildspec.executor import Status

# The order counts are listed in, and how each state looks.
STATES = ("succeeded", "running", "failed", "interrupted", "not run", "waiting")
STYLES = {
    "succeeded": "green",
    "running": "cyan",
    "failed": "bold red",
    "interrupted": "yellow",
    "not run": "dim",
    "waiting": "dim",
}
SYMBOLS = {"succeeded": "✓", "failed": "✗", "interrupted": "!", "not run": "-", "waiting": "·"}
# (text, style) lines of the summary; a line styled ANSI is a tool's output, escape codes and all.
ANSI = "ansi"
STATE_OF = {
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.INTERRUPTED: "interrupted",
    Status.NOT_RUN: "not run",
}


def counts_line(states: Iterable[str]) -> str:
    """``7/12 done, 2 running, 1 failed``: only the states that occur, besides done."""
    counts = Counter(states)
    total = sum(counts.values())
    done = total - counts["running"] - counts["waiting"]
    parts = [f"{done}/{total} done"]
    parts += [f"{counts[s]} {s}" for s in STATES if s != "waiting" and counts[s]]
    return ", ".join(parts)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
