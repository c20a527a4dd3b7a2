"""``buildspec ci gitlab``: the graph as a GitLab CI pipeline.

* one job per build node, ``tags:`` choosing a runner of the platform's
  architecture, ``needs:`` exactly the graph's edges (a chain on arm64 never waits
  for amd64), each job in the stage of its topological wave;
* a build job exports the digest it pushed as a dotenv report
  (``BUILDSPEC_DIGEST_<JOB>=sha256:...``): GitLab turns it into a variable of every
  job that ``needs:`` it, which is how an ``image()`` pin stays a pin by digest;
* with atomic publishing the manifest jobs are in a last stage ``publish`` with no
  ``needs:``: GitLab starts them only when every job of the earlier stages succeeded
  (the gate is a stage boundary, not a 50-job ``needs:`` list);
* a job whose ``needs:`` would list more than 50 jobs has none and relies on its
  stage (its dependencies all are in earlier ones).
"""

from __future__ import annotations

from typing import Any

from buildspec.ci import limits
from buildspec.ci.model import BuildJob, CiOptions, ManifestJob, Pipeline, Where, job_image, runner_for
from buildspec.ci.shell import line, split_var, var, word

RUNNERS: dict[str, tuple[str, ...]] = {
    # GitLab.com's hosted runners; self-hosted ones: --runner PLATFORM=TAG
    "linux/amd64": ("saas-linux-small-amd64",),
    "linux/arm64": ("saas-linux-small-arm64",),
    "default": ("saas-linux-small-amd64",),
}
IMAGES: dict[str, str | None] = {
    "buildx": "docker:27",
    "kaniko": "gcr.io/kaniko-project/executor:v1.23.2-debug",  # the debug image has a shell
    "buildah": "quay.io/buildah/stable:v1.37",
    "buildspec": "python:3.12-slim",
}
DIND = "docker:27-dind"
CHILD = "buildspec-pipeline.yml"
DOTENV_DIR = ".buildspec-ci"


def _work(backend: str, node: str) -> str:
    # buildah keeps a whole image store in its work folder: outside the checkout, so
    # that a context at the repository root never contains it. kaniko's must be in the
    # checkout: kaniko wipes its own container's file system, but not the mounted builds dir.
    if backend == "buildah":
        return f"/tmp/buildspec-ci/{var('CI_JOB_ID')}/{node}"  # noqa: S108 (the job's own, by job id)
    return f"{var('CI_PROJECT_DIR')}/{DOTENV_DIR}/{node}"


WHERE = Where(checkout=var("CI_PROJECT_DIR"), work=_work)


def render(pipeline: Pipeline, options: CiOptions, max_jobs: int = limits.GITLAB_MAX_JOBS,
           max_needs: int = limits.GITLAB_MAX_NEEDS) -> dict[str, Any]:
    pipeline = limits.fold_manifests(pipeline, max_jobs, extra_jobs=0, system="GitLab")
    atomic = pipeline.publish == "atomic"
    waves = sorted({job.wave for job in pipeline.builds}
                   | ({job.wave for job in pipeline.manifests} if not atomic else set()))
    stage = {wave: f"wave-{number}" for number, wave in enumerate(waves, start=1)}
    document: dict[str, Any] = {
        "stages": [*stage.values(), *(["publish"] if atomic else [])],
        "variables": {
            "BUILDSPEC": {"value": "buildspec",
                          "description": "the command that runs buildspec in the manifest jobs"},
        },
    }
    for build in pipeline.builds:
        document[build.name] = _build_job(build, options, stage[build.wave], max_needs)
    for manifest in pipeline.manifests:
        document[manifest.name] = _manifest_job(manifest, options, "publish" if atomic else stage[manifest.wave],
                                                max_needs)
    return document


def _image(job: dict[str, Any], name: str | None, backend: str) -> None:
    if name is None:
        return  # "none": the runner's shell
    if backend == "kaniko":
        job["image"] = {"name": name, "entrypoint": [""]}  # kaniko's entrypoint is the executor
    else:
        job["image"] = name
    if backend == "buildx" and name == IMAGES["buildx"]:
        # docker:27 has the client and buildx, the daemon is a service next to it
        job["services"] = [DIND]
        job["variables"] = {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""}


def _needs(job: dict[str, Any], needs: tuple[str, ...], max_needs: int) -> None:
    if len(needs) <= max_needs:
        job["needs"] = list(needs)
    # else: no needs at all; the stage (after every dependency's) orders the job


def _build_job(build: BuildJob, options: CiOptions, stage: str, max_needs: int) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": stage}
    _image(job, job_image(options, build.backend, IMAGES), build.backend)
    tags = runner_for(options, build.platform, RUNNERS)
    if tags:
        job["tags"] = list(tags)
    _needs(job, build.needs, max_needs)
    dotenv = f"{DOTENV_DIR}/{build.name}.env"
    job["script"] = [
        *build.commands,
        f"BUILDSPEC_PUSHED=$({build.digest})",
        f"mkdir -p {DOTENV_DIR}",
        f'echo "{build.digest_var}=${{BUILDSPEC_PUSHED}}" > {word(dotenv)}',
        f'echo "{build.node}: pushed ${{BUILDSPEC_PUSHED}}"',
    ]
    job["artifacts"] = {"reports": {"dotenv": dotenv}}
    return job


def _manifest_job(manifest: ManifestJob, options: CiOptions, stage: str, max_needs: int) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": stage}
    _image(job, job_image(options, "buildspec", IMAGES), "buildspec")
    tags = runner_for(options, None, RUNNERS)
    if tags:
        job["tags"] = list(tags)
    if manifest.needs:
        _needs(job, manifest.needs, max_needs)
    job["script"] = [*(line(argv) for argv in manifest.record), line(manifest.argv)]
    return job


def render_trigger(options: CiOptions, regenerate: list[str]) -> dict[str, Any]:
    """The pipeline to commit as ``.gitlab-ci.yml``: a job generates the build pipeline in
    the pipeline itself (so its tags are this pipeline's, and --only-stale sees the
    registry as it is now), a trigger job runs it as a child pipeline."""
    generate: dict[str, Any] = {"stage": "generate"}
    _image(generate, job_image(options, "buildspec", IMAGES), "buildspec")
    tags = runner_for(options, None, RUNNERS)
    if tags:
        generate["tags"] = list(tags)
    generate["script"] = [line([split_var("BUILDSPEC"), "ci", "gitlab", *regenerate, "-o", CHILD])]
    generate["artifacts"] = {"paths": [CHILD]}
    return {
        "stages": ["generate", "build"],
        "variables": {
            "BUILDSPEC": {"value": "buildspec",
                          "description": "the command that runs buildspec in the generate and manifest jobs"},
        },
        "buildspec-generate": generate,
        "buildspec-pipeline": {
            "stage": "build",
            "needs": ["buildspec-generate"],
            "trigger": {"include": [{"artifact": CHILD, "job": "buildspec-generate"}], "strategy": "depend"},
        },
    }
