"""Issue 10's language: tag line options, images without tags, date filters, match() groups.

Each test evaluates a Buildfile through the public stages (parse, model, evaluate)
with an explicit environment, as the other evaluation tests do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildspec.errors import BuildfileError, Span
from buildspec.evaluate import Project, evaluate
from buildspec.model import build_model
from buildspec.syntax import parse

EPOCH = "1774499400"  # 2026-03-26T04:30:00Z
SHA = "90dd6032fac8bda1b6c4436a2e65de27961ed071"
HEAD = "3370e228f2209994d57af4427fe64e71bb79ac96"
REG = 'registry = "localhost:5000/acme"\nplatforms = [linux/amd64]\n'


def github(tmp: Path, ref: str, event: str = "push", **extra: str) -> dict[str, str]:
    payload: dict[str, object] = {"repository": {"default_branch": "main"},
                                  "head_commit": {"id": SHA, "timestamp": "2026-01-02T23:30:00Z"}}
    if ref.startswith("refs/pull/"):
        payload |= {"number": 15, "pull_request": {"number": 15, "head": {"ref": "fix", "sha": HEAD}}}
    (tmp / "event.json").write_text(json.dumps(payload))
    return {"GITHUB_ACTIONS": "true", "GITHUB_REF": ref, "GITHUB_SHA": SHA, "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(tmp / "event.json"), "SOURCE_DATE_EPOCH": EPOCH, **extra}


def project(tmp: Path, text: str, environ: dict[str, str] | None = None) -> Project:
    (tmp / "Buildfile").write_text(text)
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    model = build_model(parse(text, "Buildfile"), tmp)
    return evaluate(model, None, environ if environ is not None else {"SOURCE_DATE_EPOCH": EPOCH})


def tags(tmp: Path, scheme: str, image: str = "", environ: dict[str, str] | None = None) -> tuple[str, ...]:
    text = REG + f"tags t {{\n{scheme}\n}}\nimage app {{\n tags = t\n{image}}}\n"
    return project(tmp, text, environ).images["app"].tags


def failure(tmp: Path, scheme: str, image: str = "") -> BuildfileError:
    with pytest.raises(BuildfileError) as info:
        tags(tmp, scheme, image)
    return info.value


GLOBAL = ' prefix = "glo-"\n suffix = "-bal"\n'


# ------------------------------------------------------------------ [prefix], [suffix]


def test_a_lines_own_prefix_replaces_the_images(tmp_path: Path) -> None:
    """metadata-action rows pr05 and raw09: pr-15-bal, foo-my-bar, glo-custom-bal."""
    scheme = '"{git.pr}" [prefix = "pr-"] if git.pr\n"my" [prefix = "foo-", suffix = "-bar"]\n"custom"'
    assert tags(tmp_path, scheme, GLOBAL, github(tmp_path, "refs/pull/15/merge", "pull_request")) == (
        "pr-15-bal", "foo-my-bar", "glo-custom-bal")


def test_an_empty_option_removes_the_images_affix(tmp_path: Path) -> None:
    """metadata-action row pr06 (prefix=) and tag19 (suffix=)."""
    scheme = '"{git.pr}" [prefix = ""] if git.pr\n"x" [suffix = ""]'
    assert tags(tmp_path, scheme, GLOBAL, github(tmp_path, "refs/pull/15/merge", "pull_request")) == (
        "15-bal", "glo-x")


def test_option_values_are_templates_and_unset_names_drop_the_line(tmp_path: Path) -> None:
    scheme = '"{git.short_sha}" [prefix = "{git.branch|slug}-"] if git.short_sha\n"always"'
    assert tags(tmp_path, scheme, "", github(tmp_path, "refs/heads/feature/x")) == ("feature-x-90dd603", "always")
    assert tags(tmp_path, scheme, "", github(tmp_path, "refs/tags/v1.0.0")) == ("always",)


# ------------------------------------------------------------------ [latest]


def test_latest_follows_the_line_of_the_first_tag(tmp_path: Path) -> None:
    scheme = ('"{version.major}.{version.minor}" [latest] if version.stable\n'
              '"{version}" if version.is_semver and not version.stable\n"sha-{git.short_sha}" if git.short_sha')
    assert tags(tmp_path, scheme, "", github(tmp_path, "refs/tags/v1.2.3")) == ("1.2", "sha-90dd603", "latest")
    # a pre-release's first tag comes from a line without [latest]: no latest (metadata-action tag13)
    assert tags(tmp_path, scheme, "", github(tmp_path, "refs/tags/v2.0.8-beta.67")) == (
        "2.0.8-beta.67", "sha-90dd603")
    # a line of higher priority without [latest] keeps it away (metadata-action tag15)
    assert tags(tmp_path, '"foo"\n' + scheme, "", github(tmp_path, "refs/tags/v1.2.3")) == (
        "foo", "1.2", "sha-90dd603")


def test_latest_takes_the_images_affixes_unless_affix_latest_is_false(tmp_path: Path) -> None:
    environ = github(tmp_path, "refs/tags/v1.1.1")
    assert tags(tmp_path, '"{version}" [latest] if version.stable', ' suffix = "-dev"\n', environ) == (
        "1.1.1-dev", "latest-dev")
    assert tags(tmp_path, '"{version}" [latest] if version.stable', ' suffix = "-dev"\n affix_latest = false\n',
                environ) == ("1.1.1-dev", "latest")


def test_latest_is_not_added_twice(tmp_path: Path) -> None:
    assert tags(tmp_path, '"latest" [latest]', "") == ("latest",)


def test_explain_shows_the_options_and_where_latest_came_from(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags { "{version}" [latest, prefix = "v"] if version.stable }\n}\n'
    decisions = project(tmp_path, text, github(tmp_path, "refs/tags/1.0.0")).images["app"].tag_decisions
    assert [(d.template, d.options, d.condition, d.tag, d.reason) for d in decisions] == [
        ("{version}", 'prefix = "v", latest', "version.stable", "v1.0.0", "added"),
        ("latest", "", """the first tag's line has [latest] ("{version}")""", "latest", "added"),
    ]


@pytest.mark.parametrize(("scheme", "message", "column"), [
    ('"x" [latst]', "unknown tag option 'latst'", 6),
    ('"x" [latest = "yes"]', "latest is a flag and takes no value", 6),
    ('"x" [prefix = p]', 'prefix takes a string: [prefix = "..."]', 6),
    ('"x" [prefix = "a", prefix = "b"]', "duplicate tag option 'prefix'", 20),
])
def test_bad_options_point_at_the_option(tmp_path: Path, scheme: str, message: str, column: int) -> None:
    e = failure(tmp_path, scheme)
    assert e.message == message
    assert e.span is not None and (e.span.line, e.span.column) == (4, column)


# ------------------------------------------------------------------ no tags


def test_no_tags_builds_locally_named_and_a_pin_on_it_is_an_error(tmp_path: Path) -> None:
    text = REG + ('image base {\n tags { "{version}" if version.stable }\n}\n'
                  'image app {\n args { BASE = image(base) }\n}\n')
    with pytest.raises(BuildfileError) as info:
        project(tmp_path, text)
    assert info.value.message == ("image 'base' has no tags here, so it is built but not pushed, "
                                  "and image() cannot pin it")
    assert info.value.span == Span("Buildfile", 7, 22, 26)  # the name in image(base)


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(("template", "tag"), [
    ("{date|tz=Asia/Tokyo|%Y%m%d-%H%M%S}", "20260326-133000"),  # metadata-action's tz='Asia/Tokyo'
    ("{date|tz=America/New_York|%Y%m%d-%H}", "20260326-00"),
    ("{git.commit_date|%Y%m%d}", "20260102"),  # {{commit_date 'YYYYMMDD'}}
    ("{git.commit_date|tz=Europe/Paris|%Y%m%d-%H%M}", "20260103-0030"),
    ("{git.commit_date|tz=UTC}", "20260102"),  # a date shown bare is %Y%m%d
    ("{git.branch|sanitize}", "Feature-Login_Form-1"),  # metadata-action's sanitizeTag keeps the case
    ("{git.branch|slug}", "feature-login_form-1"),
])
def test_filters(tmp_path: Path, template: str, tag: str) -> None:
    environ = github(tmp_path, "refs/heads/Feature/Login_Form#1")
    assert tags(tmp_path, f'"{template}"', "", environ) == (tag,)


@pytest.mark.parametrize(("template", "message"), [
    ("{git.branch|%Y}", "'%Y' formats a date, and git.branch is not one here"),
    ("{date|tz=Mars/Olympus}", "unknown time zone 'Mars/Olympus'"),
    ("{date|%Y|tz=UTC}", "'tz=UTC' formats a date, and date is not one here"),
])
def test_filter_errors(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(BuildfileError) as info:
        tags(tmp_path, f'"{template}"', "", github(tmp_path, "refs/heads/main"))
    assert info.value.message == message


# ------------------------------------------------------------------ match() groups, PR head SHA


def test_a_missing_match_group_is_a_note_and_drops_the_line(tmp_path: Path) -> None:
    """metadata-action row tag18: group=3 of a one-group pattern warns and skips the entry."""
    text = REG + ('m1 = match(git.tag, "p1/v(\\d.\\d.\\d)", 1)\nm3 = match(git.tag, "p1/v(\\d.\\d)", 3)\n'
                  'image app {\n tags { "{m1}" if m1\n "{m3}" if m3 }\n}\n')
    p = project(tmp_path, text, github(tmp_path, "refs/tags/p1/v1.0.0"))
    assert p.images["app"].tags == ("1.0.0",)
    assert p.notes == ('Buildfile:4:6: match(): the pattern "p1/v(\\d.\\d)" has 1 group(s), not 3; '
                       "the value is unset, so the tags that use it are dropped",)


def test_pr_head_sha(tmp_path: Path) -> None:
    scheme = '"sha-{git.short_sha}"\n"head-{git.pr_head_sha}" if git.pr_head_sha'
    environ = github(tmp_path, "refs/pull/15/merge", "pull_request")
    assert tags(tmp_path, scheme, "", environ) == ("sha-90dd603", f"head-{HEAD}")
    environ["DOCKER_METADATA_PR_HEAD_SHA"] = "true"
    assert tags(tmp_path, scheme, "", environ) == (f"sha-{HEAD[:7]}", f"head-{HEAD}")
