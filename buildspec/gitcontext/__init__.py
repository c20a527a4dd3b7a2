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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from buildspec.gitcontext.ci import CI, read_github, read_gitlab
from buildspec.gitcontext.local import StartedGit, read_local, start_local
from buildspec.gitcontext.remote import normalize_remote_url
from buildspec.versions import parse_version, semver_key

__all__ = ["GitContext", "StartedGit", "normalize_remote_url", "read_git_context", "start_git_context"]

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


def _read_ci(environ: Mapping[str, str]) -> CI | None:
    if environ.get("GITHUB_ACTIONS") == "true":
        return read_github(environ)
    if environ.get("GITLAB_CI") == "true":
        return read_gitlab(environ)
    return None


def start_git_context(path: Path, environ: Mapping[str, str]) -> StartedGit:
    """Start the git processes ``read_git_context(path, environ, started=...)`` will read:
    they run while the caller does other work (load.load_project: while parsing)."""
    return _start(path, _read_ci(environ))


def _start(path: Path, ci: CI | None) -> StartedGit:
    return start_local(path, want_origin_head=ci is None or ci.default_branch is None,
                       want_remote_url=ci is None or ci.remote_url is None)


def read_git_context(
    path: Path,
    environ: Mapping[str, str],
    *,
    default_branch: str | None = None,
    short_sha_length: int = 7,
    started: StartedGit | None = None,
) -> GitContext:
    """Read the context of the commit at ``path`` (see the module docstring); ``started``:
    the processes of ``start_git_context(path, environ)``, if the caller started them."""
    if not 4 <= short_sha_length <= 64:
        raise ValueError(f"short_sha_length must be between 4 and 64, not {short_sha_length}")
    ci = _read_ci(environ)
    local = read_local(started if started is not None else _start(path, ci))

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
