"""doctor's test programs: each really is a program of its architecture that exits 42.

Each one runs under qemu-user's emulator for its architecture, called directly
(no binfmt_misc needed), so even architectures this machine has no binfmt
handler for are checked; amd64 also runs natively on an amd64 machine.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from buildspec.doctor import elf

ARCHES = ["amd64", "386", "arm64", "arm", "riscv64", "ppc64le", "s390x"]


@pytest.mark.parametrize("arch", ARCHES)
def test_the_program_exits_42_under_its_emulator(arch: str, tmp_path: Path) -> None:
    emulator = f"qemu-{elf.qemu_name(arch)}-static"
    if shutil.which(emulator) is None:
        pytest.fail(f"{emulator} is not installed (apt-get install qemu-user-static; scripts/setup-env.sh does)")
    program = tmp_path / arch
    program.write_bytes(elf.program(arch))
    program.chmod(0o755)
    done = subprocess.run([emulator, str(program)], capture_output=True, timeout=30, check=False)
    assert done.returncode == elf.EXIT_STATUS, done.stderr


def test_the_native_program_runs_without_emulation(tmp_path: Path) -> None:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    program = tmp_path / arch
    program.write_bytes(elf.program(arch))
    program.chmod(0o755)
    assert subprocess.run([str(program)], check=False, timeout=30).returncode == elf.EXIT_STATUS

