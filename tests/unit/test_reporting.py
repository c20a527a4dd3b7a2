"""Reporters and the end-of-run summary."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest
from rich.console import Console

from buildspec.executor import Outcome, RunResult, Status, Task, TaskContext, TaskResult, execute
from buildspec.reporting import (
    ImageSummary,
    JsonReporter,
    PlainReporter,
    Reporter,
    make_reporter,
    print_summary,
    summary_json,
)
from buildspec.reporting_live import LiveReporter

PY = sys.executable
DIGEST = "sha256:" + "1" * 64
AMD64 = "sha256:" + "a" * 64
ARM64 = "sha256:" + "b" * 64
SECRET = "hunter2-token"


def child(code: str, data: dict[str, object] | None = None) -> Callable[[TaskContext], Outcome]:
    """An action that runs ``python -c code`` and returns ``data`` when it exits 0."""

    def action(ctx: TaskContext) -> Outcome:
        status = ctx.run([PY, "-c", code])
        return Outcome(status == 0, f"exit {status}" if status else "", data or {})

    return action


def small_graph() -> list[Task]:
    return [
        Task("build:app@linux/amd64", (), child("print('ok')", {"digest": AMD64, "token": SECRET})),
        Task("build:app@linux/arm64", (), child("raise SystemExit(1)")),
        Task("manifest:app", ("build:app@linux/amd64", "build:app@linux/arm64"), child("pass")),
    ]


def run_with(reporter: Reporter, tmp_path: Path) -> RunResult:
    return execute(small_graph(), jobs=2, keep_going=True, reporter=reporter, log_dir=tmp_path / "logs")


def result(task_id: str, status: Status, detail: str = "", duration: float | None = 1.0) -> TaskResult:
    return TaskResult(task_id, status, detail, {}, 0.0 if duration else None, duration, None)


# --- the plain reporter ------------------------------------------------------------

LINE = re.compile(r"^\[ *\d+\.\ds\] (?P<text>.*)$")


def plain_lines(stream: io.StringIO) -> list[str]:
    lines = stream.getvalue().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m.group("text") for m in matches if m]


def test_plain_lines_say_what_changed() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.started([])
    reporter.task_started("build:app@linux/arm64")
    reporter.task_finished(result("build:app@linux/arm64", Status.SUCCEEDED, duration=12.14))
    reporter.task_finished(result("build:app@linux/amd64", Status.FAILED, "exit 1\nmore"))
    reporter.task_finished(result("build:slow", Status.SUCCEEDED, duration=125))
    reporter.task_finished(result("manifest:app", Status.NOT_RUN, "dependency x failed", None))
    reporter.task_finished(result("build:b", Status.INTERRUPTED, "exit -15", 4.0))
    assert plain_lines(stream) == [
        "build:app@linux/arm64  started",
        "build:app@linux/arm64  succeeded (12.1s)",
        "build:app@linux/amd64  FAILED (exit 1)",
        "build:slow  succeeded (2m05s)",
        "manifest:app  not run (dependency x failed)",
        "build:b  interrupted (4.0s)",
    ]
    assert stream.getvalue().startswith("[  0.0s] ")


def test_plain_reporter_in_a_real_run(tmp_path: Path) -> None:
    stream = io.StringIO()
    run = run_with(PlainReporter(stream), tmp_path)
    lines = plain_lines(stream)
    assert "build:app@linux/arm64  FAILED (exit 1)" in lines
    assert "manifest:app  not run (dependency build:app@linux/arm64 failed)" in lines
    assert lines[-1] == "3/3 done, 1 succeeded, 1 failed, 1 not run"
    assert run.exit_code == 1
    assert SECRET not in stream.getvalue()


# --- the JSON reporter -----------------------------------------------------------------


def test_json_events_parse(tmp_path: Path) -> None:
    stream = io.StringIO()
    run_with(JsonReporter(stream), tmp_path)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert events[0]["event"] == "started"
    assert [t["id"] for t in events[0]["tasks"]] == [t.id for t in small_graph()]
    assert events[0]["tasks"][2]["needs"] == ["build:app@linux/amd64", "build:app@linux/arm64"]
    finished = {e["id"]: e for e in events if e["event"] == "task_finished"}
    assert {i: e["status"] for i, e in finished.items()} == {
        "build:app@linux/amd64": "succeeded",
        "build:app@linux/arm64": "failed",
        "manifest:app": "not_run",
    }
    assert finished["build:app@linux/arm64"]["detail"] == "exit 1"
    assert finished["build:app@linux/arm64"]["log"].endswith("build-app@linux-arm64.log")
    assert finished["manifest:app"]["log"] is None
    started = [e["id"] for e in events if e["event"] == "task_started"]
    assert sorted(started) == ["build:app@linux/amd64", "build:app@linux/arm64"]
    assert events[-1] == {
        "event": "finished",
        "time": events[-1]["time"],
        "ok": False,
        "exit_code": 1,
        "interrupted": False,
        "counts": {"succeeded": 1, "failed": 1, "not_run": 1},
    }
    assert all(isinstance(e["time"], float) for e in events)
    assert SECRET not in stream.getvalue()  # task data never reaches a reporter


# --- the live reporter -----------------------------------------------------------------


def test_live_reporter_runs_on_a_terminal(tmp_path: Path) -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120)
    run = run_with(LiveReporter(console, refresh_per_second=20), tmp_path)
    text = output.getvalue()
    assert run.exit_code == 1
    for task in small_graph():
        assert task.id in text
    assert "3/3 done, 1 succeeded, 1 failed, 1 not run" in text
    assert "dependency build:app@linux/arm64 failed" in text
    assert SECRET not in text


def test_live_reporter_shows_what_is_running(tmp_path: Path) -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120)
    tasks = [
        Task("slow", (), child("import time; time.sleep(0.6)")),
        Task("after", ("slow",), child("pass"), label="the one after"),
    ]
    execute(
        tasks,
        jobs=2,
        keep_going=False,
        reporter=LiveReporter(console, refresh_per_second=20),
        log_dir=tmp_path / "logs",
    )
    text = output.getvalue()
    assert "0/2 done, 1 running" in text
    assert "after (the one after)" in text
    assert "2/2 done, 2 succeeded" in text


# --- choosing a reporter -------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_reporter_picks_by_mode_and_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(make_reporter("plain", io.StringIO()), PlainReporter)
    assert isinstance(make_reporter("json", io.StringIO()), JsonReporter)
    assert isinstance(make_reporter("live", io.StringIO()), LiveReporter)
    assert isinstance(make_reporter("auto", io.StringIO()), PlainReporter)  # a pipe
    assert isinstance(make_reporter("auto", FakeTerminal()), LiveReporter)
    monkeypatch.setenv("CI", "true")
    assert isinstance(make_reporter("auto", FakeTerminal()), PlainReporter)
    with pytest.raises(ValueError, match="unknown progress mode 'fancy'"):
        make_reporter("fancy", io.StringIO())


# --- the summary -----------------------------------------------------------------------


def images() -> list[ImageSummary]:
    return [
        ImageSummary(
            name="app",
            repository="localhost:5000/acme/app",
            platforms=("linux/amd64", "linux/arm64"),
            tags=("1.0.0", "latest"),
            index_digest=DIGEST,
            platform_digests={"linux/amd64": AMD64, "linux/arm64": ARM64},
            duration=12.345678,
            status="succeeded",
        ),
        ImageSummary(
            name="worker",
            repository="localhost:5000/acme/worker",
            platforms=("linux/amd64",),
            tags=("1.0.0",),
            index_digest=None,
            platform_digests={},
            duration=None,
            status="failed",
        ),
    ]


def finished_run(tmp_path: Path) -> RunResult:
    log = tmp_path / "build-worker@linux-amd64.log"
    log.write_text("".join(f"step {i}\n" for i in range(1, 41)) + "\x1b[31merror: boom\x1b[0m\n")
    results = {
        "build:app@linux/amd64": TaskResult(
            "build:app@linux/amd64", Status.SUCCEEDED, "", {"digest": AMD64}, 1.0, 5.0, None
        ),
        "build:worker@linux/amd64": TaskResult("build:worker@linux/amd64", Status.FAILED, "exit 1", {}, 1.0, 2.5, log),
        "manifest:worker": TaskResult("manifest:worker", Status.NOT_RUN, "dependency build:worker@linux/amd64 failed"),
    }
    return RunResult(MappingProxyType(results), interrupted=False)


def test_summary_json_shape(tmp_path: Path) -> None:
    document = summary_json(images(), finished_run(tmp_path))
    assert document == {
        "version": 1,
        "images": [
            {
                "name": "app",
                "repository": "localhost:5000/acme/app",
                "repositories": ["localhost:5000/acme/app"],
                "tags": ["1.0.0", "latest"],
                "index_digest": DIGEST,
                "platform_digests": {"linux/amd64": AMD64, "linux/arm64": ARM64},
                "duration": 12.346,
                "status": "succeeded",
                "build": None,
            },
            {
                "name": "worker",
                "repository": "localhost:5000/acme/worker",
                "repositories": ["localhost:5000/acme/worker"],
                "tags": ["1.0.0"],
                "index_digest": None,
                "platform_digests": {},
                "duration": None,
                "status": "failed",
                "build": None,
            },
        ],
        "nodes": [
            {"id": "build:app@linux/amd64", "status": "succeeded", "duration": 5.0, "detail": ""},
            {
                "id": "build:worker@linux/amd64",
                "status": "failed",
                "duration": 2.5,
                "detail": "exit 1",
            },
            {
                "id": "manifest:worker",
                "status": "not_run",
                "duration": None,
                "detail": "dependency build:worker@linux/amd64 failed",
            },
        ],
    }
    json.dumps(document)  # serialisable as it is


def test_print_summary_to_a_pipe_is_plain_text(tmp_path: Path) -> None:
    stream = io.StringIO()
    print_summary(images(), finished_run(tmp_path), stream)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\x1b" not in text  # no colours, no cursor movement
    for needle in (DIGEST, AMD64, ARM64, "localhost:5000/acme/app", "1.0.0, latest"):
        assert any(needle in line for line in lines), needle  # never wrapped
    assert "FAILED build:worker@linux/amd64: exit 1" in lines
    assert f"  log: {tmp_path / 'build-worker@linux-amd64.log'}" in lines
    tail = [line for line in lines if line.startswith("  | ")]
    assert len(tail) == 30
    assert tail[0] == "  | step 12" and tail[-1] == "  | error: boom"
    assert lines[-1] == "failed: 3/3 done, 1 succeeded, 1 failed, 1 not run"


def test_print_summary_on_a_terminal_is_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTerminal()
    print_summary(images(), finished_run(tmp_path), stream)
    text = stream.getvalue()
    assert "Images" in text and "Index digest" in text
    for needle in (DIGEST, "latest", "linux/arm64", "localhost:5000/acme/worker"):
        assert needle in text, needle
    assert "FAILED build:worker@linux/amd64" in text
    assert "error: boom" in text


def test_print_summary_of_an_interrupted_run(tmp_path: Path) -> None:
    run = RunResult(
        MappingProxyType({"build:a": result("build:a", Status.INTERRUPTED, "exit -15")}),
        interrupted=True,
    )
    stream = io.StringIO()
    print_summary([], run, stream)
    lines = stream.getvalue().splitlines()
    assert "INTERRUPTED build:a: exit -15" in lines
    assert lines[-1] == "interrupted: 1/1 done, 1 interrupted"


def test_the_plain_summary_is_what_rich_made_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain summary is written without rich when the stream is no terminal: each line
    is still what rich's Text(...).plain (Text.from_ansi for a log's tail) gave."""
    from rich.text import Text

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    tail = ["plain step", "\x1b[1;31mred\x1b[0m and \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
            "bell\x07 back\x08space\x0bvt\x0cff\ttab", "ünï ✓ \x1b[2K\x1b[1Acursor", "\x1b(B"]
    log = tmp_path / "build.log"
    log.write_text("".join(f"{line}\n" for line in tail))
    results = {"build:x": TaskResult("build:x", Status.FAILED, "exit 1\x07\nmore", {}, 1.0, 2.0, log),
               "build:y": TaskResult("build:y", Status.INTERRUPTED, "", {}, 1.0, 2.0, None)}
    run = RunResult(MappingProxyType(results), interrupted=True)
    stream = io.StringIO()
    print_summary(images(), run, stream)
    lines = stream.getvalue().splitlines()
    assert [line for line in lines if line.startswith("  | ")] == [
        (Text("  | ") + Text.from_ansi(line)).plain for line in tail]
    assert "FAILED build:x: exit 1" in lines and "INTERRUPTED build:y" in lines
    assert lines[-1] == "interrupted: 2/2 done, 1 failed, 1 interrupted"


def test_a_summary_in_a_pipe_does_not_import_rich(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("step 1\nerror: boom\n")
    probe = f"""
import io, sys
from pathlib import Path
from types import MappingProxyType
from buildspec.executor import RunResult, Status, TaskResult
from buildspec.reporting import make_reporter, print_summary
make_reporter("auto", sys.stderr)
failed = TaskResult("build:x", Status.FAILED, "exit 1", {{}}, 1.0, 2.0, Path({str(log)!r}))
print_summary([], RunResult(MappingProxyType({{"build:x": failed}}), interrupted=False), sys.stderr)
print("rich" in sys.modules)
"""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run([PY, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False", done.stderr
    assert "  | error: boom" in done.stderr.splitlines()


def test_force_color_leaves_the_choice_to_rich(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    stream = io.StringIO()
    print_summary(images(), finished_run(tmp_path), stream)
    assert "Index digest" in stream.getvalue()  # rich's table: FORCE_COLOR makes any stream a terminal
