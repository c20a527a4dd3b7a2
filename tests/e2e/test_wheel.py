"""The wheel, installed into a fresh virtualenv, plans a Buildfile from another folder.

This proves the grammar ships inside the package (it is read from package data,
not from the source checkout) and that the console script works.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_in_a_fresh_virtualenv_plans_from_another_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("buildspec-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    buildfile = ROOT / "examples" / "quickstart" / "Buildfile"
    result = subprocess.run(
        [str(env_dir / "bin" / "buildspec"), "plan", "-f", str(buildfile), "--format", "json", "--backend", "buildx"],
        cwd=elsewhere, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [image["name"] for image in plan["images"]] == ["base", "app"]
    # The grammar came from the installed package, not from this checkout.
    where = subprocess.run(
        [str(python), "-c", "import buildspec, importlib.resources as r; "
         "print(buildspec.__file__); print(r.files('buildspec').joinpath('grammar/buildfile.lark').is_file())"],
        capture_output=True, text=True, check=True, cwd=elsewhere,
    ).stdout.split()
    assert where[0].startswith(str(env_dir)) and where[1] == "True"
