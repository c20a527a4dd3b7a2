"""The CI's part of the git context: GitHub Actions and GitLab CI variables (see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from buildspec.gitcontext.remote import normalize_remote_url


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
class CI:
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
            import json  # only on GitHub Actions (start-up time)

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


def read_github(environ: Mapping[str, str]) -> CI:
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

    return CI(
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


def read_gitlab(environ: Mapping[str, str]) -> CI:
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
    return CI(
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
