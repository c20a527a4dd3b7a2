#!/usr/bin/env python3
"""What a generated GitLab pipeline, run with gitlab-ci-local, costs over `buildspec run`
of the same Buildfile on the same machine.

It copies an example (default: the quickstart, 2 images x linux/amd64 + linux/arm64) into a
temporary git repository and, for each round, times in this one process:

* ``run``: ``buildspec run --backend B``;
* ``ci``: ``buildspec ci gitlab --backend B`` (the jobs in this machine's shell, every
  runner tag off) then ``gitlab-ci-local`` of the written pipeline; the generation is
  reported on its own too.

Each (round, tool) pushes to its own repositories ``<registry>/bench-ci-<uid>/r<round>-<tool>``
(nothing is up to date, nothing found in the registry), and the order alternates from
round to round, since the first of the two warms BuildKit's cache for the second. Nothing
is pruned (the daemon is shared). After every run the index of every image is checked
with an HTTP request: an index listing exactly the example's platforms.

    python bench/ci_local.py                       # quickstart, buildx, 3 rounds
    python bench/ci_local.py --backend buildah --rounds 2
    python bench/ci_local.py --example matrix

Exit status 0 when everything ran and verified, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from common import BenchError, clean_env, find_buildspec

REPO = Path(__file__).resolve().parents[1]
SHELL = ["--job-image", "buildx=none", "--job-image", "buildah=none", "--job-image", "buildspec=none",
         "--runner", "linux/amd64=none", "--runner", "linux/arm64=none", "--runner", "default=none"]
IMAGES = {"quickstart": {"base": "1.0.0", "app": "1.0.0"}, "matrix": {"runtime": "slim-l1", "tool": "latest"}}
PLATFORMS = {("quickstart", "app"): 2, ("quickstart", "base"): 2, ("matrix", "runtime"): 2, ("matrix", "tool"): 1}


def timed(argv: list[str], cwd: Path) -> float:
    start = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} ... failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-2000:]}")
    return time.monotonic() - start


def verify(registry: str, prefix: str, example: str) -> None:
    for image, tag in IMAGES[example].items():
        repository = f"{prefix}/{image}".split("/", 1)[1]
        request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{tag}", headers={
            "Accept": "application/vnd.oci.image.index.v1+json"})
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the local registry)
            index = json.load(answer)
        platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index.get("manifests", [])}
        if len(platforms) != PLATFORMS[(example, image)]:
            raise BenchError(f"{prefix}/{image}:{tag} lists {sorted(platforms)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", choices=sorted(IMAGES), default="quickstart")
    parser.add_argument("--backend", choices=("buildx", "buildah"), default="buildx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    args = parser.parse_args()
    buildspec = find_buildspec()
    if shutil.which("gitlab-ci-local") is None:
        raise BenchError("gitlab-ci-local is not on PATH (scripts/setup-env.sh installs it)")
    uid = uuid.uuid4().hex[:8]
    times: dict[str, list[float]] = {"run": [], "ci": [], "generate": []}
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        folder = Path(tmp) / args.example
        shutil.copytree(REPO / "examples" / args.example, folder, ignore=shutil.ignore_patterns(".buildspec"))
        (folder / ".gitignore").write_text(".buildspec/\n.buildspec-ci/\n.gitlab-ci-local/\n.gitlab-ci.yml\n")
        git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
        for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"],
                     ["remote", "add", "origin", "https://gitlab.example.com/bench/example.git"]):
            subprocess.run([*git, *argv], cwd=folder, check=True, capture_output=True)
        for number in range(args.rounds):
            order = ["run", "ci"] if number % 2 == 0 else ["ci", "run"]
            for tool in order:
                prefix = f"{args.registry}/bench-ci-{uid}/r{number}-{tool}"
                common = ["--set", f"registry={prefix}", "--backend", args.backend]
                if tool == "run":
                    times["run"].append(timed([buildspec, "run", *common, "--progress", "plain"], folder))
                else:
                    generate = timed([buildspec, "ci", "gitlab", *common, *SHELL, "-o", ".gitlab-ci.yml"], folder)
                    pipeline = timed(["gitlab-ci-local", "--variable", f"BUILDSPEC={buildspec}"], folder)
                    times["generate"].append(generate)
                    times["ci"].append(generate + pipeline)
                verify(args.registry, prefix, args.example)
                print(f"round {number + 1} {tool:4}  {times[tool][-1]:6.1f}s", flush=True)
    run, ci = statistics.median(times["run"]), statistics.median(times["ci"])
    print(f"\n{args.example}, {args.backend}, {args.rounds} rounds (median wall time)")
    print(f"  buildspec run                      {run:6.1f}s")
    print(f"  ci gitlab + gitlab-ci-local        {ci:6.1f}s  (generation {statistics.median(times['generate']):.1f}s)")
    print(f"  ratio ci / run                     {ci / run:6.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ci_local: {error}", file=sys.stderr)
        sys.exit(1)
