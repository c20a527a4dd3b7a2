#!/usr/bin/env python3
"""Start-up cost of buildspec, against a bare ``python -c pass`` of the same interpreter.

Each round runs, one after the other and in a rotating order, three fresh processes:

* ``PYTHON -c pass`` (PYTHON: the interpreter named in the console script's ``#!`` line),
* ``buildspec --version`` (the console script, as a user runs it),
* ``buildspec check`` in examples/quickstart (parse, evaluate and validate: the smallest
  command that reads a Buildfile; it runs ``git`` for the commit facts).

Reported: the median wall time and the median CPU time (user + system, ``os.wait4`` of the
child and of the children it waited for, i.e. ``git``) of each, and the ratios of the
medians against ``python -c pass``. Targets (issue 12): ``--version`` at most 3x and
``check`` at most 10x, in wall time. The CPU ratio is the steadier one on a busy machine.

    python bench/startup.py                  # 30 rounds
    python bench/startup.py --rounds 50 --json /tmp/startup.json

Exit status: 0 when every command ran (a missed target is printed, not an error), 1 when one
failed or printed something unexpected.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common import BenchError, clean_env, find_buildspec

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
TARGETS = {"version": 3.0, "check": 10.0}


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float


def run_once(argv: Sequence[str], cwd: Path, expect: str) -> Sample:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(list(argv), cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        printed = out.read().decode("utf-8", "replace")
        if os.waitstatus_to_exitcode(status) != 0 or expect not in printed:
            raise BenchError(f"{' '.join(argv)} failed or printed {printed!r}: "
                             f"{err.read().decode('utf-8', 'replace').strip()[-500:]}")
    return Sample(seconds, usage.ru_utime + usage.ru_stime)


def interpreter_of(script: str) -> str:
    """The Python that runs the console script (its ``#!`` line), else this one."""
    with open(script, "rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    if first.startswith("#!") and "python" in first:
        return first[2:].split()[0]
    return sys.executable


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of the three commands (default 30)")
    parser.add_argument("--buildspec", metavar="PATH", help="the buildspec console script (default: the venv's)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        exe = os.path.abspath(args.buildspec) if args.buildspec else find_buildspec()
        python = interpreter_of(exe)
        commands = {
            "python": ([python, "-c", "pass"], ""),
            "version": ([exe, "--version"], "buildspec "),
            "check": ([exe, "check"], "Buildfile: ok"),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for cmd, expect in commands.values():  # one untimed warm-up each (page cache, .pyc)
            run_once(cmd, QUICKSTART, expect)
        names = list(commands)
        for r in range(args.rounds):
            for name in names[r % 3:] + names[: r % 3]:
                cmd, expect = commands[name]
                samples[name].append(run_once(cmd, QUICKSTART, expect))
    except BenchError as e:
        print(f"startup: error: {e}", file=sys.stderr)
        return 1

    wall = {name: statistics.median(s.seconds for s in runs) for name, runs in samples.items()}
    cpu = {name: statistics.median(s.cpu_seconds for s in runs) for name, runs in samples.items()}
    print(f"start-up: medians of {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs; python = {python}")
    print(f"{'command':<22}{'wall ms':>9}{'cpu ms':>9}{'wall ratio':>12}{'cpu ratio':>11}")
    labels = {"python": "python -c pass", "version": "buildspec --version", "check": "buildspec check"}
    for name in commands:
        print(f"{labels[name]:<22}{wall[name] * 1000:>9.1f}{cpu[name] * 1000:>9.1f}"
              f"{wall[name] / wall['python']:>12.2f}{cpu[name] / max(cpu['python'], 1e-9):>11.2f}")
    for name, target in TARGETS.items():
        ratio = wall[name] / wall["python"]
        mark = "met" if ratio <= target else "MISSED"
        print(f"{labels[name]}: {ratio:.2f}x python -c pass (wall), target <= {target:g}x: {mark}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rounds": args.rounds, "loadavg": os.getloadavg()[0], "cpus": os.cpu_count(),
            "wall_s": wall, "cpu_s": cpu,
            "ratios": {name: wall[name] / wall["python"] for name in TARGETS},
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
