"""Tasks and their results: what the executor (executor.py) runs and returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from buildspec.errors import ExitCode

if TYPE_CHECKING:
    from buildspec.processes import TaskContext


class Status(Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_RUN = "not_run"  # a dependency failed, or the run stopped before it started
    INTERRUPTED = "interrupted"  # was running when SIGINT/SIGTERM came


@dataclass(frozen=True)
class Outcome:
    """What an action returns. ``data`` is for dependents, e.g. ``{"digest": ...}``."""

    ok: bool
    detail: str = ""
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str  # "build:app@linux/arm64", "manifest:app", "publish" (a gate)
    needs: tuple[str, ...]
    action: Callable[[TaskContext], Outcome]
    label: str = ""  # shown by reporters instead of the id when set
    # Starts no process, only waits on the network (a manifest step, a gate): does not
    # count against ``jobs``; up to LIGHT_JOBS of them run beside the builds.
    light: bool = False


@dataclass(frozen=True)
class TaskResult:
    id: str
    status: Status
    detail: str = ""
    data: Mapping[str, object] = field(default_factory=dict)
    started: float | None = None  # wall-clock (time.time()) when the task started
    duration: float | None = None  # seconds
    log_path: Path | None = None  # None when the task never started


@dataclass(frozen=True)
class RunResult:
    results: Mapping[str, TaskResult]  # in the order the tasks were given
    interrupted: bool

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(r.status is Status.SUCCEEDED for r in self.results.values())

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.ok else ExitCode.FAILED
