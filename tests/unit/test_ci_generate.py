"""`buildspec ci gitlab|github`: the shape of the generated pipelines (no CI system runs here;
tests/unit/test_ci_validate.py validates them, tests/e2e/test_ci_gitlab_local.py runs them)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildspec.cli import main

REPO = Path(__file__).resolve().parents[2]


def example(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns(".buildspec"))
    return target


def generate(folder: Path, system: str, *args: str) -> dict[str, Any]:
    out = folder / f"pipeline-{system}.yml"
    assert main(["ci", system, "-f", str(folder / "Buildfile"), "-o", str(out), *args]) == 0
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def jobs_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if "jobs" in document:  # GitHub
        return dict(document["jobs"])
    return {k: v for k, v in document.items() if isinstance(v, dict) and "script" in v}


def plan_commands(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[list[str]]]:
    capsys.readouterr()
    assert main(["plan", "-f", str(folder / "Buildfile"), "--format", "json", "--commands", "--no-merge",
                 "--no-lookup", "--backend", "buildx", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    return {n["id"]: n["commands"] for n in data["nodes"] if n["kind"] == "build"}


def test_gitlab_jobs_are_the_graph(tmp_path: Path, buildspec_env: dict[str, str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = example(tmp_path, "quickstart")
    document = generate(folder, "gitlab")
    jobs = jobs_of(document)
    assert sorted(jobs) == sorted([
        "build-base-linux-amd64", "build-base-linux-arm64", "build-app-linux-amd64", "build-app-linux-arm64",
        "manifest-base", "manifest-app",
    ])
    # needs: exactly the graph's edges, platform by platform (arm64 never waits for amd64)
    assert jobs["build-base-linux-amd64"]["needs"] == []
    assert jobs["build-app-linux-arm64"]["needs"] == ["build-base-linux-arm64"]
    assert jobs["build-app-linux-amd64"]["needs"] == ["build-base-linux-amd64"]
    # atomic: the manifest jobs come in a last stage with no needs, after every build
    assert document["stages"][-1] == "publish"
    for name in ("manifest-base", "manifest-app"):
        assert jobs[name]["stage"] == "publish" and "needs" not in jobs[name]
    assert jobs["manifest-app"]["script"] == [
        "${BUILDSPEC} run -f Buildfile --set busybox=127.0.0.1:5000/busybox:1 --set registry=127.0.0.1:5000/quickstart "
        "--set version=1.0.0 --backend buildx --publish atomic --progress plain --manifests-only app"]
    # runners per architecture (GitLab.com's hosted ones by default)
    assert jobs["build-base-linux-arm64"]["tags"] == ["saas-linux-small-arm64"]
    assert jobs["build-base-linux-amd64"]["tags"] == ["saas-linux-small-amd64"]
    # the digest travels as a dotenv report
    assert jobs["build-base-linux-arm64"]["artifacts"] == {
        "reports": {"dotenv": ".buildspec-ci/build-base-linux-arm64.env"}}
    assert any(line.startswith('echo "BUILDSPEC_DIGEST_BASE_LINUX_ARM64=${BUILDSPEC_PUSHED}" >')
               for line in jobs["build-base-linux-arm64"]["script"])

    # The build commands are plan --commands' argv, with the checkout's paths, the job's
    # work folder and the pin as the dependency job's digest.
    planned = plan_commands(folder, capsys)
    for node, commands in planned.items():
        job = jobs[re.sub(r"[^A-Za-z0-9_-]+", "-", node.replace(":", "-", 1))]
        work = node.replace(":", "-", 1).replace("/", "-")
        expected = []
        for argv in commands:
            words = []
            for w in argv:
                w = w.replace(str(folder.resolve() / ".buildspec" / "work" / work),
                              f"${{CI_PROJECT_DIR}}/.buildspec-ci/{work}")
                w = w.replace(str(folder.resolve()), "${CI_PROJECT_DIR}")
                w = re.sub(r"@<digest of base for linux/(\w+)>",
                           lambda m: f"@${{BUILDSPEC_DIGEST_BASE_LINUX_{m.group(1).upper()}}}", w)
                words.append(w)
            expected.append(words)
        script = [shlex.split(line) for line in job["script"]]
        assert script[0] == ["mkdir", "-p", f"${{CI_PROJECT_DIR}}/.buildspec-ci/{work}"]
        assert script[1:1 + len(expected)] == expected


def test_github_workflow_shape(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = example(tmp_path, "quickstart")
    jobs = jobs_of(generate(folder, "github"))
    assert jobs["build-base-linux-arm64"]["runs-on"] == "ubuntu-24.04-arm"
    assert jobs["build-base-linux-amd64"]["runs-on"] == "ubuntu-24.04"
    app = jobs["build-app-linux-arm64"]
    assert app["needs"] == ["build-base-linux-arm64"]
    # the pin arrives as an environment variable from the dependency's output, never
    # as an expression inside the script
    assert app["env"] == {"BUILDSPEC_DIGEST_BASE_LINUX_ARM64": "${{ needs.build-base-linux-arm64.outputs.digest }}"}
    assert app["outputs"] == {"digest": "${{ steps.build.outputs.digest }}"}
    run = app["steps"][-1]["run"]
    assert 'BASE_IMAGE=127.0.0.1:5000/quickstart/base@"${BUILDSPEC_DIGEST_BASE_LINUX_ARM64}"' in run
    assert "${{" not in run
    assert 'echo "digest=${BUILDSPEC_PUSHED}" >> "$GITHUB_OUTPUT"' in run
    # atomic: one gate job needs every build, the manifest jobs need the gate
    assert sorted(jobs["publish-gate"]["needs"]) == sorted(n for n in jobs if n.startswith("build-"))
    assert jobs["manifest-app"]["needs"] == ["publish-gate"]
    assert jobs["manifest-base"]["needs"] == ["publish-gate"]


def test_eager_publishing(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = example(tmp_path, "quickstart")
    gitlab = jobs_of(generate(folder, "gitlab", "--publish", "eager"))
    assert sorted(gitlab["manifest-base"]["needs"]) == ["build-base-linux-amd64", "build-base-linux-arm64"]
    assert "--publish eager" in gitlab["manifest-base"]["script"][0]
    github = jobs_of(generate(folder, "github", "--publish", "eager"))
    assert "publish-gate" not in github
    assert sorted(github["manifest-app"]["needs"]) == ["build-app-linux-amd64", "build-app-linux-arm64"]


def test_matrix_needs_wait_for_every_runtime_build(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = example(tmp_path, "matrix")
    jobs = jobs_of(generate(folder, "gitlab"))
    tool = jobs["build-tool-linux-arm64"]
    # needs = [runtime] under atomic publishing: every runtime build (the index comes last)
    runtime_builds = sorted(n for n in jobs if n.startswith("build-runtime-"))
    assert len(runtime_builds) == 8
    assert sorted(tool["needs"]) == runtime_builds
    assert any('BASE=127.0.0.1:5000/matrix/runtime@"${BUILDSPEC_DIGEST_RUNTIME_SLIM_1_LINUX_ARM64}"' in line
               for line in tool["script"])


def test_runners_and_job_images(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = example(tmp_path, "quickstart")
    buildfile = folder / "Buildfile"
    buildfile.write_text(buildfile.read_text() + '\nci_runners = ["linux/arm64=from-file", "default=file-default"]\n'
                         'ci_job_images = ["buildah=example.com/buildah:1"]\n')
    jobs = jobs_of(generate(folder, "gitlab", "--backend", "buildah", "--runner", "linux/amd64=x86,big",
                            "--job-image", "buildspec=none"))
    assert jobs["build-base-linux-arm64"]["tags"] == ["from-file"]
    assert jobs["build-base-linux-amd64"]["tags"] == ["x86", "big"]
    assert jobs["manifest-app"]["tags"] == ["file-default"]
    assert jobs["build-base-linux-amd64"]["image"] == "example.com/buildah:1"
    assert "image" not in jobs["manifest-app"]
    # the command line wins over the Buildfile; none: no tags, no image (a shell runner)
    jobs = jobs_of(generate(folder, "gitlab", "--backend", "kaniko", "--runner", "linux/arm64=none",
                            "--job-image", "kaniko=none", "--kaniko-executor", "/opt/kaniko/executor"))
    assert "tags" not in jobs["build-base-linux-arm64"] and "image" not in jobs["build-base-linux-arm64"]
    script = " ".join(jobs["build-base-linux-arm64"]["script"])
    assert "/opt/kaniko/executor --context dir://" in script
    assert "--digest-file" in script
    # a native arm64 runner: kaniko's BUILDPLATFORM is the runner's, not this machine's
    assert "--build-arg BUILDPLATFORM=linux/arm64" in script
    github = jobs_of(generate(folder, "github", "--backend", "kaniko"))
    assert github["build-base-linux-arm64"]["container"] == {"image": "gcr.io/kaniko-project/executor:v1.23.2-debug"}


@pytest.mark.parametrize(("args", "message"), [
    (["--runner", "linux/arm64"], "--runner expects KEY=VALUE"),
    (["--runner", "linux/=x"], "--runner"),
    (["--job-image", "docker=x"], "--job-image: unknown kind 'docker'"),
])
def test_bad_options_exit_2(tmp_path: Path, buildspec_env: dict[str, str], capsys: pytest.CaptureFixture[str],
                            args: list[str], message: str) -> None:
    folder = example(tmp_path, "quickstart")
    assert main(["ci", "gitlab", "-f", str(folder / "Buildfile"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def large_buildfile(folder: Path, images: int = 100) -> Path:
    """``images`` images x 2 platforms: a chain through image() pins, plus one image that
    needs every other (so its jobs would need far more than 50 jobs)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ctx").mkdir()
    (folder / "ctx" / "Dockerfile").write_text("ARG BASE=scratch\nFROM ${BASE}\n")
    lines = ['registry = "127.0.0.1:5000/large"', "platforms = [linux/amd64, linux/arm64]", ""]
    for i in range(images - 1):
        pin = f"\n    args {{ BASE = image(img{i - 1}) }}" if i % 10 else ""
        lines.append(f'image img{i} {{\n    context = "ctx"{pin}\n    tags = ["1"]\n}}')
    needs = ", ".join(f"img{i}" for i in range(images - 1))
    lines.append(f'image all {{\n    context = "ctx"\n    needs = [{needs}]\n    tags = ["1"]\n}}')
    (folder / "Buildfile").write_text("\n".join(lines) + "\n")
    return folder


def test_large_graph_stays_within_gitlab_limits(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = large_buildfile(tmp_path / "large")
    document = generate(folder, "gitlab")
    jobs = jobs_of(document)
    builds = [n for n in jobs if n.startswith("build-")]
    assert len(builds) == 200
    assert len(jobs) <= 500
    assert all(len(job.get("needs", [])) <= 50 for job in jobs.values())
    # The image that needs 99 others has no needs: list; its stage comes after all of theirs.
    stages = document["stages"]
    for platform in ("amd64", "arm64"):
        job = jobs[f"build-all-linux-{platform}"]
        assert "needs" not in job
        assert all(stages.index(jobs[b]["stage"]) < stages.index(job["stage"])
                   for b in builds if not b.startswith("build-all-"))
    # pins still by digest, along the chain
    assert jobs["build-img5-linux-arm64"]["needs"] == ["build-img4-linux-arm64"]
    # every image's index is published exactly once, after every build (stage boundary)
    published = [job["script"][0].rsplit(" --manifests-only ", 1)[1].split() for job in jobs.values()
                 if job["stage"] == "publish"]
    assert sorted(i for chunk in published for i in chunk) == sorted([*(f"img{i}" for i in range(99)), "all"])

    # a smaller pipeline limit folds the manifest jobs
    folded = jobs_of(generate(folder, "gitlab", "--max-jobs", "250"))
    assert len(folded) <= 250
    published = [job["script"][0].rsplit(" --manifests-only ", 1)[1].split() for job in folded.values()
                 if job["stage"] == "publish"]
    assert sorted(i for chunk in published for i in chunk) == sorted([*(f"img{i}" for i in range(99)), "all"])


def test_large_graph_stays_within_github_limits(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = large_buildfile(tmp_path / "large")
    out = folder / "workflow.yml"
    assert main(["ci", "github", "-f", str(folder / "Buildfile"), "-o", str(out)]) == 0
    assert out.stat().st_size < 500 * 1024
    jobs = jobs_of(yaml.safe_load(out.read_text()))
    assert len(jobs) <= 256
    assert len([n for n in jobs if n.startswith("build-")]) == 200
    published = [job["steps"][-1]["run"].split(" --manifests-only ", 1)[1].split() for name, job in jobs.items()
                 if name.startswith(("manifest-", "publish-")) and name != "publish-gate"]
    assert sorted(i for chunk in published for i in chunk) == sorted([*(f"img{i}" for i in range(99)), "all"])
    assert all(jobs[n]["needs"] == ["publish-gate"] for n in jobs if n.startswith("publish-") and n != "publish-gate")


def test_too_many_builds_is_a_clear_error(tmp_path: Path, buildspec_env: dict[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = large_buildfile(tmp_path / "large")
    assert main(["ci", "github", "-f", str(folder / "Buildfile"), "--max-jobs", "150"]) == 2
    assert "200 build jobs do not fit into one GitHub Actions pipeline of at most 150 jobs" in capsys.readouterr().err


def test_context_outside_the_repository_is_refused(tmp_path: Path, buildspec_env: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = example(tmp_path, "quickstart")
    outside = tmp_path / "elsewhere"
    shutil.copytree(folder / "base", outside)
    buildfile = folder / "Buildfile"
    buildfile.write_text(buildfile.read_text().replace('context = "base"', f'context = "{outside}"'))
    assert main(["ci", "gitlab", "-f", str(buildfile)]) == 2
    assert "is outside the repository" in capsys.readouterr().err


BASE = {"linux/amd64": "sha256:" + "a" * 64, "linux/arm64": "sha256:" + "b" * 64}


def fake_staleness(monkeypatch: pytest.MonkeyPatch) -> None:
    """base is up to date on both platforms; app is stale, with keys known (its pin is)."""
    from buildspec.ci import stale

    def staleness(*args: object, **kwargs: object) -> stale.Staleness:
        return stale.Staleness(
            fresh={f"build:base@{p}": d for p, d in BASE.items()},
            keys={"build:app@linux/amd64": "1" * 64, "build:app@linux/arm64": "2" * 64},
        )

    monkeypatch.setattr(stale, "staleness", staleness)


def test_only_stale_leaves_up_to_date_builds_out(tmp_path: Path, buildspec_env: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_staleness(monkeypatch)
    folder = example(tmp_path, "quickstart")
    jobs = jobs_of(generate(folder, "gitlab", "--only-stale"))
    assert not [name for name in jobs if name.startswith("build-base")]
    app = jobs["build-app-linux-arm64"]
    assert app["needs"] == []  # nothing to wait for: base's digest is known
    assert any(f"BASE_IMAGE=127.0.0.1:5000/quickstart/base@{BASE['linux/arm64']}" in line for line in app["script"])
    record_base = shlex.split(jobs["manifest-base"]["script"][0])
    assert record_base[:4] == ["${BUILDSPEC}", "ci", "record", "base"]
    assert [record_base[i + 1] for i, w in enumerate(record_base) if w == "--reuse"] == [
        f"build:base@linux/amd64={BASE['linux/amd64']}", f"build:base@linux/arm64={BASE['linux/arm64']}"]
    assert "--manifests-only base" in jobs["manifest-base"]["script"][1]
    record_app = shlex.split(jobs["manifest-app"]["script"][0])
    assert [record_app[i + 1] for i, w in enumerate(record_app) if w == "--record"] == [
        "build:app@linux/amd64=" + "1" * 64, "build:app@linux/arm64=" + "2" * 64]
    # run --manifests-only app publishes base's index too: base's tags move first, whatever
    # the order of the manifest jobs
    assert [record_app[i + 1] for i, w in enumerate(record_app) if w == "--reuse"] == [
        f"build:base@linux/amd64={BASE['linux/amd64']}", f"build:base@linux/arm64={BASE['linux/arm64']}"]
    digests = [record_app[i + 1] for i, w in enumerate(record_app) if w == "--digest"]
    assert "build:app@linux/arm64=${BUILDSPEC_DIGEST_APP_LINUX_ARM64}" in digests
    assert f"build:base@linux/arm64={BASE['linux/arm64']}" in digests



def test_github_only_stale_has_a_plan_job(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    """A workflow is committed, so every build keeps its job and a plan job decides at run time."""
    folder = example(tmp_path, "quickstart")
    out = folder / "images.yml"
    assert main(["ci", "github", "-f", str(folder / "Buildfile"), "--only-stale", "-o", str(out)]) == 0
    jobs = jobs_of(yaml.safe_load(out.read_text()))
    plan = jobs["buildspec-plan"]
    assert plan["outputs"] == {"plan": "${{ steps.plan.outputs.plan }}"}
    assert shlex.split(plan["steps"][-1]["run"]) == [
        "${BUILDSPEC}", "ci", "stale", "-f", "Buildfile", "--only-stale", "--check", "images.yml",
        ">>", "$GITHUB_OUTPUT"]
    base = jobs["build-base-linux-arm64"]
    assert base["needs"] == ["buildspec-plan"]
    assert base["if"] == ("${{ !cancelled() && !failure() && "
                          "!fromJSON(needs.buildspec-plan.outputs.plan).fresh['build:base@linux/arm64'] }}")
    app = jobs["build-app-linux-arm64"]
    assert app["needs"] == ["buildspec-plan", "build-base-linux-arm64"]
    assert app["env"]["BUILDSPEC_DIGEST_BASE_LINUX_ARM64"] == (
        "${{ needs.build-base-linux-arm64.outputs.digest || "
        "fromJSON(needs.buildspec-plan.outputs.plan).fresh['build:base@linux/arm64'] }}")
    manifest = jobs["manifest-app"]
    assert manifest["if"] == "${{ !cancelled() && !failure() }}"
    assert manifest["env"]["BUILDSPEC_PLAN"] == "${{ needs.buildspec-plan.outputs.plan }}"
    record = shlex.split(manifest["steps"][-1]["run"].splitlines()[0])
    assert record[:4] == ["${BUILDSPEC}", "ci", "record", "app"]
    assert "--plan-from-env" in record
    assert "build:base@linux/arm64=${BUILDSPEC_DIGEST_BASE_LINUX_ARM64}" in record
    assert jobs["publish-gate"]["if"] == "${{ !cancelled() && !failure() }}"


def test_trigger_writes_the_parent_pipeline(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    folder = example(tmp_path, "quickstart")
    document = generate(folder, "gitlab", "app", "--trigger", "--only-stale", "--runner", "linux/arm64=arm",
                        "--set", "version=2.0.0")
    assert document["stages"] == ["generate", "build"]
    script = shlex.split(document["buildspec-generate"]["script"][0])
    # the targets right after "gitlab", every option passed on, the child written as an artifact
    assert script == ["${BUILDSPEC}", "ci", "gitlab", "app", "-f", "Buildfile", "--set", "version=2.0.0",
                      "--runner", "linux/arm64=arm", "--only-stale", "-o", "buildspec-pipeline.yml"]
    assert document["buildspec-generate"]["artifacts"] == {"paths": ["buildspec-pipeline.yml"]}
    assert document["buildspec-pipeline"]["trigger"] == {
        "include": [{"artifact": "buildspec-pipeline.yml", "job": "buildspec-generate"}], "strategy": "depend"}


@pytest.mark.parametrize(("args", "message"), [
    (["ci", "record", "base", "--reuse", "build:base@linux/amd64=sha256:" + "a" * 64], "needs --backend"),
    (["ci", "record", "base", "--backend", "buildx", "--record", "build:nope@linux/amd64=1"], "--record: expected"),
    (["ci", "gitlab", "--reuse", "x=y"], "belong to 'buildspec ci record'"),
    (["ci", "gitlab", "--check", "x.yml"], "--check belongs to 'buildspec ci stale'"),
    (["ci", "record", "app", "--backend", "buildx", "--plan-from-env", "NOPE"], "not the output of"),
    (["ci", "github", "--trigger"], "--trigger is for gitlab"),
])
def test_record_and_trigger_misuse_exit_2(tmp_path: Path, buildspec_env: dict[str, str],
                                          capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    folder = example(tmp_path, "quickstart")
    assert main([*args, "-f", str(folder / "Buildfile")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_without_git_the_ci_checkout_is_the_root(tmp_path: Path, buildspec_env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """In a generate job whose image has no git, paths are still relative to the checkout."""
    folder = example(tmp_path / "checkout" / "images", "quickstart")
    monkeypatch.setenv("CI_PROJECT_DIR", str(tmp_path / "checkout"))
    jobs = jobs_of(generate(folder, "gitlab"))
    assert '"${CI_PROJECT_DIR}"/images/quickstart/base ' in " ".join(jobs["build-base-linux-amd64"]["script"])
    assert " -f images/quickstart/Buildfile " in jobs["manifest-base"]["script"][0]


def test_one_publish_job(tmp_path: Path, buildspec_env: dict[str, str]) -> None:
    """--one-publish-job: one `run --manifests-only` for every image, atomic across images."""
    folder = example(tmp_path, "quickstart")
    jobs = jobs_of(generate(folder, "gitlab", "--one-publish-job"))
    publish = [name for name in jobs if not name.startswith("build-")]
    assert publish == ["publish-1"]
    assert jobs["publish-1"]["stage"] == "publish" and "needs" not in jobs["publish-1"]
    assert jobs["publish-1"]["script"][-1].endswith("--manifests-only base app")
    github = jobs_of(generate(folder, "github", "--one-publish-job"))
    assert github["publish-1"]["needs"] == ["publish-gate"]
