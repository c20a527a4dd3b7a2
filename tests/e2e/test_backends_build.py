"""Every backend, for real: build, push, read the digest, check what landed.

One contract for the three backends (as doit runs one suite against every
runner): the argv lists of ``backend.commands(request)`` are run as they are,
without a shell, then ``read_digest`` must name the pushed per-platform image
manifest, and skopeo, an independent client, must find in the registry an image
of the right architecture whose ``RUN uname -m`` ran on that architecture
(under qemu) and whose ``COPY ${TARGETARCH}/file`` took the right file.

kaniko runs as ``tests/kaniko/executor``, the stand-in (see its README); the
tests after the contract pin the kaniko behaviours the backend relies on.

Needs scripts/setup-env.sh (Docker Engine + buildx, buildah, skopeo, qemu and the
registries); a missing tool fails these tests, it never skips them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from buildspec.backends.base import Backend, BuildRequest
from buildspec.backends.buildah import BuildahBackend
from buildspec.backends.buildx import BuildxBackend
from buildspec.backends.kaniko import KanikoBackend
from buildspec.platform import Platform

pytestmark = pytest.mark.integration

ENV_FILE = Path("/var/lib/buildspec-env/env")
STANDIN = Path(__file__).resolve().parents[1] / "kaniko" / "executor"
UNAME = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

BACKENDS: dict[str, Callable[[], Backend]] = {
    "buildx": BuildxBackend,
    "buildah": BuildahBackend,
    "kaniko": lambda: KanikoBackend(executor=str(STANDIN)),
}


@pytest.fixture(scope="module")
def machine() -> dict[str, str]:
    assert ENV_FILE.is_file(), f"{ENV_FILE} is missing: run scripts/setup-env.sh first"
    values = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    for key in ("BUILDSPEC_REGISTRY", "BUILDSPEC_BASE_IMAGE"):
        assert values.get(key), f"{ENV_FILE} has no {key}"
    return values


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, capture_output=True, text=True, timeout=900, check=False, **kwargs
    )


def run_ok(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = run(argv, **kwargs)
    assert result.returncode == 0, (
        f"{argv[:4]}... exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    )
    return result


def skopeo_raw(ref: str, *, config: bool = False) -> bytes:
    argv = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
    if config:
        argv.insert(2, "--config")
    return subprocess.run(argv, capture_output=True, timeout=120, check=True).stdout


def files_in_image(ref: str, folder: Path, names: set[str]) -> dict[str, bytes]:
    """The named files of the image's root file system, read from its layers."""
    run_ok(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{folder}"])
    manifest = json.loads((folder / "manifest.json").read_bytes())
    found: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = (folder / layer["digest"].split(":", 1)[1]).read_bytes()
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for member in tar.getmembers():
                name = member.name.lstrip("./")
                if name in names and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    found[name] = extracted.read()
    return found


def project(tmp_path: Path, base_image: str, dockerfile: str | None = None) -> Path:
    context = tmp_path / "context"
    for arch in ("amd64", "arm64", "arm"):
        (context / arch).mkdir(parents=True)
        (context / arch / "file").write_text(f"file for {arch}\n")
    (context / "Dockerfile").write_text(
        dockerfile or f"FROM {base_image}\nARG TARGETARCH\nRUN uname -m > /arch\nCOPY ${{TARGETARCH}}/file /file\n"
    )
    return context


def make_request(
    tmp_path: Path, machine: dict[str, str], platform: Platform, name: str, **changes: object
) -> BuildRequest:
    context = project(tmp_path, machine["BUILDSPEC_BASE_IMAGE"])
    workdir = tmp_path / "work"
    workdir.mkdir()
    repo = f"{machine['BUILDSPEC_REGISTRY']}/e2e-backends/{name}-{uuid.uuid4().hex[:10]}"
    fields: dict[str, object] = {
        "node_id": f"build:app@{platform}",
        "image": "app",
        "platform": platform,
        "context": context,
        "dockerfile": context / "Dockerfile",
        "target": None,
        "args": {},
        "labels": {"org.opencontainers.image.title": "e2e", "buildspec.test": name},
        "push_ref": f"{repo}:1-{platform.normalized().slug}",
        "insecure": True,
        "workdir": workdir,
    }
    fields.update(changes)
    return BuildRequest(**fields)  # type: ignore[arg-type]


def build(backend: Backend, request: BuildRequest) -> str:
    try:
        for argv in backend.commands(request):
            run_ok(argv)
        return backend.read_digest(request)
    finally:
        # the local copies are not needed once pushed: keep CI's disk from filling up
        if isinstance(backend, BuildahBackend):
            run(["buildah", "--storage-driver", "vfs", "rmi", "-f", request.push_ref])
        elif isinstance(backend, BuildxBackend):
            run(["docker", "image", "rm", "-f", request.push_ref])


def repository(push_ref: str) -> str:
    return push_ref.rsplit(":", 1)[0]


# ---------------------------------------------------------------- the contract


@pytest.mark.parametrize("platform", ["linux/arm64", "linux/amd64"])
@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_builds_and_pushes_one_platform(
    name: str, platform: str, tmp_path: Path, machine: dict[str, str]
) -> None:
    target = Platform.parse(platform)
    backend = BACKENDS[name]()
    request = make_request(tmp_path, machine, target, name)

    digest = build(backend, request)

    repo = repository(request.push_ref)
    raw = skopeo_raw(f"{repo}@{digest}")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    manifest = json.loads(raw)
    # a plain image manifest (buildx: --provenance=false), never an index
    assert manifest["mediaType"] in (DOCKER_MANIFEST, OCI_MANIFEST)
    assert "config" in manifest and "manifests" not in manifest
    # the tag names the same manifest
    assert skopeo_raw(request.push_ref) == raw

    config = json.loads(skopeo_raw(f"{repo}@{digest}", config=True))
    assert (config["os"], config["architecture"]) == ("linux", target.arch)
    assert config.get("variant") in (None, "")
    assert config["config"]["Labels"]["buildspec.test"] == name

    files = files_in_image(f"{repo}@{digest}", tmp_path / "pulled", {"arch", "file"})
    assert files["arch"].decode().strip() == UNAME[target.arch]
    assert files["file"].decode() == f"file for {target.arch}\n"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_arm_v7_keeps_the_variant_where_the_base_has_it(
    name: str, tmp_path: Path, machine: dict[str, str]
) -> None:
    target = Platform("linux", "arm", "v7")
    backend = BACKENDS[name]()
    request = make_request(tmp_path, machine, target, name)
    digest = build(backend, request)
    repo = repository(request.push_ref)
    config = json.loads(skopeo_raw(f"{repo}@{digest}", config=True))
    assert (config["architecture"], config.get("variant")) == ("arm", "v7")
    files = files_in_image(f"{repo}@{digest}", tmp_path / "pulled", {"arch", "file"})
    assert files["arch"].decode().strip() == "armv7l"
    assert files["file"].decode() == "file for arm\n"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_arm64_v8_is_built_as_arm64(name: str, tmp_path: Path, machine: dict[str, str]) -> None:
    """The base index has a variant-less arm64 entry: kaniko would fail on arm64/v8."""
    request = make_request(tmp_path, machine, Platform("linux", "arm64", "v8"), name)
    digest = build(BACKENDS[name](), request)
    config = json.loads(skopeo_raw(f"{repository(request.push_ref)}@{digest}", config=True))
    assert config["architecture"] == "arm64"
    assert config.get("variant") in (None, "")


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_target_and_build_args(name: str, tmp_path: Path, machine: dict[str, str]) -> None:
    request = make_request(tmp_path, machine, Platform("linux", "amd64"), name)
    request.dockerfile.write_text(
        f"FROM {machine['BUILDSPEC_BASE_IMAGE']} AS first\n"
        "ARG GREETING\n"
        'RUN echo "$GREETING" > /greeting\n'
        "FROM first AS second\n"
        "RUN false\n"
    )
    request = replace(request, target="first", args={"GREETING": "hello there"})
    digest = build(BACKENDS[name](), request)
    files = files_in_image(f"{repository(request.push_ref)}@{digest}", tmp_path / "pulled", {"greeting"})
    assert files["greeting"] == b"hello there\n"


@pytest.mark.parametrize("name", ["buildx", "buildah"])
def test_backend_fills_the_cache_repository(name: str, tmp_path: Path, machine: dict[str, str]) -> None:
    """kaniko's cache is not implemented by the stand-in; its flags are checked in unit tests."""
    registry = machine["BUILDSPEC_REGISTRY"]
    cache_path = f"e2e-backends/cache-{name}-{uuid.uuid4().hex[:10]}"
    request = make_request(tmp_path, machine, Platform("linux", "amd64"), name, cache_repo=f"{registry}/{cache_path}")
    build(BACKENDS[name](), request)
    with urllib.request.urlopen(f"http://{registry}/v2/{cache_path}/tags/list", timeout=30) as answer:
        assert json.load(answer)["tags"]


# ---------------------------------------------------------------- buildah sets TARGET* itself


def test_buildah_sets_target_args_itself(tmp_path: Path, machine: dict[str, str]) -> None:
    request = make_request(tmp_path, machine, Platform("linux", "arm64"), "buildah")
    request.dockerfile.write_text(
        f"FROM {machine['BUILDSPEC_BASE_IMAGE']}\n"
        "ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\nARG BUILDPLATFORM\n"
        'RUN echo "$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM" > /args\n'
    )
    backend = BuildahBackend()
    assert not any("TARGET" in arg for argv in backend.commands(request) for arg in argv)
    digest = build(backend, request)
    files = files_in_image(f"{repository(request.push_ref)}@{digest}", tmp_path / "pulled", {"args"})
    assert files["args"].decode().strip() == "linux/arm64|linux|arm64||linux/amd64"


# ---------------------------------------------------------------- the kaniko stand-in


def standin(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    # kaniko resolves a relative --dockerfile against the working folder first:
    # run where there is no ./Dockerfile unless a test says otherwise
    kwargs.setdefault("cwd", "/")
    return run([str(STANDIN), *args], **kwargs)


@pytest.fixture
def kaniko_project(tmp_path: Path, machine: dict[str, str]) -> tuple[Path, str]:
    """(context, a fresh repository) for stand-in runs."""
    context = project(tmp_path, machine["BUILDSPEC_BASE_IMAGE"])
    return context, f"{machine['BUILDSPEC_REGISTRY']}/e2e-backends/standin-{uuid.uuid4().hex[:10]}"


def test_standin_digest_file_format_and_pushes_every_destination(
    kaniko_project: tuple[Path, str], tmp_path: Path
) -> None:
    context, repo = kaniko_project
    digest_file = tmp_path / "out" / "digest"
    digest_file.parent.mkdir()
    result = standin(
        f"--context=dir://{context}",
        "-f",
        "Dockerfile",
        f"-d={repo}:one",
        "--destination",
        f"{repo}:two",
        "--custom-platform=linux/arm64",
        "--build-arg=TARGETARCH=arm64",
        "--label",
        "a=b",
        f"--digest-file={digest_file}",
        "--push-retry=1",
        "--verbosity=warn",
        cwd=tmp_path,  # no ./Dockerfile here: kaniko then looks in the context
    )
    assert result.returncode == 0, result.stderr
    raw = digest_file.read_bytes()
    assert raw.startswith(b"sha256:") and len(raw) == 71 and not raw.endswith(b"\n")
    digest = raw.decode()
    for tag in ("one", "two"):
        assert "sha256:" + hashlib.sha256(skopeo_raw(f"{repo}:{tag}")).hexdigest() == digest
    config = json.loads(skopeo_raw(f"{repo}@{digest}", config=True))
    assert config["config"]["Labels"] == {"a": "b"}  # no io.buildah.version: kaniko writes none
    manifest = json.loads(skopeo_raw(f"{repo}@{digest}"))
    assert manifest["mediaType"] == DOCKER_MANIFEST  # the base is Docker-typed, as kaniko keeps
    assert "annotations" not in manifest


def test_standin_sets_no_target_args(kaniko_project: tuple[Path, str]) -> None:
    """kaniko leaves TARGETARCH unset: COPY ${TARGETARCH}/file finds no /file."""
    context, repo = kaniko_project
    result = standin("-c", str(context), "-d", f"{repo}:x", "--custom-platform", "linux/arm64")
    assert result.returncode != 0
    assert "/file" in result.stdout + result.stderr
    skopeo = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repo}:x"])
    assert skopeo.returncode != 0  # nothing was pushed


def test_standin_sets_no_build_platform_args(kaniko_project: tuple[Path, str], tmp_path: Path) -> None:
    context, repo = kaniko_project
    (context / "Dockerfile").write_text(
        (context / "Dockerfile").read_text().splitlines()[0] + "\n"
        "ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\n"
        "ARG BUILDPLATFORM\nARG BUILDOS\nARG BUILDARCH\nARG BUILDVARIANT\nARG FROMDEFAULT=kept\n"
        'RUN echo "[$TARGETPLATFORM$TARGETOS$TARGETARCH$TARGETVARIANT'
        '$BUILDPLATFORM$BUILDOS$BUILDARCH$BUILDVARIANT][$FROMDEFAULT]" > /args\n'
    )
    digest_file = tmp_path / "digest"
    result = standin(
        "-c", str(context), "-d", f"{repo}:x", "--custom-platform", "linux/arm64", "--digest-file", str(digest_file)
    )
    assert result.returncode == 0, result.stderr
    files = files_in_image(f"{repo}@{digest_file.read_text()}", tmp_path / "pulled", {"args"})
    assert files["args"] == b"[][kept]\n"


def test_standin_config_variant_comes_from_the_base_not_the_platform(
    kaniko_project: tuple[Path, str], tmp_path: Path
) -> None:
    """kaniko sets only os/architecture: FROM scratch for arm/v7 gives linux/arm, no variant."""
    context, repo = kaniko_project
    (context / "Dockerfile").write_text("FROM scratch\nCOPY arm/file /file\n")
    digest_file = tmp_path / "digest"
    result = standin(
        "-c", str(context), "-d", f"{repo}:v7", "--custom-platform", "linux/arm/v7", "--digest-file", str(digest_file)
    )
    assert result.returncode == 0, result.stderr
    digest = digest_file.read_text()
    config = json.loads(skopeo_raw(f"{repo}@{digest}", config=True))
    assert (config["os"], config["architecture"], config.get("variant")) == ("linux", "arm", None)
    assert json.loads(skopeo_raw(f"{repo}@{digest}"))["mediaType"] == DOCKER_MANIFEST  # scratch is Docker's


def test_standin_refuses_arm64_v8_against_a_variantless_index(
    kaniko_project: tuple[Path, str], machine: dict[str, str]
) -> None:
    context, repo = kaniko_project
    result = standin(
        "-c", str(context), "-d", f"{repo}:x", "--custom-platform", "linux/arm64/v8", "--build-arg", "TARGETARCH=arm64"
    )
    assert result.returncode == 1
    assert f"no child with platform linux/arm64/v8 in index {machine['BUILDSPEC_BASE_IMAGE']}" in result.stderr


def test_standin_no_push_writes_the_digest_and_pushes_nothing(kaniko_project: tuple[Path, str], tmp_path: Path) -> None:
    context, repo = kaniko_project
    digest_file = tmp_path / "digest"
    names_file = tmp_path / "names"
    result = standin(
        "-c", str(context),
        "-d", f"{repo}:x",
        "--no-push",
        "--custom-platform", "linux/amd64",
        "--build-arg", "TARGETARCH=amd64",
        "--digest-file", str(digest_file),
        "--image-name-with-digest-file", str(names_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    digest = digest_file.read_text()
    assert len(digest) == 71 and digest.startswith("sha256:")
    assert names_file.read_text() == f"{repo}@{digest}\n"
    assert run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repo}:x"]).returncode != 0


def test_standin_tls_registry_needs_skip_tls_verify_and_reads_docker_config(
    kaniko_project: tuple[Path, str], tmp_path: Path, machine: dict[str, str]
) -> None:
    """Credentials come from $DOCKER_CONFIG/config.json, never the command line."""
    context, _ = kaniko_project
    auth_registry = machine["BUILDSPEC_AUTH_REGISTRY"]
    password = Path(machine["BUILDSPEC_AUTH_PASSWORD_FILE"]).read_text().strip()
    token = base64.b64encode(f"{machine['BUILDSPEC_AUTH_USER']}:{password}".encode()).decode()
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"auths": {auth_registry: {"auth": token}}}))
    destination = f"{auth_registry}/e2e-backends/standin-tls-{uuid.uuid4().hex[:10]}:1"
    common = ["-c", str(context), "-d", destination, "--custom-platform", "linux/amd64"]
    common += ["--build-arg", "TARGETARCH=amd64", "--insecure-pull"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_CONFIG": str(docker_config)}

    refused = standin(*common, env=env)
    assert refused.returncode == 1
    assert "x509: certificate signed by unknown authority" in refused.stderr

    digest_file = tmp_path / "digest"
    pushed = standin(*common, "--skip-tls-verify", "--digest-file", str(digest_file), env=env)
    assert pushed.returncode == 0, pushed.stderr
    raw = subprocess.run(
        [
            "skopeo", "inspect", "--raw", "--tls-verify=false",
            "--authfile", str(docker_config / "config.json"), f"docker://{destination}",
        ],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest_file.read_text()


# ---------------------------------------------------------------- kaniko's container mode

FAKE_KANIKO = r"""#!/bin/sh
# Stands in for kaniko's image entrypoint: checks what buildspec's docker run gave it.
set -eu
out=/kaniko/buildspec-out
printf '%s\n' "$@" > "$out/args"
context= dockerfile= digest_file=
while [ $# -gt 0 ]; do
    case "$1" in
        --context) context=$2; shift ;;
        --dockerfile) dockerfile=$2; shift ;;
        --digest-file) digest_file=$2; shift ;;
    esac
    shift
done
dir=${context#dir://}
test -f "$dir/amd64/file"
test -f "$dockerfile"
if touch "$dir/written-by-kaniko" 2>/dev/null; then echo "context is writable" >&2; exit 3; fi
test -f /kaniko/.docker/config.json
wget -q -O - http://127.0.0.1:5000/v2/ > "$out/registry-answer"
printf 'sha256:%s' "$(sha256sum "$dockerfile" | cut -d' ' -f1)" > "$digest_file"
"""


def test_kaniko_container_mode_plumbing(tmp_path: Path, machine: dict[str, str]) -> None:
    """docker run mounts, read-only context, docker config, host network, digest file path."""
    image_dir = tmp_path / "fake-kaniko"
    image_dir.mkdir()
    (image_dir / "executor").write_text(FAKE_KANIKO)
    (image_dir / "executor").chmod(0o755)
    (image_dir / "Dockerfile").write_text(
        f'FROM {machine["BUILDSPEC_BASE_IMAGE"]}\nCOPY executor /kaniko/executor\nENTRYPOINT ["/kaniko/executor"]\n'
    )
    image = f"buildspec-e2e/fake-kaniko:{uuid.uuid4().hex[:10]}"
    run_ok(["docker", "build", "--provenance=false", "-q", "-t", image, str(image_dir)])
    try:
        docker_config = tmp_path / "docker-config"
        docker_config.mkdir()
        (docker_config / "config.json").write_text("{}")
        request = make_request(
            tmp_path,
            machine,
            Platform("linux", "arm64"),
            "kaniko-container",
            options={"kaniko.docker-config": str(docker_config)},
        )
        backend = KanikoBackend(image=image)
        (argv,) = backend.commands(request)
        assert argv[:2] == ["docker", "run"]
        run_ok(argv)
        expected = "sha256:" + hashlib.sha256(request.dockerfile.read_bytes()).hexdigest()
        assert backend.read_digest(request) == expected
        args = (request.workdir / "args").read_text().splitlines()
        assert args == argv[argv.index(image) + 1 :]
        assert (request.workdir / "registry-answer").read_text().strip() == "{}"
        assert not (request.context / "written-by-kaniko").exists()
    finally:
        run(["docker", "image", "rm", "-f", image])


def test_auto_chooses_buildx_on_this_machine(tmp_path: Path) -> None:
    """The real probes: dockerd answers and the buildx plugin is installed here."""
    from buildspec.backends import select

    select.reset_probes()
    try:
        backend, reason = select.choose_backend(
            "auto", kaniko_executor=str(tmp_path / "no-executor"), kaniko_image=None
        )
    finally:
        select.reset_probes()
    assert isinstance(backend, BuildxBackend), reason
    assert "Docker daemon answers" in reason
