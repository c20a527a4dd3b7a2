"""``buildspec plan --explain`` for examples/tags, compared with golden files.

The CLI runs in-process (``buildspec.cli.main``) on a copy of examples/tags
in a fresh git repository, under a fixed GitHub Actions environment and a
fixed ``SOURCE_DATE_EPOCH``; the registry's tags (for ``version.is_latest``)
come from a stub instead of the network. Nothing depends on this checkout:
the example's files stay untracked, so the commit (and its SHA in the output)
is the same whatever the example says.

``BUILDSPEC_UPDATE_GOLDEN=1 pytest tests/unit/test_explain.py`` rewrites the
golden files in tests/golden/explain/ (the ``golden`` fixture of conftest.py);
review the diff before committing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from buildspec import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tags"
GOLDEN = ROOT / "tests" / "golden" / "explain"
Golden = Callable[[Path, str], None]  # the ``golden`` fixture of tests/unit/conftest.py

EPOCH = "1774499400"  # 2026-03-26T04:30:00Z
COMMIT_DATE = "2026-01-02T03:04:05Z"
REPOSITORY = "127.0.0.1:5000/tags/service"
CLEARED_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "GIT_", "RUNNER_", "BUILDSPEC_")
CLEARED = ("CI", "SOURCE_DATE_EPOCH", "FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES", "TERM",
           "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/tags, untracked, in a fresh repository with one commit; the CLI runs there."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Ada Lovelace")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "ada@example.com")
        monkeypatch.setenv(f"GIT_{who}_DATE", COMMIT_DATE)
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "git@github.com:acme/tags.git")
    (path / "README").write_text("tags example\n")
    git(path, "add", "README")
    git(path, "commit", "-q", "-m", "initial commit")
    for item in EXAMPLE.iterdir():
        if item.is_file():
            shutil.copy2(item, path / item.name)
    monkeypatch.chdir(path)
    return path


def registry(tags: list[str] | Exception) -> Callable[[object], Callable[[str], list[str]]]:
    """A stand-in for ``cli._tag_lister``: the registry holds ``tags`` (or cannot be read)."""

    def make(insecure: object) -> Callable[[str], list[str]]:
        def list_tags(repository: str) -> list[str]:
            assert repository == REPOSITORY
            if isinstance(tags, Exception):
                raise tags
            return list(tags)

        return list_tags

    return make


def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, event: str, ref: str, sha: str,
           payload: Mapping[str, object], **more: str) -> None:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(payload))
    variables = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REF": ref,
        "GITHUB_SHA": sha,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/tags",
        "GITHUB_HEAD_REF": "",
        "GITHUB_BASE_REF": "",
        "SOURCE_DATE_EPOCH": EPOCH,
        **more,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def tag_push(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str) -> None:
    git(repo, "tag", "-a", tag, "-m", f"release {tag}")
    git(repo, "switch", "-q", "--detach", tag)
    sha = git(repo, "rev-parse", "HEAD")
    github(monkeypatch, tmp_path, "push", f"refs/tags/{tag}", sha,
           {"ref": f"refs/tags/{tag}", "repository": {"default_branch": "main"},
            "head_commit": {"id": sha, "timestamp": "2026-01-02T04:04:05+01:00"}})


def pull_request(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "switch", "-q", "--detach", "HEAD")  # actions/checkout: the merge commit, detached
    github(monkeypatch, tmp_path, "pull_request", "refs/pull/42/merge", git(repo, "rev-parse", "HEAD"),
           {"number": 42, "pull_request": {"number": 42, "head": {"ref": "feature/login-form"},
                                           "base": {"ref": "main"}},
            "repository": {"default_branch": "main"}},
           GITHUB_HEAD_REF="feature/login-form", GITHUB_BASE_REF="main")


def schedule(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "switch", "-q", "--detach", "HEAD")
    github(monkeypatch, tmp_path, "schedule", "refs/heads/main", git(repo, "rev-parse", "HEAD"),
           {"schedule": "30 4 * * *"})


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["plan", "--no-lookup", "--explain", "--backend", "buildx", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    # The log folder is per machine ($XDG_STATE_HOME: the example's context is its own folder).
    return "".join(line for line in out.splitlines(keepends=True) if not line.startswith("logs      "))


def without_trailing_blanks(text: str) -> str:
    """Rich pads table lines with blanks; editors strip them, so the golden files hold none."""
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


# ------------------------------------------------------------------ text, against golden files


@pytest.mark.parametrize(
    ("golden_name", "state", "existing"),
    [
        pytest.param("github-tag-v1.2.3.txt", "tag v1.2.3", ["1.2.2", "1.2", "1", "latest"], id="tag-push"),
        pytest.param("github-tag-v1.9.5-older-line.txt", "tag v1.9.5", ["2.0.0", "2.0", "2", "latest"],
                     id="tag-push-older-line"),
        pytest.param("github-tag-v1.2.3-registry-unreadable.txt", "tag v1.2.3",
                     ConnectionError("connection refused"), id="registry-unreadable"),
        pytest.param("github-pull-request-42.txt", "pr", [], id="pull-request"),
        pytest.param("github-schedule.txt", "schedule", [], id="schedule"),
    ],
)
def test_explain_text_matches_golden(golden_name: str, state: str, existing: list[str] | Exception, repo: Path,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], golden: Golden) -> None:
    if state.startswith("tag "):
        tag_push(repo, tmp_path, monkeypatch, "v" + state.removeprefix("tag v"))
    elif state == "pr":
        pull_request(repo, tmp_path, monkeypatch)
    else:
        schedule(repo, tmp_path, monkeypatch)
    monkeypatch.setattr(cli, "_tag_lister", registry(existing))
    out = plan(capsys)
    assert str(tmp_path) not in out, "the output must not depend on where the test runs"
    golden(GOLDEN / golden_name, without_trailing_blanks(out))


def test_explain_text_is_stable(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    tag_push(repo, tmp_path, monkeypatch, "v1.2.3")
    monkeypatch.setattr(cli, "_tag_lister", registry(["1.2.2"]))
    assert plan(capsys) == plan(capsys)


# ------------------------------------------------------------------ JSON: tag_decisions


def decisions(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    data = json.loads(plan(capsys, "--format", "json", *extra))
    (image,) = data["images"]
    assert image["name"] == "service"
    return list(image["tag_decisions"])


def test_json_tag_decisions_for_a_tag_push(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tag_push(repo, tmp_path, monkeypatch, "v1.2.3")
    monkeypatch.setattr(cli, "_tag_lister", registry(["1.2.2", "latest"]))
    sha7 = git(repo, "rev-parse", "HEAD")[:7]
    unset = "(unset)"
    assert decisions(capsys) == [
        {"template": "{version}", "condition": "version.is_semver",
         "values": {"version.is_semver": "true", "version": "1.2.3"}, "tag": "1.2.3", "reason": "added"},
        {"template": "{version.major}.{version.minor}", "condition": "version.stable",
         "values": {"version.stable": "true", "version.major": "1", "version.minor": "2"},
         "tag": "1.2", "reason": "added"},
        {"template": "{version.major}", "condition": 'version.stable and version.major != "0"',
         "values": {"version.stable": "true", "version.major": "1"}, "tag": "1", "reason": "added"},
        {"template": "latest", "condition": "version.is_latest", "values": {"version.is_latest": "true"},
         "tag": "latest", "reason": "added"},
        {"template": "edge", "condition": "git.is_default_branch", "values": {"git.is_default_branch": "false"},
         "tag": None, "reason": "condition false"},
        {"template": "{git.branch|slug}", "condition": "git.branch", "values": {"git.branch": unset},
         "tag": None, "reason": "condition false"},
        {"template": "pr-{git.pr}", "condition": "git.pr", "values": {"git.pr": unset},
         "tag": None, "reason": "condition false"},
        {"template": "line-{version_line}", "condition": "version_line", "values": {"version_line": unset},
         "tag": None, "reason": "condition false"},
        {"template": "sha-{git.short_sha}", "condition": "git.short_sha",
         "values": {"git.short_sha": sha7}, "tag": f"sha-{sha7}", "reason": "added"},
        {"template": "nightly-{date|%Y%m%d}", "condition": 'git.event == "schedule"',
         "values": {"git.event": "tag"}, "tag": None, "reason": "condition false"},
    ]


def test_json_tag_decisions_for_a_pull_request(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pull_request(repo, tmp_path, monkeypatch)
    monkeypatch.setattr(cli, "_tag_lister", registry([]))
    data = json.loads(plan(capsys, "--format", "json"))
    assert data["context"]["pr"] == "42"
    assert data["context"]["branch"] == "feature/login-form"
    assert data["context"]["is_default_branch"] is False
    (image,) = data["images"]
    sha7 = git(repo, "rev-parse", "HEAD")[:7]
    assert image["tags"] == ["feature-login-form", "pr-42", f"sha-{sha7}"]
    by_template = {d["template"]: d for d in image["tag_decisions"]}
    assert [d["template"] for d in image["tag_decisions"]] == [
        "{version}", "{version.major}.{version.minor}", "{version.major}", "latest", "edge",
        "{git.branch|slug}", "pr-{git.pr}", "line-{version_line}", "sha-{git.short_sha}", "nightly-{date|%Y%m%d}",
    ]
    assert by_template["latest"] == {"template": "latest", "condition": "version.is_latest",
                                     "values": {"version.is_latest": "false"}, "tag": None,
                                     "reason": "condition false"}
    assert by_template["{git.branch|slug}"]["tag"] == "feature-login-form"
    assert by_template["pr-{git.pr}"] == {"template": "pr-{git.pr}", "condition": "git.pr",
                                          "values": {"git.pr": "42"}, "tag": "pr-42", "reason": "added"}
    assert by_template["edge"]["reason"] == "condition false"  # a pull request never gets edge
    assert data["notes"] == []
    assert image["labels"]["org.opencontainers.image.source"] == "https://github.com/acme/tags"
    assert image["labels"]["org.opencontainers.image.created"] == COMMIT_DATE
    assert image["labels"]["org.opencontainers.image.vendor"] == "acme"


def test_explain_values_are_the_values_before_filters(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pull_request(repo, tmp_path, monkeypatch)
    monkeypatch.setattr(cli, "_tag_lister", registry([]))
    branch = next(d for d in decisions(capsys) if d["template"] == "{git.branch|slug}")
    assert branch["values"] == {"git.branch": "feature/login-form"}
    assert branch["tag"] == "feature-login-form"


def test_json_without_explain_has_no_decisions(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    schedule(repo, tmp_path, monkeypatch)
    monkeypatch.setattr(cli, "_tag_lister", registry([]))
    assert cli.main(["plan", "--no-lookup", "--backend", "buildx", "--format", "json"]) == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    assert "tag_decisions" not in image
    assert image["tags"][-1] == "nightly-20260326"


def test_json_notes_when_the_registry_cannot_be_read(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tag_push(repo, tmp_path, monkeypatch, "v1.2.3")
    monkeypatch.setattr(cli, "_tag_lister", registry(ConnectionError("connection refused")))
    data = json.loads(plan(capsys, "--format", "json"))
    assert data["notes"] == [f"version.is_latest: cannot read the tags of {REPOSITORY} (connection refused); "
                             "assuming no higher release exists"]
    assert "latest" in data["images"][0]["tags"]
