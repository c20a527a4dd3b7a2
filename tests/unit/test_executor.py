"""The scheduler, with real child processes (no mocks of subprocess).

Time bounds are generous: these run on a noisy two-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildspec.errors import ExitCode
from buildspec.executor import (
    Outcome,
    RunResult,
    Status,
    Task,
    TaskContext,
    TaskResult,
    default_jobs,
    execute,
    log_file_name,
    tail_of_log,
)

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A reporter that remembers every call, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self._lock = threading.Lock()

    def started(self, tasks: Sequence[Task]) -> None:
        self._add("started", tuple(t.id for t in tasks))

    def task_started(self, task_id: str) -> None:
        self._add("task_started", task_id)

    def task_finished(self, result: TaskResult) -> None:
        self._add("task_finished", result)

    def finished(self, run: RunResult) -> None:
        self._add("finished", run)

    def _add(self, kind: str, value: object) -> None:
        with self._lock:
            self.events.append((kind, value))


def command(code: str, *args: str) -> Callable[[TaskContext], Outcome]:
    """An action running ``python -c code args...``, ok when it exits 0."""

    def action(ctx: TaskContext) -> Outcome:
        status = ctx.run([PY, "-c", code, *args])
        return Outcome(status == 0, f"exit {status}" if status else "")

    return action


def sleep(seconds: float) -> Callable[[TaskContext], Outcome]:
    def action(ctx: TaskContext) -> Outcome:
        status = ctx.run(["sleep", str(seconds)])
        return Outcome(status == 0, f"exit {status}" if status else "")

    return action


APPEND = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


def appender(path: Path, word: str) -> Callable[[TaskContext], Outcome]:
    return command(APPEND, str(path), word)


def run_tasks(tasks: Sequence[Task], log_dir: Path, *, jobs: int = 2, keep_going: bool = False) -> RunResult:
    return execute(tasks, jobs=jobs, keep_going=keep_going, reporter=Recorder(), log_dir=log_dir)


def statuses(run: RunResult) -> dict[str, Status]:
    return {task_id: result.status for task_id, result in run.results.items()}


# --- order and parallelism -------------------------------------------------------


def test_needs_are_respected(tmp_path: Path) -> None:
    order = tmp_path / "order"
    tasks = [
        Task("d", ("b", "c"), appender(order, "d")),
        Task("b", ("a",), appender(order, "b")),
        Task("c", ("a",), appender(order, "c")),
        Task("a", (), appender(order, "a")),
    ]
    run = run_tasks(tasks, tmp_path / "logs", jobs=4)
    lines = order.read_text().split()
    assert lines[0] == "a" and lines[-1] == "d" and sorted(lines) == ["a", "b", "c", "d"]
    assert run.ok and run.exit_code is ExitCode.OK and not run.interrupted
    assert list(run.results) == ["d", "b", "c", "a"]  # the order given
    assert all(r.duration is not None and r.started is not None for r in run.results.values())


def test_ties_go_to_the_order_given(tmp_path: Path) -> None:
    order = tmp_path / "order"
    tasks = [
        Task("b", ("a",), appender(order, "b")),
        Task("a", (), appender(order, "a")),
        Task("c", (), appender(order, "c")),
    ]
    run_tasks(tasks, tmp_path / "logs", jobs=1)
    # a and c are ready at first, a comes first; then b (given before c) is ready.
    assert order.read_text().split() == ["a", "b", "c"]


def test_two_sleeps_run_in_parallel(tmp_path: Path) -> None:
    tasks = [Task("one", (), sleep(0.5)), Task("two", (), sleep(0.5))]
    start = time.monotonic()
    run = run_tasks(tasks, tmp_path / "logs", jobs=2)
    elapsed = time.monotonic() - start
    assert run.ok
    assert elapsed < 0.9, f"two 0.5 s sleeps took {elapsed:.2f} s with jobs=2"


def test_jobs_limit_how_many_run_at_once(tmp_path: Path) -> None:
    lock = threading.Lock()
    running = 0
    most = 0

    def counted(ctx: TaskContext) -> Outcome:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return Outcome(ctx.run(["sleep", "0.3"]) == 0)
        finally:
            with lock:
                running -= 1

    run = run_tasks([Task(f"t{i}", (), counted) for i in range(4)], tmp_path / "logs", jobs=2)
    assert run.ok
    assert most == 2


@pytest.mark.parametrize(("jobs", "light_at_once", "total_at_once"), [(2, 6, 8), (1, 1, 1)])
def test_light_tasks_run_beside_the_jobs(tmp_path: Path, jobs: int, light_at_once: int, total_at_once: int) -> None:
    """Manifest steps only wait on a registry: -j does not hold them back (but -j 1 is serial)."""
    lock = threading.Lock()
    running = {True: 0, False: 0}
    most = {True: 0, False: 0, "total": 0}

    def counted(light: bool) -> Callable[[TaskContext], Outcome]:
        def action(ctx: TaskContext) -> Outcome:
            with lock:
                running[light] += 1
                most[light] = max(most[light], running[light])
                most["total"] = max(most["total"], running[True] + running[False])
            time.sleep(0.3)
            with lock:
                running[light] -= 1
            return Outcome(True)

        return action

    tasks = [Task(f"build{i}", (), counted(False)) for i in range(4)]
    tasks += [Task(f"manifest{i}", (), counted(True), light=True) for i in range(6)]
    assert run_tasks(tasks, tmp_path / "logs", jobs=jobs).ok
    assert most == {False: jobs, True: light_at_once, "total": total_at_once}


# --- failures --------------------------------------------------------------------


def test_fail_fast_starts_nothing_after_a_failure(tmp_path: Path) -> None:
    tasks = [
        Task("a", (), command("raise SystemExit(3)")),
        Task("b", (), sleep(0.5)),  # running when a fails: allowed to finish
        Task("c", (), sleep(0)),  # waiting for a free job when a fails
        Task("d", ("a",), sleep(0)),
    ]
    run = run_tasks(tasks, tmp_path / "logs", jobs=2)
    assert statuses(run) == {
        "a": Status.FAILED,
        "b": Status.SUCCEEDED,
        "c": Status.NOT_RUN,
        "d": Status.NOT_RUN,
    }
    assert run.results["a"].detail == "exit 3"
    assert run.results["c"].detail == "not started: a failed"
    assert run.results["d"].detail == "dependency a failed"
    assert run.results["c"].log_path is None and run.results["c"].started is None
    assert not (tmp_path / "logs" / "c.log").exists()
    assert not run.ok and run.exit_code is ExitCode.FAILED and not run.interrupted


def test_keep_going_runs_what_does_not_depend_on_a_failure(tmp_path: Path) -> None:
    tasks = [
        Task("a", (), command("raise SystemExit(3)")),
        Task("b", (), sleep(0.2)),
        Task("c", (), sleep(0)),
        Task("d", ("a",), sleep(0)),
        Task("e", ("d", "c"), sleep(0)),
        Task("f", ("c",), sleep(0)),
    ]
    run = run_tasks(tasks, tmp_path / "logs", jobs=2, keep_going=True)
    assert statuses(run) == {
        "a": Status.FAILED,
        "b": Status.SUCCEEDED,
        "c": Status.SUCCEEDED,
        "d": Status.NOT_RUN,
        "e": Status.NOT_RUN,
        "f": Status.SUCCEEDED,
    }
    # A transitive dependent names the task that failed.
    assert run.results["d"].detail == "dependency a failed"
    assert run.results["e"].detail == "dependency a failed"
    assert run.exit_code is ExitCode.FAILED


def test_an_action_that_raises_is_a_failure(tmp_path: Path) -> None:
    def broken(ctx: TaskContext) -> Outcome:
        raise RuntimeError("boom")

    tasks = [Task("a", (), broken), Task("b", ("a",), sleep(0))]
    run = run_tasks(tasks, tmp_path / "logs")
    assert statuses(run) == {"a": Status.FAILED, "b": Status.NOT_RUN}
    assert run.results["a"].detail == "RuntimeError: boom"
    log = (tmp_path / "logs" / "a.log").read_text()
    assert "Traceback" in log and "boom" in log


def test_a_missing_program_is_a_failure(tmp_path: Path) -> None:
    def missing(ctx: TaskContext) -> Outcome:
        return Outcome(ctx.run([str(tmp_path / "no-such-program")]) == 0)

    run = run_tasks([Task("a", (), missing)], tmp_path / "logs")
    assert run.results["a"].status is Status.FAILED
    assert "FileNotFoundError" in run.results["a"].detail
    assert "cannot start" in (tmp_path / "logs" / "a.log").read_text()


# --- logs, data, environment --------------------------------------------------------


def test_the_log_holds_the_output_of_children(tmp_path: Path) -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(1)"

    def action(ctx: TaskContext) -> Outcome:
        ctx.log("a line from the action")
        status = ctx.run([PY, "-c", code])
        return Outcome(status == 0, f"exit {status}")

    run = run_tasks(
        [
            Task("build:app@linux/arm64", (), action),
            Task("manifest:app", ("build:app@linux/arm64",), action),
        ],
        tmp_path / "logs",
    )
    failed = run.results["build:app@linux/arm64"]
    assert failed.log_path == tmp_path / "logs" / "build-app@linux-arm64.log"
    lines = failed.log_path.read_text().splitlines()
    assert lines[0] == "a line from the action"
    assert lines[1].startswith("$ ") and PY in lines[1] and "sys.exit(1)" in lines[1]
    assert "to stdout" in lines and "to stderr" in lines
    assert tail_of_log(failed, 2) == lines[-2:]
    assert tail_of_log(run.results["manifest:app"]) == []  # never started, no log


def test_a_log_starts_empty_on_every_run(tmp_path: Path) -> None:
    tasks = [Task("a", (), command("print('hel' + 'lo')"))]
    run_tasks(tasks, tmp_path / "logs")
    run = run_tasks(tasks, tmp_path / "logs")
    assert run.results["a"].log_path is not None
    assert run.results["a"].log_path.read_text().count("hello") == 1


@pytest.mark.parametrize(
    ("task_id", "name"),
    [
        ("build:app@linux/arm64", "build-app@linux-arm64"),
        ("build:app@linux/arm/v7", "build-app@linux-arm-v7"),
        ("manifest:app", "manifest-app"),
        ("publish", "publish"),
        ("weird name*?", "weird_name__"),
        ("../escape", "-escape"),
        ("..", "task"),
    ],
)
def test_log_file_names_are_readable_and_safe(task_id: str, name: str) -> None:
    assert log_file_name(task_id) == name


def test_log_file_names_stay_short() -> None:
    long = "build:" + "x" * 400
    assert len(log_file_name(long)) <= 200
    assert log_file_name(long) != log_file_name(long + "y")


def test_log_files_are_unique_within_a_run(tmp_path: Path) -> None:
    tasks = [
        Task("a/b", (), command("print('slash')")),
        Task("a:b", (), command("print('colon')")),
        Task("A-B", (), command("print('upper')")),
    ]
    run = run_tasks(tasks, tmp_path / "logs")
    paths = [r.log_path for r in run.results.values()]
    assert [p.name for p in paths if p] == ["a-b.log", "a-b-2.log", "A-B-3.log"]
    assert "colon" in (tmp_path / "logs" / "a-b-2.log").read_text()


def test_a_dependent_reads_the_data_of_its_dependency(tmp_path: Path) -> None:
    digest_file = tmp_path / "digest"
    write_digest = "import sys; open(sys.argv[1], 'w').write('sha256:' + 'ab' * 32)"

    def build(ctx: TaskContext) -> Outcome:
        if ctx.run([PY, "-c", write_digest, str(digest_file)]) != 0:
            return Outcome(False)
        return Outcome(True, data={"digest": digest_file.read_text()})

    errors: list[str] = []

    def manifest(ctx: TaskContext) -> Outcome:
        digest = str(ctx.results_of("build:app").data["digest"])
        try:
            ctx.results_of("other")
        except KeyError as exc:
            errors.append(str(exc))
        status = ctx.run([PY, "-c", "import sys; print('index of', sys.argv[1])", digest])
        return Outcome(status == 0, data={"children": [digest]})

    tasks = [
        Task("build:app", (), build),
        Task("other", (), sleep(0)),
        Task("manifest:app", ("build:app",), manifest),
    ]
    run = run_tasks(tasks, tmp_path / "logs")
    assert run.ok
    digest = "sha256:" + "ab" * 32
    assert run.results["build:app"].data == {"digest": digest}
    assert run.results["manifest:app"].data == {"children": [digest]}
    assert f"index of {digest}" in (tmp_path / "logs" / "manifest-app.log").read_text()
    assert errors and "not a dependency" in errors[0]


def test_a_transitive_dependency_can_be_read(tmp_path: Path) -> None:
    seen: list[object] = []

    def last(ctx: TaskContext) -> Outcome:
        seen.append(ctx.results_of("first").data["n"])
        return Outcome(True)

    tasks = [
        Task("first", (), lambda ctx: Outcome(True, data={"n": 1})),
        Task("middle", ("first",), lambda ctx: Outcome(True)),
        Task("last", ("middle",), last),
    ]
    assert run_tasks(tasks, tmp_path / "logs").ok
    assert seen == [1]


def test_env_replaces_and_cwd_sets_the_childs_directory(tmp_path: Path) -> None:
    code = "import os; print(os.getcwd()); print(os.environ.get('ONLY'), os.environ.get('HOME'))"

    def action(ctx: TaskContext) -> Outcome:
        return Outcome(ctx.run([PY, "-c", code], env={"ONLY": "this"}, cwd=tmp_path) == 0)

    run = run_tasks([Task("a", (), action)], tmp_path / "logs")
    assert run.ok
    lines = (tmp_path / "logs" / "a.log").read_text().splitlines()
    assert lines[0].endswith(f"(in {tmp_path})")
    assert lines[1:] == [str(tmp_path), "this None"]


def test_what_a_child_leaves_in_its_group_dies_with_it(tmp_path: Path) -> None:
    # The child starts a grand-child it does not wait for, then exits.
    code = "import subprocess, sys\np = subprocess.Popen(['sleep', '30'])\nopen(sys.argv[1], 'w').write(str(p.pid))\n"
    run = run_tasks([Task("a", (), command(code, str(tmp_path / "pid")))], tmp_path / "logs")
    assert run.ok
    assert still_alive([int((tmp_path / "pid").read_text())]) == []


# --- validation and the calling thread -----------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([Task("a", ("nope",), sleep(0))], "needs 'nope', which is not a task"),
        ([Task("a", (), sleep(0)), Task("a", (), sleep(0))], "two tasks have the id 'a'"),
        ([Task("a", ("b",), sleep(0)), Task("b", ("a",), sleep(0))], "cycle"),
        ([Task("a", ("a",), sleep(0))], "cycle"),
        ([Task("", (), sleep(0))], "empty id"),
    ],
)
def test_invalid_task_lists_are_refused(tasks: list[Task], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        run_tasks(tasks, tmp_path / "logs")


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs"):
        run_tasks([Task("a", (), sleep(0))], tmp_path / "logs", jobs=0)


def test_no_tasks_is_a_successful_run(tmp_path: Path) -> None:
    run = run_tasks([], tmp_path / "logs")
    assert run.ok and run.exit_code is ExitCode.OK and dict(run.results) == {}


def test_signal_handlers_are_restored(tmp_path: Path) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    run_tasks([Task("a", (), sleep(0))], tmp_path / "logs")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_execute_works_outside_the_main_thread(tmp_path: Path) -> None:
    runs: list[RunResult] = []
    thread = threading.Thread(target=lambda: runs.append(run_tasks([Task("a", (), sleep(0))], tmp_path / "logs")))
    thread.start()
    thread.join(timeout=30)
    assert runs and runs[0].ok


def test_the_reporter_hears_everything_in_order(tmp_path: Path) -> None:
    reporter = Recorder()
    tasks = [
        Task("a", (), command("raise SystemExit(1)")),
        Task("b", ("a",), sleep(0)),
        Task("c", (), sleep(0)),
    ]
    run = execute(tasks, jobs=1, keep_going=True, reporter=reporter, log_dir=tmp_path / "logs")
    assert reporter.events[0] == ("started", ("a", "b", "c"))
    assert reporter.events[-1] == ("finished", run)
    middle = [(kind, value.id if isinstance(value, TaskResult) else value) for kind, value in reporter.events[1:-1]]
    # jobs=1: a, then b is not run (a failed), then c; each result reported once.
    assert middle == [
        ("task_started", "a"),
        ("task_finished", "a"),
        ("task_finished", "b"),
        ("task_started", "c"),
        ("task_finished", "c"),
    ]


def test_default_jobs_is_at_least_four() -> None:
    assert default_jobs() >= 4


# --- the scheduler's invariants, on random graphs ---------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[tuple[str, tuple[str, ...]]], set[str], int, bool]:
    size = draw(st.integers(1, 9))
    names = [f"t{i}" for i in range(size)]
    # Needs point only to earlier names, so the graph is acyclic by construction...
    nodes = [
        (name, tuple(sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3))) if i else ()))
        for i, name in enumerate(names)
    ]
    # ...and the order given is shuffled, so it is not a topological order.
    nodes = draw(st.permutations(nodes))
    failing = draw(st.sets(st.sampled_from(names), max_size=3))
    return nodes, failing, draw(st.integers(1, 4)), draw(st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_scheduling_invariants(
    graph: tuple[list[tuple[str, tuple[str, ...]]], set[str], int, bool],
) -> None:
    nodes, failing, jobs, keep_going = graph
    needs = dict(nodes)
    lock = threading.Lock()
    finished: set[str] = set()
    calls: list[str] = []
    running = 0
    most = 0

    def action_for(name: str) -> Callable[[TaskContext], Outcome]:
        def action(ctx: TaskContext) -> Outcome:
            nonlocal running, most
            with lock:
                calls.append(name)
                assert all(need in finished for need in needs[name]), f"{name} started early"
                running += 1
                most = max(most, running)
            time.sleep(0.001)
            with lock:
                running -= 1
                finished.add(name)
            if name in failing:
                raise RuntimeError(f"{name} breaks")
            return Outcome(True)

        return action

    tasks = [Task(name, task_needs, action_for(name)) for name, task_needs in nodes]
    with tempfile.TemporaryDirectory() as log_dir:
        run = execute(tasks, jobs=jobs, keep_going=keep_going, reporter=Recorder(), log_dir=Path(log_dir))

    def ancestors(name: str) -> set[str]:
        found = set(needs[name])
        for need in needs[name]:
            found |= ancestors(need)
        return found

    assert list(run.results) == [name for name, _ in nodes]
    assert len(calls) == len(set(calls)), "a task ran twice"
    assert most <= jobs
    failed = {n for n, r in run.results.items() if r.status is Status.FAILED}
    assert failed <= failing
    for name, result in run.results.items():
        assert result.status is not Status.INTERRUPTED
        if result.status is Status.NOT_RUN:
            assert failed, "nothing failed, yet a task did not run"
            assert name not in calls
        else:
            assert all(run.results[n].status is Status.SUCCEEDED for n in needs[name])
        if keep_going:
            # Exactly the tasks that depend on a failure are not run.
            if ancestors(name) & failing:
                expected = Status.NOT_RUN
            else:
                expected = Status.FAILED if name in failing else Status.SUCCEEDED
            assert result.status is expected
    assert run.exit_code is (ExitCode.FAILED if failed else ExitCode.OK)


# --- interruption: a real process receives the signal ---------------------------------------

DRIVER = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from buildspec.executor import Outcome, Task, execute
from buildspec.reporting import PlainReporter

tmp, grace, child = Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
after = "import sys; open(sys.argv[1], 'w').write('started after the signal')"

def long(ctx):
    status = ctx.run([sys.executable, "-c", *child, str(tmp / "pids")])
    # Must be refused: the run is being interrupted.
    ctx.run([sys.executable, "-c", after, str(tmp / "after")])
    return Outcome(status == 0, f"exit {status}")

tasks = [Task("one", (), long), Task("two", (), long), Task("three", (), long),
         Task("four", ("one",), long)]
run = execute(tasks, jobs=2, keep_going=False, reporter=PlainReporter(sys.stderr),
              log_dir=tmp / "logs", grace_period=grace)
print(json.dumps({i: [r.status.value, r.detail] for i, r in run.results.items()}))
sys.exit(int(run.exit_code))
"""

# A task's child: starts a grand-child, records both pids, then sleeps.
CHILD = """
import os, signal, subprocess, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grand-child too
grandchild = subprocess.Popen(["sleep", "60"])
with open(sys.argv[-1], "a") as pids:
    pids.write(f"{os.getpid()} {grandchild.pid}\\n")
time.sleep(60)
"""


def still_alive(pids: Sequence[int], timeout: float = 2.0) -> list[int]:
    """The pids that are still running (not gone, not zombies) after ``timeout``."""

    def alive(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")

    deadline = time.monotonic() + timeout
    while True:
        living = [pid for pid in pids if alive(pid)]
        if not living or time.monotonic() >= deadline:
            return living
        time.sleep(0.05)


def interrupt_driver(
    tmp_path: Path,
    signals: Sequence[signal.Signals],
    *,
    grace: float,
    child_args: Sequence[str] = (),
) -> tuple[int, float, dict[str, list[str]], list[int]]:
    """Start the driver, wait until two tasks run, send ``signals``; return what happened."""
    driver = subprocess.Popen(
        [PY, "-c", DRIVER, str(ROOT), str(tmp_path), str(grace), CHILD, *child_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "pids"
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while len(pids) < 4:
            assert time.monotonic() < deadline, "the tasks did not start"
            assert driver.poll() is None, driver.communicate()
            time.sleep(0.05)
            pids = [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []
        sent = time.monotonic()
        for signum in signals:
            driver.send_signal(signum)
            time.sleep(0.2)
        out, err = driver.communicate(timeout=30)
        elapsed = time.monotonic() - sent
        assert out, err
        return driver.returncode, elapsed, json.loads(out), pids
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in still_alive(pids, timeout=0):
            os.kill(pid, signal.SIGKILL)  # never leave a failed test's processes behind


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_and_leaves_no_process(tmp_path: Path, signum: signal.Signals) -> None:
    code, elapsed, results, pids = interrupt_driver(tmp_path, [signum], grace=10)
    assert code == ExitCode.INTERRUPTED
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert results["one"][0] == results["two"][0] == "interrupted"
    assert results["three"] == ["not_run", "not started: the run was interrupted"]
    assert results["four"][0] == "not_run"
    assert still_alive(pids) == []
    assert not (tmp_path / "after").exists(), "a command started after the signal"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    code, elapsed, results, pids = interrupt_driver(tmp_path, [signal.SIGINT], grace=1.0, child_args=["ignore-term"])
    assert code == ExitCode.INTERRUPTED
    assert 0.9 <= elapsed < 6, f"took {elapsed:.1f} s with a 1 s grace period"
    assert results["one"][0] == results["two"][0] == "interrupted"
    assert still_alive(pids) == []


def test_a_second_ctrl_c_kills_at_once(tmp_path: Path) -> None:
    code, elapsed, _, pids = interrupt_driver(
        tmp_path, [signal.SIGINT, signal.SIGINT], grace=60, child_args=["ignore-term"]
    )
    assert code == ExitCode.INTERRUPTED
    assert elapsed < 6, f"took {elapsed:.1f} s despite a second Ctrl-C"
    assert still_alive(pids) == []
