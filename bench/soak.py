"""Soak: a generated 200-node release with random build failures, run with `-k`.

    python bench/soak.py                       # 66 images x 2 platforms, --no-merge: 200 nodes
    python bench/soak.py --images 30 --fail 0.2 --seed 7

It writes, in a temporary folder, a Buildfile of N images for linux/amd64 and
linux/arm64 (every fifth image starts a chain, the others build on the previous
one with ``image()``), where a random share of the images (``--fail``) has a
Dockerfile whose RUN step exits 1. Then it runs, against the local registry
(127.0.0.1:5000, a repository prefix of its own):

1. ``run -k --no-merge --publish eager``: what can be published is;
2. ``run -k --no-merge`` (atomic): a failed build means no tag at all.

and checks that the summary (stderr), the ``--metadata-file`` and the registry
(read with skopeo) agree, image by image:

* an image is "succeeded" in the metadata iff the summary says so iff every one
  of its tags is in the registry, all pointing at the metadata's index digest;
* an image whose build failed, or that depends on one, has none of its tags in the
  registry (no partial tag set), and its status says why;
* the failed images are exactly those the generator broke, plus those that depend
  on them (not run);
* with atomic publishing, no image has any tag;
* no process started by the runs is left (nothing whose command line names the
  run's repository prefix).

Prints the figures as JSON (nodes, images, failures, durations); exit 1 if a
check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ("linux/amd64", "linux/arm64")
CHAIN = 5
TAGS = ("1.0.0", "stable")


def generate(root: Path, images: int, fail: float, seed: int, registry: str, busybox: str) -> set[str]:
    """The project; returns the names of the images made to fail."""
    rng = random.Random(seed)
    broken = {f"img{i:03d}" for i in range(images) if rng.random() < fail}
    lines = [f'registry = "{registry}"', f'platforms = [{", ".join(PLATFORMS)}]', ""]
    for i in range(images):
        name = f"img{i:03d}"
        folder = root / name
        folder.mkdir()
        (folder / "file.txt").write_text(f"{name}\n")
        base = busybox if i % CHAIN == 0 else None
        fail_step = 'RUN echo "injected failure" && exit 1\n' if name in broken else ""
        (folder / "Dockerfile").write_text(f"ARG BASE\nFROM ${{BASE}}\nCOPY file.txt /{name}.txt\n{fail_step}")
        arg = f'"{base}"' if base else f"image(img{i - 1:03d})"
        lines += [f"image {name} {{", f'    context = "{name}"', f"    args {{ BASE = {arg} }}",
                  f'    tags = [{", ".join(json.dumps(t) for t in TAGS)}]', "}", ""]
    (root / "Buildfile").write_text("\n".join(lines))
    return broken


def expected_failures(images: int, broken: set[str]) -> set[str]:
    """The broken images and every image of a chain after one."""
    failed = set()
    for i in range(images):
        name = f"img{i:03d}"
        if name in broken or (i % CHAIN and f"img{i - 1:03d}" in failed):
            failed.add(name)
    return failed


def skopeo_tags(repository: str) -> list[str]:
    done = subprocess.run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{repository}"],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        if "404" in done.stderr or "NAME_UNKNOWN" in done.stderr or "unknown" in done.stderr.lower():
            return []
        raise RuntimeError(f"skopeo list-tags {repository}: {done.stderr}")
    return sorted(json.loads(done.stdout).get("Tags") or [])


def skopeo_digest(ref: str) -> str:
    done = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
                          capture_output=True, timeout=120, check=True)
    return "sha256:" + hashlib.sha256(done.stdout).hexdigest()


def leftovers(prefix: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if prefix in cmdline:
                found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def one_run(root: Path, prefix: str, publish: str, images: int, failed: set[str], jobs: int) -> dict[str, Any]:
    metadata = root / f"metadata-{publish}.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "buildspec", "run", "-k", "--no-merge", "--publish", publish,
                           "-j", str(jobs), "--progress", "plain", "--metadata-file", str(metadata)],
                          cwd=root, capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, "CI": "true", "PYTHONPATH": str(REPO),
                               "XDG_STATE_HOME": str(root / f"state-{publish}")})
    seconds = time.monotonic() - started
    problems: list[str] = []
    if done.returncode != (1 if failed else 0):
        problems.append(f"exit {done.returncode}")
    document = json.loads(metadata.read_text())
    nodes = len(document["nodes"])
    summary = {m[1]: m[2] for m in re.finditer(r"^(img\d+)  (\S+)  ", done.stderr, re.M)}
    for image in document["images"]:
        name, status = image["name"], image["status"]
        tags = skopeo_tags(f"{image['repository']}")
        release = [t for t in tags if t in TAGS]
        if summary.get(name) != status:
            problems.append(f"{name}: summary says {summary.get(name)}, metadata {status}")
        should_publish = publish == "eager" and name not in failed
        if should_publish:
            if status != "succeeded" or sorted(release) != sorted(TAGS) or sorted(image["tags"]) != sorted(TAGS):
                problems.append(f"{name}: {status}, tags {release} in the registry, {image['tags']} in the metadata")
            else:
                digests = {skopeo_digest(f"{image['repository']}:{t}") for t in TAGS}
                if digests != {image["index_digest"]}:
                    problems.append(f"{name}: registry {digests} != metadata {image['index_digest']}")
        else:
            if release:
                problems.append(f"{name}: {status}, but the registry has {release} (partial or unexpected)")
            if image["tags"]:
                problems.append(f"{name}: {status}, but the metadata lists tags {image['tags']}")
            expected = ("failed", "not_run") if name in failed else ("not_run",)
            if status not in expected:
                problems.append(f"{name}: status {status}, expected one of {expected}")
    time.sleep(1)
    left = leftovers(prefix)
    if left:
        problems.append(f"processes left: {left[:3]}")
    causes = [line.split("): ", 1)[-1][:300] for log in (root / f"state-{publish}").rglob("*.log")
              for line in log.read_text(errors="replace").splitlines() if "transient registry error" in line]
    return {"publish": publish, "exit": done.returncode, "seconds": round(seconds, 1), "nodes": nodes,
            "published": sum(1 for i in document["images"] if i["tags"]), "problems": problems,
            "retries": document.get("retries", {}), "retry_causes": causes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=66, help="images of 2 platforms (66: 200 nodes)")
    parser.add_argument("--fail", type=float, default=0.1, help="share of images whose build fails")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--busybox", default="127.0.0.1:5000/busybox:1")
    args = parser.parse_args()
    prefix = f"{args.registry}/soak/{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="buildspec-soak-") as tmp:
        root = Path(tmp)
        broken = generate(root, args.images, args.fail, args.seed, prefix, args.busybox)
        failed = expected_failures(args.images, broken)
        runs = [one_run(root, prefix, "eager", args.images, failed, args.jobs)]
        # atomic, into fresh repositories: a failure anywhere means no tag anywhere
        atomic_prefix = prefix + "-atomic"
        (root / "Buildfile").write_text((root / "Buildfile").read_text().replace(prefix, atomic_prefix))
        runs.append(one_run(root, atomic_prefix, "atomic", args.images, failed | set(
            f"img{i:03d}" for i in range(args.images)) if failed else set(), args.jobs))
    figures = {"images": args.images, "broken": len(broken), "failed_or_not_run": len(failed), "runs": runs}
    print(json.dumps(figures, indent=2))
    return 1 if any(run["problems"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
