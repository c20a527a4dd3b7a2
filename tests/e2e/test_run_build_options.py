"""The image attributes named after bake's (secrets, ssh, contexts, hosts, shm_size,
ulimits, annotations, pull, network, no_cache, cache_from/cache_to), built for real
with buildx and buildah: each one's effect is read back from the pushed image, and
the secrets' values appear in no log, plan, report, metadata file, layer or config."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import run_cli, secrets_in_files

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

BUILDFILE = """\
registry  = env("REGISTRY", "")
busybox   = env("BUSYBOX", "")
platforms = [linux/amd64]

image marker {
    context = "marker"
    tags    = ["1.0.0"]
}

image opts {
    context     = "opts"
    tags        = ["1.0.0"]
    args        { BUSYBOX = "{busybox}" }
    secrets     = ["id=npmrc,src=secret.txt", "id=token,env=OPTS_TOKEN"]
    ssh         = ["default"]
    contexts    { lib = "lib"  mk = image(marker)  tool = "docker-image://{busybox}" }
    pull        = true
    hosts       { "db.internal" = "10.1.2.3" }
    shm_size    = "256m"
    ulimits     = ["nofile=1024:2048"]
    annotations { "org.example.team" = "core" }
}

image offline {
    context = "offline"
    tags    = ["1.0.0"]
    args    { BUSYBOX = "{busybox}" }
    network = "none"
}
"""

OPTS_DOCKERFILE = """\
ARG BUSYBOX
FROM ${BUSYBOX}
RUN --mount=type=secret,id=npmrc --mount=type=secret,id=token \
    sh -c 'sha256sum /run/secrets/npmrc /run/secrets/token | cut -d" " -f1 > /secrets.sha256'
RUN --mount=type=ssh sh -c 'test -S "$SSH_AUTH_SOCK" && echo ssh-ok > /ssh.txt'
COPY --from=lib hello.txt /lib.txt
COPY --from=mk /marker /marker
COPY --from=tool /bin/busybox /tool-busybox
RUN grep db.internal /etc/hosts > /hosts.txt; df -k /dev/shm | tail -n 1 > /shm.txt; \
    sh -c 'ulimit -Sn; ulimit -Hn' > /ulimit.txt
"""

OFFLINE_DOCKERFILE = """\
ARG BUSYBOX
FROM ${BUSYBOX}
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /netdevs
"""


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent on a socket of its own (stopped by its pid afterwards)."""
    socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if socket.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert socket.exists(), "ssh-agent did not create its socket"
        yield str(socket)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


def _project(folder: Path) -> tuple[Path, str, str]:
    """The project and its two secret values (random, so that a scan can only find them
    where buildspec or a tool leaked them)."""
    for sub in ("marker", "opts", "lib", "offline"):
        (folder / sub).mkdir(parents=True)
    (folder / "Buildfile").write_text(BUILDFILE)
    (folder / "marker" / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (folder / "marker" / "marker").write_text("from-marker\n")
    # BuildKit leaves secrets out of its cache keys: a fresh first step keeps an earlier
    # test's cached RUN (made with other secret values) out of this build.
    (folder / "opts" / "Dockerfile").write_text(
        OPTS_DOCKERFILE.replace("\nRUN", f"\nRUN echo {uuid.uuid4().hex} > /run-id\nRUN", 1))
    (folder / "lib" / "hello.txt").write_text("from-lib\n")
    (folder / "offline" / "Dockerfile").write_text(OFFLINE_DOCKERFILE)
    file_secret = f"npm-{uuid.uuid4().hex}"
    env_secret = f"tok-{uuid.uuid4().hex}"
    (folder / "secret.txt").write_text(file_secret)
    return folder, file_secret, env_secret


def _blobs_of(ref: str, folder: Path) -> Path:
    """Every blob of an image (manifest, config, layers) in a folder, via skopeo."""
    oci_reader.skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{folder}")
    return folder


@pytest.mark.parametrize("backend", ["buildx", "buildah"])
def test_build_options_reach_the_image_and_secrets_reach_nothing_else(
    tmp_path: Path, unique_repo: str, env: Env, ssh_agent: str, backend: str,
) -> None:
    project, file_secret, env_secret = _project(tmp_path / "p")
    environ = {**os.environ, "REGISTRY": unique_repo, "BUSYBOX": env.base_image, "OPTS_TOKEN": env_secret,
               "SSH_AUTH_SOCK": ssh_agent}
    secrets = [file_secret, env_secret]
    plans = [run_cli(["plan", "--backend", backend, *extra], cwd=project, env=environ)
             for extra in ([], ["--commands"], ["--format", "json", "--commands", "--explain"])]
    for plan in plans:
        assert plan.code == 0, plan
        assert not [s for s in secrets if s in plan.stdout + plan.stderr]
    assert "--secret id=token,env=OPTS_TOKEN" in plans[1].stdout
    assert f"--secret id=npmrc,src={project / 'secret.txt'}" in plans[1].stdout

    metadata = tmp_path / "metadata.json"
    result = run_cli(["run", "--backend", backend, "--progress", "plain", "--metadata-file", str(metadata)],
                     cwd=project, env=environ)
    assert result.code == 0, result
    assert not [s for s in secrets if s in result.stdout + result.stderr]

    ref = f"{unique_repo}/opts:1.0.0"
    read = lambda path: oci_reader.read_file(ref, path, platform="linux/amd64").decode()  # noqa: E731
    expected = "".join(hashlib.sha256(s.encode()).hexdigest() + "\n" for s in secrets)
    assert read("/secrets.sha256") == expected  # the build saw both secrets...
    assert read("/ssh.txt") == "ssh-ok\n"
    assert read("/lib.txt") == "from-lib\n"
    assert read("/marker") == "from-marker\n"
    assert len(oci_reader.read_file(ref, "/tool-busybox", platform="linux/amd64")) > 100_000
    assert read("/hosts.txt").split() == ["10.1.2.3", "db.internal"]
    assert read("/shm.txt").split()[1] == "262144"
    assert read("/ulimit.txt") == "1024\n2048\n"
    assert oci_reader.read_file(f"{unique_repo}/offline:1.0.0", "/netdevs", platform="linux/amd64") == b"lo\n"

    index = oci_reader.raw_manifest(ref)
    assert index["annotations"]["org.example.team"] == "core"
    platform_manifest = oci_reader.raw_manifest(f"{unique_repo}/opts:1.0.0-linux-amd64")
    assert platform_manifest["annotations"]["org.example.team"] == "core"

    # ...and neither value is anywhere buildspec or the tools wrote.
    leaks = secrets_in_files(project, secrets)
    assert leaks == [f"{project / 'secret.txt'}: {file_secret[:2]}..."]  # the user's own file only
    assert metadata.is_file() and not [s for s in secrets if s in metadata.read_text()], "metadata file"
    blobs = _blobs_of(f"{unique_repo}/opts:1.0.0-linux-amd64", tmp_path / "blobs")
    assert secrets_in_files(blobs, secrets) == [], "image layers and config"
    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "buildspec"
    if state.is_dir():
        assert secrets_in_files(state, secrets) == []


@pytest.mark.parametrize("backend", ["buildx", "buildah"])
def test_a_missing_secret_source_stops_the_run_before_anything_is_built(
    tmp_path: Path, unique_repo: str, env: Env, backend: str,
) -> None:
    project, _, _ = _project(tmp_path / "p")
    environ = {k: v for k, v in os.environ.items() if k != "OPTS_TOKEN"}
    environ.update(REGISTRY=unique_repo, BUSYBOX=env.base_image)
    result = run_cli(["run", "--backend", backend], cwd=project, env=environ)
    assert result.code == 2, result
    assert "Buildfile:14:" in result.stderr and "the variable OPTS_TOKEN is not set" in result.stderr, result
    (project / "secret.txt").unlink()
    result = run_cli(["run", "--backend", backend], cwd=project, env={**environ, "OPTS_TOKEN": "x"})
    assert result.code == 2 and "secret 'npmrc': no file" in result.stderr, result
    assert not (project / ".buildspec" / "logs").exists()


def test_no_cache_and_registry_cache_with_buildx(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """no_cache = true runs every step again; cache_to/cache_from in bake's format fill and
    read a registry cache."""
    project = tmp_path / "p"
    project.mkdir()
    cache = f"{unique_repo}/cache:buildcache"
    (project / "Buildfile").write_text(f"""\
registry  = "{unique_repo}"
platforms = [linux/amd64]
image fresh {{ context = "ctx"  tags = ["1"]  args {{ BUSYBOX = "{env.base_image}"  WHO = "fresh" }}  no_cache = true }}
image cached {{
    context = "ctx"
    tags = ["1"]
    args {{ BUSYBOX = "{env.base_image}"  WHO = "cached" }}
    cache_to   = ["type=registry,ref={cache},mode=max"]
    cache_from = ["type=registry,ref={cache}"]
}}
""")
    (project / "ctx").mkdir()
    (project / "ctx" / "Dockerfile").write_text(
        f"ARG BUSYBOX\nFROM ${{BUSYBOX}}\nARG WHO\n"
        f"RUN echo {uuid.uuid4().hex} $WHO && cat /proc/sys/kernel/random/uuid > /stamp\n")
    stamps = []
    # The second run forces every build (-B), so that cached is built again, from the cache;
    # the third is a plain one: cached is up to date, fresh (no_cache) is never skipped.
    for extra in ([], ["-B"], []):
        result = run_cli(["run", "--backend", "buildx", *extra], cwd=project)
        assert result.code == 0, result
        stamps.append({name: oci_reader.read_file(f"{unique_repo}/{name}:1", "/stamp", platform="linux/amd64")
                       for name in ("fresh", "cached")})
    assert stamps[0]["fresh"] != stamps[1]["fresh"] != stamps[2]["fresh"]  # built again from scratch
    assert stamps[0]["cached"] == stamps[1]["cached"] == stamps[2]["cached"]  # from the cache, then skipped
    fresh_log = (project / ".buildspec" / "logs" / "build-fresh@linux-amd64.log").read_text()
    assert "will build: no_cache = true" in fresh_log, fresh_log
    assert oci_reader.raw_manifest(cache)  # the registry cache exists
    log = (project / ".buildspec" / "logs" / "build-cached@linux-amd64.log").read_text()
    assert "up to date" in log, log


def test_provenance_attestations_are_carried_into_the_index(tmp_path: Path, unique_repo: str, env: Env) -> None:
    """attest = ["type=provenance,mode=max"]: the pushed index lists each platform once, plus
    one attestation manifest per platform laid out as `docker buildx build --push` does."""
    project = tmp_path / "p"
    (project / "ctx").mkdir(parents=True)
    (project / "Buildfile").write_text(f"""\
registry  = "{unique_repo}"
platforms = [linux/amd64, linux/arm64]
image prov {{
    context = "ctx"
    tags    = ["1", "latest"]
    args    {{ BUSYBOX = "{env.base_image}" }}
    attest  = ["type=provenance,mode=max"]
}}
""")
    (project / "ctx" / "Dockerfile").write_text("ARG BUSYBOX\nFROM ${BUSYBOX}\nCOPY . /ctx\n")
    result = run_cli(["run", "--backend", "buildx"], cwd=project)
    assert result.code == 0, result
    index = oci_reader.raw_manifest(f"{unique_repo}/prov:1")
    platforms = [oci_reader.platform_string(m["platform"]) for m in index["manifests"]]
    assert sorted(platforms) == ["linux/amd64", "linux/arm64", "unknown/unknown", "unknown/unknown"]
    images = {m["digest"]: m for m in index["manifests"] if m["platform"]["os"] != "unknown"}
    attestations = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    assert index["manifests"][:2] == list(images.values())  # the images first, then the attestations
    assert sorted(a["annotations"]["vnd.docker.reference.digest"] for a in attestations) == sorted(images)
    for attestation in attestations:
        assert attestation["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
        manifest = oci_reader.raw_manifest(f"{unique_repo}/prov@{attestation['digest']}")
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == "application/vnd.in-toto+json"
        assert layer["annotations"]["in-toto.io/predicate-type"].startswith("https://slsa.dev/provenance/")
    assert oci_reader.raw_manifest(f"{unique_repo}/prov:latest") == index
