"""Shell completion in real shells: bash (the completion function as bash calls it),
zsh (typed with a Tab into an interactive zsh under zpty, so compinit, _arguments
and ZLE really run: tests/e2e/completion_capture.zsh) and fish (``complete -C``).

Each shell completes commands, options, option values and targets read from the
Buildfile (the one after -f, else ./Buildfile), and nothing from a broken one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPTURE = Path(__file__).resolve().parent / "completion_capture.zsh"

def _commands() -> set[str]:
    """Every command of the CLI (hidden ones start with '_'), from the parser itself."""
    import argparse

    from buildspec.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name in sub.choices if not name.startswith("_")}


CASES = [
    ("buildspec ", _commands()),
    ("buildspec plan --format ", {"text", "json", "dot", "mermaid"}),
    ("buildspec run ", {"app", "base", "default"}),
    ("buildspec plan -f ../matrix/Buildfile runtime-s", {"runtime-slim-1", "runtime-slim-2"}),
    ("buildspec completion ", {"bash", "zsh", "fish"}),
    ("buildspec check --form", {"--format"}),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("completion")
    for name in ("quickstart", "matrix"):
        shutil.copytree(REPO / "examples" / name, root / name)
    scripts = root / "scripts"
    scripts.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    for shell in ("bash", "zsh", "fish"):
        done = subprocess.run([sys.executable, "-m", "buildspec", "completion", shell], env=env,
                              capture_output=True, text=True, check=True)
        (scripts / shell).write_text(done.stdout)
    return root / "quickstart", env | {"SCRIPTS": str(scripts)}


def bash(line: str, cwd: Path, env: dict[str, str]) -> set[str]:
    program = (f'source "$SCRIPTS/bash"; COMP_LINE={_quote(line)}; read -ra COMP_WORDS <<< "$COMP_LINE"; '
               '[[ $COMP_LINE == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
               '_buildspec; printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", program], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    return {line for line in done.stdout.splitlines() if line}


def zsh(line: str, cwd: Path, env: dict[str, str], tmp_path: Path) -> set[str]:
    out = tmp_path / "zsh-hits"
    out.unlink(missing_ok=True)
    subprocess.run(["zsh", str(CAPTURE), line, f"{env['SCRIPTS']}/zsh", str(out)], cwd=cwd, env=env,
                   capture_output=True, check=True, timeout=60)
    return set(out.read_text().split()) if out.exists() else set()


def fish(line: str, cwd: Path, env: dict[str, str]) -> set[str]:
    program = f'source "$SCRIPTS/fish"; complete -C {_quote(line)}'
    done = subprocess.run(["fish", "-c", program], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    return {line.split("\t")[0] for line in done.stdout.splitlines() if line}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_bash(line: str, expected: set[str], workspace: tuple[Path, dict[str, str]],
              require_tools: Callable[..., None]) -> None:
    require_tools("bash")
    assert bash(line, *workspace) == expected


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_zsh(line: str, expected: set[str], workspace: tuple[Path, dict[str, str]], tmp_path: Path,
             require_tools: Callable[..., None]) -> None:
    require_tools("zsh")
    assert zsh(line, *workspace, tmp_path) == expected


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_fish(line: str, expected: set[str], workspace: tuple[Path, dict[str, str]],
              require_tools: Callable[..., None]) -> None:
    require_tools("fish")
    assert fish(line, *workspace) == expected


def test_a_broken_buildfile_completes_no_target(workspace: tuple[Path, dict[str, str]], tmp_path: Path,
                                                require_tools: Callable[..., None]) -> None:
    require_tools("bash", "fish")
    _, env = workspace
    (tmp_path / "Buildfile").write_text("image a {\n")
    assert bash("buildspec run ", tmp_path, env) == set()
    assert fish("buildspec run ", tmp_path, env) == set()
    done = subprocess.run([sys.executable, "-m", "buildspec", "__targets"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")
