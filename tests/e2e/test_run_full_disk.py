"""A full disk under the work folder: the run stops before building, naming the folder.

A 1 MiB tmpfs is mounted as ``XDG_STATE_HOME`` (where the logs of a Buildfile
whose context holds its folder go) and filled. Needs root, as the whole suite does.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from runner import copy_fixture, run_cli, tags_of

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration


@pytest.fixture
def full_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the suite runs as root): {mounted.stderr}")
    try:
        with (folder / "filler").open("wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_work_folder_stops_the_run_before_anything_is_built(
    env: Env, unique_repo: str, tmp_path: Path, full_folder: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "skopeo")
    project = copy_fixture("single", tmp_path)
    result = run_cli(["run", "--set", f"registry={unique_repo}", "--set", f"busybox={env.base_image}"],
                     cwd=project, env={**os.environ, "XDG_STATE_HOME": str(full_folder)})
    assert result.code == 1, result
    assert f"error: the work folder {full_folder}/buildspec/" in result.stderr, result
    assert "KiB free" in result.stderr and "Traceback" not in result.stderr, result
    assert result.stdout == ""
    assert tags_of(f"{unique_repo}/single") == []  # nothing built, nothing pushed
