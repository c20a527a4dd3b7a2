"""``buildspec doctor``: can this machine run what the Buildfile needs? Checks, explained.

One line per check, ``ok``, ``warn`` or ``fail``, each failure with its fix:

    machine.py     the Docker daemon and its image store, buildx and its builders,
                   buildah, kaniko, and each foreign platform (a tiny program of that
                   architecture is run: elf.py), the git/CI context
    registries.py  each target registry: reachable, TLS verified, credentials
                   accepted, pull and push allowed on each repository

Only what the Buildfile needs is checked: the backends its images use, their
platforms, their repositories. ``ok`` is true when no check failed, i.e. when a
``run`` could succeed; warnings do not stop a run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str  # what was checked: "docker daemon", "platform linux/arm64", "push 127.0.0.1:5000/x"
    status: Status
    detail: str  # what was found
    fix: str | None = None  # what to do about a warn or fail


@dataclass(frozen=True)
class Report:
    file: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)


@dataclass(frozen=True)
class DoctorOptions:
    file: str = "Buildfile"
    overrides: Mapping[str, str] = field(default_factory=dict)
    insecure_registries: Sequence[str] = ()
    backend: str | None = None


def doctor(options: DoctorOptions, environ: Mapping[str, str] | None = None) -> Report:
    """Load the Buildfile (a mistake in it raises BuildfileError) and check what it needs."""
    from buildspec.doctor import machine, registries
    from buildspec.load import load

    project, _graph = load(Path(options.file), options.overrides, os.environ if environ is None else environ,
                           display=options.file)
    images = list(project.images.values())
    platforms = sorted({p for image in images for p in image.platforms}, key=str)
    checks = [Check("Buildfile", "ok", f"{options.file}: {len(images)} image{'s' * (len(images) != 1)} for "
                    f"{', '.join(map(str, platforms)) or 'no platform'}")]
    backends, backend_checks = machine.backends(project, options.backend)
    checks += backend_checks
    checks += machine.tools(project, backends)
    checks += machine.platforms(platforms)
    # Every repository an image is published to, and the cache repositories: a build pushes its cache there.
    repositories = {r for image in images for r in image.repositories}
    repositories |= {image.cache for image in images if image.cache}
    checks += registries.check_all(sorted(repositories), options.insecure_registries)
    checks.append(machine.git(project))
    return Report(options.file, tuple(checks))


def render_text(report: Report) -> str:
    width = max((len(check.name) for check in report.checks), default=0)
    lines = []
    for check in report.checks:
        lines.append(f"{check.status:<4}  {check.name.ljust(width)}  {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"{'':4}  {'':{width}}  fix: {check.fix}")
    failed = sum(1 for check in report.checks if check.status == "fail")
    warned = sum(1 for check in report.checks if check.status == "warn")
    if failed:
        lines.append(f"{failed} check{'s' * (failed != 1)} failed: `buildspec run` would fail on this machine")
    else:
        extra = f" ({warned} warning{'s' * (warned != 1)})" if warned else ""
        lines.append(f"ok: `buildspec run` can succeed on this machine{extra}")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> dict[str, Any]:
    return {
        "file": report.file,
        "ok": report.ok,
        "checks": [{"check": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in report.checks],
    }
