"""Each command imports only what it uses: start-up time is part of every command (issue 12).

Each case runs the CLI in a fresh interpreter and lists the modules it loaded.
bench/startup.py measures the time; this test keeps heavy imports from creeping back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import fixed_environ

REPO = Path(__file__).resolve().parents[2]

# Loaded modules, printed after the command ran (a SystemExit from argparse included).
_PROBE = """
import sys
from buildspec.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("MODULES", " ".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""

HEAVY = ("lark", "networkx", "docker", "requests", "urllib3", "rich", "orjson", "concurrent.futures")


def loaded(args: list[str], cwd: Path, tmp_path: Path) -> set[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=cwd, env=fixed_environ(tmp_path),
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def test_version_loads_nothing_but_the_cli(tmp_path: Path) -> None:
    modules = loaded(["--version"], tmp_path, tmp_path)
    assert not {m for m in modules if m.startswith("buildspec.")} - {"buildspec.cli"}
    assert not modules & {*HEAVY, "argparse", "pathlib", "typing", "dataclasses"}


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "examples" / "quickstart", tmp_path / "quickstart",
                                ignore=shutil.ignore_patterns(".buildspec")))


def test_check_parses_without_lark_and_talks_to_nothing(quickstart: Path, tmp_path: Path) -> None:
    modules = loaded(["check", "--set", "version=1.0.0"], quickstart, tmp_path)
    assert "buildspec.syntax_fast" in modules
    assert not modules & {"lark", "docker", "requests", "urllib3", "rich", "orjson", "buildspec.syntax_lark",
                           "networkx", "buildspec.graph", "difflib", "zoneinfo", "packaging", "json",
                           "platform"}
    assert not {m for m in modules if m.startswith(("buildspec.backends", "buildspec.uptodate", "buildspec.run",
                                                    "buildspec.plan", "buildspec.registry.client"))}


def test_plan_json_without_lookups_needs_no_http_client(quickstart: Path, tmp_path: Path) -> None:
    modules = loaded(["plan", "--format", "json", "--no-lookup", "--backend", "buildx", "--set", "version=1.0.0"],
                     quickstart, tmp_path)
    assert "orjson" in modules
    assert not modules & {"lark", "docker", "requests", "urllib3", "rich", "buildspec.uptodate.check"}


def test_a_syntax_error_still_gets_larks_message(tmp_path: Path) -> None:
    (tmp_path / "Buildfile").write_text("image app {\n    context = \n}\n")
    result = subprocess.run([sys.executable, "-m", "buildspec", "check"], cwd=tmp_path,
                            env=fixed_environ(tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Buildfile:2:" in result.stderr and "has no value" in result.stderr
    assert "Traceback" not in result.stderr
