"""The `buildspec` process (cli.console): a plan or check ends with os._exit once its output
is flushed, without freeing its objects; the output and exit status are main()'s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from console_probe import WITH_ATEXIT

from buildspec import cli

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "Buildfile"


def _console(*argv: str, cwd: Path | None = None, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", script, *argv] if script else [sys.executable, "-m", "buildspec", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def _large_buildfile(folder: Path, n: int) -> Path:
    lines = ['registry = "127.0.0.1:5000/console"', "platforms = [linux/amd64, linux/arm64]", ""]
    for i in range(n):
        (folder / f"c{i}").mkdir()
        (folder / f"c{i}" / "Dockerfile").write_text("FROM scratch\n")
        lines += [f"image img{i} {{", f'    context = "c{i}"', '    tags = ["1.0.0"]', "}"]
    path = folder / "Buildfile"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plan_json_from_the_process_is_main_s_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--format", "json", "--no-lookup", "-f", str(QUICKSTART)]) == 0
    expected = capsys.readouterr().out
    done = _console("plan", "--format", "json", "--no-lookup", "-f", str(QUICKSTART))
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


def test_a_large_plan_reaches_a_pipe_whole(tmp_path: Path) -> None:
    # 64 KB and more: what is still in stdout's buffer at the end must be flushed before os._exit.
    buildfile = _large_buildfile(tmp_path, 400)
    done = _console("plan", "--format", "json", "--no-lookup", "--backend", "buildx", "-f", str(buildfile))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 200_000
    plan = json.loads(done.stdout)
    assert len(plan["images"]) == 400


def test_plan_and_check_skip_the_interpreter_clean_up_and_other_commands_do_not(tmp_path: Path) -> None:
    plan = _console("plan", "--no-lookup", "-f", str(QUICKSTART), script=WITH_ATEXIT)
    check = _console("check", "-f", str(QUICKSTART), script=WITH_ATEXIT)
    for done in (plan, check):
        assert done.returncode == 0, done.stderr
        assert "clean-up ran" not in done.stderr
    assert check.stdout.startswith(f"{QUICKSTART}: ok (")
    # An error, --version and every other command end as usual.
    failed = _console("plan", "-f", str(tmp_path / "missing"), script=WITH_ATEXIT)
    version = _console("--version", script=WITH_ATEXIT)
    fmt = _console("fmt", "--check", str(QUICKSTART), script=WITH_ATEXIT)
    assert failed.returncode == 2 and "no Buildfile at" in failed.stderr and "clean-up ran" in failed.stderr
    assert version.returncode == 0 and "clean-up ran" in version.stderr
    assert "clean-up ran" in fmt.stderr, fmt.stderr


def test_a_reader_that_goes_away_is_exit_1_without_a_traceback(tmp_path: Path) -> None:
    buildfile = _large_buildfile(tmp_path, 400)
    with subprocess.Popen([sys.executable, "-m", "buildspec", "plan", "--format", "json", "--no-lookup",
                           "--backend", "buildx", "-f", str(buildfile)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(10).startswith("{")
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr


def test_main_in_process_keeps_nothing() -> None:
    # Only the process (console) keeps a plan's objects until it ends: a caller of main that
    # goes on (tests, bench/fuzz.py) must get them freed.
    assert cli.main(["check", "-f", str(QUICKSTART)]) == 0
    assert cli.main(["plan", "--no-lookup", "-f", str(QUICKSTART)]) == 0
    assert cli._RETAINED is None
