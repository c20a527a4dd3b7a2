"""Fuzzing at scale: the parser, the evaluator and the CLI over many generated inputs.

    python bench/fuzz.py                          # 100,000 Buildfiles + 20,000 argv lists
    python bench/fuzz.py --buildfiles 5000 --argv 1000 --budget 120
    python bench/fuzz.py --workers 2              # one process per CPU, each its own share

Two phases, each driven by hypothesis (generation only: no shrinking, no example
database, no deadline: a failure is recorded and the run goes on):

* **Buildfiles**: every valid Buildfile of the repository (the root one and
  examples/*), mutated 1-3 times the way people and editors break files
  (tests/unit/test_fuzz_buildfiles.py: slices deleted, tokens and whole lines
  inserted, tokens swapped, lines duplicated, random bytes), and `buildspec
  check` run on each, in-process; when check passes, `plan --format json
  --commands` too.
* **argv**: `check` and `plan` with generated options and `--set NAME=VALUE`
  pairs (names and values from a vocabulary of real and broken ones).

Every input must end with exit status 0 or 2 (never anything else, never a
traceback or an exception escaping `main`), and within HANG_SECONDS of CPU time (the
wall clock of a shared machine counts other processes too; the slowest wall time is
reported beside it). The figures
(inputs, time, rate, the slowest input, exit codes) are printed as JSON; exit
status 1 if any input failed. The CI suite keeps the fast property test
(tests/unit/test_fuzz_buildfiles.py); this is the long run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "unit")]

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_fuzz_buildfiles import NAMES, mutated, mutations  # noqa: E402

from buildspec.cli import main  # noqa: E402

HANG_SECONDS = 1.0
GC_EVERY = 200  # inputs between two (untimed) collections

SET_NAMES = ["registry", "version", "platforms", "backend", "publish", "builder", "short_sha_length",
             "version_scheme", "default_branch", "busybox", "nope", "", "=", "a.b", "REGISTRY", "x" * 200]
SET_VALUES = ["", "1.0.0", "v2.0.0-rc.1", "linux/amd64,linux/arm64", "linux/amd64,", "linux/nope", "kaniko",
              "eager", "atomic", "calver", "pep440", "100", "-1", "127.0.0.1:5000/x", "Upper/Case", "{version}",
              "{", "a=b", "\u00e9", "\x00", "x" * 300]
OPTIONS = ["--commands", "--explain", "--no-merge", "--no-bake", "--manifests-only", "--format", "text", "json",
           "dot", "mermaid", "yaml", "--backend", "buildx", "buildah", "kaniko", "auto", "nope", "--publish",
           "atomic", "eager", "--platform", "linux/arm64", "linux/arm/v7", "linux", "--insecure-registry",
           "registry.lan:5000", "--kaniko-executor", "/nope", "-f", "Buildfile", "Nofile", "app", "base",
           "default", "ghost", "-j", "0", "--set", "--", "-", ""]


class Stats:
    def __init__(self) -> None:
        self.count = 0
        self.codes: Counter[int] = Counter()
        self.failures: list[dict[str, Any]] = []
        self.slow: list[tuple[float, str]] = []
        self.slowest = (0.0, "")  # in CPU seconds
        self.slowest_wall = 0.0

    def run(self, argv: list[str], label: str) -> int:
        # The cyclic GC runs between inputs, never inside one: this long-lived process holds
        # hypothesis' data, and a full collection of it (up to 1.7 s of CPU) landing in one
        # input's call is not that input's time. A real `buildspec` process starts empty.
        if self.count % GC_EVERY == 0:
            gc.collect()
        gc.disable()
        out, err = io.StringIO(), io.StringIO()
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main(argv)
        except SystemExit as exit_:  # argparse exits by itself on bad options (status 2)
            status = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException as error:
            status = -1
            self.failures.append({"input": label, "argv": argv, "error": f"{type(error).__name__}: {error}"})
        elapsed = time.perf_counter() - started
        # A hang is measured in CPU time: on a shared machine the wall clock also counts
        # the time other processes had the CPU (no input waits: no network, no git here).
        cpu = time.process_time() - cpu_started
        self.count += 1
        self.codes[status] += 1
        text = out.getvalue() + err.getvalue()
        # (the header Python prints: a generated argv may hold the word, and argparse echoes it)
        if status not in (-1, 0, 2) or "Traceback (most recent call last)" in text:
            self.failures.append({"input": label, "argv": argv, "status": status, "output": text[-2000:]})
        if cpu > HANG_SECONDS:
            self.slow.append((cpu, label))
        if cpu > self.slowest[0]:
            self.slowest = (cpu, label)
        self.slowest_wall = max(self.slowest_wall, elapsed)
        return status

    def merge(self, other: Stats) -> None:
        self.count += other.count
        self.codes.update(other.codes)
        self.failures += other.failures
        self.slow += other.slow
        self.slowest = max(self.slowest, other.slowest)
        self.slowest_wall = max(self.slowest_wall, other.slowest_wall)

    def figures(self, elapsed: float) -> dict[str, Any]:
        return {
            "inputs": self.count,
            "seconds": round(elapsed, 1),
            "per_second": round(self.count / elapsed, 1) if elapsed else None,
            "failures": len(self.failures),
            "over_1s_cpu": len(self.slow),
            "slowest_cpu_seconds": round(self.slowest[0], 3),
            "slowest_wall_seconds": round(self.slowest_wall, 3),
            "exit_codes": {str(k): v for k, v in sorted(self.codes.items())},
        }


def workspace(root: Path) -> dict[str, Path]:
    """Each source's folder (contexts included) under ``root``; an environment without git."""
    places = {}
    for name in NAMES:
        target = root / name
        if name == "root":
            target.mkdir()
            shutil.copy(REPO / "Buildfile", target / "Buildfile")
            shutil.copy(REPO / "Dockerfile", target / "Dockerfile")
        else:
            shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns(".buildspec"))
        places[name] = target
    (root / "bin").mkdir()
    keep = {k: os.environ[k] for k in ("PYTHONPATH", "TMPDIR", "LANG", "LC_ALL") if k in os.environ}
    os.environ.clear()
    os.environ.update({**keep, "PATH": str(root / "bin"), "HOME": str(root), "SOURCE_DATE_EPOCH": "1767323045",
                       "GIT_CEILING_DIRECTORIES": str(root)})
    return places


def fuzz_buildfiles(places: dict[str, Path], stats: Stats, examples: int, deadline: float, seed_: int) -> None:
    @seed(seed_)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(NAMES), st.lists(mutations, min_size=1, max_size=3))
    def one(name: str, changes: list[Any]) -> None:
        if time.monotonic() > deadline:
            return
        path = places[name] / "Fuzzfile"
        path.write_bytes(mutated(name, changes))
        label = f"{name} {changes!r}"[:500]
        if stats.run(["check", "-f", str(path)], label) == 0:
            stats.run(["plan", "-f", str(path), "--backend", "buildx", "--format", "json", "--commands"], label)

    one()


_ARGV = st.lists(st.one_of(
    st.sampled_from(OPTIONS),
    st.tuples(st.sampled_from(SET_NAMES), st.sampled_from(SET_VALUES)).map(lambda p: f"--set={p[0]}={p[1]}"),
    st.text(max_size=12),
), max_size=8)


def fuzz_argv(places: dict[str, Path], stats: Stats, examples: int, deadline: float, seed_: int) -> None:
    @seed(seed_)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["check", "plan"]), st.sampled_from(NAMES), _ARGV)
    def one(command: str, name: str, rest: list[str]) -> None:
        if time.monotonic() > deadline:
            return
        argv = [command, "-f", str(places[name] / "Buildfile"), *(a.replace("\x00", "") for a in rest)]
        stats.run(argv, f"{name} {argv!r}"[:500])

    one()


PHASES = {"buildfiles": fuzz_buildfiles, "argv": fuzz_argv}


def worker(phase: str, examples: int, deadline: float, seed_: int) -> Stats:
    """One process's share of a phase, in a workspace of its own."""
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="buildspec-fuzz-") as tmp:
        places = workspace(Path(tmp))
        # Warm up (imports, the grammar, the registry client of plan's lookups): the first
        # call of each would otherwise be the slowest input.
        Stats().run(["check", "-f", str(places[NAMES[0]] / "Buildfile")], "warm-up")
        Stats().run(["plan", "-f", str(places[NAMES[0]] / "Buildfile"), "--backend", "buildx", "--format", "json"],
                    "warm-up")
        PHASES[phase](places, stats, examples, deadline, seed_)
    return stats


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buildfiles", type=int, default=100_000)
    parser.add_argument("--argv", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=3600, help="seconds for both phases together")
    parser.add_argument("--workers", type=int, default=1, help="processes per phase (default 1)")
    parser.add_argument("--seed", type=int, help="hypothesis seed of the first worker (default: random)")
    args = parser.parse_args()
    import multiprocessing
    import random

    started = time.monotonic()
    deadline = started + args.budget
    first_seed = args.seed if args.seed is not None else random.randrange(2**32)
    results: dict[str, Any] = {"workers": args.workers, "seed": first_seed}
    for phase, count in (("buildfiles", args.buildfiles), ("argv", args.argv)):
        if count <= 0:
            continue
        shares = [count // args.workers + (1 if n < count % args.workers else 0) for n in range(args.workers)]
        jobs = [(phase, share, deadline, first_seed + n) for n, share in enumerate(shares)]
        phase_start = time.monotonic()
        if args.workers == 1:
            parts = [worker(*jobs[0])]
        else:  # fork: each child gets the same imports, then its own seed and workspace
            with multiprocessing.get_context("fork").Pool(args.workers) as pool:
                parts = pool.starmap(worker, jobs)
        stats = Stats()
        for part in parts:
            stats.merge(part)
        results[phase] = stats.figures(time.monotonic() - phase_start)
        results[phase]["examples"] = [f for f in stats.failures[:5]]
        results[phase]["slow_inputs"] = [label for _, label in sorted(stats.slow, reverse=True)[:5]]
    results["budget_exhausted"] = time.monotonic() > deadline
    print(json.dumps(results, indent=2, ensure_ascii=False))
    failed = any(results[phase]["failures"] or results[phase]["over_1s_cpu"] for phase in PHASES if phase in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main_())
