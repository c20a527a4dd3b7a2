"""A minimal local runner for the GitHub Actions workflows `buildspec ci github` writes.

GitHub Actions cannot run offline (act needs Docker Hub images), so the tests run the
generated workflows' own ``run:`` scripts with bash, job by job in ``needs:`` order, with
the parts of GitHub's semantics these workflows use and nothing more:

* a job runs when its ``if:`` holds; without ``if:``, when every needed job succeeded
  (a skipped or failed need skips it, as GitHub's implicit ``success()``);
* expressions: ``needs.<job>.outputs.<name>``, ``steps.<id>.outputs.<name>``,
  ``fromJSON(...)``, ``a || b``, ``a && b``, ``!a``, ``x['key']``, ``.name``,
  ``cancelled()`` (never) and ``failure()`` (a job this one needs, directly or not, failed);
  a missing property is null, an unset output the empty string;
* ``$GITHUB_OUTPUT`` per step, ``$RUNNER_TEMP`` per job, ``$GITHUB_WORKSPACE`` the folder;
* ``uses:`` steps are skipped: the checkout is the folder itself, qemu is set up already;
  ``runs-on`` and ``container`` are ignored (every job runs in this machine's shell).

Anything else in a workflow makes it raise, so a workflow this runner cannot honour
fails the test instead of passing it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"(needs|steps)\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")
_KNOWN_KEYS = {"name", "runs-on", "needs", "if", "env", "outputs", "steps", "container"}


class Null(dict[str, Any]):
    """A JSON object whose missing properties are null, as in GitHub expressions."""

    def __missing__(self, key: str) -> None:
        return None


@dataclass
class JobResult:
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""


def _evaluate(text: str, needs: Mapping[str, JobResult], steps: Mapping[str, dict[str, str]],
              failed: bool) -> Any:
    expression = text.strip()
    values: dict[str, Any] = {}

    def name(match: re.Match[str]) -> str:
        kind, job, output = match.groups()
        source = needs if kind == "needs" else None
        if source is not None:
            value = source[job].outputs.get(output, "") if job in source else ""
        else:
            value = steps.get(job, {}).get(output, "")
        key = f"_v{len(values)}"
        values[key] = value
        return key

    python = _NAME.sub(name, expression)
    if re.search(r"\b(needs|steps|github|env|vars|secrets|matrix)\.", python):
        raise NotImplementedError(f"github_local: expression not supported: {text}")
    python = python.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    python = python.replace("fromJSON(", "_json(").replace("cancelled()", "False").replace("failure()", "_failed")
    python = re.sub(r"\.([A-Za-z_][A-Za-z0-9_]*)", r"['\1']", python)

    def from_json(value: str) -> Any:
        return json.loads(value, object_hook=Null)

    return eval(python, {"__builtins__": {}}, {**values, "_json": from_json, "_failed": failed})  # noqa: S307


def _render(text: str, needs: Mapping[str, JobResult], steps: Mapping[str, dict[str, str]], failed: bool) -> str:
    def one(match: re.Match[str]) -> str:
        value = _evaluate(match.group(1), needs, steps, failed)
        return "" if value is None else str(value)

    return _EXPRESSION.sub(one, text)


def run_workflow(workflow: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> dict[str, JobResult]:
    """Run every job of ``workflow`` in ``folder``; ``env`` is the machine's environment
    (the workflow's and the job's ``env:`` come on top; ``BUILDSPEC`` in ``env`` wins, as
    a repository variable the workflow would read)."""
    jobs: dict[str, Any] = dict(workflow["jobs"])
    results: dict[str, JobResult] = {}
    ancestors: dict[str, set[str]] = {}
    pending = list(jobs)
    while pending:
        ready = [j for j in pending if all(n in results for n in jobs[j].get("needs", []))]
        if not ready:
            raise ValueError(f"github_local: needs cycle or unknown job among {pending}")
        for name in ready:
            pending.remove(name)
            job = jobs[name]
            unknown = set(job) - _KNOWN_KEYS
            if unknown:
                raise NotImplementedError(f"github_local: job keys not supported: {sorted(unknown)}")
            needed = list(job.get("needs", []))
            ancestors[name] = set(needed).union(*(ancestors[n] for n in needed))
            failed = any(results[a].result == "failure" for a in ancestors[name])
            direct = {n: results[n] for n in needed}
            if "if" in job:
                runs = bool(_evaluate(_EXPRESSION.sub(lambda m: m.group(1), str(job["if"])), direct, {}, failed))
            else:
                runs = all(r.result == "success" for r in direct.values())
            results[name] = _run_job(job, folder, env, workflow.get("env", {}), direct, failed) if runs \
                else JobResult("skipped")
    return results


def _run_job(job: Mapping[str, Any], folder: Path, env: Mapping[str, str], workflow_env: Mapping[str, str],
             needs: Mapping[str, JobResult], failed: bool) -> JobResult:
    steps: dict[str, dict[str, str]] = {}
    logs = []
    with tempfile.TemporaryDirectory(prefix="runner-temp-") as temp:
        job_env = {**workflow_env, **{k: _render(str(v), needs, steps, failed) for k, v in job.get("env", {}).items()}}
        for number, step in enumerate(job["steps"]):
            if "uses" in step:
                continue
            output = Path(temp) / f"output-{number}"
            output.touch()
            environ = {**env, **job_env, "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": temp,
                       "GITHUB_WORKSPACE": str(folder)}
            for key in ("BUILDSPEC",):  # a repository variable wins over the workflow's default
                if key in env:
                    environ[key] = env[key]
            script = _render(step["run"], needs, steps, failed)
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=folder,
                                  env=environ, capture_output=True, text=True, timeout=900, check=False)
            logs.append(f"$ {script}\n{done.stdout}{done.stderr}")
            outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            if "id" in step:
                steps[step["id"]] = outputs
            if done.returncode != 0:
                return JobResult("failure", log="\n".join(logs))
        outputs = {k: _render(str(v), needs, steps, failed) for k, v in job.get("outputs", {}).items()}
    return JobResult("success", outputs, "\n".join(logs))


def environment_for_jobs(buildspec: str) -> dict[str, str]:
    """This machine's environment without CI variables, plus ``BUILDSPEC``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    environ.pop("CI", None)
    environ["BUILDSPEC"] = buildspec
    return environ
