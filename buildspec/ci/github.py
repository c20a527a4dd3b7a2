"""``buildspec ci github``: the graph as a GitHub Actions workflow.

* one job per build node, ``runs-on:`` a runner of the platform's architecture
  (``ubuntu-24.04-arm`` for linux/arm64), ``needs:`` exactly the graph's edges;
* a build job publishes the digest it pushed as its output ``digest``; a dependent
  job reads it through ``needs.<job>.outputs.digest`` into an environment variable
  (never straight into the script: expressions in ``run:`` are text substitution);
* with atomic publishing one ``publish-gate`` job needs every build and every
  manifest job needs the gate; with eager publishing a manifest job needs its
  image's builds;
* a workflow run holds at most 256 jobs: manifest jobs are folded when needed
  (limits.py).
"""

from __future__ import annotations

from typing import Any

from buildspec.ci import limits
from buildspec.ci.model import BuildJob, CiOptions, ManifestJob, Pipeline, Where, job_image, runner_for
from buildspec.ci.shell import line, var

RUNNERS: dict[str, tuple[str, ...]] = {
    "linux/amd64": ("ubuntu-24.04",),
    "linux/arm64": ("ubuntu-24.04-arm",),
    "default": ("ubuntu-24.04",),
}
IMAGES: dict[str, str | None] = {
    "buildx": None,  # GitHub's Ubuntu runners have Docker with buildx
    "kaniko": "gcr.io/kaniko-project/executor:v1.23.2-debug",  # the debug image has a shell
    "buildah": None,  # and buildah
    "buildspec": None,
}
CHECKOUT = "actions/checkout@v4"
QEMU = "docker/setup-qemu-action@v3"
GATE = "publish-gate"
PLAN = "buildspec-plan"
PLAN_ENV = "BUILDSPEC_PLAN"
_PLAN_OUTPUT = f"fromJSON(needs.{PLAN}.outputs.plan)"
_GO_ON = "!cancelled() && !failure()"  # a skipped (up-to-date) build does not stop its dependents


def _work(backend: str, node: str) -> str:
    return f"{var('RUNNER_TEMP')}/buildspec/{node}"


WHERE = Where(checkout=var("GITHUB_WORKSPACE"), work=_work)


def render(pipeline: Pipeline, options: CiOptions, name: str, max_jobs: int = limits.GITHUB_MAX_JOBS,
           plan: list[str] | None = None) -> dict[str, Any]:
    """``plan``: the argv of the plan job (--only-stale): its output ``plan`` says which
    builds are up to date, and those jobs are skipped (their digests come from it)."""
    atomic = pipeline.publish == "atomic"
    extra = (1 if atomic else 0) + (1 if plan else 0)
    pipeline = limits.fold_manifests(pipeline, max_jobs, extra_jobs=extra, system="GitHub Actions")
    jobs: dict[str, Any] = {}
    if plan:
        jobs[PLAN] = {
            "name": "which builds are stale",
            "runs-on": _runs_on(runner_for(options, None, RUNNERS)),
            "outputs": {"plan": "${{ steps.plan.outputs.plan }}"},
            "steps": [{"uses": CHECKOUT}, {"id": "plan", "run": line(plan) + ' >> "$GITHUB_OUTPUT"\n'}],
        }
        _container(jobs[PLAN], job_image(options, "buildspec", IMAGES))
    for build in pipeline.builds:
        jobs[build.name] = _build_job(build, options)
        if plan:
            _skip_when_fresh(jobs[build.name], build)
    if atomic and pipeline.manifests:
        jobs[GATE] = {
            "name": "every build succeeded (atomic publishing)",
            "runs-on": _runs_on(runner_for(options, None, RUNNERS)),
            "needs": [build.name for build in pipeline.builds],
            "steps": [{"run": "echo every build job succeeded: publishing the indexes"}],
        }
        if plan:
            jobs[GATE]["if"] = f"${{{{ {_GO_ON} }}}}"
    for manifest in pipeline.manifests:
        # a record step reads the digests of its image's builds: their outputs need a direct needs:
        needs = (GATE,) if atomic else manifest.needs
        needs = tuple(dict.fromkeys([*needs, *manifest.record_vars.values(), *([PLAN] if plan else [])]))
        jobs[manifest.name] = _manifest_job(manifest, options, needs)
        if plan:
            job = jobs[manifest.name]
            job["if"] = f"${{{{ {_GO_ON} }}}}"
            job["env"] = {PLAN_ENV: f"${{{{ needs.{PLAN}.outputs.plan }}}}", **job.get("env", {})}
    return {
        "name": name,
        "on": {"push": {}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "env": {"BUILDSPEC": "buildspec"},
        "jobs": jobs,
    }


def _skip_when_fresh(job: dict[str, Any], build: BuildJob) -> None:
    """The build job runs unless the plan job found its image up to date; a pin on an
    up-to-date dependency takes the digest from the plan job's output."""
    job["needs"] = [PLAN, *job.get("needs", [])]
    job["if"] = f"${{{{ {_GO_ON} && !{_PLAN_OUTPUT}.fresh['{build.node}'] }}}}"
    for variable, needed in build.pins.items():
        job["env"][variable] = (f"${{{{ needs.{needed}.outputs.digest || "
                                f"{_PLAN_OUTPUT}.fresh['{build.pin_nodes[variable]}'] }}}}")
    # keep the keys in a readable order: name, runs-on, needs, if, ...
    order = ["name", "runs-on", "needs", "if"]
    for key in [*order, *[k for k in job if k not in order]]:
        if key in job:
            job[key] = job.pop(key)


def _runs_on(labels: tuple[str, ...]) -> str | list[str]:
    if not labels:
        return "ubuntu-24.04"
    return labels[0] if len(labels) == 1 else list(labels)


def _container(job: dict[str, Any], image: str | None) -> None:
    if image is not None:
        job["container"] = {"image": image}


def _build_job(build: BuildJob, options: CiOptions) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": build.node,
        "runs-on": _runs_on(runner_for(options, build.platform, RUNNERS)),
    }
    if build.needs:
        job["needs"] = list(build.needs)
    _container(job, job_image(options, build.backend, IMAGES))
    if build.pins:
        job["env"] = {variable: f"${{{{ needs.{needed}.outputs.digest }}}}" for variable, needed in build.pins.items()}
    job["outputs"] = {"digest": "${{ steps.build.outputs.digest }}"}
    steps: list[dict[str, Any]] = [{"uses": CHECKOUT}]
    if build.emulated and build.backend != "kaniko":
        steps.append({"uses": QEMU})
    script = [
        "set -eu",
        *build.commands,
        f"BUILDSPEC_PUSHED=$({build.digest})",
        'echo "digest=${BUILDSPEC_PUSHED}" >> "$GITHUB_OUTPUT"',
        f'echo "{build.node}: pushed ${{BUILDSPEC_PUSHED}}"',
    ]
    steps.append({"id": "build", "run": "\n".join(script) + "\n"})
    job["steps"] = steps
    return job


def _manifest_job(manifest: ManifestJob, options: CiOptions, needs: tuple[str, ...]) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": manifest.node,
        "runs-on": _runs_on(runner_for(options, None, RUNNERS)),
    }
    if needs:
        job["needs"] = list(needs)
    _container(job, job_image(options, "buildspec", IMAGES))
    if manifest.record_vars:
        job["env"] = {variable: f"${{{{ needs.{needed}.outputs.digest }}}}"
                      for variable, needed in manifest.record_vars.items()}
    script = [*(line(argv) for argv in manifest.record), line(manifest.argv)]
    job["steps"] = [{"uses": CHECKOUT}, {"run": "\n".join(script) + "\n"}]
    return job
