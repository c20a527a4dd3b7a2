"""The machine's side of ``doctor``: Docker, buildx, buildah, kaniko, foreign platforms, git."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from buildspec.doctor import Check, elf
from buildspec.errors import UsageError
from buildspec.evaluate import Project
from buildspec.platform import Platform

TIMEOUT = 20.0  # seconds for one probe; a daemon that takes longer is as good as absent
BINFMT = Path("/proc/sys/fs/binfmt_misc")
CONTAINERD_STORE = "io.containerd.snapshotter.v1"

_BINFMT_FIX = ("apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-{qemu} "
               "(or: docker run --privileged --rm tonistiigi/binfmt --install {arch})")


def _run(argv: list[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """(status, stdout, stderr); 127 when the program is missing, 124 on a timeout."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"no answer within {timeout:.0f}s"
    return done.returncode, done.stdout, done.stderr


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# ---------------------------------------------------------------- backends


def backends(project: Project, forced: str | None) -> tuple[dict[str, str], list[Check]]:
    """The backend each image would use (as `run` chooses it), and a check per choice."""
    from buildspec.backends.select import INSTALL_HINTS, choose_backend

    executor = _setting(project, "kaniko_executor")
    image = _setting(project, "kaniko_image")
    chosen: dict[str, str] = {}
    checks: list[Check] = []
    seen: dict[str, str | None] = {}
    for name, spec in project.images.items():
        wanted = forced or spec.backend
        if wanted not in seen:
            try:
                backend, why = choose_backend(wanted, kaniko_executor=executor, kaniko_image=image)
            except UsageError as e:
                seen[wanted] = None
                checks.append(Check(f"backend {wanted}", "fail", str(e).splitlines()[0],
                                    "; ".join(INSTALL_HINTS)))
            else:
                seen[wanted] = backend.name
                if wanted != "auto":  # choose_backend speaks of --backend; say where the name came from
                    why = f"--backend {wanted}" if forced else f"backend = {wanted} in the Buildfile"
                checks.append(Check(f"backend {wanted}", "ok", f"{backend.name} ({why})"))
        found = seen[wanted]
        if found is not None:
            chosen[name] = found
    return chosen, checks


def _setting(project: Project, name: str) -> str | None:
    value = project.variables.get(name)
    return value if isinstance(value, str) and value else None


def tools(project: Project, chosen: dict[str, str]) -> list[Check]:
    used = set(chosen.values())
    checks: list[Check] = []
    kaniko_image = _setting(project, "kaniko_image")
    if "buildx" in used or ("kaniko" in used and kaniko_image):
        checks.append(_docker_daemon())
    if "buildx" in used:
        multi = [n for n, b in chosen.items() if b == "buildx" and len(project.images[n].platforms) > 1]
        checks.append(_image_store(multi))
        checks.append(_buildx_version())
        builders = {project.images[n].builder for n, b in chosen.items() if b == "buildx"}
        for builder in sorted(builders, key=lambda b: b or ""):
            wanted = {p for n, b in chosen.items() if b == "buildx" and project.images[n].builder == builder
                      for p in project.images[n].platforms}
            checks.append(_builder(builder, wanted))
    if "buildah" in used:
        status, out, err = _run(["buildah", "version", "--json"])
        if status == 0:
            version = json.loads(out).get("version", "?") if out.strip().startswith("{") else _last_line(out)
            checks.append(Check("buildah", "ok", f"buildah {version}"))
        else:
            checks.append(Check("buildah", "fail", _last_line(err), "apt-get install buildah"))
    if "kaniko" in used:
        executor = _setting(project, "kaniko_executor") or "/kaniko/executor"
        if kaniko_image:
            checks.append(Check("kaniko", "ok", f"image {kaniko_image} on the Docker daemon"))
        elif os.access(executor, os.X_OK):
            checks.append(Check("kaniko", "ok", f"executor {executor}"))
        else:
            checks.append(Check("kaniko", "fail", f"no executable {executor}",
                                "run inside kaniko's executor image, or set kaniko_executor / kaniko_image"))
    return checks


def _docker_daemon() -> Check:
    status, out, err = _run(["docker", "version", "--format", "{{json .Server}}"])
    if status == 0 and out.strip() not in ("", "null"):
        try:
            server = json.loads(out)
        except ValueError:
            server = {}
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return Check("docker daemon", "ok", f"Docker Engine {server.get('Version', '?')} answers at {host}")
    return Check("docker daemon", "fail", _last_line(err or out),
                 "start dockerd (or point DOCKER_HOST at a running daemon); apt-get install docker.io")


def _image_store(multi_platform: list[str]) -> Check:
    status, out, err = _run(["docker", "info", "--format", "{{json .DriverStatus}}"])
    if status != 0:
        return Check("image store", "fail", _last_line(err), "start dockerd")
    if CONTAINERD_STORE in out:
        return Check("image store", "ok", "the containerd image store (multi-platform builds with the docker driver)")
    detail = "the classic image store: the docker driver cannot build several platforms in one image"
    fix = ('put {"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json and restart dockerd')
    if multi_platform:
        return Check("image store", "fail", f"{detail} ({', '.join(multi_platform[:3])} need it)", fix)
    return Check("image store", "warn", detail, fix)


def _buildx_version() -> Check:
    status, out, err = _run(["docker", "buildx", "version"])
    if status == 0:
        return Check("buildx", "ok", _last_line(out))
    return Check("buildx", "fail", _last_line(err), "apt-get install docker-buildx (the buildx CLI plugin)")


def _builder(builder: str | None, wanted: Iterable[Platform]) -> Check:
    name = f"builder {builder or '(default)'}"
    argv = ["docker", "buildx", "inspect", *([builder] if builder else [])]
    status, out, err = _run(argv)
    if status != 0:
        fix = f"docker buildx create --name {builder}" if builder else "start dockerd"
        return Check(name, "fail", _last_line(err), fix)
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    listed = {p.strip() for p in fields.get("Platforms", "").split(",") if p.strip()}
    missing = sorted(str(p.normalized()) for p in wanted if str(p.normalized()) not in listed)
    detail = f"driver {fields.get('Driver', '?')}, platforms {', '.join(sorted(listed)) or 'none listed'}"
    if missing:
        # BuildKit lists the emulators it found when it started; one registered later still works,
        # so the platform checks below (which run a program) decide.
        return Check(name, "warn", f"{detail}; does not list {', '.join(missing)}",
                     "if the platform check below passes, restart dockerd so that BuildKit lists it")
    return Check(name, "ok", detail)


# ---------------------------------------------------------------- platforms


def platforms(wanted: Iterable[Platform]) -> list[Check]:
    from buildspec.backends.kaniko import host_platform

    host = host_platform()
    checks = []
    for platform in wanted:
        name = f"platform {platform}"
        if platform.os != "linux":
            checks.append(Check(name, "warn", "only linux platforms can be checked"))
        elif platform.arch == host.arch:
            checks.append(Check(name, "ok", f"native ({host})"))
        elif not elf.supported(platform.arch):
            checks.append(Check(name, "warn", f"no test program for {platform.arch}: cannot prove it runs"))
        else:
            checks.append(prove(platform))
    return checks


def prove(platform: Platform) -> Check:
    """Run a tiny program of the platform's architecture: exit status 42 proves it runs here."""
    name = f"platform {platform}"
    qemu = elf.qemu_name(platform.arch)
    fix = _BINFMT_FIX.format(qemu=qemu, arch=platform.arch)
    with tempfile.TemporaryDirectory(prefix="buildspec-doctor-") as folder:
        path = Path(folder) / f"exit42-{platform.arch}"
        path.write_bytes(elf.program(platform.arch))
        path.chmod(0o755)
        try:
            done = subprocess.run([str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=TIMEOUT, check=False)
        except OSError as e:
            if e.errno == errno.ENOEXEC:
                return Check(name, "fail", f"this machine cannot run {platform.arch} programs "
                             "(exec format error: no binfmt_misc handler), so RUN steps would fail", fix)
            return Check(name, "fail", f"cannot run the {platform.arch} test program: {e.strerror}",
                         "set TMPDIR to a folder that allows executing files")
        except subprocess.TimeoutExpired:
            return Check(name, "fail", f"the {platform.arch} test program hung", fix)
    if done.returncode != elf.EXIT_STATUS:
        return Check(name, "fail", f"the {platform.arch} test program exited {done.returncode}, "
                     f"not {elf.EXIT_STATUS}: the emulator is broken", fix)
    handler = BINFMT / f"qemu-{qemu}"
    flags = _binfmt_flags(handler)
    ran = f"ran a program for {platform.arch} (exit {elf.EXIT_STATUS})"
    if flags is None:
        return Check(name, "ok", f"{ran}")
    if "F" not in flags:
        return Check(name, "warn", f"{ran} through {handler.name}, but its handler lacks the F flag: "
                     "inside a container (RUN steps) the emulator is not found",
                     f"update-binfmts --disable qemu-{qemu} && update-binfmts --enable qemu-{qemu} "
                     "with qemu-user-static's fix-binary entry (flags F)")
    return Check(name, "ok", f"{ran} through binfmt_misc {handler.name} (flags {flags})")


def _binfmt_flags(handler: Path) -> str | None:
    try:
        text = handler.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags:"):
            return line.split(":", 1)[1].strip()
    return None


# ---------------------------------------------------------------- git


def git(project: Project) -> Check:
    context = project.git
    where = {"local": "local git repository", "github": "GitHub Actions", "gitlab": "GitLab CI"}.get(
        context.source, context.source)
    if not context.sha:
        return Check("git/CI context", "warn", "no git commit found: git.* names are unset, "
                     "labels carry no revision", "run inside the git checkout (or set the CI's variables)")
    ref = f"branch {context.branch}" if context.branch else f"tag {context.tag}" if context.tag else "detached"
    dirty = ", uncommitted changes" if context.dirty else ""
    return Check("git/CI context", "ok", f"{where}: {ref} at {context.short_sha}{dirty}")
