"""buildspec.gitcontext against real temporary git repositories and CI variable sets.

Every git process (ours and the code's) runs with an empty global and system
configuration, a private HOME, no inherited GIT_* variables and a ceiling at
pytest's temporary root, so no repository or setting of the machine leaks in.
CI variables are always passed explicitly as ``environ``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from buildspec import gitcontext
from buildspec.gitcontext import GitContext, normalize_remote_url, read_git_context

DATE_1 = "2026-11-28T11:31:49+01:00"  # committer dates with an offset: UTC is 10:31:49
DATE_1_UTC = "2026-11-28T10:31:49Z"
DATE_2 = "2026-11-29T08:00:00-05:00"
DATE_2_UTC = "2026-11-29T13:00:00Z"


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Cid Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "cid@example.com")


def git(cwd: Path, *args: str, date: str = DATE_1) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE": date}
    result = subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=env)
    return result.stdout.strip()


def commit(repo: Path, name: str, *, date: str = DATE_1) -> str:
    (repo / name).write_text(f"{name}\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}", date=date)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, "README")
    return path


def read(path: Path, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GitContext:
    return read_git_context(path, environ or {}, **kwargs)


# ------------------------------------------------------------------ no repository


def test_not_a_repository(tmp_path: Path) -> None:
    ctx = read(tmp_path)
    assert ctx == GitContext(
        branch=None,
        tag=None,
        sha=None,
        short_sha=None,
        dirty=False,
        commit_date=None,
        default_branch="main",
        is_default_branch=False,
        pr=None,
        base_ref=None,
        head_ref=None,
        remote_url=None,
        event=None,
        source="none",
    )
    assert ctx.ref_type is None
    assert read(tmp_path, default_branch="trunk").default_branch == "trunk"


def test_missing_path(tmp_path: Path) -> None:
    assert read(tmp_path / "does" / "not" / "exist").source == "none"


def test_git_not_installed(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    ctx = read(repo)
    assert ctx.source == "none"
    assert ctx.sha is None


def test_git_that_hangs_is_killed_and_ignored(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    fake_git = fake_bin / "git"
    fake_git.write_text("#!/bin/sh\nexec sleep 30\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    monkeypatch.setattr(gitcontext.local, "GIT_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    assert read(repo).source == "none"
    assert time.monotonic() - started < 5


def test_repository_of_another_user_is_not_trusted(repo: Path) -> None:
    # The suite runs as root (scripts/test, CI): only root can hand a repository to another user.
    assert os.geteuid() == 0, "this test needs root, as the whole suite does"
    # git refuses it ("dubious ownership"); we neither fail nor override safe.directory,
    # which exists so that a stranger's config cannot run commands (core.fsmonitor) for us.
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    assert read(repo).source == "none"


def test_ci_variables_come_only_from_environ(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF", "refs/heads/elsewhere")
    monkeypatch.setenv("GITLAB_CI", "true")
    ctx = read(repo, {})
    assert ctx.source == "local"
    assert ctx.branch == "main"


def test_not_a_repository_is_found_by_nothing_above(tmp_path: Path) -> None:
    # The ceiling stops discovery; a plain folder next to a repository is not in it.
    (tmp_path / "repo").mkdir()
    git(tmp_path / "repo", "init", "-q")
    (tmp_path / "other").mkdir()
    assert read(tmp_path / "other").source == "none"


# ---------------------------------------------------------------- local reading


def test_unborn_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    ctx = read(tmp_path)
    assert ctx.source == "local"
    assert ctx.branch == "main"
    assert (ctx.sha, ctx.short_sha, ctx.commit_date, ctx.tag) == (None, None, None, None)
    assert ctx.is_default_branch is True
    assert ctx.dirty is False


def test_commit_on_default_branch(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    ctx = read(repo)
    assert ctx.source == "local"
    assert ctx.branch == "main"
    assert ctx.sha == sha
    assert ctx.short_sha == sha[:7]
    assert ctx.commit_date == DATE_1_UTC  # committer date, in UTC
    assert ctx.dirty is False
    assert ctx.tag is None
    assert ctx.tags == ()
    assert ctx.default_branch == "main"
    assert ctx.is_default_branch is True
    assert ctx.ref_type == "branch"
    assert (ctx.pr, ctx.base_ref, ctx.head_ref, ctx.event, ctx.remote_url) == (None,) * 5


def test_template_values(repo: Path) -> None:
    ctx = read(repo)
    values = ctx.as_template_values()
    assert set(values) == {
        "branch",
        "tag",
        "sha",
        "short_sha",
        "dirty",
        "commit_date",
        "default_branch",
        "is_default_branch",
        "pr",
        "base_ref",
        "head_ref",
        "pr_head_sha",
        "event",
        "ref_type",
        "remote_url",
        "source",
    }
    assert values["branch"] == "main"
    assert values["dirty"] is False
    assert values["is_default_branch"] is True
    assert values["ref_type"] == "branch"
    assert values["sha"] == ctx.sha


def test_short_sha_length(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    assert read(repo, short_sha_length=12).short_sha == sha[:12]
    for bad in (3, 65):
        with pytest.raises(ValueError, match="short_sha_length"):
            read(repo, short_sha_length=bad)


def test_feature_branch_is_not_default(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature/login")
    ctx = read(repo)
    assert ctx.branch == "feature/login"
    assert ctx.is_default_branch is False


def test_default_branch_argument(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "develop")
    ctx = read(repo, default_branch="develop")
    assert ctx.default_branch == "develop"
    assert ctx.is_default_branch is True


def test_reads_from_a_subdirectory_or_a_file(repo: Path) -> None:
    sub = repo / "images" / "app"
    sub.mkdir(parents=True)
    (sub / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "app")
    sha = git(repo, "rev-parse", "HEAD")
    assert read(sub).sha == sha
    assert read(sub / "Dockerfile").sha == sha
    assert read(sub).branch == "main"


def test_lightweight_and_annotated_tags_highest_semver_wins(repo: Path) -> None:
    git(repo, "tag", "v1.0.0")  # lightweight
    git(repo, "tag", "-a", "-m", "1.10", "v1.10.0")  # annotated
    git(repo, "tag", "-a", "-m", "1.9", "v1.9.0")
    git(repo, "tag", "v1.10.0-rc.1")
    git(repo, "tag", "release-candidate")
    ctx = read(repo)
    assert ctx.tag == "v1.10.0"  # numerically highest, a release above its pre-release
    assert ctx.tags == ("release-candidate", "v1.0.0", "v1.10.0", "v1.10.0-rc.1", "v1.9.0")
    assert ctx.branch == "main"  # on a branch with a tag: still a branch build
    assert ctx.ref_type == "branch"


def test_annotated_tag_alone(repo: Path) -> None:
    git(repo, "tag", "-a", "-m", "release", "v2.0.0")
    assert read(repo).tag == "v2.0.0"


def test_non_semver_tags_last_in_byte_order(repo: Path) -> None:
    git(repo, "tag", "beta")
    git(repo, "tag", "-a", "-m", "x", "alpha")
    git(repo, "tag", "Zulu")
    ctx = read(repo)
    assert ctx.tag == "beta"
    assert ctx.tags == ("Zulu", "alpha", "beta")


def test_tag_on_an_older_commit_is_not_exact(repo: Path) -> None:
    git(repo, "tag", "-a", "-m", "old", "v1.0.0")
    git(repo, "tag", "old-light")
    commit(repo, "CHANGELOG")
    ctx = read(repo)
    assert ctx.tag is None
    assert ctx.tags == ()


def test_detached_head_at_annotated_tag(repo: Path) -> None:
    git(repo, "tag", "-a", "-m", "release", "v2.0.0")
    commit(repo, "later")
    git(repo, "checkout", "-q", "--detach", "v2.0.0")
    ctx = read(repo)
    assert ctx.branch is None
    assert ctx.tag == "v2.0.0"
    assert ctx.ref_type == "tag"
    assert ctx.is_default_branch is False
    assert ctx.sha == git(repo, "rev-parse", "v2.0.0^{commit}")


def test_detached_head_without_tag(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, "later")
    git(repo, "checkout", "-q", "--detach", first)
    ctx = read(repo)
    assert (ctx.branch, ctx.tag, ctx.ref_type) == (None, None, None)
    assert ctx.sha == first
    assert ctx.is_default_branch is False


def _modify_tracked(repo: Path) -> None:
    (repo / "README").write_text("changed\n")


def _delete_tracked(repo: Path) -> None:
    (repo / "README").unlink()


def _stage_new_file(repo: Path) -> None:
    (repo / "new.txt").write_text("new\n")
    git(repo, "add", "new.txt")


def _untracked_only(repo: Path) -> None:
    (repo / "scratch.txt").write_text("notes\n")


def _ignored_only(repo: Path) -> None:
    (repo / ".git" / "info" / "exclude").write_text("*.log\n")
    (repo / "build.log").write_text("log\n")


def _touch_without_change(repo: Path) -> None:
    os.utime(repo / "README", (1, 1))


@pytest.mark.parametrize(
    ("change", "dirty"),
    [
        (_modify_tracked, True),
        (_delete_tracked, True),
        (_stage_new_file, True),
        (_untracked_only, False),  # as git describe --dirty: untracked files do not count
        (_ignored_only, False),
        (_touch_without_change, False),  # only stat data changed, not the content
    ],
)
def test_dirty(repo: Path, change: Any, dirty: bool) -> None:
    assert read(repo).dirty is False
    change(repo)
    assert read(repo).dirty is dirty


def test_reading_does_not_take_the_index_lock(repo: Path) -> None:
    _modify_tracked(repo)
    (repo / ".git" / "index.lock").write_text("")  # another git is busy
    assert read(repo).dirty is True


def test_bare_repository(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    ctx = read(bare)
    assert ctx.source == "local"
    assert ctx.branch == "main"
    assert ctx.sha == git(repo, "rev-parse", "HEAD")
    assert ctx.dirty is False


# ---------------------------------------------------------- origin and its HEAD


def test_origin_head_gives_the_default_branch(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "-m", "main", "trunk")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert git(clone, "symbolic-ref", "refs/remotes/origin/HEAD") == "refs/remotes/origin/trunk"

    ctx = read(clone, default_branch="main")  # origin/HEAD beats the Buildfile variable
    assert ctx.default_branch == "trunk"
    assert ctx.branch == "trunk"
    assert ctx.is_default_branch is True
    assert ctx.remote_url is None  # a local path is not a web URL

    git(clone, "switch", "-q", "-c", "main")
    assert read(clone).is_default_branch is False


def test_without_origin_head_the_argument_then_main(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://example.com/acme/app.git")
    assert read(repo, default_branch="develop").default_branch == "develop"
    assert read(repo).default_branch == "main"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cr3t@Git.Example.com/acme/app.git", "https://git.example.com/acme/app"),
        (
            "https://oauth2:glpat-XXXX@gitlab.example.com:8443/grp/sub/proj.git",
            "https://gitlab.example.com:8443/grp/sub/proj",
        ),
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("ssh://git@github.com:22/acme/app.git", "https://github.com/acme/app"),
        ("/srv/git/app.git", None),
    ],
)
def test_remote_url_from_the_repository(repo: Path, url: str, expected: str | None) -> None:
    git(repo, "remote", "add", "origin", url)
    ctx = read(repo)
    assert ctx.remote_url == expected
    assert "s3cr3t" not in repr(ctx)
    assert "glpat" not in repr(ctx)


def test_remote_url_applies_insteadof(repo: Path) -> None:
    git(repo, "config", "url.https://github.com/.insteadOf", "gh:")
    git(repo, "remote", "add", "origin", "gh:acme/app")
    assert read(repo).remote_url == "https://github.com/acme/app"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/app", "https://github.com/acme/app"),
        ("https://github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://github.com/acme/app.git/", "https://github.com/acme/app"),
        ("https://github.com/acme/app/", "https://github.com/acme/app"),
        ("https://x-access-token:ghs_abc@github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://token@github.com/acme/app", "https://github.com/acme/app"),
        ("https://github.com/acme/app.git?foo=bar#frag", "https://github.com/acme/app"),
        ("HTTPS://GitHub.COM/Acme/App.git", "https://github.com/Acme/App"),
        ("http://gitea.local:3000/org/repo.git", "http://gitea.local:3000/org/repo"),
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("github.com:acme/app", "https://github.com/acme/app"),
        ("deploy@gitlab.example.com:group/sub/project.git", "https://gitlab.example.com/group/sub/project"),
        ("git@[2001:db8::1]:acme/app.git", "https://[2001:db8::1]/acme/app"),
        ("ssh://git@gitlab.example.com:2222/group/project.git", "https://gitlab.example.com/group/project"),
        ("git+ssh://git@github.com/acme/app.git", "https://github.com/acme/app"),
        ("git://git.kernel.org/pub/scm/git/git.git", "https://git.kernel.org/pub/scm/git/git"),
        ("https://github.com", "https://github.com"),
        ("/srv/git/app.git", None),
        ("./relative/repo", None),
        ("../sibling.git", None),
        ("file:///srv/git/app.git", None),
        ("C:/src/repo", None),
        ("origin", None),
        ("", None),
        ("   ", None),
        ("https://host:notaport/x", None),
        ("ftp://example.com/repo", None),
    ],
)
def test_normalize_remote_url(url: str, expected: str | None) -> None:
    assert normalize_remote_url(url) == expected


# ------------------------------------------------------------------- processes


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    calls: list[list[str]] = []
    real_popen = subprocess.Popen

    def counting_popen(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(list(argv))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counting_popen)  # the module gitcontext uses
    yield calls


def test_local_read_uses_four_git_processes(repo: Path, git_calls: list[list[str]]) -> None:
    read(repo)
    assert len(git_calls) == 4
    assert all(argv[0] == "git" for argv in git_calls)


def test_ci_that_names_default_branch_and_url_needs_two(repo: Path, tmp_path: Path, git_calls: list[list[str]]) -> None:
    read(repo, gitlab_env(sha="0" * 40))
    assert len(git_calls) == 2
    git_calls.clear()
    read(repo, github_env(tmp_path, ref="refs/heads/main", sha="0" * 40))
    assert len(git_calls) == 2


def test_no_folder_no_process(tmp_path: Path, git_calls: list[list[str]]) -> None:
    read(tmp_path / "missing")
    assert git_calls == []


# ------------------------------------------------------------------ CI variables

SHA = "5114f85f6a7d3b26d1b3c8b4c9b1f6e0a2d4c6e8"


def github_env(
    tmp_path: Path,
    *,
    ref: str,
    sha: str = SHA,
    event: str = "push",
    payload: dict[str, Any] | None = None,
    **extra: str,
) -> dict[str, str]:
    if payload is None:
        payload = {"repository": {"default_branch": "main"}}
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(payload))
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": ref,
        "GITHUB_SHA": sha,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_HEAD_REF": "",
        "GITHUB_BASE_REF": "",
    }
    if ref.startswith("refs/heads/"):
        env |= {"GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": ref.removeprefix("refs/heads/")}
    elif ref.startswith("refs/tags/"):
        env |= {"GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": ref.removeprefix("refs/tags/")}
    elif ref.startswith("refs/pull/"):
        env |= {"GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": ref.removeprefix("refs/pull/")}
    return env | extra


def gitlab_env(*, sha: str = SHA, **extra: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_SHORT_SHA": sha[:8],
        "CI_DEFAULT_BRANCH": "main",
        "CI_PROJECT_URL": "https://gitlab.example.com/acme/app",
        "CI_PIPELINE_SOURCE": "push",
    } | extra


# Each expectation: the fields that must come out of the variables alone.
GITHUB_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "push to the default branch",
        {"ref": "refs/heads/main"},
        {
            "branch": "main",
            "tag": None,
            "is_default_branch": True,
            "pr": None,
            "event": "push",
            "ref_type": "branch",
            "default_branch": "main",
        },
    ),
    (
        "push to a feature branch",
        {"ref": "refs/heads/feature/login"},
        {"branch": "feature/login", "tag": None, "is_default_branch": False, "event": "push"},
    ),
    (
        "push of a tag",
        {"ref": "refs/tags/v1.2.3"},
        {"branch": None, "tag": "v1.2.3", "is_default_branch": False, "event": "tag", "ref_type": "tag"},
    ),
    (
        "release published",
        {"ref": "refs/tags/v1.2.3", "event": "release"},
        {"branch": None, "tag": "v1.2.3", "event": "release"},
    ),
    (
        "pull request",
        {
            "ref": "refs/pull/42/merge",
            "event": "pull_request",
            "GITHUB_HEAD_REF": "feature/login",
            "GITHUB_BASE_REF": "main",
            "payload": {"number": 42, "pull_request": {"number": 42}, "repository": {"default_branch": "main"}},
        },
        {
            "branch": "feature/login",
            "pr": "42",
            "head_ref": "feature/login",
            "base_ref": "main",
            "is_default_branch": False,
            "event": "pull_request",
            "tag": None,
            "ref_type": "branch",
        },
    ),
    (
        "pull request from a fork's main never is the default branch",
        {
            "ref": "refs/pull/7/merge",
            "event": "pull_request",
            "GITHUB_HEAD_REF": "main",
            "GITHUB_BASE_REF": "main",
            "payload": {"number": 7, "repository": {"default_branch": "main"}},
        },
        {"branch": "main", "pr": "7", "is_default_branch": False},
    ),
    (
        "pull request with only the ref (no head ref variable, no payload)",
        {"ref": "refs/pull/9/merge", "event": "pull_request", "payload": {}},
        {"branch": None, "pr": "9", "is_default_branch": False},
    ),
    (
        "pull_request_target runs on the base ref but is a PR",
        {
            "ref": "refs/heads/main",
            "event": "pull_request_target",
            "GITHUB_HEAD_REF": "fix",
            "GITHUB_BASE_REF": "main",
            "payload": {"number": 11, "pull_request": {"number": 11}, "repository": {"default_branch": "main"}},
        },
        {
            "branch": "fix",
            "pr": "11",
            "head_ref": "fix",
            "base_ref": "main",
            "is_default_branch": False,
            "event": "pull_request_target",
        },
    ),
    (
        "schedule: no default branch in the payload, but schedules run on it",
        {"ref": "refs/heads/master", "event": "schedule", "payload": {"schedule": "0 3 * * *"}},
        {"branch": "master", "default_branch": "master", "is_default_branch": True, "event": "schedule"},
    ),
    (
        "workflow_dispatch on a branch",
        {
            "ref": "refs/heads/release/2.x",
            "event": "workflow_dispatch",
            "payload": {"repository": {"default_branch": "main"}},
        },
        {"branch": "release/2.x", "is_default_branch": False, "event": "workflow_dispatch"},
    ),
    (
        "no GITHUB_REF, only GITHUB_REF_TYPE and GITHUB_REF_NAME",
        {"ref": "", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v3.0.0"},
        {"tag": "v3.0.0", "branch": None},
    ),
    (
        "unreadable payload: default branch falls back",
        {"ref": "refs/heads/main", "GITHUB_EVENT_PATH": "/nonexistent/event.json"},
        {"branch": "main", "default_branch": "main", "is_default_branch": True},
    ),
    (
        "commit date from the push payload, in UTC",
        {
            "ref": "refs/heads/main",
            "payload": {
                "repository": {"default_branch": "main"},
                "head_commit": {"id": SHA, "timestamp": "2026-11-28T11:31:49+01:00"},
            },
        },
        {"commit_date": DATE_1_UTC},
    ),
    (
        "commit date from the commits list, not for another commit",
        {
            "ref": "refs/heads/main",
            "payload": {
                "commits": [
                    {"id": "f" * 40, "timestamp": "2001-01-01T00:00:00Z"},
                    {"id": SHA, "timestamp": "2026-11-29T08:00:00-05:00"},
                ],
                "head_commit": {"id": "f" * 40, "timestamp": "2001-01-01T00:00:00Z"},
            },
        },
        {"commit_date": DATE_2_UTC},
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [pytest.param(kwargs, expected, id=name) for name, kwargs, expected in GITHUB_CASES],
)
def test_github_variables(tmp_path: Path, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    env = github_env(tmp_path, **kwargs)
    if "GITHUB_EVENT_PATH" in kwargs:
        env["GITHUB_EVENT_PATH"] = kwargs["GITHUB_EVENT_PATH"]
    empty = tmp_path / "no-repo"
    empty.mkdir()
    ctx = read(empty, env)
    assert ctx.source == "github"
    assert ctx.sha == SHA
    assert ctx.short_sha == SHA[:7]
    assert ctx.remote_url == "https://github.com/acme/app"
    assert ctx.dirty is False
    values = ctx.as_template_values()
    assert {key: values[key] for key in expected} == expected


HEAD_SHA = "3370e228f2209994d57af4427fe64e71bb79ac96"
PR_PAYLOAD = {"number": 15, "pull_request": {"number": 15, "head": {"ref": "test-pr", "sha": HEAD_SHA},
                                             "base": {"ref": "master"}}}


@pytest.mark.parametrize(("event", "ref"), [("pull_request", "refs/pull/15/merge"),
                                            ("pull_request_target", "refs/heads/master")])
def test_github_pr_head_sha(tmp_path: Path, event: str, ref: str) -> None:
    """git.pr_head_sha is the PR's head commit; DOCKER_METADATA_PR_HEAD_SHA=true makes it git.sha
    (and so git.short_sha and the revision label), as in metadata-action."""
    empty = tmp_path / "no-repo"
    empty.mkdir()
    env = github_env(tmp_path, ref=ref, event=event, payload=PR_PAYLOAD, GITHUB_HEAD_REF="test-pr")
    ctx = read(empty, env)
    assert (ctx.sha, ctx.pr_head_sha, ctx.pr) == (SHA, HEAD_SHA, "15")
    for switch in ("true", "True"):
        ctx = read(empty, env | {"DOCKER_METADATA_PR_HEAD_SHA": switch})
        assert (ctx.sha, ctx.short_sha, ctx.pr_head_sha) == (HEAD_SHA, HEAD_SHA[:7], HEAD_SHA)
    assert read(empty, env | {"DOCKER_METADATA_PR_HEAD_SHA": "false"}).sha == SHA


def test_github_pr_head_sha_switch_is_ignored_outside_prs(tmp_path: Path) -> None:
    empty = tmp_path / "no-repo"
    empty.mkdir()
    env = github_env(tmp_path, ref="refs/heads/main", payload=PR_PAYLOAD, DOCKER_METADATA_PR_HEAD_SHA="true")
    ctx = read(empty, env)
    assert (ctx.sha, ctx.pr_head_sha) == (SHA, None)


def test_github_tag_push_base_ref_comes_from_the_payload(tmp_path: Path) -> None:
    empty = tmp_path / "no-repo"
    empty.mkdir()
    payload = {"base_ref": "refs/heads/master", "repository": {"default_branch": "master"}}
    assert read(empty, github_env(tmp_path, ref="refs/tags/v1.1.1", payload=payload)).base_ref == "master"
    assert read(empty, github_env(tmp_path, ref="refs/heads/master", payload=payload)).base_ref is None


def test_gitlab_merged_results_head_sha(tmp_path: Path) -> None:
    env = {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA, "CI_MERGE_REQUEST_IID": "7",
           "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fix", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD_SHA,
           "CI_PIPELINE_SOURCE": "merge_request_event"}
    empty = tmp_path / "no-repo"
    empty.mkdir()
    ctx = read(empty, env)
    assert (ctx.sha, ctx.pr_head_sha, ctx.pr) == (SHA, HEAD_SHA, "7")


def test_github_invalid_payload_is_ignored(tmp_path: Path) -> None:
    env = github_env(tmp_path, ref="refs/heads/main")
    Path(env["GITHUB_EVENT_PATH"]).write_text("{not json")
    ctx = read(tmp_path, env, default_branch="develop")
    assert ctx.default_branch == "develop"
    assert ctx.branch == "main"
    assert ctx.is_default_branch is False


def test_github_actions_must_be_exactly_true(tmp_path: Path) -> None:
    env = github_env(tmp_path, ref="refs/heads/main")
    env["GITHUB_ACTIONS"] = "false"
    assert read(tmp_path, env).source == "none"


GITLAB_CASES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "branch pipeline on the default branch",
        {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"},
        {"branch": "main", "tag": None, "is_default_branch": True, "event": "push", "ref_type": "branch", "pr": None},
    ),
    (
        "branch pipeline on a feature branch",
        {"CI_COMMIT_BRANCH": "feature/login", "CI_COMMIT_REF_NAME": "feature/login"},
        {"branch": "feature/login", "is_default_branch": False},
    ),
    (
        "tag pipeline",
        {"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_REF_NAME": "v1.2.3"},
        {"branch": None, "tag": "v1.2.3", "event": "tag", "ref_type": "tag", "is_default_branch": False},
    ),
    (
        "tag pipeline started from the web UI",
        {"CI_COMMIT_TAG": "v1.2.3", "CI_PIPELINE_SOURCE": "web"},
        {"tag": "v1.2.3", "event": "web"},
    ),
    (
        "merge request pipeline",
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": "17",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/login",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_COMMIT_REF_NAME": "feature/login",
        },
        {
            "branch": "feature/login",
            "pr": "17",
            "head_ref": "feature/login",
            "base_ref": "main",
            "event": "pull_request",
            "is_default_branch": False,
        },
    ),
    (
        "merge request from main into main (a fork) is not the default branch",
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": "3",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        },
        {"branch": "main", "pr": "3", "is_default_branch": False},
    ),
    (
        "external pull request pipeline",
        {
            "CI_PIPELINE_SOURCE": "external_pull_request_event",
            "CI_EXTERNAL_PULL_REQUEST_IID": "5",
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME": "fix",
            "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_COMMIT_BRANCH": "fix",
        },
        {"branch": "fix", "pr": "5", "head_ref": "fix", "base_ref": "main", "event": "pull_request"},
    ),
    (
        "scheduled pipeline",
        {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main"},
        {"branch": "main", "is_default_branch": True, "event": "schedule"},
    ),
    (
        "old GitLab without CI_COMMIT_BRANCH",
        {"CI_COMMIT_REF_NAME": "develop", "CI_DEFAULT_BRANCH": "develop"},
        {"branch": "develop", "default_branch": "develop", "is_default_branch": True},
    ),
    (
        "commit timestamp with an offset becomes UTC",
        {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_TIMESTAMP": "2026-11-29T08:00:00-05:00"},
        {"commit_date": DATE_2_UTC},
    ),
    (
        "unparsable commit timestamp",
        {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_TIMESTAMP": "yesterday"},
        {"commit_date": None},
    ),
]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [pytest.param(extra, expected, id=name) for name, extra, expected in GITLAB_CASES],
)
def test_gitlab_variables(tmp_path: Path, extra: dict[str, str], expected: dict[str, Any]) -> None:
    ctx = read(tmp_path, gitlab_env(**extra))
    assert ctx.source == "gitlab"
    assert ctx.sha == SHA
    assert ctx.short_sha == SHA[:7]  # not GitLab's 8-digit CI_COMMIT_SHORT_SHA
    assert ctx.remote_url == "https://gitlab.example.com/acme/app"
    values = ctx.as_template_values()
    assert {key: values[key] for key in expected} == expected


def test_gitlab_short_sha_only(tmp_path: Path) -> None:
    env = gitlab_env(CI_COMMIT_BRANCH="main")
    del env["CI_COMMIT_SHA"]
    ctx = read(tmp_path, env)
    assert ctx.sha is None
    assert ctx.short_sha == SHA[:7]


def test_gitlab_without_project_url_or_default_uses_the_repository(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@gitlab.example.com:acme/app.git")
    env = gitlab_env(sha=git(repo, "rev-parse", "HEAD"), CI_COMMIT_BRANCH="main")
    del env["CI_PROJECT_URL"], env["CI_DEFAULT_BRANCH"]
    ctx = read(repo, env, default_branch="main")
    assert ctx.remote_url == "https://gitlab.example.com/acme/app"
    assert ctx.default_branch == "main"


def test_github_checked_first_when_both_are_set(tmp_path: Path) -> None:
    env = github_env(tmp_path, ref="refs/heads/main") | gitlab_env(CI_COMMIT_BRANCH="other")
    assert read(tmp_path, env).source == "github"


# ------------------------------------------------------ CI over a real checkout


def test_ci_wins_over_a_detached_checkout(repo: Path, tmp_path: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    _modify_tracked(repo)
    for env in (
        github_env(tmp_path, ref="refs/heads/main", sha=sha),
        gitlab_env(sha=sha, CI_COMMIT_BRANCH="main"),
    ):
        ctx = read(repo, env)
        assert ctx.branch == "main"
        assert ctx.is_default_branch is True
        assert ctx.sha == sha
        assert ctx.commit_date == DATE_1_UTC  # from the repository: same commit
        assert ctx.dirty is True  # the working tree still speaks for itself


def test_repository_at_another_commit_does_not_lend_its_tag_or_date(repo: Path, tmp_path: Path) -> None:
    git(repo, "tag", "v9.9.9")
    env = github_env(tmp_path, ref="refs/heads/main", sha=SHA)  # a commit the repo is not at
    ctx = read(repo, env)
    assert ctx.sha == SHA
    assert ctx.tag is None
    assert ctx.tags == ()
    assert ctx.commit_date is None
    assert ctx.branch == "main"


def test_ci_without_ref_information_uses_the_repository(repo: Path) -> None:
    env = {"GITLAB_CI": "true", "CI_COMMIT_SHA": git(repo, "rev-parse", "HEAD")}
    ctx = read(repo, env)
    assert ctx.source == "gitlab"
    assert ctx.branch == "main"


# ---------------------------------------- one commit, three ways of looking at it

AGREE = ("branch", "tag", "sha", "short_sha", "is_default_branch", "commit_date")


@pytest.fixture
def history(tmp_path: Path) -> dict[str, Any]:
    """main (tagged v1.4.0, annotated, plus a lightweight v1.4) and feature/x on top."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    commit(work, "README")
    main_sha = commit(work, "app.py", date=DATE_2)
    git(work, "tag", "-a", "-m", "release 1.4.0", "v1.4.0")
    git(work, "tag", "v1.4")
    git(work, "push", "-q", "origin", "main", "--tags")
    git(work, "remote", "set-head", "origin", "main")
    git(work, "switch", "-q", "-c", "feature/x")
    feature_sha = commit(work, "feature.py", date=DATE_1)
    git(work, "switch", "-q", "main")
    return {"work": work, "main": main_sha, "feature": feature_sha}


def _fields(ctx: GitContext) -> dict[str, Any]:
    return {name: getattr(ctx, name) for name in AGREE}


def _utc_to_other_offset(iso_utc: str) -> str:
    """The same instant written as GitLab might, with a +02:00 offset."""
    from datetime import datetime, timedelta, timezone

    when = datetime.fromisoformat(iso_utc).astimezone(timezone(timedelta(hours=2)))
    return when.isoformat()


@pytest.mark.parametrize("scenario", ["main", "feature", "tag"])
def test_same_commit_same_context_locally_on_github_and_on_gitlab(
    history: dict[str, Any], tmp_path: Path, scenario: str
) -> None:
    work: Path = history["work"]
    if scenario == "main":
        sha, expected_branch, expected_tag = history["main"], "main", "v1.4.0"
    elif scenario == "feature":
        git(work, "switch", "-q", "feature/x")
        sha, expected_branch, expected_tag = history["feature"], "feature/x", None
    else:
        git(work, "checkout", "-q", "--detach", "v1.4.0")  # as CIs check out a tag
        sha, expected_branch, expected_tag = history["main"], None, "v1.4.0"

    local = read(work)
    assert local.source == "local"
    assert local.default_branch == "main"  # from origin/HEAD
    assert (local.branch, local.tag, local.sha) == (expected_branch, expected_tag, sha)
    assert local.is_default_branch is (scenario == "main")
    assert local.commit_date == (DATE_1_UTC if scenario == "feature" else DATE_2_UTC)

    if scenario == "tag":
        gh = github_env(tmp_path, ref="refs/tags/v1.4.0", sha=sha)
        gl = gitlab_env(sha=sha, CI_COMMIT_TAG="v1.4.0", CI_COMMIT_REF_NAME="v1.4.0")
    else:
        gh = github_env(tmp_path, ref=f"refs/heads/{expected_branch}", sha=sha)
        gl = gitlab_env(sha=sha, CI_COMMIT_BRANCH=str(expected_branch), CI_COMMIT_REF_NAME=str(expected_branch))
    gl["CI_COMMIT_TIMESTAMP"] = _utc_to_other_offset(str(local.commit_date))

    # CI runners check out the commit detached; the repository is still there.
    git(work, "checkout", "-q", "--detach", sha)
    on_github = read(work, gh)
    on_gitlab = read(work, gl)
    assert on_github.source == "github"
    assert on_gitlab.source == "gitlab"
    assert _fields(on_github) == _fields(local)
    assert _fields(on_gitlab) == _fields(local)
    assert on_github.tags == on_gitlab.tags == local.tags

    # GitLab's variables alone (no checkout at all) still describe the same commit.
    nothing = tmp_path / "nothing"
    nothing.mkdir(exist_ok=True)
    only_gitlab = read(nothing, gl)
    same = ("branch", "sha", "short_sha", "is_default_branch", "commit_date")
    assert {k: getattr(only_gitlab, k) for k in same} == {k: getattr(local, k) for k in same}
    if scenario == "tag":
        assert only_gitlab.tag == local.tag


def test_started_early_the_read_is_the_same_and_leaves_no_process(repo: Path, git_calls: list[list[str]]) -> None:
    # load.load_project starts git before parsing the Buildfile; the result must not change.
    started = gitcontext.start_git_context(repo, {})
    assert len(git_calls) == 4  # running while the caller goes on
    assert gitcontext.read_git_context(repo, {}, started=started) == read(repo)
    assert len(git_calls) == 8  # the second read started its own


def test_a_started_read_that_is_not_needed_is_stopped(repo: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "git").write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n")
    (fake_bin / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    started = gitcontext.start_git_context(repo, {})
    procs = list(started._procs.values())
    assert procs and all(p.poll() is None for p in procs)
    started.close()  # as load_project does when the Buildfile does not parse
    assert all(p.returncode is not None for p in procs)
