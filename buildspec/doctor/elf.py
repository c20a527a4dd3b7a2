"""Tiny static Linux programs, one per architecture, that only ``exit(42)``.

``doctor`` proves that this machine can run a platform's programs by running
one, not by reading /proc/sys/fs/binfmt_misc: the kernel either runs it
(natively, or through a binfmt_misc handler such as qemu-user) and we see exit
status 42, or refuses it (ENOEXEC: no handler). The programs are written here
byte by byte (an ELF header, one loadable segment, three instructions), so the
check needs no image, no download and no compiler. Each one is verified under
its qemu-user emulator in tests/unit/test_doctor_elf.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EXIT_STATUS = 42


@dataclass(frozen=True)
class _Arch:
    machine: int  # e_machine
    bits: int  # 32 or 64
    little: bool
    flags: int  # e_flags
    code: bytes
    qemu: str  # the name of qemu-user's emulator and binfmt entry: qemu-<qemu>


def _words(*words: int, little: bool = True) -> bytes:
    return b"".join(struct.pack("<I" if little else ">I", w) for w in words)


# exit(42) in each instruction set: load 42 into the first argument register,
# the exit syscall number into the syscall register, and trap.
_ARCHES: dict[str, _Arch] = {
    # mov edi, 42; mov eax, 60 (exit); syscall
    "amd64": _Arch(62, 64, True, 0, bytes.fromhex("bf2a000000b83c0000000f05"), "x86_64"),
    # mov ebx, 42; mov eax, 1 (exit); int 0x80
    "386": _Arch(3, 32, True, 0, bytes.fromhex("bb2a000000b801000000cd80"), "i386"),
    # mov x0, #42; mov x8, #93 (exit); svc #0
    "arm64": _Arch(183, 64, True, 0, _words(0xD2800540, 0xD2800BA8, 0xD4000001), "aarch64"),
    # mov r0, #42; mov r7, #1 (exit); svc #0   (EABI version 5)
    "arm": _Arch(40, 32, True, 0x05000000, _words(0xE3A0002A, 0xE3A07001, 0xEF000000), "arm"),
    # li a0, 42; li a7, 93 (exit); ecall
    "riscv64": _Arch(243, 64, True, 0, _words(0x02A00513, 0x05D00893, 0x00000073), "riscv64"),
    # li r3, 42; li r0, 1 (exit); sc   (ELFv2 ABI)
    "ppc64le": _Arch(21, 64, True, 2, _words(0x3860002A, 0x38000001, 0x44000002), "ppc64le"),
    # lghi %r2, 42; svc 1 (exit)
    "s390x": _Arch(22, 64, False, 0, bytes.fromhex("a729002a0a01"), "s390x"),
}


def supported(arch: str) -> bool:
    return arch in _ARCHES


def qemu_name(arch: str) -> str:
    """``aarch64`` for arm64: the suffix of qemu-user's emulator and binfmt entry."""
    return _ARCHES[arch].qemu


def program(arch: str) -> bytes:
    """A static ELF executable for ``arch`` (an OCI architecture name) that exits with 42."""
    spec = _ARCHES[arch]
    end = "<" if spec.little else ">"
    ident = b"\x7fELF" + bytes([1 if spec.bits == 32 else 2, 1 if spec.little else 2, 1, 0]) + bytes(8)
    if spec.bits == 64:
        base, header, phsize = 0x400000, 64, 56
        entry = base + header + phsize
        size = header + phsize + len(spec.code)
        elf = ident + struct.pack(f"{end}HHIQQQIHHHHHH", 2, spec.machine, 1, entry, header, 0, spec.flags,
                                  header, phsize, 1, 0, 0, 0)
        phdr = struct.pack(f"{end}IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    else:
        base, header, phsize = 0x10000, 52, 32
        entry = base + header + phsize
        size = header + phsize + len(spec.code)
        elf = ident + struct.pack(f"{end}HHIIIIIHHHHHH", 2, spec.machine, 1, entry, header, 0, spec.flags,
                                  header, phsize, 1, 0, 0, 0)
        phdr = struct.pack(f"{end}IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000)
    return elf + phdr + spec.code
