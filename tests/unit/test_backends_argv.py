"""The exact argv each backend produces, and how each reads the pushed digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from buildspec.backends.base import Backend, BuildRequest
from buildspec.backends.buildah import BuildahBackend
from buildspec.backends.buildx import BuildxBackend
from buildspec.backends.kaniko import KanikoBackend, automatic_platform_args, host_platform
from buildspec.errors import BuildspecError
from buildspec.lock import state_id
from buildspec.platform import Platform

CONTEXT = Path("/src/app")
WORKDIR = Path("/state/nodes/build-app-linux-arm64")
DIGEST = "sha256:" + "ab" * 32
AMD64 = Platform("linux", "amd64")


def request(**changes: object) -> BuildRequest:
    base = BuildRequest(
        node_id="build:app@linux/arm64",
        image="app",
        platform=Platform("linux", "arm64"),
        context=CONTEXT,
        dockerfile=CONTEXT / "Dockerfile",
        target=None,
        args={"VERSION": "1.0", "BASE": "127.0.0.1:5000/base@sha256:" + "cd" * 32},
        labels={"org.opencontainers.image.version": "1.0", "a.b": "c"},
        push_ref="127.0.0.1:5000/acme/app:1.0-linux-arm64",
        insecure=False,
        workdir=WORKDIR,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_backend_satisfies_the_protocol() -> None:
    backends: list[Backend] = [BuildxBackend(), BuildahBackend(), KanikoBackend()]
    assert [b.name for b in backends] == ["buildx", "buildah", "kaniko"]


# ---------------------------------------------------------------- buildx


def test_buildx_minimal() -> None:
    assert BuildxBackend().commands(request()) == [
        [
            "docker", "buildx", "build",
            "--platform", "linux/arm64",
            "-f", "/src/app/Dockerfile",
            "--build-arg", "BASE=127.0.0.1:5000/base@sha256:" + "cd" * 32,
            "--build-arg", "VERSION=1.0",
            "--label", "a.b=c",
            "--label", "org.opencontainers.image.version=1.0",
            "--provenance=false",
            "--tag", "127.0.0.1:5000/acme/app:1.0-linux-arm64", "--push",
            "--metadata-file", "/state/nodes/build-app-linux-arm64/metadata.json",
            "--progress=plain",
            "/src/app",
        ]
    ]  # fmt: skip


def test_buildx_target_builder_cache_and_variant_normalised() -> None:
    argv = BuildxBackend().commands(
        request(
            target="runtime",
            builder="ci",
            cache_repo="127.0.0.1:5000/cache",
            platform=Platform("linux", "arm64", "v8"),
            args={},
            labels={},
        )
    )
    assert argv == [
        [
            "docker", "buildx", "build",
            "--platform", "linux/arm64",
            "-f", "/src/app/Dockerfile",
            "--target", "runtime",
            "--provenance=false",
            "--builder", "ci",
            "--cache-from", "type=registry,ref=127.0.0.1:5000/cache:buildcache-app-linux-arm64",
            "--cache-to",
            "type=registry,ref=127.0.0.1:5000/cache:buildcache-app-linux-arm64,mode=max",
            "--tag", "127.0.0.1:5000/acme/app:1.0-linux-arm64", "--push",
            "--metadata-file", "/state/nodes/build-app-linux-arm64/metadata.json",
            "--progress=plain",
            "/src/app",
        ]
    ]  # fmt: skip


def test_buildx_arm_variant_kept() -> None:
    argv = BuildxBackend().commands(request(platform=Platform("linux", "arm", "v7")))[0]
    assert argv[argv.index("--platform") + 1] == "linux/arm/v7"


def test_buildx_reads_containerimage_digest(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps({"containerimage.digest": DIGEST, "image.name": "x"}))
    assert BuildxBackend().read_digest(request(workdir=tmp_path)) == DIGEST


@pytest.mark.parametrize(
    "content", [None, "not json", json.dumps({}), json.dumps({"containerimage.digest": "sha256:1"})]
)
def test_buildx_digest_errors(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "metadata.json").write_text(content)
    with pytest.raises(BuildspecError, match=r"metadata|containerimage\.digest"):
        BuildxBackend().read_digest(request(workdir=tmp_path))


# ---------------------------------------------------------------- buildah


# Every build has a containers store of its own in its work folder (buildah 1.28
# races when parallel builds pull one base into a shared store).
BUILDAH = [
    "buildah", "--storage-driver", "vfs",
    "--root", f"{WORKDIR}/storage", "--runroot", f"{WORKDIR}/runroot",
]  # fmt: skip


ARM64 = Platform("linux", "arm64")


def test_buildx_bake_file_is_what_each_build_would_run(tmp_path: Path) -> None:
    """One target per merged build, holding what its own `docker buildx build` passes."""
    app = request(platforms=(AMD64, ARM64), platform=AMD64, target="runtime", cache_repo="127.0.0.1:5000/cache")
    tool = request(image="my.tool", node_id="build:my.tool@linux/amd64+linux/arm64", platforms=(AMD64, ARM64),
                   platform=AMD64, args={}, labels={}, push_ref="127.0.0.1:5000/acme/tool:2-linux-amd64")
    argv, definition = BuildxBackend().bake([app, tool], tmp_path)
    assert argv == ["docker", "buildx", "bake", "--file", str(tmp_path / "bake.json"), "--provenance=false",
                    "--push", "--metadata-file", str(tmp_path / "metadata.json"), "--progress=plain"]
    tool_target = "my_tool-" + hashlib.sha256(b"my.tool").hexdigest()[:8]
    assert definition == {
        "group": {"default": {"targets": ["app", tool_target]}},
        "target": {
            "app": {
                "context": str(CONTEXT), "dockerfile": str(CONTEXT / "Dockerfile"),
                "platforms": ["linux/amd64", "linux/arm64"],
                "args": {"BASE": "127.0.0.1:5000/base@sha256:" + "cd" * 32, "VERSION": "1.0"},
                "labels": {"a.b": "c", "org.opencontainers.image.version": "1.0"},
                "tags": ["127.0.0.1:5000/acme/app:1.0-linux-arm64"],
                "target": "runtime",
                "cache-from": ["type=registry,ref=127.0.0.1:5000/cache:buildcache-app-linux-amd64-linux-arm64"],
                "cache-to": ["type=registry,ref=127.0.0.1:5000/cache:buildcache-app-linux-amd64-linux-arm64,mode=max"],
            },
            tool_target: {
                "context": str(CONTEXT), "dockerfile": str(CONTEXT / "Dockerfile"),
                "platforms": ["linux/amd64", "linux/arm64"], "args": {}, "labels": {},
                "tags": ["127.0.0.1:5000/acme/tool:2-linux-amd64"],
            },
        },
    }
    single = BuildxBackend().commands(app)[0]
    assert single[single.index("--tag") + 1] == definition["target"]["app"]["tags"][0]


def test_buildx_bake_file_escapes_hcl_templates(tmp_path: Path) -> None:
    """bake reads JSON as HCL: ``${`` and ``%{`` are written in their literal forms
    (tests/e2e/test_run_merged.py checks what `docker buildx bake --print` makes of them)."""
    _, definition = BuildxBackend().bake([request(args={"A${B}": "${HOME}%{x}$$"}, labels={})], tmp_path)
    assert definition["target"]["app"]["args"] == {"A$${B}": "$${HOME}%%{x}$$"}


def test_buildx_bake_builder_and_digests(tmp_path: Path) -> None:
    one, two = request(builder="multi"), request(image="web", builder="multi")
    argv, _ = BuildxBackend().bake([one, two], tmp_path)
    assert argv[argv.index("--builder") + 1] == "multi"
    with pytest.raises(ValueError, match="one builder"):
        BuildxBackend().bake([one, request(image="web")], tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"app": {"containerimage.digest": DIGEST}, "web": {}}))
    assert BuildxBackend().read_bake_digest(one, tmp_path) == DIGEST
    with pytest.raises(BuildspecError, match="no digest for target 'web'"):
        BuildxBackend().read_bake_digest(two, tmp_path)


def test_buildx_leaves_the_push_to_buildkit_where_it_pushes_by_itself(tmp_path: Path) -> None:
    """On a daemon whose BuildKit pushes (the containerd image store), ``push=`` (BuildKit: true;
    buildx: no second push "with docker") instead of ``--tag REF --push``; bake files likewise."""
    backend = BuildxBackend(buildkit_pushes=True)
    (argv,) = backend.commands(request())
    assert "--push" not in argv and "--tag" not in argv
    assert argv[argv.index("--output") + 1] == "type=image,name=127.0.0.1:5000/acme/app:1.0-linux-arm64,push="
    assert backend.push_command(request()) == ["docker", "push", "127.0.0.1:5000/acme/app:1.0-linux-arm64"]
    merged = request(platforms=(AMD64, ARM64), platform=AMD64)
    bake_argv, definition = backend.bake([merged], tmp_path)
    assert "--push" not in bake_argv
    assert definition["target"]["app"]["output"] == ["type=image,push="]
    assert definition["target"]["app"]["tags"] == ["127.0.0.1:5000/acme/app:1.0-linux-arm64"]
    # Anything else keeps buildx's own push: another builder (its driver is not known),
    # a local output, an image without tags; and on other daemons nothing changes.
    for other in (request(builder="multi"), request(oci_layout=tmp_path / "oci"), request(push=False)):
        assert backend.push_command(other) is None
        assert "push=" not in " ".join(backend.commands(other)[0])
    assert "--push" in backend.commands(request(builder="multi"))[0]
    assert "--push" in backend.bake([replace(merged, builder="multi")], tmp_path)[0]
    assert BuildxBackend().push_command(request()) is None
    assert BuildxBackend().commands(request())[0][-7:-4] == ["--tag", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
                                                            "--push"]


def test_buildah_minimal() -> None:
    assert BuildahBackend().commands(request()) == [
        [
            *BUILDAH, "bud",
            "--platform", "linux/arm64", "--format", "oci", "--layers=false",
            "-f", "/src/app/Dockerfile",
            "--build-arg", "BASE=127.0.0.1:5000/base@sha256:" + "cd" * 32,
            "--build-arg", "VERSION=1.0",
            "--label", "a.b=c",
            "--label", "org.opencontainers.image.version=1.0",
            "-t", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "/src/app",
        ],
        [
            *BUILDAH, "push",
            "--digestfile", "/state/nodes/build-app-linux-arm64/digest",
            "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "docker://127.0.0.1:5000/acme/app:1.0-linux-arm64",
        ],
        [*BUILDAH, "rmi", "--all", "--force"],
    ]  # fmt: skip


def test_only_buildahs_push_is_a_push_step() -> None:
    """run holds push steps to one per repository (run._PushLocks); builds stay parallel."""
    bud, push, rmi = BuildahBackend().commands(request())
    assert [BuildahBackend().is_push_step(argv) for argv in (bud, push, rmi)] == [False, True, False]
    for backend in (BuildxBackend(), KanikoBackend()):
        assert not any(backend.is_push_step(argv) for argv in backend.commands(request())), backend.name


def test_buildah_insecure_target_layers() -> None:
    argv = BuildahBackend().commands(
        request(
            insecure=True,
            target="runtime",
            args={},
            labels={},
            platform=Platform("linux", "arm", "v7"),
            options={"buildah.layers": "true"},
        )
    )
    assert argv == [
        [
            *BUILDAH, "bud",
            "--platform", "linux/arm/v7", "--format", "oci", "--layers",
            "-f", "/src/app/Dockerfile",
            "--target", "runtime",
            "--tls-verify=false",
            "-t", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "/src/app",
        ],
        [
            *BUILDAH, "push", "--tls-verify=false",
            "--digestfile", "/state/nodes/build-app-linux-arm64/digest",
            "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "docker://127.0.0.1:5000/acme/app:1.0-linux-arm64",
        ],
        [*BUILDAH, "rmi", "--all", "--force"],
    ]  # fmt: skip


def test_buildah_cache_repo_turns_layers_on() -> None:
    argv = BuildahBackend().commands(request(cache_repo="127.0.0.1:5000/cache", args={}, labels={}))[0]
    assert argv[: len(BUILDAH) + 10] == [
        *BUILDAH, "bud",
        "--platform", "linux/arm64", "--format", "oci",
        "--layers", "--cache-from", "127.0.0.1:5000/cache", "--cache-to", "127.0.0.1:5000/cache",
    ]  # fmt: skip
    assert "--layers=false" not in argv


def test_buildah_normalises_arm64_v8() -> None:
    argv = BuildahBackend().commands(request(platform=Platform("linux", "arm64", "v8")))[0]
    assert argv[argv.index("--platform") + 1] == "linux/arm64"


def test_buildah_push_destination_carries_the_tag() -> None:
    push = BuildahBackend().commands(request())[1]
    assert push[-1] == "docker://" + push[-2]
    assert push[-1].endswith(":1.0-linux-arm64")


@pytest.mark.parametrize("content", [DIGEST, DIGEST + "\n"])
def test_buildah_reads_digest_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "digest").write_text(content)
    assert BuildahBackend().read_digest(request(workdir=tmp_path)) == DIGEST


@pytest.mark.parametrize("content", [None, "", "sha256:abc", "md5:" + "a" * 32])
def test_buildah_digest_errors(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "digest").write_text(content)
    with pytest.raises(BuildspecError, match="digest"):
        BuildahBackend().read_digest(request(workdir=tmp_path))


# ---------------------------------------------------------------- kaniko

PLATFORM_ARGS_ARM64_ON_AMD64 = [
    "--build-arg", "BUILDARCH=amd64",
    "--build-arg", "BUILDOS=linux",
    "--build-arg", "BUILDPLATFORM=linux/amd64",
    "--build-arg", "BUILDVARIANT=",
    "--build-arg", "TARGETARCH=arm64",
    "--build-arg", "TARGETOS=linux",
    "--build-arg", "TARGETPLATFORM=linux/arm64",
    "--build-arg", "TARGETVARIANT=",
]  # fmt: skip


def test_kaniko_executor_mode() -> None:
    backend = KanikoBackend(build_platform=AMD64)
    assert backend.mode(request()) == "executor"
    assert backend.commands(request(platform=Platform("linux", "arm64", "v8"))) == [
        [
            "/kaniko/executor",
            "--context", "dir:///src/app",
            "--dockerfile", "/src/app/Dockerfile",
            "--destination", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "--custom-platform", "linux/arm64",
            "--build-arg", "BASE=127.0.0.1:5000/base@sha256:" + "cd" * 32,
            *PLATFORM_ARGS_ARM64_ON_AMD64,
            "--build-arg", "VERSION=1.0",
            "--label", "a.b=c",
            "--label", "org.opencontainers.image.version=1.0",
            "--digest-file", "/state/nodes/build-app-linux-arm64/digest",
            "--push-retry", "3",
        ]
    ]  # fmt: skip


def test_kaniko_everything_on() -> None:
    backend = KanikoBackend(executor="/opt/kaniko/executor", build_platform=AMD64)
    argv = backend.commands(
        request(
            args={},
            labels={},
            target="runtime",
            insecure=True,
            cache_repo="127.0.0.1:5000/cache",
            platform=Platform("linux", "arm", "v7"),
        )
    )
    assert argv == [
        [
            "/opt/kaniko/executor",
            "--context", "dir:///src/app",
            "--dockerfile", "/src/app/Dockerfile",
            "--destination", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "--custom-platform", "linux/arm/v7",
            "--build-arg", "BUILDARCH=amd64",
            "--build-arg", "BUILDOS=linux",
            "--build-arg", "BUILDPLATFORM=linux/amd64",
            "--build-arg", "BUILDVARIANT=",
            "--build-arg", "TARGETARCH=arm",
            "--build-arg", "TARGETOS=linux",
            "--build-arg", "TARGETPLATFORM=linux/arm/v7",
            "--build-arg", "TARGETVARIANT=v7",
            "--target", "runtime",
            "--digest-file", "/state/nodes/build-app-linux-arm64/digest",
            "--cache=true", "--cache-repo", "127.0.0.1:5000/cache",
            "--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull",
            "--push-retry", "3",
        ]
    ]  # fmt: skip


def test_kaniko_request_value_for_an_automatic_arg_wins() -> None:
    argv = KanikoBackend(build_platform=AMD64).commands(request(args={"TARGETARCH": "custom"}))[0]
    assert argv.count("TARGETARCH=custom") == 1
    assert "TARGETARCH=arm64" not in argv


def test_kaniko_no_cache_flags_without_cache_repo() -> None:
    argv = KanikoBackend().commands(request())[0]
    assert not [a for a in argv if a.startswith("--cache")]


def test_kaniko_options_override_executor() -> None:
    backend = KanikoBackend(executor="/a/executor")
    argv = backend.commands(request(options={"kaniko.executor": "/b/executor"}))[0]
    assert argv[0] == "/b/executor"


def test_kaniko_digest_file_is_outside_the_context() -> None:
    argv = KanikoBackend().commands(request())[0]
    digest_file = Path(argv[argv.index("--digest-file") + 1])
    assert not digest_file.is_relative_to(CONTEXT)


def test_kaniko_container_mode(tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    config.mkdir()
    backend = KanikoBackend(image="127.0.0.1:5000/kaniko:1", build_platform=AMD64)
    req = request(args={}, labels={}, options={"kaniko.docker-config": str(config)})
    assert backend.mode(req) == "container"
    ident = state_id(Path("/state"))  # the container's name and label: the run's state folder
    assert backend.commands(req) == [
        [
            "docker", "run", "--rm",
            "--name", f"buildspec-{ident}-build-app-linux-arm64", "--label", f"buildspec.state={ident}",
            "--network", "host",
            "-v", "/src/app:/kaniko/buildcontext:ro",
            "-v", f"{config}:/kaniko/.docker:ro",
            "-v", "/state/nodes/build-app-linux-arm64:/kaniko/buildspec-out",
            "127.0.0.1:5000/kaniko:1",
            "--context", "dir:///kaniko/buildcontext",
            "--dockerfile", "/kaniko/buildcontext/Dockerfile",
            "--destination", "127.0.0.1:5000/acme/app:1.0-linux-arm64",
            "--custom-platform", "linux/arm64",
            *PLATFORM_ARGS_ARM64_ON_AMD64,
            "--digest-file", "/kaniko/buildspec-out/digest",
            "--push-retry", "3",
        ]
    ]  # fmt: skip


def test_kaniko_container_mode_dockerfile_outside_context_and_no_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "missing"))
    backend = KanikoBackend(image="kaniko:1", build_platform=AMD64)
    argv = backend.commands(request(dockerfile=Path("/elsewhere/app.Dockerfile")))[0]
    assert argv[:16] == [
        "docker", "run", "--rm", *argv[3:7], "--network", "host",
        "-v", "/src/app:/kaniko/buildcontext:ro",
        "-v", "/elsewhere:/kaniko/buildspec-dockerfile:ro",
        "-v", "/state/nodes/build-app-linux-arm64:/kaniko/buildspec-out",
        "kaniko:1",
    ]  # fmt: skip
    assert argv[argv.index("--dockerfile") + 1] == "/kaniko/buildspec-dockerfile/app.Dockerfile"


def test_kaniko_container_mode_finds_docker_config_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    argv = KanikoBackend(image="kaniko:1").commands(request())[0]
    assert f"{tmp_path}:/kaniko/.docker:ro" in argv


def test_kaniko_never_forces_running_outside_a_container() -> None:
    for backend in (KanikoBackend(), KanikoBackend(image="kaniko:1")):
        assert "--force" not in backend.commands(request())[0]


def test_automatic_platform_args() -> None:
    assert automatic_platform_args(Platform("linux", "arm", "v7"), Platform("linux", "arm64", "v8")) == {
        "TARGETPLATFORM": "linux/arm/v7",
        "TARGETOS": "linux",
        "TARGETARCH": "arm",
        "TARGETVARIANT": "v7",
        "BUILDPLATFORM": "linux/arm64",
        "BUILDOS": "linux",
        "BUILDARCH": "arm64",
        "BUILDVARIANT": "",
    }


def test_host_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    import buildspec.backends.kaniko as kaniko

    for machine, expected in [
        ("x86_64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("armv7l", "linux/arm/v7"),
        ("s390x", "linux/s390x"),
    ]:
        monkeypatch.setattr(kaniko._platform, "machine", lambda m=machine: m)
        assert str(host_platform()) == expected


def test_kaniko_reads_digest_without_newline(tmp_path: Path) -> None:
    (tmp_path / "digest").write_text(DIGEST)
    assert KanikoBackend().read_digest(request(workdir=tmp_path)) == DIGEST


def test_kaniko_missing_digest_file(tmp_path: Path) -> None:
    with pytest.raises(BuildspecError, match="kaniko left no digest file"):
        KanikoBackend().read_digest(request(workdir=tmp_path))


# ---------------------------------------------------------------- an image without tags


def test_without_tags_every_backend_builds_and_pushes_nothing() -> None:
    """request.push is False for an image that has no tags here (issue 10): the build runs,
    nothing goes to a registry."""
    quiet = request(push=False, push_ref="127.0.0.1:5000/acme/app:untagged-app-linux-arm64")
    (buildx,) = BuildxBackend().commands(quiet)
    assert "--push" not in buildx and "--tag" not in buildx
    assert buildx[buildx.index("--output") + 1] == "type=cacheonly"
    (pushing,) = BuildxBackend().commands(request())
    at = pushing.index("--tag")
    assert pushing[at : at + 3] == ["--tag", "127.0.0.1:5000/acme/app:1.0-linux-arm64", "--push"]
    assert buildx == [*pushing[:at], "--output", "type=cacheonly", *pushing[at + 3 :]]  # the same build otherwise
    buildah = BuildahBackend()
    steps = buildah.commands(quiet)
    assert [s[7] for s in steps] == ["bud", "rmi"]
    assert not any(buildah.is_push_step(s) for s in steps)
    (kaniko,) = KanikoBackend(executor="/kaniko/executor").commands(quiet)
    assert "--no-push" in kaniko and "--destination" not in kaniko
