"""Command-line options that fail before anything is built: exit 2 and a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildspec import cli

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "Buildfile"


def test_jobs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "-f", str(QUICKSTART), "-j", "0"])
    assert exit_info.value.code == 2
    assert "at least 1, got '0'" in capsys.readouterr().err


def test_a_platform_no_image_has_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--no-lookup", "-f", str(QUICKSTART), "--backend", "buildx", "--platform", "linux/s390x"]
    assert cli.main(argv) == 2
    assert "no image of the selection is built for linux/s390x" in capsys.readouterr().err


def test_a_malformed_platform_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--no-lookup", "-f", str(QUICKSTART), "--backend", "buildx", "--platform", "arm64"]) == 2
    assert "--platform: 'arm64' is not a platform" in capsys.readouterr().err


def test_platform_job_plans_only_that_platforms_builds(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--no-lookup", "-f", str(QUICKSTART), "--backend", "buildx", "--format", "json",
            "--platform", "linux/arm64"]
    assert cli.main(argv) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert [n["id"] for n in nodes] == ["build:base@linux/arm64", "build:app@linux/arm64"]


def test_manifests_only_plans_only_the_indexes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--no-lookup", "-f", str(QUICKSTART), "--backend", "buildx", "--format", "json", "--manifests-only"]
    assert cli.main(argv) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    # atomic (the default): both indexes by digest, then the tags step moves every tag
    assert [(n["id"], n["needs"]) for n in nodes] == [
        ("manifest:base", []), ("manifest:app", []), ("tags", ["manifest:base", "manifest:app"])]


def test_platform_and_manifests_only_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["plan", "--no-lookup", "-f", str(QUICKSTART), "--platform", "linux/arm64", "--manifests-only"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["app"], ["--manifests-only"], ["--platform", "linux/arm64"]])
def test_plan_order_does_not_depend_on_hash_seeds(args: list[str]) -> None:
    import os
    import subprocess
    import sys

    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": "0"}
        done = subprocess.run(
            [sys.executable, "-m", "buildspec", "plan", "--no-lookup", "-f", str(QUICKSTART), "--backend", "buildx",
             "--format", "json", *args],
            env=env, capture_output=True, text=True, check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_plan_and_check_turn_the_cyclic_gc_back_on_when_they_return(tmp_path: Path) -> None:
    # main() runs plan and check without the cyclic GC (start-up time); a caller that goes on
    # (tests, bench/fuzz.py) must get it back, or every later cycle leaks.
    import gc

    assert gc.isenabled()
    for argv in (["check", "-f", str(tmp_path / "missing")], ["plan", "-f", str(tmp_path / "missing")]):
        assert cli.main(argv) == 2
        assert gc.isenabled()
