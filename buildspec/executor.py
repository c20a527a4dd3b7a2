"""The scheduler: run a DAG of tasks in parallel, like ``make -j``.

This module knows tasks, processes and results, nothing about Docker. A task
starts when everything it needs has succeeded; ties go to the order the tasks
were given in, so a run with ``jobs=1`` is reproducible. ``jobs`` limits the
tasks that start processes (builds); ``light`` tasks, which only talk to a
registry (manifests, the publish gate), run up to LIGHT_JOBS at once beside
them (with ``jobs=1`` everything runs one at a time).

Failures are values, never exceptions: a task whose action fails or raises is a
FAILED result, and ``execute`` returns a ``RunResult`` whose ``exit_code`` the CLI
exits with.

Processes. Every child a task starts (``TaskContext.run``) leads its own process
group, in its own session, so that:

* Ctrl-C at the terminal reaches only buildspec, which then stops the run in
  order: SIGTERM to every running group, SIGKILL after ``grace_period`` (at once
  on a second Ctrl-C);
* whatever a child leaves behind in its group is killed as soon as the child
  itself exits: a task's process group never outlives the child we started.

Logs. Each started task writes ``log_dir/<log_file_name(id)>.log``: the output
of its children, each preceded by a ``$ argv`` line, and ``TaskContext.log``
lines. The file is truncated when the task starts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import TYPE_CHECKING

from buildspec.processes import Cancelled, ProcessGroups, TaskContext, log_file_name, tail_of_log
from buildspec.tasks import Outcome, RunResult, Status, Task, TaskResult

# The names the stages that run tasks import from here (run.py, the backends, reporting).
__all__ = ["LIGHT_JOBS", "Outcome", "RunResult", "Status", "Task", "TaskContext", "TaskResult", "default_jobs",
           "execute", "log_file_name", "tail_of_log"]

if TYPE_CHECKING:
    from buildspec.reporting import Reporter

# How often the scheduler looks at received signals while tasks run.
_POLL_INTERVAL = 0.1
LIGHT_JOBS = 16


def default_jobs() -> int:
    """Two per usable CPU, and never fewer than four: a build node mostly waits on BuildKit,
    a registry or qemu (bench/run_overhead.py: -j4 on 2 CPUs was 14% faster than -j2)."""
    try:
        cpus = len(os.sched_getaffinity(0))  # honours container CPU sets
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(4, 2 * cpus)


def execute(
    tasks: Sequence[Task],
    *,
    jobs: int,
    keep_going: bool,
    reporter: Reporter,
    log_dir: Path,
    grace_period: float = 10.0,
    on_child: Callable[[int], None] | None = None,
) -> RunResult:
    """Run ``tasks`` with up to ``jobs`` at a time; see the module docstring.

    Fail-fast unless ``keep_going``: after a failure nothing new starts and the
    running tasks finish. With ``keep_going`` everything that does not depend on
    a failure still runs. Raises ValueError only for an invalid task list
    (duplicate or unknown ids, a cycle). ``on_child(pid)`` is told of every child
    started (the leader of its own process group), e.g. to record it (lock.py).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    if grace_period < 0:
        raise ValueError(f"grace_period must not be negative, not {grace_period}")
    _validate(tasks)
    log_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(tasks, jobs, keep_going, reporter, log_dir, grace_period)
    run.children.on_child = on_child
    with _signals_recorded(run.signals):
        return run.execute()


def _validate(tasks: Sequence[Task]) -> None:
    ids: set[str] = set()
    for task in tasks:
        if not task.id:
            raise ValueError("a task has an empty id")
        if task.id in ids:
            raise ValueError(f"two tasks have the id {task.id!r}")
        ids.add(task.id)
    for task in tasks:
        for need in task.needs:
            if need not in ids:
                raise ValueError(f"task {task.id!r} needs {need!r}, which is not a task")
    try:
        TopologicalSorter({t.id: t.needs for t in tasks}).prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        raise ValueError(f"tasks form a cycle: {' -> '.join(cycle)}") from None


@contextmanager
def _signals_recorded(received: list[int]) -> Iterator[None]:
    """Record SIGINT/SIGTERM instead of dying; the scheduler acts on them.

    The handler only appends: acting inside it could deadlock on a lock the main
    thread holds at that moment. Python allows handlers only in the main thread;
    elsewhere the caller has to deal with signals.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None means a handler installed outside Python; the default is the
            # closest we can restore.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


class _Run:
    """The state of one ``execute`` call.

    Only the thread that called ``execute`` changes it; workers run ``_run_task``
    and read results of tasks that finished before theirs started.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        jobs: int,
        keep_going: bool,
        reporter: Reporter,
        log_dir: Path,
        grace_period: float,
    ) -> None:
        self.tasks = {t.id: t for t in tasks}
        self.order = {t.id: i for i, t in enumerate(tasks)}  # breaks ties
        self.jobs = jobs
        # jobs=1: everything one at a time, light or not (a reproducible, serial run).
        self.light = {t.id: t.light and jobs > 1 for t in tasks}
        self.keep_going = keep_going
        self.reporter = reporter
        self.grace_period = grace_period
        self.log_paths = _log_paths(tasks, log_dir)
        self.dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
        for task in tasks:
            for need in task.needs:
                self.dependents[need].append(task.id)

        self.waiting = list(self.tasks)  # not started, not decided
        self.running: dict[Future[TaskResult], str] = {}
        self.results: dict[str, TaskResult] = {}
        self.first_failure: str | None = None  # stops a fail-fast run

        self.signals: list[int] = []  # appended to by the signal handler
        self.cancelled = threading.Event()
        self.children = ProcessGroups(self.cancelled)
        self.kill_at: float | None = None  # when SIGKILL follows SIGTERM

    def execute(self) -> RunResult:
        self.reporter.started(tuple(self.tasks.values()))
        with ThreadPoolExecutor(max_workers=self.jobs + LIGHT_JOBS, thread_name_prefix="buildspec") as pool:
            try:
                self._schedule(pool)
            except BaseException:
                # A bug (a reporter raising, say): leave no children behind, or
                # leaving the pool would wait for them.
                self.cancelled.set()
                self.children.signal_all(signal.SIGKILL)
                raise
        # A signal after the last task finished still means the user asked to stop.
        interrupted = bool(self.signals)
        if self.first_failure is not None and not self.keep_going:
            reason = f"not started: {self.first_failure} failed"
        else:
            reason = "not started: the run was interrupted"
        for task_id in list(self.waiting):
            self._not_run(task_id, reason)
        run = RunResult(MappingProxyType({i: self.results[i] for i in self.tasks}), interrupted=interrupted)
        self.reporter.finished(run)
        return run

    def _schedule(self, pool: ThreadPoolExecutor) -> None:
        while True:
            self._handle_signals()  # first: a signal means nothing new starts
            self._start_ready(pool)
            if not self.running:
                return
            # The timeout is how quickly a signal is acted upon.
            done, _ = wait(self.running, timeout=_POLL_INTERVAL, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self.order[self.running[f]]):
                del self.running[future]
                self._record(future.result())

    def _start_ready(self, pool: ThreadPoolExecutor) -> None:
        if self.cancelled.is_set() or (self.first_failure and not self.keep_going):
            return
        running = {False: 0, True: 0}
        for task_id in self.running.values():
            running[self.light[task_id]] += 1
        limit = {False: self.jobs, True: LIGHT_JOBS}
        for task_id in list(self.waiting):
            if running[False] >= limit[False] and running[True] >= limit[True]:
                return
            task, light = self.tasks[task_id], self.light[task_id]
            if running[light] < limit[light] and all(self._succeeded(need) for need in task.needs):
                self.waiting.remove(task_id)
                self.running[pool.submit(self._run_task, task)] = task_id
                running[light] += 1

    def _succeeded(self, task_id: str) -> bool:
        result = self.results.get(task_id)
        return result is not None and result.status is Status.SUCCEEDED

    def _record(self, result: TaskResult) -> None:
        self.results[result.id] = result
        if result.status is Status.SUCCEEDED:
            return
        if result.status is Status.FAILED and self.first_failure is None:
            self.first_failure = result.id
        # Dependents can never run; say so now, naming the task that failed.
        reason = f"dependency {result.id} {_verb(result.status)}"
        for dependent in self._transitive_dependents(result.id):
            if dependent in self.waiting:
                self._not_run(dependent, reason)

    def _not_run(self, task_id: str, reason: str) -> None:
        self.waiting.remove(task_id)
        result = TaskResult(task_id, Status.NOT_RUN, reason)
        self.results[task_id] = result
        self.reporter.task_finished(result)

    def _transitive_dependents(self, task_id: str) -> list[str]:
        found: list[str] = []
        stack = list(self.dependents[task_id])
        while stack:
            dependent = stack.pop()
            if dependent not in found:
                found.append(dependent)
                stack.extend(self.dependents[dependent])
        return found

    def _handle_signals(self) -> None:
        if self.signals and not self.cancelled.is_set():
            self.cancelled.set()
            self.children.signal_all(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.grace_period
        hurry = len(self.signals) > 1  # a second Ctrl-C: no more waiting
        if self.kill_at is not None and (hurry or time.monotonic() >= self.kill_at):
            # Repeated on every poll: a group that survives SIGKILL (a child that
            # was being started) is retried rather than forgotten.
            self.children.signal_all(signal.SIGKILL)

    def _run_task(self, task: Task) -> TaskResult:
        """In a worker thread: run one action and turn whatever happens into a result."""
        log_path = self.log_paths[task.id]
        context = TaskContext(
            task.id,
            log_path,
            self.cancelled,
            self.children,
            lambda other: self._dependency_result(task.id, other),
        )
        self.reporter.task_started(task.id)
        started, clock = time.time(), time.monotonic()
        try:
            log_path.write_bytes(b"")
            outcome = task.action(context)
        except Cancelled:
            outcome = Outcome(False, "interrupted")
        except Exception as exc:
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
            _log_quietly(context, traceback.format_exc())
        if outcome.ok:
            status = Status.SUCCEEDED
        elif self.cancelled.is_set():
            # It was running when the run was stopped: most likely our SIGTERM.
            status = Status.INTERRUPTED
        else:
            status = Status.FAILED
        result = TaskResult(
            task.id,
            status,
            outcome.detail,
            MappingProxyType(dict(outcome.data)),
            started,
            time.monotonic() - clock,
            log_path,
        )
        self.reporter.task_finished(result)
        return result

    def _dependency_result(self, task_id: str, dependency: str) -> TaskResult:
        if dependency not in self._transitive_needs(task_id):
            raise KeyError(f"{dependency!r} is not a dependency of {task_id!r}")
        return self.results[dependency]  # recorded before task_id could start

    def _transitive_needs(self, task_id: str) -> set[str]:
        found: set[str] = set()
        stack = list(self.tasks[task_id].needs)
        while stack:
            need = stack.pop()
            if need not in found:
                found.add(need)
                stack.extend(self.tasks[need].needs)
        return found


def _verb(status: Status) -> str:
    return {Status.FAILED: "failed", Status.INTERRUPTED: "was interrupted"}.get(status, "did not run")


def _log_quietly(context: TaskContext, text: str) -> None:
    with suppress(OSError):  # the log itself is what failed; the result's detail says so
        context.log(text)


def _log_paths(tasks: Sequence[Task], log_dir: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    taken: set[str] = set()
    for task in tasks:
        stem = base = log_file_name(task.id)
        n = 1
        while stem.casefold() in taken:  # casefold: macOS file systems ignore case
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem.casefold())
        paths[task.id] = log_dir / f"{stem}.log"
    return paths
