"""Input keys (buildspec/uptodate): what a build depends on, and what changed.

The registry side (lookups, records, skipping) is tested end to end in
tests/e2e/test_run_uptodate.py; here the parts that decide the key.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildspec.backends.base import BuildRequest
from buildspec.platform import Platform
from buildspec.uptodate.context import context_entries
from buildspec.uptodate.dockerfile import Base, Unresolved, base_references
from buildspec.uptodate.key import Inputs, TreeCache, changes, decode, request_inputs

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


def refs(text: str, args: dict[str, str] | None = None, platform: Platform = ARM64,
         contexts: tuple[str, ...] = ()) -> list[object]:
    found = base_references(text, args or {}, platform, AMD64, contexts)
    return [b.reference if isinstance(b, Base) and b.platform == platform else b for b in found]


# ---------------------------------------------------------------- the Dockerfile's base images


def test_from_with_arg_defaults_and_build_args() -> None:
    text = "ARG REG=reg.example\nARG TAG=1\nFROM ${REG}/base:$TAG AS build\nFROM reg.example/run:${TAG:-0}\n"
    assert refs(text) == ["reg.example/base:1", "reg.example/run:1"]
    assert refs(text, {"TAG": "2"}) == ["reg.example/base:2", "reg.example/run:2"]
    # A build argument counts only for a declared ARG, as in BuildKit.
    assert refs("FROM x.example/a:${V:-def}\n", {"V": "9"}) == ["x.example/a:def"]


def test_stage_names_scratch_and_numbers_are_not_images() -> None:
    text = (
        "FROM reg.example/golang:1 AS Build\n"
        "RUN --mount=type=cache,target=/c --mount=from=reg.example/tools:3,target=/t make\n"
        "FROM scratch\n"
        "COPY --from=build /app /app\n"
        "COPY --from=0 /x /x\n"
        "COPY --from=reg.example/assets:2 /a /a\n"
        "FROM build AS final\n"
    )
    assert refs(text) == ["reg.example/golang:1", "reg.example/tools:3", "reg.example/assets:2"]


def test_automatic_platform_args_and_from_platform() -> None:
    text = "FROM --platform=$BUILDPLATFORM reg.example/cross:1 AS b\nFROM reg.example/base-${TARGETARCH}:1\n"
    found = base_references(text, {}, ARM64, AMD64)
    assert found == [Base("reg.example/cross:1", AMD64), Base("reg.example/base-arm64:1", ARM64)]


def test_continuations_comments_and_escape_directive() -> None:
    text = "# escape=`\n# a comment\nFROM `\n  reg.example/a:1 `\n  AS one\n\nRUN echo \\\nFROM reg.example/b:2\n"
    assert refs(text) == ["reg.example/a:1", "reg.example/b:2"]


def test_a_named_context_replaces_the_image() -> None:
    assert refs("FROM base\nFROM reg.example/x:1\n", contexts=("base",)) == ["reg.example/x:1"]


def test_an_unset_variable_is_unresolved_never_guessed() -> None:
    (found,) = base_references("ARG BASE\nFROM ${BASE}\n", {}, ARM64, AMD64)
    assert found == Unresolved("${BASE}", "BASE")
    assert refs("ARG BASE\nFROM ${BASE}\n", {"BASE": "r.example/b@sha256:" + "a" * 64}) == [
        "r.example/b@sha256:" + "a" * 64]


# ---------------------------------------------------------------- the build context


def make_context(tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (context / "src" / "main.py").write_text("print('hi')\n")
    (context / "notes.md").write_text("notes\n")
    (context / "build.log").write_text("log\n")
    (context / ".dockerignore").write_text("# logs never matter\n*.log\n")
    return context


def test_dockerignored_files_do_not_count(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    before = context_entries(context, context / "Dockerfile")
    assert "build.log" not in before and "src/main.py" in before and ".dockerignore" in before
    (context / "build.log").write_text("another log\n")
    (context / "other.log").write_text("new\n")
    assert context_entries(context, context / "Dockerfile") == before


def test_a_context_without_ignore_patterns_is_walked_as_dockers_matcher_walks_it(tmp_path: Path) -> None:
    """Without patterns the walk is buildspec's own (docker-py is not imported for it): the
    same entries as docker-py's matcher, folders entered, links to folders not followed."""
    from docker.utils.build import PatternMatcher

    context = make_context(tmp_path)
    (context / ".dockerignore").write_text("# only a comment: nothing is ignored\n\n")
    (context / "src" / "deep" / "er").mkdir(parents=True)
    (context / "src" / "deep" / "er" / "x.txt").write_text("x\n")
    (context / "empty").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("never walked\n")
    (context / "linked-dir").symlink_to(tmp_path / "outside")
    (context / "linked-file").symlink_to("notes.md")
    entries = context_entries(context, context / "Dockerfile")
    walked = sorted(p.replace(os.sep, "/") for p in PatternMatcher([]).walk(str(context)))
    assert sorted(entries) == walked
    assert {"src/deep/er/x.txt", "empty", "linked-dir", "linked-file", "build.log"} <= set(entries)
    assert entries["linked-dir"].startswith("link ") and "linked-dir/secret.txt" not in entries


def test_hashing_a_context_without_ignore_patterns_does_not_import_docker_py(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "sub").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "sub" / "f").write_text("f\n")
    probe = ("import sys; from pathlib import Path; from buildspec.uptodate.context import context_entries; "
             f"e = context_entries(Path({str(context)!r}), Path({str(context / 'Dockerfile')!r})); "
             "print(sorted(e), 'docker' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split("]")[-1].strip() == "False", result.stdout
    assert "'sub/f'" in result.stdout


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    dockerfile = context / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    (context / "app.Dockerfile.dockerignore").write_text("notes.md\n")
    entries = context_entries(context, dockerfile)
    assert "notes.md" not in entries and "build.log" in entries


def test_content_and_mode_count_timestamps_do_not(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    before = context_entries(context, context / "Dockerfile")
    os.utime(context / "src" / "main.py", (1, 1))
    assert context_entries(context, context / "Dockerfile") == before
    (context / "src" / "main.py").chmod(0o755)
    after = context_entries(context, context / "Dockerfile")
    assert after["src/main.py"] != before["src/main.py"]
    inputs = [inputs_for(context, files=entries) for entries in (before, after)]
    assert inputs[0].key != inputs[1].key
    assert changes(record(inputs[0]), inputs[1]) == ["src/main.py mode 0644 -> 0755"]


def test_the_folder_the_context_lives_in_does_not_count(tmp_path: Path) -> None:
    one = make_context(tmp_path / "one")
    two = make_context(tmp_path / "two")
    assert context_entries(one, one / "Dockerfile") == context_entries(two, two / "Dockerfile")
    assert request_key(one) == request_key(two)


def test_symlinks_count_by_target_and_are_not_followed(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    (context / "link").symlink_to("/etc")
    entries = context_entries(context, context / "Dockerfile")
    assert entries["link"] == "link 0777 /etc"
    assert not any(path.startswith("link/") for path in entries)


# ---------------------------------------------------------------- the key and what changed


def request(context: Path, **changes: object) -> BuildRequest:
    base = BuildRequest(
        node_id="build:app@linux/arm64", image="app", platform=ARM64, context=context,
        dockerfile=context / "Dockerfile", target=None, args={"VERSION": "1.0"},
        labels={"org.opencontainers.image.title": "app"},
        push_ref="r.example/app:1.0.0-linux-arm64", insecure=False, workdir=context.parent / "work",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def request_key(context: Path, **changes: object) -> str:
    return request_inputs(request(context, **changes), "buildx", {}, TreeCache()).key


def inputs_for(context: Path, files: dict[str, str] | None = None, **changes: object) -> Inputs:
    inputs = request_inputs(request(context, **changes), "buildx", {"r.example/base:1": "sha256:" + "1" * 64},
                            TreeCache(), {"BASE": "base"})
    return dataclasses.replace(inputs, files=files) if files is not None else inputs


def record(inputs: Inputs) -> dict[str, object]:
    return decode(inputs.encode())


def test_where_it_is_pushed_and_its_cache_do_not_count(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    key = request_key(context)
    assert request_key(context, push_ref="r.example/app:2.0.0-linux-arm64", node_id="x",
                       workdir=tmp_path / "w2", builder="other", cache_repo="r.example/cache") == key
    assert request_key(context, platform=AMD64) != key
    assert request_key(context, target="final") != key
    assert request_key(context, options={"buildah.layers": "true"}) != key
    assert request_key(context, options={"kaniko.executor": "/other/executor"}) == key


def test_changes_name_what_changed(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    old = inputs_for(context, args={"VERSION": "1.0", "BASE": "r.example/base@sha256:" + "a" * 64})
    (context / "src" / "main.py").write_text("print('changed')\n")
    (context / "notes.md").rename(context / "README.md")
    new = dataclasses.replace(
        inputs_for(context, args={"VERSION": "1.1", "BASE": "r.example/base@sha256:" + "b" * 64},
                   labels={"org.opencontainers.image.title": "app2"}),
        bases={"r.example/base:1": "sha256:" + "2" * 64},
    )
    assert changes(record(old), new, limit=10) == [
        "notes.md renamed to README.md",
        "src/main.py changed",
        "image(base) was rebuilt (sha256:bbbbbbbbbbbb)",
        "arg VERSION 1.0 -> 1.1",
        "label org.opencontainers.image.title changed",
        "FROM r.example/base:1 moved to sha256:" + "2" * 64,
    ]
    assert changes(record(old), new, limit=2)[-1] == "and 4 more changes"


def test_a_dockerfile_change_and_a_backend_change(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    old = inputs_for(context)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY src /\n")
    new = dataclasses.replace(inputs_for(context), backend="buildah")
    assert changes(record(old), new) == ["backend buildx -> buildah", "Dockerfile changed"]
    # A Dockerfile outside the context is named by its path from the context.
    outside = tmp_path / "app.Dockerfile"
    outside.write_text("FROM scratch\n")
    old = inputs_for(context, dockerfile=outside)
    outside.write_text("FROM scratch\nCOPY . /\n")
    assert changes(record(old), inputs_for(context, dockerfile=outside)) == ["../app.Dockerfile changed"]


def test_an_older_key_version_never_matches(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    new = inputs_for(context)
    old = dataclasses.replace(new, version=new.version - 1)
    assert old.key != new.key
    assert changes(record(old), new) == [f"the key recipe changed (key version {old.version} -> {new.version})"]


def test_a_huge_context_keeps_only_its_digest_in_the_record(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    files = {f"f{i}": f"file 0644 {os.urandom(32).hex()}" for i in range(20000)}
    inputs = inputs_for(context, files=files)
    decoded = record(inputs)
    assert isinstance(decoded["files"], str)
    assert changes(decoded, inputs) == ["inputs changed"]
    assert changes(decoded, inputs_for(context, files={**files, "f1": "file 0644 x"})) == [
        "the build context changed"]


@pytest.mark.parametrize("text", ["", "not base64!", "aGVsbG8="])
def test_a_damaged_record_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unreadable inputs record"):
        decode(text)
