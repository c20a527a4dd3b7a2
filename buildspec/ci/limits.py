"""Keeping a pipeline inside the CI systems' own limits.

* GitLab: a job may list at most 50 jobs in ``needs:`` (``ci_max_needs``, the
  default on self-managed and GitLab.com) and GitLab.com's free tier refuses
  pipelines of more than 500 jobs.
* GitHub: a workflow run holds at most 256 jobs; a workflow file at most 500 KB.

The atomic publish gate is a stage boundary (GitLab) or one gate job (GitHub), never
a ``needs:`` list of every build. When one job per manifest would make the pipeline
too big, the manifest jobs are folded: each then runs ``buildspec run
--manifests-only`` for several images at once (``fold_manifests``).
"""

from __future__ import annotations

import dataclasses
import math

from buildspec.ci.model import ManifestJob, Pipeline
from buildspec.errors import UsageError

GITLAB_MAX_NEEDS = 50
GITLAB_MAX_JOBS = 500
GITHUB_MAX_JOBS = 256
GITHUB_MAX_BYTES = 500 * 1024


def one_publish_job(pipeline: Pipeline) -> Pipeline:
    """Every manifest job folded into one (``--one-publish-job``): its ``run --manifests-only
    A B ...`` moves no tag unless every index is in, across images, as ``run`` does."""
    if len(pipeline.manifests) < 2 or pipeline.manifest_needs:
        return pipeline  # eager builds that wait for a manifest job keep their jobs
    return _fold(pipeline, list(pipeline.manifests), [], 1)


def fold_manifests(pipeline: Pipeline, max_jobs: int, extra_jobs: int, system: str) -> Pipeline:
    """The pipeline with at most ``max_jobs`` jobs (``extra_jobs``: jobs the renderer adds),
    folding manifest jobs together as needed. Builds are never folded: each keeps its
    own runner."""
    room = max_jobs - len(pipeline.builds) - extra_jobs
    if len(pipeline.manifests) <= room:
        return pipeline
    if room < 1:
        raise UsageError(
            f"{len(pipeline.builds)} build jobs do not fit into one {system} pipeline of at most {max_jobs} jobs: "
            "generate one pipeline per group of targets (buildspec ci ... TARGET ...), "
            "or raise the limit with --max-jobs if your instance allows more")
    # A manifest job some build waits for (eager publishing, needs = [B]) keeps its own
    # job; the others may share one (a folded job needs the builds of all of its images).
    needed = {name for names in pipeline.manifest_needs.values() for name in names}
    kept = [job for job in pipeline.manifests if job.name in needed]
    foldable = [job for job in pipeline.manifests if job.name not in needed]
    room -= len(kept)
    if foldable and room < 1:
        raise UsageError(
            f"the pipeline would have more than {max_jobs} jobs, and with --publish eager builds wait for "
            f"{len(kept)} manifest jobs (needs = [...]), which cannot share a job: use --publish atomic, "
            "or generate one pipeline per group of targets")
    return _fold(pipeline, foldable, kept, room)


def _fold(pipeline: Pipeline, foldable: list[ManifestJob], kept: list[ManifestJob], room: int) -> Pipeline:
    size = math.ceil(len(foldable) / room) if foldable else 1
    folded = list(kept)
    for number, start in enumerate(range(0, len(foldable), size), start=1):
        chunk = foldable[start:start + size]
        first = chunk[0]
        argv = first.argv[:-1] + tuple(job.image for job in chunk)
        folded.append(ManifestJob(
            name=f"publish-{number}", node=",".join(job.node for job in chunk), image=first.image,
            needs=tuple(dict.fromkeys(need for job in chunk for need in job.needs)), argv=argv,
            wave=max(job.wave for job in chunk),
            record=tuple(step for job in chunk for step in job.record),
            record_vars={k: v for job in chunk for k, v in job.record_vars.items()},
        ))
    return dataclasses.replace(pipeline, manifests=tuple(folded))
