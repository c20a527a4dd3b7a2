#!/usr/bin/env python3
"""What a rerun costs when nothing changed: buildspec's up-to-date skipping against bake.

The workload is bench/run_overhead.py's (N small images, default 20, for linux/amd64 and
linux/arm64, each FROM the local multi-arch base with a COPY and a RUN step), as a
Buildfile and as the equivalent docker-bake.hcl. Each round, in fresh repositories:

1. ``docker buildx bake`` once (cold, not timed), then again: **bake warm** (everything
   cached; bake has no up-to-date mode, so this is its best rerun);
2. ``buildspec run`` once (cold, not timed), then ``buildspec run -B``: **buildspec -B warm**
   (every build forced, cache warm);
3. ``buildspec run`` again: **no-op rerun** (every input key found in the registry: nothing
   is built, no tag moves); it must report ``0 built, N up to date``;
4. one file of one image changed, ``buildspec run``: **one changed**; it must report
   ``1 built, N-1 up to date``, and that image's index must move.

The tools alternate who goes first from round to round. Printed: medians over the
rounds and the ratios ``no-op / bake warm`` (target at most 0.2) and ``no-op / -B warm``.
Every pushed index is checked (two platforms, each child's config matching).

    python bench/noop_rerun.py                 # 20 images, 3 rounds
    python bench/noop_rerun.py --rounds 5 --images 20

Exit status: 0 when everything ran and verified (a missed target is printed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from common import BenchError, clean_env, find_buildspec, name_of
from run_overhead import LOCK_FILE, default_registry, exclusive, generate, run_timed, source_state, verify

TARGET = 0.2  # no-op rerun / bake warm
COUNTS = re.compile(r"^images: (\d+) built, (\d+) up to date, (\d+) retagged$", re.M)


def counts(log: str) -> tuple[int, int, int]:
    found = COUNTS.search(log)
    if not found:
        raise BenchError(f"buildspec printed no build counts:\n{log[-2000:]}")
    return int(found[1]), int(found[2]), int(found[3])


def main(argv: Sequence[str] | None = None) -> int:
    registry, base = default_registry()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--registry", default=registry)
    parser.add_argument("--base", default=base)
    parser.add_argument("--buildspec", metavar="PATH")
    parser.add_argument("--docker", default=shutil.which("docker") or "docker")
    args = parser.parse_args(argv)
    exe = args.buildspec or find_buildspec()
    with exclusive(LOCK_FILE, log=True):
        try:
            return measure(args, exe)
        except BenchError as e:
            print(f"noop_rerun: {e}", file=sys.stderr)
            return 1


def bake_pair(argv: list[str], project: Path, env: dict[str, str], r: int) -> float:
    run_timed(argv, project, env, f"round {r} bake cold")
    return run_timed(argv, project, env, f"round {r} bake warm").seconds


def buildspec_runs(argv: list[str], project: Path, n: int, r: int) -> dict[str, float]:
    run_timed(argv, project, clean_env(), f"round {r} buildspec cold")
    forced = run_timed([*argv, "-B"], project, clean_env(), f"round {r} buildspec -B")
    if counts(forced.log)[0] != n:
        raise BenchError(f"round {r}: buildspec -B did not build all {n} images")
    noop = run_timed(argv, project, clean_env(), f"round {r} buildspec no-op")
    if counts(noop.log) != (0, n, 0):
        raise BenchError(f"round {r}: the no-op rerun did not find every image up to date: {counts(noop.log)}")
    changed = project / name_of(0) / "f"
    changed.write_text(f"{name_of(0)} {uuid.uuid4().hex}\n", encoding="utf-8")
    one = run_timed(argv, project, clean_env(), f"round {r} buildspec one changed")
    if counts(one.log) != (1, n - 1, 0):
        raise BenchError(f"round {r}: one changed file rebuilt {counts(one.log)}")
    return {"buildspec -B warm": forced.seconds, "no-op rerun": noop.seconds, "one changed": one.seconds}


def measure(args: argparse.Namespace, exe: str) -> int:
    uid = uuid.uuid4().hex[:8]
    root = Path(tempfile.mkdtemp(prefix="buildspec-noop-bench-"))
    project = root / "project"
    source = source_state()
    n = args.images
    generate(project, n, f"{args.registry}/bench-noop-{uid}/gen", args.base, exe)
    times: dict[str, list[float]] = {"bake warm": [], "buildspec -B warm": [], "no-op rerun": [], "one changed": []}
    try:
        for r in range(1, args.rounds + 1):
            prefix = f"{args.registry}/bench-noop-{uid}/r{r}"
            bake = [args.docker, "buildx", "bake", "-f", "docker-bake.hcl", "--progress", "plain"]
            spec = [exe, "run", "-f", "Buildfile", "--backend", "buildx", "--progress", "plain",
                    "--set", f"registry={prefix}-spec"]
            for first in ((True, False) if r % 2 else (False, True)):
                if first:
                    times["bake warm"].append(bake_pair(bake, project, clean_env(REGISTRY=f"{prefix}-bake"), r))
                else:
                    for key, value in buildspec_runs(spec, project, n, r).items():
                        times[key].append(value)
            verify(args.registry, f"{prefix}-bake", n, None)
            verify(args.registry, f"{prefix}-spec", n, None)
            print(f"  round {r}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["no-op rerun"] / med["bake warm"]
    print(f"noop_rerun: {n} images x 2 platforms, {args.rounds} rounds, medians (source {source})")
    for key, value in med.items():
        print(f"  {key:18s} {value:6.2f}s")
    print(f"  no-op rerun / bake warm          {ratio:.2f}x (target <= {TARGET}x: "
          f"{'met' if ratio <= TARGET else 'MISSED'})")
    print(f"  no-op rerun / buildspec -B warm  {med['no-op rerun'] / med['buildspec -B warm']:.2f}x")
    print(f"  one changed / bake warm          {med['one changed'] / med['bake warm']:.2f}x "
          "(only that image's builds run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
