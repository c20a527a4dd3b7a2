"""What the two benchmarks share: how they find buildspec, the environment they give
both tools, the generated names, and their error type. Run the scripts from anywhere
(``python bench/plan_scale.py``): Python puts ``bench/`` on the path, so ``import common``
finds this file."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

# Variables that would change what either tool prints or does: CI detection, overrides.
_SCRUB_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "BUILDX_BAKE_", "BAKE_")
# SOURCE_DATE_EPOCH: bake would add it to every target's args.
_SCRUB = {"CI", "VERSION", "REGISTRY", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "SOURCE_DATE_EPOCH"}


class BenchError(Exception):
    """A tool failed, or printed or pushed something that makes the comparison dishonest."""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)}
    env.setdefault("LC_ALL", "C.UTF-8")
    env.update(extra)
    return env


def find_buildspec() -> str:
    beside = Path(sys.executable).parent / "buildspec"  # the venv's console script
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("buildspec")
    if found is None:
        raise BenchError("no buildspec console script: pip install -e . into the venv, or pass --buildspec")
    return found


def hcl_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid HCL string for the text we write


def name_of(i: int) -> str:
    return f"img{i}"
