"""Tag schemes x git/CI states -> tags, for every tag type docker/metadata-action documents.

Each row of ``CASES`` is one git or CI state (a real temporary repository, and
for CI an explicit ``environ`` of GitHub Actions or GitLab CI variables), one
tag scheme written in Buildfile syntax, and the tags expected, in order. The
rows follow metadata-action's README: ``type=schedule``, ``semver``,
``pep440``, ``match``, ``edge``, ``ref`` (branch, tag, pr), ``raw``, ``sha``,
the ``flavor`` (prefix, suffix, latest), plus buildspec's own
``version.is_latest`` and de-duplication. docs/tags.md shows the same
snippets; where buildspec differs from metadata-action, the row says so.

Everything goes through the public path: a Buildfile with an image (context
and Dockerfile) is written next to the repository's files and loaded with
``buildspec.load.load``. Git runs with an empty global and system
configuration, a private HOME and fixed dates, so nothing of the machine
leaks in; the Buildfile and Dockerfile stay untracked (untracked files do not
make a tree dirty), so every state's commits are the same whatever the scheme.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from buildspec import cli
from buildspec.errors import BuildfileError
from buildspec.evaluate import Project
from buildspec.load import load

EPOCH = "1774499400"  # SOURCE_DATE_EPOCH: 2026-03-26T04:30:00Z
COMMIT_DATE = "2026-01-02T03:04:05Z"  # committer date of every commit
REGISTRY = "registry.example/acme"
GITHUB_URL = "https://github.com/acme/app"
MERGE_SHA = "4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d"  # GitHub's PR merge commit, not in the clone


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(("GIT_", "GITHUB_", "GITLAB_", "CI_")) or name in ("CI", "SOURCE_DATE_EPOCH"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Ada Lovelace")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "ada@example.com")
        monkeypatch.setenv(f"GIT_{who}_DATE", COMMIT_DATE)


# ------------------------------------------------------------------ git and CI states


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return result.stdout.strip()


def commit(repo: Path, name: str) -> str:
    (repo / name).write_text(f"{name}\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", GITHUB_URL + ".git")
    commit(path, "README")
    return path


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


@dataclass(frozen=True)
class State:
    """A git/CI state: ``setup(repo, tmp)`` changes the repository and returns the CI variables."""

    name: str
    setup: Callable[[Path, Path], dict[str, str]]

    def __repr__(self) -> str:
        return self.name


def make_tag(repo: Path, name: str, *, annotated: bool) -> None:
    if annotated:
        git(repo, "tag", "-a", name, "-m", f"release {name}")
    else:
        git(repo, "tag", name)


def local_branch(name: str) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        if name != "main":
            git(repo, "switch", "-q", "-c", name)
            commit(repo, "feature.txt")
        return {}

    return State(f"local branch {name}", setup)


def local_tag(name: str, *, annotated: bool = True, detached: bool = True) -> State:
    """A tag at HEAD; ``detached``: checked out as ``git switch --detach TAG`` (CI-like)."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        make_tag(repo, name, annotated=annotated)
        if detached:
            git(repo, "switch", "-q", "--detach", name)
        return {}

    kind = "annotated" if annotated else "lightweight"
    return State(f"local {kind} tag {name}{', detached' if detached else ' on main'}", setup)


def local_tags(*names: str) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        for name in names:
            make_tag(repo, name, annotated=False)
        return {}

    return State(f"local tags {' '.join(names)} on main", setup)


def local_detached() -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        commit(repo, "next.txt")
        git(repo, "switch", "-q", "--detach", "HEAD")
        return {}

    return State("local detached HEAD", setup)


def local_dirty() -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        (repo / "README").write_text("changed\n")
        return {}

    return State("local main, dirty", setup)


def local_untracked() -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        (repo / "notes.txt").write_text("not tracked\n")
        return {}

    return State("local main, untracked file", setup)


def local_tag_behind() -> State:
    """The tag is on the previous commit: HEAD has no tag, so no version."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        make_tag(repo, "v1.2.3", annotated=True)
        commit(repo, "after-release.txt")
        return {}

    return State("local main, tag v1.2.3 one commit behind", setup)


def _github(tmp: Path, event: str, ref: str, sha: str, payload: Mapping[str, object],
            head_ref: str = "", base_ref: str = "") -> dict[str, str]:
    path = tmp / "github-event.json"
    path.write_text(json.dumps(payload))
    ref_type, _, ref_name = ("tag", "", ref.removeprefix("refs/tags/")) if ref.startswith("refs/tags/") else (
        "branch", "", ref.removeprefix("refs/heads/"))
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REF": ref,
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_REF_TYPE": ref_type,
        "GITHUB_SHA": sha,
        "GITHUB_HEAD_REF": head_ref,  # Actions sets these to "" outside pull requests
        "GITHUB_BASE_REF": base_ref,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
    }


def _push_payload(ref: str, sha: str) -> dict[str, object]:
    return {
        "ref": ref,
        "after": sha,
        "repository": {"default_branch": "main"},
        "head_commit": {"id": sha, "timestamp": "2026-01-02T04:04:05+01:00"},
    }


def gh_push(branch: str) -> State:
    """``on: push`` to a branch; actions/checkout leaves a detached HEAD at GITHUB_SHA."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        if branch != "main":
            git(repo, "switch", "-q", "-c", branch)
            commit(repo, "feature.txt")
        git(repo, "switch", "-q", "--detach", "HEAD")
        ref = f"refs/heads/{branch}"
        return _github(tmp, "push", ref, head(repo), _push_payload(ref, head(repo)))

    return State(f"github push {branch}", setup)


def gh_tag(name: str) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        make_tag(repo, name, annotated=True)
        git(repo, "switch", "-q", "--detach", name)
        ref = f"refs/tags/{name}"
        return _github(tmp, "push", ref, head(repo), _push_payload(ref, head(repo)))

    return State(f"github tag {name}", setup)


def gh_pr(head_branch: str = "feature/login-form", number: int = 42) -> State:
    """``on: pull_request``: GITHUB_REF is refs/pull/N/merge, the merge commit is not in the clone."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        payload = {
            "action": "synchronize",
            "number": number,
            "pull_request": {"number": number, "head": {"ref": head_branch}, "base": {"ref": "main"}},
            "repository": {"default_branch": "main"},
        }
        return _github(tmp, "pull_request", f"refs/pull/{number}/merge", MERGE_SHA, payload,
                       head_ref=head_branch, base_ref="main")

    return State(f"github pull_request #{number} from {head_branch}", setup)


def gh_pr_target(number: int = 43) -> State:
    """``on: pull_request_target``: GITHUB_REF is the base branch; the number is only in the payload."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        payload = {
            "number": number,
            "pull_request": {"number": number, "head": {"ref": "fix/typo"}, "base": {"ref": "main"}},
            "repository": {"default_branch": "main"},
        }
        return _github(tmp, "pull_request_target", "refs/heads/main", head(repo), payload,
                       head_ref="fix/typo", base_ref="main")

    return State(f"github pull_request_target #{number}", setup)


def gh_schedule() -> State:
    """``on: schedule``: runs on the default branch; the payload names no default branch."""

    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        git(repo, "switch", "-q", "--detach", "HEAD")
        return _github(tmp, "schedule", "refs/heads/main", head(repo), {"schedule": "30 4 * * *"})

    return State("github schedule", setup)


def _gitlab(sha: str, source: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": source,
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_SHORT_SHA": sha[:8],  # GitLab's is 8 digits; buildspec uses 7, as metadata-action
        "CI_DEFAULT_BRANCH": "main",
        "CI_PROJECT_URL": GITHUB_URL,
        "CI_COMMIT_TIMESTAMP": "2026-01-02T03:04:05+00:00",
        **variables,
    }


def gl_branch(branch: str) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        if branch != "main":
            git(repo, "switch", "-q", "-c", branch)
            commit(repo, "feature.txt")
        git(repo, "switch", "-q", "--detach", "HEAD")
        return _gitlab(head(repo), "push", CI_COMMIT_BRANCH=branch, CI_COMMIT_REF_NAME=branch,
                       CI_COMMIT_REF_SLUG=branch.replace("/", "-"))

    return State(f"gitlab branch pipeline {branch}", setup)


def gl_tag(name: str) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        make_tag(repo, name, annotated=True)
        git(repo, "switch", "-q", "--detach", name)
        return _gitlab(head(repo), "push", CI_COMMIT_TAG=name, CI_COMMIT_REF_NAME=name)

    return State(f"gitlab tag pipeline {name}", setup)


def gl_mr(iid: int = 7) -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        git(repo, "switch", "-q", "-c", "feature/login-form")
        commit(repo, "feature.txt")
        git(repo, "switch", "-q", "--detach", "HEAD")
        return _gitlab(head(repo), "merge_request_event", CI_MERGE_REQUEST_IID=str(iid),
                       CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="feature/login-form",
                       CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main", CI_COMMIT_REF_NAME="feature/login-form")

    return State(f"gitlab merge request !{iid}", setup)


def gl_schedule() -> State:
    def setup(repo: Path, tmp: Path) -> dict[str, str]:
        git(repo, "switch", "-q", "--detach", "HEAD")
        return _gitlab(head(repo), "schedule", CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main")

    return State("gitlab schedule", setup)


# ------------------------------------------------------------------ Buildfile and evaluation


def buildfile(lines: str, variables: str = "", image: str = "") -> str:
    return (
        f'registry = "{REGISTRY}"\n'
        "platforms = [linux/amd64]\n"
        f"{variables}\n"
        "tags scheme {\n"
        f"{lines}\n"
        "}\n"
        "image app {\n"
        '    context    = "docker"\n'
        '    dockerfile = "app.Dockerfile"\n'
        "    tags       = scheme\n"
        f"{image}\n"
        "}\n"
    )


def write_buildfile(repo: Path, text: str) -> Path:
    (repo / "docker").mkdir(exist_ok=True)
    (repo / "docker" / "app.Dockerfile").write_text("FROM scratch\n")
    path = repo / "Buildfile"
    path.write_text(text)
    return path


@dataclass
class Result:
    project: Project
    sha: str
    environ: dict[str, str]
    asked: list[str] = field(default_factory=list)

    def tags(self, image: str = "app") -> tuple[str, ...]:
        return self.project.images[image].tags


def evaluate_state(tmp_path: Path, state: State, text: str, *, existing: tuple[str, ...] | None = None,
                   overrides: Mapping[str, str] | None = None) -> Result:
    repo = new_repo(tmp_path / "repo")
    environ = {**state.setup(repo, tmp_path), "SOURCE_DATE_EPOCH": EPOCH}
    sha = environ.get("GITHUB_SHA") or environ.get("CI_COMMIT_SHA") or head(repo)
    asked: list[str] = []

    def lister(repository: str) -> list[str]:
        asked.append(repository)
        return list(existing or ())

    project, _ = load(write_buildfile(repo, text), overrides, environ, tag_lister=lister)
    return Result(project, sha, environ, asked)


def expand(tags: tuple[str, ...], sha: str) -> tuple[str, ...]:
    return tuple(t.replace("{sha7}", sha[:7]).replace("{sha10}", sha[:10]).replace("{sha}", sha) for t in tags)


# ------------------------------------------------------------------ schemes (docs/tags.md)

SCHEDULE = '"nightly" if git.event == "schedule"'  # type=schedule (pattern=nightly)
SCHEDULE_DATE = '"{date|%Y%m%d}" if git.event == "schedule"'  # type=schedule,pattern={{date 'YYYYMMDD'}}
SCHEDULE_DATETIME = '"nightly-{date|%Y%m%d-%H%M%S}" if git.event == "schedule"'
SEMVER = """\
    "{version}"                        if version.is_semver
    "{version.major}.{version.minor}"  if version.stable
    "{version.major}"                  if version.stable and version.major != "0\""""
PEP440 = """\
    "{version}"                        if version.is_pep440
    "{version.major}.{version.minor}"  if version.stable
    "{version.major}"                  if version.stable and version.major != "0\""""
LATEST = '"latest" if version.is_latest'
EDGE = '"edge" if git.is_default_branch'  # type=edge
REF_BRANCH = '"{git.branch|slug}" if git.branch and not git.pr'  # type=ref,event=branch
REF_TAG = '"{git.tag|slug}" if git.ref_type == "tag"'  # type=ref,event=tag
REF_PR = '"pr-{git.pr}" if git.pr'  # type=ref,event=pr
SHA = '"sha-{git.short_sha}" if git.short_sha'  # type=sha
SHA_LONG = '"sha-{git.sha}" if git.sha'  # type=sha,format=long
FALLBACK = '"sha-{git.short_sha}"'  # so that a state where nothing else applies still has a tag
LINE = 'line = match(git.tag, "^v(\\d+\\.\\d+)", 1)'
EXAMPLE = "\n".join([SEMVER, LATEST, EDGE, '"{git.branch|slug}" if git.branch', REF_PR,
                     '"line-{line}" if line', SHA, '"nightly-{date|%Y%m%d}" if git.event == "schedule"'])
DIRTY = '"dev-{git.short_sha}" if git.dirty\n"{git.branch|slug}" if not git.dirty'
RAW = '"foo"\n"mytag-{git.branch|slug}-{git.short_sha}" if git.branch\n"latest" if git.is_default_branch'
# the scheme of docs/tags.md, "In one screen"
RECOMMENDED = "\n".join([SEMVER, LATEST, EDGE, REF_BRANCH, REF_PR, SHA, SCHEDULE])
MATRIX = 'matrix { py = ["3.11", "3.12"] }\n    suffix = "-py{py}"'


@dataclass(frozen=True)
class Case:
    id: str
    state: State
    scheme: str
    expected: tuple[str, ...] | Mapping[str, tuple[str, ...]]  # image "app", or cell -> tags
    variables: str = ""
    image: str = ""
    existing: tuple[str, ...] | None = None  # the registry's tags, for version.is_latest
    overrides: Mapping[str, str] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()


def case(id: str, state: State, scheme: str, *expected: str, **kwargs: object) -> Case:
    return Case(id, state, scheme, expected, **kwargs)  # type: ignore[arg-type]


CASES: list[Case] = [
    # ---- type=schedule
    case("schedule-github-default-pattern", gh_schedule(), f"{SCHEDULE}\n{FALLBACK}", "nightly", "sha-{sha7}"),
    case("schedule-gitlab-default-pattern", gl_schedule(), f"{SCHEDULE}\n{FALLBACK}", "nightly", "sha-{sha7}"),
    case("schedule-date-pattern", gh_schedule(), SCHEDULE_DATE, "20260326"),
    case("schedule-datetime-pattern", gl_schedule(), SCHEDULE_DATETIME, "nightly-20260326-043000"),
    case("schedule-not-on-push", gh_push("main"), f"{SCHEDULE}\n{FALLBACK}", "sha-{sha7}"),
    # ---- type=semver: {{version}}, {{major}}.{{minor}}, {{major}} (not for 0.x), pre-releases
    case("semver-github-tag", gh_tag("v1.2.3"), SEMVER, "1.2.3", "1.2", "1"),
    case("semver-gitlab-tag", gl_tag("v1.2.3"), SEMVER, "1.2.3", "1.2", "1"),
    case("semver-local-annotated-detached", local_tag("v1.2.3"), SEMVER, "1.2.3", "1.2", "1"),
    case("semver-local-lightweight-on-main", local_tag("v1.2.3", annotated=False, detached=False), SEMVER,
         "1.2.3", "1.2", "1"),
    case("semver-without-v", gh_tag("1.2.3"), SEMVER, "1.2.3", "1.2", "1"),
    case("semver-prerelease-only-full-version", gh_tag("v2.0.8-beta.67"), SEMVER, "2.0.8-beta.67"),
    case("semver-major-zero-has-no-major-tag", gh_tag("v0.3.1"), SEMVER, "0.3.1", "0.3"),
    case("semver-build-metadata-dropped", gh_tag("v1.2.3+build.5"), SEMVER, "1.2.3", "1.2", "1"),
    case("semver-raw", gh_tag("v1.2.3"), '"{version.raw}" if version.is_semver', "v1.2.3"),
    case("semver-custom-patterns", gh_tag("v1.2.3"),
         '"v{version.major}" if version.stable\n"{version.minor}" if version.stable\n'
         '"{version.patch}" if version.stable', "v1", "2", "3"),
    case("semver-highest-of-two-local-tags", local_tags("v1.2.3", "v1.3.0"), SEMVER, "1.3.0", "1.3", "1"),
    case("semver-branch-push-has-no-version", gh_push("main"), f"{SEMVER}\n{FALLBACK}", "sha-{sha7}"),
    case("semver-tag-behind-head-is-not-the-version", local_tag_behind(), f"{SEMVER}\n{FALLBACK}", "sha-{sha7}"),
    case("semver-not-a-semver-tag", gh_tag("release-7"), f'{SEMVER}\n"{{git.tag|slug}}" if git.tag', "release-7"),
    case("semver-value-from-a-variable", gh_push("main"), SEMVER, "3.4.5", "3.4", "3",
         variables='version = env("APP_VERSION", "0.0.0-dev")', overrides={"version": "v3.4.5"}),
    # ---- type=pep440 (version_scheme = pep440)
    case("pep440-release", gh_tag("1.2.3"), PEP440, "1.2.3", "1.2", "1", variables="version_scheme = pep440"),
    case("pep440-v-prefix", gl_tag("v1.2.3"), PEP440, "1.2.3", "1.2", "1", variables="version_scheme = pep440"),
    case("pep440-rc-only-full-version", gh_tag("1.1rc2"), PEP440, "1.1rc2", variables="version_scheme = pep440"),
    case("pep440-normalised", gh_tag("1.0RC1"), PEP440, "1.0rc1", variables="version_scheme = pep440"),
    case("pep440-dev-only-full-version", gh_tag("1.0.dev4"), PEP440, "1.0.dev4",
         variables="version_scheme = pep440"),
    # metadata-action gives only 1.2.post1 here (it treats a post-release like a pre-release)
    case("pep440-post-release-is-stable", gh_tag("1.2.post1"), PEP440, "1.2.post1", "1.2", "1",
         variables="version_scheme = pep440"),
    case("pep440-two-part-release-deduplicated", gh_tag("2024.1"), PEP440, "2024.1", "2024",
         variables="version_scheme = pep440"),
    case("pep440-local-version-slugged", gh_tag("1.2.3+ubuntu1"), '"{version|slug}" if version.is_pep440',
         "1.2.3-ubuntu1", variables="version_scheme = pep440"),
    # ---- type=match
    case("match-group-1", gh_tag("v2.0.8-beta.67"), '"{line}" if line', "2.0", variables=LINE),
    case("match-group-0", gh_tag("v1.2.3"), '"{m}" if m', "1.2.3",
         variables='m = match(git.tag, "\\d+\\.\\d+\\.\\d+", 0)'),
    case("match-digits", gl_tag("20200110-RC2"), '"{m}" if m', "20200110", variables='m = match(git.tag, "\\d+")'),
    case("match-tag-with-slash", gh_tag("p1/v1.2.3"), '"{m}" if m', "1.2.3",
         variables='m = match(git.tag, "^p1/v(\\d+\\.\\d+\\.\\d+)$", 1)'),
    case("match-nothing-drops-the-tag", gh_push("main"), f'"line-{{line}}" if line\n{FALLBACK}', "sha-{sha7}",
         variables=LINE),
    case("match-in-a-condition", gh_tag("v1.2.3"), '"stable" if match(git.tag, "^v\\d+\\.\\d+\\.\\d+$")\n'
         '"{version}"', "stable", "1.2.3"),
    # ---- type=edge
    case("edge-github-default-branch", gh_push("main"), EDGE, "edge"),
    case("edge-gitlab-default-branch", gl_branch("main"), EDGE, "edge"),
    case("edge-local-default-branch", local_branch("main"), EDGE, "edge"),
    case("edge-not-on-feature-branch", gh_push("feature/login-form"), f"{EDGE}\n{REF_BRANCH}", "feature-login-form"),
    case("edge-not-on-tag", gh_tag("v1.2.3"), f"{EDGE}\n{REF_TAG}", "v1.2.3"),
    case("edge-not-for-a-pr-from-a-forks-main", gh_pr(head_branch="main"), f"{EDGE}\n{REF_PR}", "pr-42"),
    case("edge-custom-branch", gh_push("develop"), '"edge" if git.branch == "develop"', "edge"),
    # ---- type=ref,event=branch
    case("ref-branch-github", gh_push("main"), REF_BRANCH, "main"),
    case("ref-branch-github-slash", gh_push("feature/login-form"), REF_BRANCH, "feature-login-form"),
    case("ref-branch-gitlab", gl_branch("releases/v1"), REF_BRANCH, "releases-v1"),
    # metadata-action keeps the case (Feature-Login_Form); |slug lowercases
    case("ref-branch-local-slug", local_branch("Feature/Login_Form"), REF_BRANCH, "feature-login_form"),
    case("ref-branch-not-in-pr", gh_pr(), f"{REF_BRANCH}\n{REF_PR}", "pr-42"),
    case("ref-branch-not-on-tag", gh_tag("v1.2.3"), f"{REF_BRANCH}\n{REF_TAG}", "v1.2.3"),
    # ---- type=ref,event=tag
    case("ref-tag-github", gh_tag("v1.2.3"), REF_TAG, "v1.2.3"),
    case("ref-tag-gitlab", gl_tag("v1.2.3"), REF_TAG, "v1.2.3"),
    case("ref-tag-local-detached", local_tag("v1.2.3"), REF_TAG, "v1.2.3"),
    case("ref-tag-prerelease", gh_tag("v2.0.8-beta.67"), REF_TAG, "v2.0.8-beta.67"),
    case("ref-tag-not-on-a-branch-build", local_tag("v1.2.3", annotated=False, detached=False),
         f"{REF_TAG}\n{REF_BRANCH}", "main"),
    # ---- type=ref,event=pr
    case("ref-pr-github", gh_pr(), REF_PR, "pr-42"),
    case("ref-pr-github-target", gh_pr_target(), f"{REF_PR}\n{REF_BRANCH}", "pr-43"),
    case("ref-pr-gitlab-merge-request", gl_mr(), f"{REF_PR}\n{REF_BRANCH}", "pr-7"),
    case("ref-pr-head-branch-available", gh_pr(), '"pr-{git.pr}-{git.head_ref|slug}" if git.pr',
         "pr-42-feature-login-form"),
    # ---- the default tags of metadata-action (schedule, ref branch, ref tag, ref pr)
    case("defaults-on-branch", gh_push("main"), "\n".join([SCHEDULE, REF_BRANCH, REF_TAG, REF_PR]), "main"),
    case("defaults-on-tag", gh_tag("v1.2.3"), "\n".join([SCHEDULE, REF_BRANCH, REF_TAG, REF_PR]), "v1.2.3"),
    case("defaults-on-pr", gh_pr(), "\n".join([SCHEDULE, REF_BRANCH, REF_TAG, REF_PR]), "pr-42"),
    case("defaults-on-schedule", gh_schedule(), "\n".join([SCHEDULE, REF_BRANCH, REF_TAG, REF_PR]),
         "nightly", "main"),
    # ---- type=raw
    case("raw-values", gh_push("feature/login-form"),
         '"foo"\n"bar"\n"mytag-{git.branch|slug}-{git.short_sha}" if git.branch',
         "foo", "bar", "mytag-feature-login-form-{sha7}"),
    case("raw-docs-on-feature", gh_push("feature/login-form"), RAW, "foo", "mytag-feature-login-form-{sha7}"),
    case("raw-docs-on-main", gl_branch("main"), RAW, "foo", "mytag-main-{sha7}", "latest"),
    case("raw-latest-on-default-branch", gh_push("main"), f'"latest" if git.is_default_branch\n{FALLBACK}',
         "latest", "sha-{sha7}"),
    case("raw-latest-not-on-feature", gl_branch("feature/x"), f'"latest" if git.is_default_branch\n{FALLBACK}',
         "sha-{sha7}"),
    # ---- type=sha
    case("sha-short-github", gh_push("main"), SHA, "sha-{sha7}"),
    case("sha-short-gitlab-is-7-not-8", gl_branch("main"), SHA, "sha-{sha7}"),
    case("sha-short-local-detached", local_detached(), SHA, "sha-{sha7}"),
    case("sha-long", gh_push("main"), SHA_LONG, "sha-{sha}"),
    case("sha-in-pr-is-the-merge-commit", gh_pr(), SHA, "sha-{sha7}"),
    case("sha-length-setting", gh_push("main"), SHA, "sha-{sha10}", variables="short_sha_length = 10"),
    case("sha-branch-prefix", gh_push("feature/login-form"), '"{git.branch|slug}-{git.short_sha}" if git.branch',
         "feature-login-form-{sha7}"),
    # ---- dirty trees
    case("dirty-tree", local_dirty(), DIRTY, "dev-{sha7}"),
    case("clean-tree", local_branch("main"), DIRTY, "main"),
    case("dirty-untracked-files-only-is-clean", local_untracked(), DIRTY, "main"),
    # ---- flavor: prefix, suffix, latest (affix_latest is metadata-action's onlatest)
    case("prefix-suffix-on-latest", gh_tag("v1.2.3"), f"{SEMVER}\n{LATEST}",
         "v1.2.3-alpine", "v1.2-alpine", "v1-alpine", "vlatest-alpine",
         image='    prefix = "v"\n    suffix = "-alpine"', existing=()),
    case("prefix-suffix-not-on-latest", gh_tag("v1.2.3"), f"{SEMVER}\n{LATEST}",
         "v1.2.3-alpine", "v1.2-alpine", "v1-alpine", "latest",
         image='    prefix = "v"\n    suffix = "-alpine"\n    affix_latest = false', existing=()),
    case("suffix-on-branch-tags", gh_push("feature/login-form"), f"{REF_BRANCH}\n{SHA}",
         "feature-login-form-slim", "sha-{sha7}-slim", image='    suffix = "-slim"'),
    Case("matrix-cells-with-suffix", gh_tag("v1.2.3"), f"{SEMVER}\n{LATEST}",
         {"app-3.11": ("1.2.3-py3.11", "1.2-py3.11", "1-py3.11", "latest-py3.11"),
          "app-3.12": ("1.2.3-py3.12", "1.2-py3.12", "1-py3.12", "latest-py3.12")},
         image=MATRIX, existing=()),
    Case("matrix-cells-suffix-not-on-latest", gh_push("main"), f"{EDGE}\n{SHA}\n\"latest\" if git.is_default_branch",
         {"app-3.11": ("edge-py3.11", "sha-{sha7}-py3.11", "latest"),
          "app-3.12": ("edge-py3.12", "sha-{sha7}-py3.12", "latest")},
         image=MATRIX + "\n    affix_latest = false"),
    # ---- version.is_latest: latest never moves back to an older release line
    case("latest-first-release", gh_tag("v1.0.0"), f"{SEMVER}\n{LATEST}", "1.0.0", "1.0", "1", "latest",
         existing=()),
    case("latest-newer-patch", gh_tag("v1.2.3"), f"{SEMVER}\n{LATEST}", "1.2.3", "1.2", "1", "latest",
         existing=("1.2.2", "1.2", "1", "latest", "sha-0a1b2c3")),
    case("latest-not-for-older-line", gh_tag("v1.9.5"), f"{SEMVER}\n{LATEST}", "1.9.5", "1.9", "1",
         existing=("1.9.4", "1.9", "2.0.0", "2.0", "2", "latest")),
    case("latest-kept-by-equal-version", gl_tag("v2.0.0"), f"{SEMVER}\n{LATEST}", "2.0.0", "2.0", "2", "latest",
         existing=("2.0.0", "2.0", "2", "latest")),
    case("latest-never-for-prerelease", gh_tag("v2.1.0-rc.1"), f"{SEMVER}\n{LATEST}", "2.1.0-rc.1",
         existing=("2.0.0", "latest")),
    case("latest-ignores-higher-prerelease", gh_tag("v2.0.1"), f"{SEMVER}\n{LATEST}", "2.0.1", "2.0", "2", "latest",
         existing=("2.0.0", "3.0.0-rc.1", "nightly", "20260101")),
    case("latest-not-without-version", gh_push("main"), f"{LATEST}\n{FALLBACK}", "sha-{sha7}", existing=()),
    case("latest-pep440-older-line", gh_tag("1.9.5"), f"{PEP440}\n{LATEST}", "1.9.5", "1.9", "1",
         variables="version_scheme = pep440", existing=("2.0.0", "latest")),
    Case("latest-matrix-suffix-older-line", gh_tag("v1.9.5"), f'"{{version}}"\n{LATEST}',
         {"app-3.11": ("1.9.5-py3.11",), "app-3.12": ("1.9.5-py3.12",)}, image=MATRIX,
         existing=("2.0.0-py3.11", "2.0.0-py3.12", "latest-py3.11", "latest-py3.12")),
    Case("latest-shared-repository-each-suffix-its-own-line", gh_tag("v1.9.5"), f'"{{version}}"\n{LATEST}',
         {"app-3.11": ("1.9.5-py3.11",), "app-3.12": ("1.9.5-py3.12", "latest-py3.12")},
         image=MATRIX + '\n    repository = "{registry}/app"',
         existing=("2.0.0-py3.11", "latest-py3.11", "1.9.4-py3.12", "latest-py3.12", "2.0.0")),
    case("latest-prefix-older-line", gh_tag("v1.9.5"), f'"{{version}}"\n{LATEST}', "alpine-1.9.5",
         image='    prefix = "alpine-"', existing=("alpine-2.0.0", "alpine-latest")),
    case("latest-prefix-v-older-line", gh_tag("v1.9.5"), f'"{{version}}"\n{LATEST}', "v1.9.5",
         image='    prefix = "v"', existing=("v2.0.0", "vlatest")),  # v2.0.0 happens to parse as SemVer
    case("latest-pep440-two-part-older-line", gh_tag("2023.12"), f'"{{version}}"\n{LATEST}', "2023.12",
         variables="version_scheme = pep440", existing=("2024.1", "2024.2", "latest")),
    case("latest-pep440-ignores-date-and-build-number-tags", gh_tag("1.2.3"), f'"{{version}}"\n{LATEST}',
         "1.2.3", "latest", variables="version_scheme = pep440",
         existing=("1.2.2", "20260326", "1042", "nightly-20260326")),
    case("latest-semver-ignores-date-and-build-number-tags", gh_tag("v1.2.3"), f'"{{version}}"\n{LATEST}',
         "1.2.3", "latest", existing=("1.2.2", "20260326", "1042", "nightly-20260326")),
    # ---- de-duplication: the first occurrence wins, order is the scheme's
    case("dedup-version-twice", gh_tag("v1.2.3"),
         '"{version}"\n"{version.major}.{version.minor}.{version.patch}"\n"{git.tag|slug}"', "1.2.3", "v1.2.3"),
    case("dedup-branch-and-literal", gh_push("main"), f'{EDGE}\n{REF_BRANCH}\n"main"\n"edge"', "edge", "main"),
    case("dedup-match-equals-minor-line", gh_tag("v1.2.3"), f'{SEMVER}\n"{{line}}" if line', "1.2.3", "1.2", "1",
         variables=LINE),
    # ---- the scheme of docs/tags.md ("In one screen") in every state of its table
    case("docs-tag", gh_tag("v1.2.3"), RECOMMENDED, "1.2.3", "1.2", "1", "latest", "sha-{sha7}", existing=("1.2.2",)),
    case("docs-tag-gitlab", gl_tag("v1.2.3"), RECOMMENDED, "1.2.3", "1.2", "1", "latest", "sha-{sha7}",
         existing=("1.2.2",)),
    case("docs-tag-local", local_tag("v1.2.3"), RECOMMENDED, "1.2.3", "1.2", "1", "latest", "sha-{sha7}",
         existing=("1.2.2",)),
    case("docs-tag-older-line", gh_tag("v1.2.3"), RECOMMENDED, "1.2.3", "1.2", "1", "sha-{sha7}",
         existing=("1.2.2", "2.0.0")),
    case("docs-prerelease", gh_tag("v2.0.8-beta.67"), RECOMMENDED, "2.0.8-beta.67", "sha-{sha7}", existing=()),
    case("docs-push-main", gh_push("main"), RECOMMENDED, "edge", "main", "sha-{sha7}"),
    case("docs-push-feature", gh_push("feature/login-form"), RECOMMENDED, "feature-login-form", "sha-{sha7}"),
    case("docs-pr", gh_pr(), RECOMMENDED, "pr-42", "sha-{sha7}"),
    case("docs-mr", gl_mr(), RECOMMENDED, "pr-7", "sha-{sha7}"),
    case("docs-schedule", gh_schedule(), RECOMMENDED, "edge", "main", "sha-{sha7}", "nightly"),
    # ---- the scheme of examples/tags in four states
    case("example-tag", gh_tag("v1.2.3"), EXAMPLE, "1.2.3", "1.2", "1", "latest", "sha-{sha7}",
         variables=LINE.replace("^v", "^release-"), existing=("1.2.2",)),
    case("example-pr", gh_pr(), EXAMPLE, "feature-login-form", "pr-42", "sha-{sha7}",
         variables=LINE.replace("^v", "^release-")),
    case("example-schedule", gh_schedule(), EXAMPLE, "edge", "main", "sha-{sha7}", "nightly-20260326",
         variables=LINE.replace("^v", "^release-")),
    case("example-release-line", gl_tag("release-4.2"), EXAMPLE, "line-4.2", "sha-{sha7}",
         variables=LINE.replace("^v", "^release-")),
]


def _params() -> list[object]:
    return [pytest.param(c, id=c.id, marks=c.marks) for c in CASES]


def test_the_table_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", _params())
def test_tag_table(c: Case, tmp_path: Path) -> None:
    result = evaluate_state(tmp_path, c.state, buildfile(c.scheme, c.variables, c.image),
                            existing=c.existing, overrides=c.overrides)
    expected = c.expected if isinstance(c.expected, Mapping) else {"app": c.expected}
    got = {name: image.tags for name, image in result.project.images.items()}
    assert got == {name: expand(tags, result.sha) for name, tags in expected.items()}, c.state.name
    assert result.project.notes == ()
    if c.existing is None:
        assert result.asked == [], "only version.is_latest reads the registry"
    elif result.project.version is not None and result.project.version.stable:
        repositories = {image.repository for image in result.project.images.values()}
        assert sorted(result.asked) == sorted(repositories), "one read per repository"


# ------------------------------------------------------------------ one commit, three places


@pytest.mark.parametrize(
    "states",
    [
        pytest.param((local_branch("main"), gh_push("main"), gl_branch("main")), id="branch-main"),
        pytest.param((local_branch("feature/login-form"), gh_push("feature/login-form"),
                      gl_branch("feature/login-form")), id="branch-feature"),
        pytest.param((local_tag("v1.2.3"), gh_tag("v1.2.3"), gl_tag("v1.2.3")), id="tag-v1.2.3"),
    ],
)
def test_local_github_and_gitlab_agree_on_the_same_commit(states: tuple[State, ...], tmp_path: Path) -> None:
    """The same Buildfile gives the same tags (and labels) in a local checkout and under either CI."""
    text = buildfile(EXAMPLE, LINE.replace("^v", "^release-"))
    results = []
    for state in states:
        place = tmp_path / state.name.replace(" ", "-").replace("/", "-")
        place.mkdir()
        results.append(evaluate_state(place, state, text, existing=("1.0.0",)))
    local, github, gitlab = results
    assert local.sha == github.sha == gitlab.sha  # fixed dates and authors: the same commit each time
    assert [r.project.git.source for r in results] == ["local", "github", "gitlab"]
    assert local.tags() == github.tags() == gitlab.tags()
    assert local.project.images["app"].labels == github.project.images["app"].labels \
        == gitlab.project.images["app"].labels
    if states[0].name.startswith("local annotated tag"):
        assert local.tags() == expand(("1.2.3", "1.2", "1", "latest", "sha-{sha7}"), local.sha)
    elif "feature" in states[0].name:
        assert local.tags() == expand(("feature-login-form", "sha-{sha7}"), local.sha)
    else:
        assert local.tags() == expand(("edge", "main", "sha-{sha7}"), local.sha)


# ------------------------------------------------------------------ version.is_latest and the registry


def test_latest_when_the_registry_cannot_be_read_says_so(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    environ = gh_tag("v1.2.3").setup(repo, tmp_path)

    def unreachable(repository: str) -> list[str]:
        raise ConnectionError("connection refused")

    project, _ = load(write_buildfile(repo, buildfile(f"{SEMVER}\n{LATEST}")), None, environ, tag_lister=unreachable)
    assert project.images["app"].tags == ("1.2.3", "1.2", "1", "latest")
    (note,) = project.notes
    assert f"cannot read the tags of {REGISTRY}/app" in note
    assert "connection refused" in note
    assert "assuming no higher release" in note


def test_latest_without_a_tag_lister_says_it_did_not_read(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    environ = gh_tag("v1.2.3").setup(repo, tmp_path)
    project, _ = load(write_buildfile(repo, buildfile(f"{SEMVER}\n{LATEST}")), None, environ)
    assert project.images["app"].tags[-1] == "latest"
    assert project.notes == (f"version.is_latest: {REGISTRY}/app not read; assuming no higher release",)


def test_latest_reads_each_repository_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    environ = gh_tag("v1.2.3").setup(repo, tmp_path)
    text = buildfile(f'"{{version}}"\n{LATEST}', image=MATRIX + '\n    repository = "{registry}/app"')
    asked: list[str] = []
    project, _ = load(write_buildfile(repo, text), None, environ,
                      tag_lister=lambda r: asked.append(r) or [])  # type: ignore[func-returns-value]
    assert asked == [f"{REGISTRY}/app"]
    assert project.images["app-3.12"].tags == ("1.2.3-py3.12", "latest-py3.12")


def test_latest_is_not_read_when_no_condition_asks(tmp_path: Path) -> None:
    result = evaluate_state(tmp_path, gh_tag("v1.2.3"), buildfile('"latest"\n"{version}"'))
    assert result.tags() == ("latest", "1.2.3")
    assert result.asked == []


# ------------------------------------------------------------------ explain decisions, labels


def test_decisions_say_why_each_tag_was_dropped(tmp_path: Path) -> None:
    result = evaluate_state(tmp_path, gh_tag("v1.2.3"),
                            buildfile(f'{SEMVER}\n"{{line}}" if line\n"pr-{{git.pr}}" if git.pr\n'
                                      '"{git.branch|slug}-x" if git.tag', LINE))
    decisions = [(d.template, d.tag, d.reason) for d in result.project.images["app"].tag_decisions]
    assert decisions == [
        ("{version}", "1.2.3", "added"),
        ("{version.major}.{version.minor}", "1.2", "added"),
        ("{version.major}", "1", "added"),
        ("{line}", None, "duplicate of 1.2"),
        ("pr-{git.pr}", None, "condition false"),
        ("{git.branch|slug}-x", None, "unset name git.branch"),
    ]


def test_oci_labels_are_automatic_and_can_be_overridden(tmp_path: Path) -> None:
    image = '    labels {\n        "org.opencontainers.image.title" = "Acme app {version}"\n' \
            '        "org.opencontainers.image.vendor" = "Acme"\n    }'
    result = evaluate_state(tmp_path, gh_tag("v1.2.3"), buildfile(f"{SEMVER}", image=image))
    oci = "org.opencontainers.image."
    assert result.project.images["app"].labels == {
        oci + "created": COMMIT_DATE,  # the commit's date, not the time of the build
        oci + "revision": result.sha,
        oci + "source": GITHUB_URL,
        oci + "url": GITHUB_URL,
        oci + "version": "1.2.3",  # the first tag
        oci + "title": "Acme app 1.2.3",  # overridden
        oci + "vendor": "Acme",
    }


def test_matrix_cell_title_is_the_cell_name(tmp_path: Path) -> None:
    result = evaluate_state(tmp_path, gh_tag("v1.2.3"), buildfile('"{version}"', image=MATRIX))
    assert result.project.images["app-3.11"].labels["org.opencontainers.image.title"] == "app-3.11"
    assert result.project.images["app-3.11"].labels["org.opencontainers.image.version"] == "1.2.3-py3.11"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("state", "scheme", "variables", "image", "message"),
    [
        pytest.param(gh_push("feature/login-form"), '"{git.branch}"', "", "",
                     "tag 'feature/login-form' is not valid", id="branch-with-slash-unslugged"),
        pytest.param(gh_push("main"), '"{git.sha}{git.sha}{git.sha}{git.sha}"', "", "",
                     "160 characters long", id="too-long"),
        pytest.param(gh_tag("1.2.3+ubuntu1"), '"{version}"', "version_scheme = pep440", "",
                     "tag '1.2.3+ubuntu1' is not valid", id="pep440-local-version"),
        pytest.param(gh_push("main"), '"{git.branch}"', "", '    prefix = "-"',
                     "tag '-main' is not valid", id="prefix-makes-it-invalid"),
        pytest.param(gh_push("main"), '"{git.branch}"', "", '    suffix = "/x"',
                     "tag 'main/x' is not valid", id="suffix-makes-it-invalid"),
        pytest.param(gh_push("main"), '"pr-{git.pr}" if git.pr', "", "    no_tags = error",
                     "image 'app' resolves to no tags", id="no-tags-strict"),
        pytest.param(gh_push("main"), '"pr-{git.pr}"', "", "",
                     "tag template refers to 'git.pr', which is unset here", id="unset-name-unguarded"),
        pytest.param(gh_push("main"), '"{git.branch|slug}"', "",
                     MATRIX.replace('\n    suffix = "-py{py}"', '\n    repository = "{registry}/app"'),
                     f"images 'app-3.11' and 'app-3.12' would both push {REGISTRY}/app:main", id="cells-collide"),
    ],
)
def test_invalid_tags_are_errors(state: State, scheme: str, variables: str, image: str, message: str,
                                 tmp_path: Path) -> None:
    with pytest.raises(BuildfileError) as caught:
        evaluate_state(tmp_path, state, buildfile(scheme, variables, image))
    assert message in str(caught.value)


def test_invalid_tag_exits_2_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "repo")
    environ = gh_push("feature/login-form").setup(repo, tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    path = write_buildfile(repo, buildfile('"{git.branch}"'))
    monkeypatch.chdir(repo)
    for command in ("check", "plan"):
        assert cli.main([command, "-f", "Buildfile"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("Buildfile:5:1: error: tag 'feature/login-form' is not"), err
        assert "tag 'feature/login-form' is not valid" in err
        assert "hint: the |slug filter makes any text tag-safe" in err
        assert "Traceback" not in err
    assert path.exists()


@pytest.mark.parametrize("length", ["3", "65"])
def test_short_sha_length_out_of_range_is_a_buildfile_error(length: str, tmp_path: Path) -> None:
    with pytest.raises(BuildfileError, match="short_sha_length"):
        evaluate_state(tmp_path, gh_push("main"), buildfile(SHA, f"short_sha_length = {length}"))


def test_short_sha_length_not_a_number_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BuildfileError, match="short_sha_length"):
        evaluate_state(tmp_path, gh_push("main"), buildfile(SHA, 'short_sha_length = "ten"'))


def test_short_sha_length_out_of_range_exits_2_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "repo")
    write_buildfile(repo, buildfile(SHA))
    monkeypatch.chdir(repo)
    assert cli.main(["check", "--set", "short_sha_length=3"]) == 2
    assert "short_sha_length" in capsys.readouterr().err
