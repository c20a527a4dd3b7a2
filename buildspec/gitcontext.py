"""The git and CI context of a build: the names ``git.*`` in Buildfile templates.

``read_git_context(path, environ)`` combines two sources:

* **The local repository** at or above ``path``, read with at most four
  ``git`` processes that run *concurrently* (wall time is about one of them):

  - ``git log -1 --decorate=full --format=%H%x00%ct%x00%D HEAD``: the commit,
    its committer date, every tag pointing at it (lightweight and annotated
    alike) and, in a bare repository, the branch (``HEAD -> refs/heads/X``);
  - ``git status --porcelain=v2 --branch --no-ahead-behind -uno``: dirty, and
    the branch HEAD is on (also when it is unborn: a repository without
    commits has a branch and no SHA);
  - ``git symbolic-ref -q refs/remotes/origin/HEAD``: the default branch, only
    when the CI does not name it;
  - ``git ls-remote --get-url origin``: the remote URL (``insteadOf`` rewriting
    applied, no network), only when the CI does not give it.

  So a plain local run costs four processes, and a GitHub Actions or GitLab
  CI run that names its default branch and project URL costs two. They run
  with ``GIT_OPTIONAL_LOCKS=0`` (``status`` never takes the index lock) and
  inherit the process environment (``GIT_DIR`` and friends are honoured).
  No repository, no ``git`` on ``PATH``, a repository git refuses to open
  ("dubious ownership", see ``safe.directory``) or a git that does not answer
  in 20 s: the repository is treated as absent, never an error.

* **CI variables** from ``environ`` (never ``os.environ`` directly), which win
  over the repository, since CI checkouts are often detached:

  - GitHub Actions when ``GITHUB_ACTIONS=true``: ``GITHUB_REF`` (else
    ``GITHUB_REF_TYPE``/``GITHUB_REF_NAME``), ``GITHUB_SHA``,
    ``GITHUB_HEAD_REF``/``GITHUB_BASE_REF``, ``GITHUB_EVENT_NAME``, the event
    payload at ``GITHUB_EVENT_PATH`` (``pull_request.number``, ``number``,
    ``repository.default_branch``, the pushed commits' timestamps) and
    ``GITHUB_SERVER_URL``/``GITHUB_REPOSITORY``.
  - GitLab CI when ``GITLAB_CI=true``: ``CI_COMMIT_TAG``, ``CI_COMMIT_BRANCH``
    (else ``CI_COMMIT_REF_NAME``), ``CI_COMMIT_SHA``, ``CI_COMMIT_SHORT_SHA``,
    ``CI_MERGE_REQUEST_IID`` with ``..._SOURCE_BRANCH_NAME`` and
    ``..._TARGET_BRANCH_NAME`` (or the ``CI_EXTERNAL_PULL_REQUEST_*`` ones),
    ``CI_DEFAULT_BRANCH``, ``CI_PIPELINE_SOURCE``, ``CI_PROJECT_URL``,
    ``CI_COMMIT_TIMESTAMP``. GitHub is looked at first when both are set.

Rules and choices:

* ``branch``: the CI's branch; in a pull/merge request pipeline the *source*
  (head) branch, so ``{git.branch|slug}`` stays useful there (metadata-action's
  ``type=ref,event=branch`` does not fire for PRs; here ``git.pr`` tells them
  apart). ``None`` for a tag build and for a detached HEAD with no CI.
* ``tag``: the CI's tag in a tag build; otherwise a tag of the local repository
  pointing exactly at the commit. With several, the highest SemVer wins
  (``v1.10.0`` over ``v1.9.0``, a release over its pre-releases); if none is
  SemVer, the last in byte order. ``tags`` lists them all (with the CI's tag),
  sorted. ``ref_type`` (a property, and ``git.ref_type``) is ``"branch"`` when
  ``branch`` is set, else ``"tag"`` when ``tag`` is, else ``None``.
* ``pr``: GitHub: the number in ``refs/pull/N/merge``, or the payload's in
  ``pull_request*`` runs (``pull_request_target``, whose ``GITHUB_REF`` is the
  base branch, counts as a PR, as metadata-action treats it); GitLab: the
  merge request IID. ``base_ref``/``head_ref`` only in those pipelines, except that
  a GitHub tag push's ``base_ref`` is the payload's (the branch the tag came from),
  as metadata-action's ``{{base_ref}}``.
* ``pr_head_sha``: the request's head commit (GitHub payload ``pull_request.head.sha``,
  GitLab ``CI_MERGE_REQUEST_SOURCE_BRANCH_SHA``). With
  ``DOCKER_METADATA_PR_HEAD_SHA=true`` (metadata-action's switch) a GitHub PR's
  ``sha`` is that commit instead of GitHub's merge commit.
* The repository only fills in what the CI does not say (tag at the commit,
  commit date) when its HEAD is the very commit the CI names; with no CI it is
  the only source. ``dirty`` always comes from the working tree.
* ``short_sha``: the first ``short_sha_length`` (default 7, as
  metadata-action) hex digits of ``sha``, the same everywhere; git's
  "unique abbreviation" and GitLab's 8-digit ``CI_COMMIT_SHORT_SHA`` are not
  used (the latter only when no full SHA is known).
* ``dirty``: a tracked file is modified, deleted or staged. Untracked files
  alone do *not* make the tree dirty (as ``git describe --dirty``); a build
  context usually ignores them, and editors and tools leave them around.
* ``commit_date``: committer date as ISO 8601 UTC (``2026-11-28T10:31:49Z``):
  from the repository when HEAD is the CI's commit (exact, and what a local
  run gives), else the CI's own (GitLab ``CI_COMMIT_TIMESTAMP``, the GitHub
  push payload's timestamp for that commit, as metadata-action does).
* ``default_branch``: the CI's (GitHub payload ``repository.default_branch``;
  a GitHub ``schedule`` run, which always runs on the default branch; GitLab
  ``CI_DEFAULT_BRANCH``), else ``origin/HEAD``, else the ``default_branch``
  argument (a Buildfile variable), else ``main``.
* ``is_default_branch``: ``branch == default_branch``, and never in a pull or
  merge request pipeline (a fork's ``main`` must not publish ``latest``).
* ``event``: the CI's event name, except that a push of a tag is ``"tag"`` on
  both CIs and GitLab's ``merge_request_event`` / ``external_pull_request_event``
  are ``"pull_request"``; others as the CI says (``schedule``, ``web``,
  ``workflow_dispatch``...). ``None`` locally.
* ``remote_url``: see ``normalize_remote_url``; ``None`` for a local path.
* ``source``: ``"github"``, ``"gitlab"``, ``"local"`` (a repository and no CI)
  or ``"none"`` (neither; every field ``None``/``False`` but
  ``default_branch``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from buildspec.versions import parse_version, semver_key

__all__ = ["GitContext", "normalize_remote_url", "read_git_context"]

GIT_TIMEOUT_SECONDS = 20.0
FALLBACK_DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class GitContext:
    """What the repository and the CI say about the commit being built."""

    branch: str | None
    tag: str | None
    sha: str | None
    short_sha: str | None
    dirty: bool
    commit_date: str | None
    default_branch: str
    is_default_branch: bool
    pr: str | None
    base_ref: str | None
    head_ref: str | None
    remote_url: str | None
    event: str | None
    source: str  # "local" | "github" | "gitlab" | "none"
    tags: tuple[str, ...] = ()  # every tag at the commit, sorted; ``tag`` is the chosen one
    pr_head_sha: str | None = None  # the pull/merge request's head commit (not the merge commit)

    @property
    def ref_type(self) -> str | None:
        """``"branch"`` when on a branch, ``"tag"`` for a tag build, else ``None``."""
        if self.branch is not None:
            return "branch"
        if self.tag is not None:
            return "tag"
        return None

    def as_template_values(self) -> dict[str, str | bool | None]:
        """The names after ``git.`` in templates and conditions."""
        return {
            "branch": self.branch,
            "tag": self.tag,
            "sha": self.sha,
            "short_sha": self.short_sha,
            "dirty": self.dirty,
            "commit_date": self.commit_date,
            "default_branch": self.default_branch,
            "is_default_branch": self.is_default_branch,
            "pr": self.pr,
            "base_ref": self.base_ref,
            "head_ref": self.head_ref,
            "pr_head_sha": self.pr_head_sha,
            "event": self.event,
            "ref_type": self.ref_type,
            "remote_url": self.remote_url,
            "source": self.source,
        }


def read_git_context(
    path: Path,
    environ: Mapping[str, str],
    *,
    default_branch: str | None = None,
    short_sha_length: int = 7,
) -> GitContext:
    """Read the context of the commit at ``path`` (see the module docstring)."""
    if not 4 <= short_sha_length <= 64:
        raise ValueError(f"short_sha_length must be between 4 and 64, not {short_sha_length}")
    ci: _CI | None = None
    if environ.get("GITHUB_ACTIONS") == "true":
        ci = _read_github(environ)
    elif environ.get("GITLAB_CI") == "true":
        ci = _read_gitlab(environ)

    local = _read_local(
        path,
        want_origin_head=ci is None or ci.default_branch is None,
        want_remote_url=ci is None or ci.remote_url is None,
    )

    sha = (ci.sha if ci else None) or (local.sha if local else None)
    # The repository speaks for the CI's commit only when it has that commit checked out.
    same_commit = local is not None and (sha is None or local.sha == sha)
    local_tags = local.tags if local is not None and same_commit else ()

    branch: str | None
    tags: tuple[str, ...]
    if ci is not None and ci.ref_known:
        branch = ci.branch
        tags = (*local_tags, ci.tag) if ci.tag is not None else local_tags
        tag = ci.tag if ci.tag is not None else _pick_tag(local_tags)
    elif local is not None and same_commit:
        branch = local.branch
        tags = local_tags
        tag = _pick_tag(local_tags)
    else:
        branch, tags, tag = None, (), None

    if sha is not None:
        short_sha: str | None = sha[:short_sha_length]
    elif ci is not None and ci.short_sha:
        short_sha = ci.short_sha[:short_sha_length]
    else:
        short_sha = None

    commit_date = local.commit_date if local is not None and same_commit else None
    if commit_date is None and ci is not None:
        commit_date = ci.commit_date

    default = (
        (ci.default_branch if ci else None)
        or (local.origin_head if local else None)
        or default_branch
        or FALLBACK_DEFAULT_BRANCH
    )
    pr = ci.pr if ci else None
    return GitContext(
        branch=branch,
        tag=tag,
        sha=sha,
        short_sha=short_sha,
        dirty=local.dirty if local is not None else False,
        commit_date=commit_date,
        default_branch=default,
        is_default_branch=branch is not None and pr is None and branch == default,
        pr=pr,
        base_ref=ci.base_ref if ci else None,
        head_ref=ci.head_ref if ci else None,
        pr_head_sha=ci.pr_head_sha if ci else None,
        remote_url=(ci.remote_url if ci else None) or (local.remote_url if local else None),
        event=ci.event if ci else None,
        source=ci.source if ci else ("local" if local is not None else "none"),
        tags=tuple(sorted(set(tags))),
    )


def _pick_tag(tags: Iterable[str]) -> str | None:
    """The highest SemVer tag, else the last in byte order (ties: the last name)."""
    names = sorted(tags)
    if not names:
        return None
    semvers = [(semver_key(v), name) for name in names if (v := parse_version(name)).is_semver]
    if semvers:
        return max(semvers)[1]
    return names[-1]


# --------------------------------------------------------------------------- URLs

_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(?P<host>\[[^\]/]+\]|[^:/\[\]@]+):(?P<path>.*)")
_SSH_SCHEMES = {"ssh", "git", "git+ssh", "ssh+git"}


def normalize_remote_url(url: str) -> str | None:
    """A remote URL as a browsable ``https://host/path``, or ``None``.

    ``git@host:a/b.git``, ``ssh://git@host:22/a/b.git``, ``git://host/a/b``
    and ``https://user:token@host/a/b.git`` all become ``https://host/a/b``:
    credentials, a trailing ``.git`` or ``/``, query and fragment are dropped,
    the host is lowercased. An ssh/git port is dropped (it is not the web
    server's); an http(s) port is kept, and ``http://`` stays ``http://`` (a
    plain-http server, such as a local Gitea, has no https twin). Local paths,
    ``file://`` and other schemes give ``None``.
    """
    url = url.strip()
    if not url:
        return None
    port: int | None = None
    if "://" in url:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        host = parts.hostname
        path = parts.path
        if scheme in _SSH_SCHEMES:
            scheme, port = "https", None
        elif scheme not in ("http", "https"):
            return None
    else:
        m = _SCP_LIKE.fullmatch(url)
        # One letter before the colon is a Windows drive (C:/src/repo), as git reads it.
        if m is None or len(m["host"]) == 1:
            return None
        scheme, host, path = "https", m["host"].strip("[]").lower(), m["path"]
    if not host:
        return None
    path = path.strip("/").removesuffix(".git").rstrip("/")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}/{path}" if path else f"{scheme}://{netloc}"


# ------------------------------------------------------------------------- local


@dataclass(frozen=True)
class _Local:
    sha: str | None
    branch: str | None
    tags: tuple[str, ...]
    commit_date: str | None
    dirty: bool
    origin_head: str | None
    remote_url: str | None


_LOG_ARGS = (
    "log",
    "-1",
    "--no-show-signature",
    "--no-color",
    "--decorate=full",
    # Explicit filters override log.excludeDecoration. "HEAD -> refs/heads/X"
    # needs both HEAD and the branch itself among the decorations.
    "--decorate-refs=HEAD",
    "--decorate-refs=refs/heads/",
    "--decorate-refs=refs/tags/",
    "--format=%H%x00%ct%x00%D",
    "HEAD",
    "--",
)
_STATUS_ARGS = ("status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-uno")
_ORIGIN_HEAD_ARGS = ("symbolic-ref", "-q", "refs/remotes/origin/HEAD")
_REMOTE_URL_ARGS = ("ls-remote", "--get-url", "origin")


def _read_local(path: Path, *, want_origin_head: bool, want_remote_url: bool) -> _Local | None:
    if path.is_dir():
        cwd = path
    elif path.exists():  # a file, such as the Buildfile itself
        cwd = path.parent
    else:
        return None
    commands: dict[str, tuple[str, ...]] = {"log": _LOG_ARGS, "status": _STATUS_ARGS}
    if want_origin_head:
        commands["origin_head"] = _ORIGIN_HEAD_ARGS
    if want_remote_url:
        commands["remote_url"] = _REMOTE_URL_ARGS
    out = _run_git_concurrently(cwd, commands)
    log, status = out.get("log"), out.get("status")
    if log is None and status is None:
        return None  # not a repository (or no git, or git refused it)

    sha = branch = commit_date = None
    tags: list[str] = []
    if log is not None:
        fields = log.rstrip("\n").split("\0")
        if len(fields) == 3:
            sha = fields[0] or None
            commit_date = _timestamp_to_iso(fields[1])
            for item in fields[2].split(", "):
                if item.startswith("HEAD -> refs/heads/"):
                    branch = item.removeprefix("HEAD -> refs/heads/")
                elif item.startswith("tag: refs/tags/"):
                    tags.append(item.removeprefix("tag: refs/tags/"))

    dirty = False
    if status is not None:  # None in a bare repository
        for line in status.splitlines():
            if line.startswith("# branch.head "):
                # Also right for an unborn branch, where `git log` fails.
                head = line.removeprefix("# branch.head ")
                branch = None if head == "(detached)" else head
            elif line.strip() and not line.startswith("#"):
                dirty = True

    origin_head = None
    if (target := out.get("origin_head")) is not None:
        origin_head = target.strip().removeprefix("refs/remotes/origin/") or None
    remote_url = None
    if (url := out.get("remote_url")) is not None:
        remote_url = normalize_remote_url(url)
    return _Local(
        sha=sha,
        branch=branch,
        tags=tuple(sorted(tags)),
        commit_date=commit_date,
        dirty=dirty,
        origin_head=origin_head,
        remote_url=remote_url,
    )


def _run_git_concurrently(cwd: Path, commands: Mapping[str, tuple[str, ...]]) -> dict[str, str | None]:
    """Start every command at once; each result is its stdout, or None if it failed."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, str | None] = dict.fromkeys(commands)
    try:
        for name, args in commands.items():
            try:
                procs[name] = subprocess.Popen(
                    ["git", "-C", str(cwd), *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            except OSError:  # git is not installed, or cannot be run
                return results
        deadline = time.monotonic() + GIT_TIMEOUT_SECONDS
        for name, proc in procs.items():
            try:
                stdout, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue
            if proc.returncode == 0:
                results[name] = stdout.decode("utf-8", errors="replace")
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _timestamp_to_iso(seconds: str) -> str | None:
    try:
        when = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_to_utc(text: str | None) -> str | None:
    """An ISO 8601 date with any offset (or none: UTC) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- CI


@dataclass(frozen=True)
class _CI:
    source: str
    ref_known: bool  # the CI said what ref this is (branch, tag or PR)
    branch: str | None = None
    tag: str | None = None
    sha: str | None = None
    short_sha: str | None = None
    pr: str | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    event: str | None = None
    default_branch: str | None = None
    remote_url: str | None = None
    commit_date: str | None = None
    pr_head_sha: str | None = None


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _load_payload(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _str_or_none(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value) or None
    return None


_GITHUB_PR_REF = re.compile(r"refs/pull/([0-9]+)/(?:merge|head)")


def _read_github(environ: Mapping[str, str]) -> _CI:
    payload = _load_payload(_get(environ, "GITHUB_EVENT_PATH"))
    event = _get(environ, "GITHUB_EVENT_NAME")
    ref = _get(environ, "GITHUB_REF") or ""
    sha = _get(environ, "GITHUB_SHA")

    branch = tag = pr = None
    ref_known = True
    if ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
    elif ref.startswith("refs/tags/"):
        tag = ref.removeprefix("refs/tags/")
    elif m := _GITHUB_PR_REF.fullmatch(ref):
        pr = m[1]
    elif _get(environ, "GITHUB_REF_TYPE") == "branch" and _get(environ, "GITHUB_REF_NAME"):
        branch = _get(environ, "GITHUB_REF_NAME")
    elif _get(environ, "GITHUB_REF_TYPE") == "tag" and _get(environ, "GITHUB_REF_NAME"):
        tag = _get(environ, "GITHUB_REF_NAME")
    else:
        ref_known = False

    # pull_request and pull_request_target: GITHUB_HEAD_REF is set only for these.
    head_ref = _get(environ, "GITHUB_HEAD_REF")
    base_ref = _get(environ, "GITHUB_BASE_REF")
    is_pr = head_ref is not None or pr is not None or (event or "").startswith("pull_request")
    pr_head_sha = None
    if is_pr:
        head_ref = head_ref or _str_or_none(_dig(payload, "pull_request", "head", "ref"))
        base_ref = base_ref or _str_or_none(_dig(payload, "pull_request", "base", "ref"))
        pr = pr or _str_or_none(_dig(payload, "pull_request", "number")) or _str_or_none(payload.get("number"))
        pr_head_sha = _str_or_none(_dig(payload, "pull_request", "head", "sha"))
        if head_ref is not None:
            branch, tag, ref_known = head_ref, None, True
        # metadata-action's opt-in: the PR's head commit instead of GitHub's merge commit.
        if pr_head_sha is not None and (_get(environ, "DOCKER_METADATA_PR_HEAD_SHA") or "").lower() == "true":
            sha = pr_head_sha
    else:
        head_ref = None
        # A tag push: the payload's base_ref is the branch the tag was pushed from (metadata-action's {{base_ref}}).
        base_ref = None
        payload_base = _str_or_none(payload.get("base_ref"))
        if tag is not None and payload_base is not None:
            base_ref = payload_base.removeprefix("refs/heads/")

    default = _str_or_none(_dig(payload, "repository", "default_branch"))
    if default is None and event == "schedule" and branch is not None:
        default = branch  # scheduled runs always run on the default branch

    remote_url = None
    server, repository = _get(environ, "GITHUB_SERVER_URL"), _get(environ, "GITHUB_REPOSITORY")
    if server and repository:
        remote_url = normalize_remote_url(f"{server.rstrip('/')}/{repository}")

    commit_date = None
    if sha is not None:
        commits = payload.get("commits")
        candidates = [*(commits if isinstance(commits, list) else []), payload.get("head_commit")]
        for commit in candidates:
            if _dig(commit, "id") == sha:
                commit_date = _iso_to_utc(_str_or_none(_dig(commit, "timestamp")))
                break

    return _CI(
        source="github",
        ref_known=ref_known,
        branch=branch,
        tag=tag,
        sha=sha,
        pr=pr,
        base_ref=base_ref,
        head_ref=head_ref,
        event="tag" if event == "push" and tag is not None else event,
        default_branch=default,
        remote_url=remote_url,
        commit_date=commit_date,
        pr_head_sha=pr_head_sha,
    )


_GITLAB_EVENTS = {
    "merge_request_event": "pull_request",
    "external_pull_request_event": "pull_request",
}


def _read_gitlab(environ: Mapping[str, str]) -> _CI:
    tag = _get(environ, "CI_COMMIT_TAG")
    branch = _get(environ, "CI_COMMIT_BRANCH")
    pr = _get(environ, "CI_MERGE_REQUEST_IID")
    head_ref = _get(environ, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
    base_ref = _get(environ, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
    if pr is None and _get(environ, "CI_EXTERNAL_PULL_REQUEST_IID"):
        pr = _get(environ, "CI_EXTERNAL_PULL_REQUEST_IID")
        head_ref = _get(environ, "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME")
        base_ref = _get(environ, "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME")

    ref_known = True
    if tag is not None:
        branch = None
    elif pr is not None:
        branch = head_ref or _get(environ, "CI_COMMIT_REF_NAME")
    elif branch is None:
        # GitLab before 12.6 has no CI_COMMIT_BRANCH.
        branch = _get(environ, "CI_COMMIT_REF_NAME")
        ref_known = branch is not None
    if pr is None:
        head_ref = base_ref = None
    # Set in merged-results pipelines, where CI_COMMIT_SHA is the merge commit.
    pr_head_sha = _get(environ, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") if pr is not None else None

    source = _get(environ, "CI_PIPELINE_SOURCE")
    event = "tag" if source == "push" and tag is not None else _GITLAB_EVENTS.get(source or "", source)
    return _CI(
        source="gitlab",
        ref_known=ref_known,
        branch=branch,
        tag=tag,
        sha=_get(environ, "CI_COMMIT_SHA"),
        short_sha=_get(environ, "CI_COMMIT_SHORT_SHA"),
        pr=pr,
        base_ref=base_ref,
        head_ref=head_ref,
        event=event,
        default_branch=_get(environ, "CI_DEFAULT_BRANCH"),
        remote_url=normalize_remote_url(_get(environ, "CI_PROJECT_URL") or ""),
        commit_date=_iso_to_utc(_get(environ, "CI_COMMIT_TIMESTAMP")),
        pr_head_sha=pr_head_sha,
    )
