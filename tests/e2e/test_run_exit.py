"""How a `buildspec run` process ends (cli.console): once run() returned, its output is
flushed and the process exits with os._exit, skipping the interpreter's clean-up (60-100 ms
after a 20-image run, bench/run_overhead.py). Everything it writes must still be complete:
the summary (stderr), the published references (stdout), the --metadata-file, the registry.
A run that fails ends the same way; its exit status is main()'s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from console_probe import WITH_ATEXIT
from runner import cli_env, manifest_digest

if TYPE_CHECKING:
    from conftest import Env  # tests/conftest.py: fixtures env, unique_repo

pytestmark = pytest.mark.integration


BUILDFILE = """\
registry  = "{registry}"
platforms = [linux/amd64, linux/arm64]

image one {{
    context = "one"
    tags    = ["1.0.0"]
}}
image two {{
    context = "two"
    tags    = ["1.0.0"]
}}
"""


def _project(folder: Path, registry: str, base: str, broken: bool = False) -> Path:
    for name in ("one", "two"):
        (folder / name).mkdir(parents=True)
        run = "exit 3" if broken and name == "two" else f"echo {name} > /name"
        (folder / name / "Dockerfile").write_text(f"FROM {base}\nRUN {run}\n")
    (folder / "Buildfile").write_text(BUILDFILE.format(registry=registry))
    return folder


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = cli_env()
    environment.pop("PYTHONUNBUFFERED")  # buffered, as in a terminal-less CI job: the flush is tested too
    return subprocess.run([sys.executable, "-c", WITH_ATEXIT, "run", "--backend", "buildx", "--progress", "plain",
                           "--metadata-file", "meta.json", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_run_skips_the_interpreter_clean_up_and_its_output_is_whole(tmp_path: Path, unique_repo: str,
                                                                      env: Env) -> None:
    project = _project(tmp_path / "ok", unique_repo, env.base_image)
    done = _run(project, "-B")
    assert done.returncode == 0, done.stderr
    assert "clean-up ran" not in done.stderr
    assert "images: 2 built, 0 up to date, 0 retagged" in done.stderr
    published = sorted(done.stdout.split())
    assert published == sorted(f"{unique_repo}/{name}:1.0.0@{manifest_digest(f'{unique_repo}/{name}:1.0.0')}"
                               for name in ("one", "two"))
    metadata = json.loads((project / "meta.json").read_text())
    assert {image["name"] for image in metadata["images"]} == {"one", "two"}
    for name in ("one", "two"):
        index = oci_reader.raw_manifest(f"{unique_repo}/{name}:1.0.0")
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]


def test_a_failed_run_ends_the_same_way_with_its_exit_status(tmp_path: Path, unique_repo: str, env: Env) -> None:
    project = _project(tmp_path / "broken", unique_repo, env.base_image, broken=True)
    done = _run(project)
    assert done.returncode == 1, done.stderr
    assert "clean-up ran" not in done.stderr
    assert done.stdout == ""  # atomic publishing: no tag moved
    metadata = json.loads((project / "meta.json").read_text())
    assert {image["name"]: image["status"] for image in metadata["images"]}["two"] == "failed"


_MODULES_AFTER_MAIN = (
    "import sys\n"
    "from buildspec.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('LOADED', ' '.join(m for m in ('docker', 'rich') if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def test_a_run_in_ci_loads_neither_docker_py_nor_rich(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """Neither is needed by a run whose contexts ignore nothing and whose output is no
    terminal: each cost ~30 ms before the first build (bench/run_overhead.py)."""
    project = _project(tmp_path / "ci", unique_repo, env.base_image)
    done = subprocess.run([sys.executable, "-c", _MODULES_AFTER_MAIN, "run", "--backend", "buildx",
                           "--progress", "plain", "-B"], cwd=project, env=cli_env(), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "LOADED \n" in done.stderr or done.stderr.rstrip().endswith("LOADED"), done.stderr[-2000:]
    assert "images: 2 built, 0 up to date, 0 retagged" in done.stderr
