"""Stage 3: templates, conditions, variables, --set, matrix, repositories, tags, labels, args."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from buildspec import templates
from buildspec.errors import BuildfileError, Span, UsageError
from buildspec.evaluate import Pin, Project, evaluate
from buildspec.model import build_model
from buildspec.platform import Platform
from buildspec.syntax import Block, Str, TagLine, parse
from buildspec.templates import UnsetName

pytestmark = pytest.mark.usefixtures("buildspec_env")

EPOCH = "1767323045"  # 2026-01-02T03:04:05Z
SHA = "0123456789abcdef0123456789abcdef01234567"
AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")
REG = 'registry = "localhost:5000/acme"\nplatforms = [linux/amd64]\n'


def github(tmp: Path, ref: str = "refs/heads/main", **extra: str) -> dict[str, str]:
    """A GitHub Actions push of ``ref`` at SHA, default branch main."""
    event = tmp / "event.json"
    event.write_text(json.dumps({
        "repository": {"default_branch": "main"},
        "head_commit": {"id": SHA, "timestamp": "2026-01-02T04:05:06+01:00"},
    }))
    return {
        "GITHUB_ACTIONS": "true", "GITHUB_REF": ref, "GITHUB_SHA": SHA, "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event), "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app", "SOURCE_DATE_EPOCH": EPOCH, **extra,
    }


def project(
    tmp: Path,
    text: str,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    tag_lister: templates.Callable[[str], list[str]] | None = None,
) -> Project:
    (tmp / "Buildfile").write_text(text)
    if not (tmp / "Dockerfile").exists():
        (tmp / "Dockerfile").write_text("FROM scratch\n")
    model = build_model(parse(text, "Buildfile"), tmp)
    return evaluate(model, overrides, {"SOURCE_DATE_EPOCH": EPOCH} if environ is None else environ, tag_lister)


def failure(tmp: Path, text: str, **kwargs: object) -> BuildfileError:
    with pytest.raises(BuildfileError) as info:
        project(tmp, text, **kwargs)  # type: ignore[arg-type]
    return info.value


def tags(tmp: Path, text: str, **kwargs: object) -> tuple[str, ...]:
    images = project(tmp, text, **kwargs).images  # type: ignore[arg-type]
    return images[next(iter(images))].tags


# ---------------------------------------------------------------- templates


def template(text: str) -> Str:
    return Str(text, json.dumps(text), Span("F", 1, 1))


SCOPE: dict[str, templates.ScopeValue] = {
    "name": "app",
    "git.branch": "Feature/Add_Thing!",
    "git.tag": None,
    "git.is_default_branch": False,
    "version": "1.2.3",
    "date": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
}


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("{name}", "app"),
        ("v{version}-{name}", "v1.2.3-app"),
        ("{git.branch|slug}", "feature-add_thing"),
        ("{git.branch|lower}", "feature/add_thing!"),
        ("{name|upper}", "APP"),
        ("{git.branch|slug|upper}", "FEATURE-ADD_THING"),
        ("{ name | upper }", "APP"),
        ("{{name}}", "{name}"),
        ("{{{name}}}", "{app}"),
        ("}}", "}"),
        ("{date}", "20260102"),
        ("{date|%Y-%m-%dT%H:%M:%S}", "2026-01-02T03:04:05"),
        ("{git.is_default_branch}", "false"),
        ("", ""),
    ],
)
def test_render(text: str, rendered: str) -> None:
    assert templates.render(template(text), SCOPE) == rendered


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Feature/Ünïcode  & Spaces", "feature-n-code-spaces"),
        ("..hidden-", "hidden"),  # a tag cannot start with '.' or '-'
        ("release/1.x", "release-1.x"),
        ("x" * 127 + "/y", "x" * 127),  # trimmed to 128, then no trailing '-'
        ("a" * 200, "a" * 128),
    ],
)
def test_slug_is_tag_safe(text: str, slug: str) -> None:
    assert templates.render(template("{x|slug}"), {"x": text}) == slug


def test_an_unknown_name_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(BuildfileError) as info:
        templates.render(template("{git.brnch}"), SCOPE)
    assert info.value.message == "unknown name 'git.brnch'"
    assert info.value.hint == "did you mean 'git.branch'?"


def test_an_unset_name_is_not_an_error_by_itself() -> None:
    with pytest.raises(UnsetName) as info:
        templates.render(template("v{git.tag}"), SCOPE)
    assert info.value.name == "git.tag"
    with pytest.raises(BuildfileError, match=r"refers to 'git\.tag', which is unset here"):
        templates.render_or_error(template("{git.tag}"), SCOPE, "label x")


def test_an_empty_string_counts_as_unset() -> None:
    with pytest.raises(UnsetName):
        templates.render(template("{x}"), {"x": ""})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{name|slugify}", "unknown filter 'slugify'"),
        ("{name", "unclosed '{' in template (write '{{' for a literal brace)"),
        ("name}", "unmatched '}' in template (write '}}' for a literal brace)"),
        ("{a b}", "'{a b}' is not a name: expected {name}, {a.b} or {name|filter}"),
        ("{}", "'{}' is not a name: expected {name}, {a.b} or {name|filter}"),
    ],
)
def test_template_errors(text: str, message: str) -> None:
    with pytest.raises(BuildfileError) as info:
        templates.render(template(text), SCOPE)
    assert info.value.message == message


def test_template_errors_point_into_the_string() -> None:
    """The span covers the field, counting escapes as written in the file."""
    raw = r'"a\"b{nope}"'
    text = 'a"b{nope}'
    with pytest.raises(BuildfileError) as info:
        templates.render(Str(text, raw, Span("F", 3, 10, 10 + len(raw))), SCOPE)
    assert info.value.span == Span("F", 3, 15, 21)


# ---------------------------------------------------------------- conditions


def condition(text: str) -> templates.Condition:
    (block,) = parse(f'tags t {{\n "x" if {text}\n}}\n', "F").statements
    assert isinstance(block, Block) and isinstance(block.items[0], TagLine)
    assert block.items[0].condition is not None
    return block.items[0].condition


COND_SCOPE: dict[str, templates.ScopeValue] = {
    "yes": True, "no": False, "unset": None, "empty": "", "word": "main", "zero": "0",
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True),
        ("no", False),
        ("unset", False),
        ("empty", False),
        ("word", True),
        ("zero", True),  # a non-empty string is true, even "0"
        ("not yes", False),
        ("not unset", True),
        ("yes and no", False),
        ("yes or no", True),
        ("no or unset", False),
        ("not no and not unset", True),
        ("no and no or yes", True),  # and binds tighter than or
        ("no and (no or yes)", False),
        ('word == "main"', True),
        ('word != "main"', False),
        ('unset == ""', True),
        ('yes == "true"', True),
        ('zero == 0', True),
        ('"{word}-x" == "main-x"', True),
        ('"{unset}"', False),  # a string with an unset name is unset
        ('env("BUILDSPEC_TEST_VAR")', True),
        ('env("BUILDSPEC_TEST_MISSING")', False),
        ('match(word, "^ma(.)", 1) == "i"', True),
    ],
)
def test_conditions(text: str, value: bool) -> None:
    from buildspec.evaluate import _functions

    functions = _functions({"BUILDSPEC_TEST_VAR": "1"}, [])
    assert templates.evaluate(condition(text), COND_SCOPE, functions) is value


def test_a_bare_word_in_a_comparison_is_a_name() -> None:
    with pytest.raises(BuildfileError) as info:
        templates.evaluate(condition("word == main"), COND_SCOPE, {})
    assert info.value.message == "unknown name 'main'"
    assert info.value.hint == 'to compare with the text main, quote it: "main"'


def test_conditions_short_circuit() -> None:
    """`or` does not look at its right side once the left is true (no error for an unknown name)."""
    assert templates.evaluate(condition("yes or nope"), COND_SCOPE, {}) is True
    with pytest.raises(BuildfileError, match="unknown name 'nope'"):
        templates.evaluate(condition("no or nope"), COND_SCOPE, {})


def test_condition_text_round_trips() -> None:
    assert templates.condition_text(condition('(a or b) and not c == "x"')) == '(a or b) and not c == "x"'


# ---------------------------------------------------------------- variables and --set


def test_variables_use_earlier_variables(tmp_path: Path) -> None:
    p = project(tmp_path, REG + 'base = "{registry}/base"\nimage app {\n repository = "{base}"\n}\n')
    assert p.images["app"].repository == "localhost:5000/acme/base"
    assert p.variables["base"] == "localhost:5000/acme/base"


def test_env_function_with_default(tmp_path: Path) -> None:
    text = REG + 'version = env("VERSION", "0.0.1")\nimage app {\n tags = ["{version}"]\n}\n'
    assert tags(tmp_path, text) == ("0.0.1",)
    assert tags(tmp_path, text, environ={"VERSION": "2.0.0"}) == ("2.0.0",)


def test_set_overrides_a_variable_literally(tmp_path: Path) -> None:
    text = REG + 'channel = "stable"\nimage app {\n tags = ["{channel}"]\n}\n'
    assert tags(tmp_path, text, overrides={"channel": "beta"}) == ("beta",)
    # The value is not a template: braces stay as they are (and then fail the tag check).
    e = failure(tmp_path, text, overrides={"channel": "{registry}"})
    assert "{registry}" in e.message


def test_set_may_name_a_setting_the_file_does_not_declare(tmp_path: Path) -> None:
    text = 'platforms = [linux/amd64]\nimage app {\n}\n'
    p = project(tmp_path, text, overrides={"registry": "localhost:5000/other"})
    assert p.images["app"].repository == "localhost:5000/other/app"


def test_set_of_an_undeclared_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        project(tmp_path, REG + 'channel = "x"\nimage app {\n}\n', overrides={"chanel": "y"})
    assert str(info.value) == "--set chanel=...: the Buildfile has no variable 'chanel'; did you mean 'channel'?"


def test_set_platforms_overrides_the_declared_list(tmp_path: Path) -> None:
    p = project(tmp_path, REG + "image app {\n}\n", overrides={"platforms": "linux/arm64,linux/amd64"})
    assert p.images["app"].platforms == (ARM64, AMD64)


def test_without_platforms_the_host_platform_is_used(tmp_path: Path) -> None:
    from buildspec.evaluate import host

    p = project(tmp_path, 'registry = "localhost:5000/acme"\nimage app {\n}\n')
    assert p.images["app"].platforms == (host(),)


def test_platforms_accept_strings_and_aliases(tmp_path: Path) -> None:
    p = project(tmp_path, REG + 'image app {\n platforms = ["linux/x86_64", linux/aarch64, linux/arm/v7]\n}\n')
    assert [str(x) for x in p.images["app"].platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


# ---------------------------------------------------------------- matrix


MATRIX = REG + """
image runtime {
    matrix {
        flavor = ["slim", "full"]
        level  = [1, 2]
    }
    args { FLAVOR = "{flavor}" }
    tags = ["{flavor}-l{level}"]
}
"""


def test_matrix_cells_in_product_order_with_default_names(tmp_path: Path) -> None:
    p = project(tmp_path, MATRIX)
    assert list(p.images) == ["runtime-slim-1", "runtime-slim-2", "runtime-full-1", "runtime-full-2"]
    assert p.declared == {"runtime": tuple(p.images)}
    cell = p.images["runtime-full-2"]
    assert cell.matrix == {"flavor": "full", "level": "2"}
    assert cell.declared_as == "runtime"
    assert cell.tags == ("full-l2",)
    assert cell.args[AMD64] == (("FLAVOR", "full"),)
    # The default repository uses the cell's name.
    assert cell.repository == "localhost:5000/acme/runtime-full-2"


def test_matrix_name_template(tmp_path: Path) -> None:
    text = MATRIX.replace('    tags = ["{flavor}-l{level}"]', '    name = "rt-{level}-{flavor}"\n    tags = ["x"]')
    assert list(project(tmp_path, text).images) == ["rt-1-slim", "rt-2-slim", "rt-1-full", "rt-2-full"]


def test_matrix_cells_sharing_a_name_are_an_error(tmp_path: Path) -> None:
    text = MATRIX.replace('    tags = ["{flavor}-l{level}"]', '    name = "rt-{flavor}"')
    e = failure(tmp_path, text)
    assert "named 'rt-slim'" in e.message


def test_an_image_named_after_a_matrix_cell_collides(tmp_path: Path) -> None:
    text = MATRIX + '\nimage runtime-slim-1 {\n    repository = "{registry}/other"\n}\n'
    assert failure(tmp_path, text).message == "two images are named 'runtime-slim-1'"


# ---------------------------------------------------------------- repositories


@pytest.mark.parametrize(
    ("registry", "repository"),
    [
        ("localhost:5000/acme", "localhost:5000/acme/app"),
        ("localhost:5000/acme/", "localhost:5000/acme/app"),
        ("ghcr.io/acme", "ghcr.io/acme/app"),
        ("acme", "acme/app"),
    ],
)
def test_default_repository_is_registry_slash_name(tmp_path: Path, registry: str, repository: str) -> None:
    p = project(tmp_path, f'registry = "{registry}"\nplatforms = [linux/amd64]\nimage app {{\n}}\n')
    assert p.images["app"].repository == repository


def test_repository_is_checked_after_resolution(tmp_path: Path) -> None:
    e = failure(tmp_path, REG + 'team = "Core"\nimage app {\n repository = "{registry}/{team}/app"\n}\n')
    assert "'localhost:5000/acme/Core/app'" in e.message and "lowercase" in e.message
    assert e.span == Span("Buildfile", 5, 15, 38)


# ---------------------------------------------------------------- tags


SCHEME = REG + """
version = "1.2.3"
tags release {
    "{version}"
    "{version.major}.{version.minor}"  if version.stable
    "{version.major}"                  if version.stable and version.major != "0"
    "latest"
    "{version}"
    "sha-{git.short_sha}"              if git.short_sha
    "pr-{git.pr}"                      if git.pr
}
"""


def test_tags_keep_scheme_order_and_drop_duplicates(tmp_path: Path) -> None:
    p = project(tmp_path, SCHEME + "image app {\n tags = release\n}\n", environ=github(tmp_path))
    image = p.images["app"]
    assert image.tags == ("1.2.3", "1.2", "1", "latest", "sha-0123456")
    reasons = [(d.template, d.tag, d.reason) for d in image.tag_decisions]
    assert reasons == [
        ("{version}", "1.2.3", "added"),
        ("{version.major}.{version.minor}", "1.2", "added"),
        ("{version.major}", "1", "added"),
        ("latest", "latest", "added"),
        ("{version}", None, "duplicate of 1.2.3"),
        ("sha-{git.short_sha}", "sha-0123456", "added"),
        ("pr-{git.pr}", None, "condition false"),
    ]


def test_prefix_and_suffix_apply_to_every_tag_including_latest(tmp_path: Path) -> None:
    text = SCHEME + 'image app {\n tags = release\n prefix = "py-"\n suffix = "-slim"\n}\n'
    assert tags(tmp_path, text) == ("py-1.2.3-slim", "py-1.2-slim", "py-1-slim", "py-latest-slim")


def test_affix_latest_false_leaves_latest_alone(tmp_path: Path) -> None:
    text = SCHEME + 'image app {\n tags = release\n suffix = "-slim"\n affix_latest = false\n}\n'
    assert tags(tmp_path, text) == ("1.2.3-slim", "1.2-slim", "1-slim", "latest")


def test_suffix_is_a_template_over_the_matrix(tmp_path: Path) -> None:
    text = REG + 'image app {\n matrix { py = ["3.11", "3.12"] }\n tags = ["1.0", "latest"]\n suffix = "-py{py}"\n}\n'
    p = project(tmp_path, text)
    assert [i.tags for i in p.images.values()] == [("1.0-py3.11", "latest-py3.11"), ("1.0-py3.12", "latest-py3.12")]


def test_a_prefix_can_make_two_tags_equal(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags = ["{name}", "app"]\n}\n'
    assert tags(tmp_path, text) == ("app",)


def test_inline_tags_block_and_list(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags {\n  "edge"  if git.is_default_branch\n  "dev"\n }\n}\n'
    assert tags(tmp_path, text, environ=github(tmp_path)) == ("edge", "dev")
    assert tags(tmp_path, text, environ=github(tmp_path, ref="refs/heads/feature")) == ("dev",)
    assert tags(tmp_path, REG + "image app {\n}\n") == ("latest",)


def test_unset_name_drops_a_guarded_tag_and_fails_an_unguarded_one(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags {\n  "{git.tag}"  if git.branch\n  "x"\n }\n}\n'
    p = project(tmp_path, text, environ=github(tmp_path))
    assert p.images["app"].tags == ("x",)
    assert p.images["app"].tag_decisions[0].reason == "unset name git.tag"
    e = failure(tmp_path, REG + 'image app {\n tags = ["{git.tag}"]\n}\n')
    assert e.message == "tag template refers to 'git.tag', which is unset here"
    assert e.span == Span("Buildfile", 4, 11, 20)


def test_version_is_normalised_and_raw_is_kept(tmp_path: Path) -> None:
    text = REG + 'version = "v2.0.0-rc.1+build.7"\nimage app {\n tags = ["{version}", "{version.raw|slug}"]\n}\n'
    p = project(tmp_path, text)
    assert p.images["app"].tags == ("2.0.0-rc.1", "v2.0.0-rc.1-build.7")
    assert p.version is not None and not p.version.stable


def test_version_defaults_to_the_git_tag(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags = ["{version}"]\n}\n'
    assert tags(tmp_path, text, environ=github(tmp_path, ref="refs/tags/v3.1.4")) == ("3.1.4",)


@pytest.mark.parametrize(
    ("existing", "latest"),
    [([], True), (["1.0.0", "1.2.2", "latest"], True), (["1.2.3"], True), (["2.0.0"], False),
     (["2.0.0-rc.1"], True)],
)
def test_version_is_latest_reads_the_repository(tmp_path: Path, existing: list[str], latest: bool) -> None:
    text = REG + 'version = "1.2.3"\nimage app {\n tags { "{version}"\n "latest" if version.is_latest }\n}\n'
    asked: list[str] = []

    def lister(repository: str) -> list[str]:
        asked.append(repository)
        return existing

    assert ("latest" in tags(tmp_path, text, tag_lister=lister)) is latest
    assert asked == ["localhost:5000/acme/app"]


def test_version_is_latest_without_a_registry_says_so(tmp_path: Path) -> None:
    text = REG + 'version = "1.2.3"\nimage app {\n tags { "{version}"\n "latest" if version.is_latest }\n}\n'

    def broken(repository: str) -> list[str]:
        raise OSError("connection refused")

    p = project(tmp_path, text, tag_lister=broken)
    assert p.images["app"].tags == ("1.2.3", "latest")
    assert p.notes and "connection refused" in p.notes[0]


def test_tags_are_checked_after_resolution(tmp_path: Path) -> None:
    text = REG + 'channel = "release candidate"\nimage app {\n tags = ["{channel}"]\n}\n'
    e = failure(tmp_path, text)
    assert "'release candidate'" in e.message
    assert e.span == Span("Buildfile", 5, 10, 21)
    long = failure(tmp_path, REG + f'image app {{\n tags = ["{"x" * 129}"]\n}}\n')
    assert "129 characters long" in long.message


def test_no_tag_at_all_is_an_error_only_when_asked(tmp_path: Path) -> None:
    p = project(tmp_path, REG + 'image app {\n tags { "x" if git.pr }\n}\n')
    assert p.images["app"].tags == ()
    amd64 = Platform.parse("linux/amd64")
    assert p.images["app"].platform_tags == {amd64: "untagged-app-linux-amd64"}
    e = failure(tmp_path, REG + 'image app {\n tags { "x" if git.pr }\n no_tags = error\n}\n')
    assert e.message == "image 'app' resolves to no tags"
    e = failure(tmp_path, REG + 'no_tags = error\nimage app {\n tags { "x" if git.pr }\n}\n')
    assert e.message == "image 'app' resolves to no tags"
    e = failure(tmp_path, REG + 'image app {\n tags { "x" if git.pr }\n no_tags = strict\n}\n')
    assert e.message == "no_tags is build or error, not 'strict'"


def test_date_uses_source_date_epoch(tmp_path: Path) -> None:
    text = REG + 'image app {\n tags = ["nightly-{date|%Y%m%d}", "{date}"]\n}\n'
    assert tags(tmp_path, text) == ("nightly-20260102", "20260102")


# ---------------------------------------------------------------- labels


def test_automatic_labels_merge_under_user_labels(tmp_path: Path) -> None:
    text = REG + """
image app {
    tags = ["1.0", "latest"]
    labels {
        "org.opencontainers.image.title" = "The App"
        "com.example.team"               = "{name}-team"
    }
}
"""
    labels = project(tmp_path, text, environ=github(tmp_path)).images["app"].labels
    assert labels == {
        "org.opencontainers.image.created": "2026-01-02T03:05:06Z",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.source": "https://github.com/acme/app",
        "org.opencontainers.image.url": "https://github.com/acme/app",
        "org.opencontainers.image.version": "1.0",
        "org.opencontainers.image.title": "The App",
        "com.example.team": "app-team",
    }


def test_without_git_only_version_and_title_are_automatic(tmp_path: Path) -> None:
    labels = project(tmp_path, REG + "image app {\n}\n").images["app"].labels
    assert labels == {"org.opencontainers.image.version": "latest", "org.opencontainers.image.title": "app"}


# ---------------------------------------------------------------- args and platform tags


def test_args_are_per_platform_and_pins_are_kept(tmp_path: Path) -> None:
    text = REG.replace("[linux/amd64]", "[linux/amd64, linux/arm64]") + """
image base {
}
image app {
    args {
        BASE = image(base)
        ARCH = "{platform.arch}"
        WHERE = "{platform}"
        TOOL = busybox
    }
}
"""
    image = project(tmp_path, text).images["app"]
    assert image.args[ARM64] == (
        ("BASE", Pin("base", Span("Buildfile", 8, 22, 26))),
        ("ARCH", "arm64"),
        ("WHERE", "linux/arm64"),
        ("TOOL", "busybox"),
    )
    assert image.pins(AMD64) == [Pin("base", Span("Buildfile", 8, 22, 26))]


def test_args_naming_a_per_platform_value_differ_and_the_others_are_the_same(tmp_path: Path) -> None:
    # Arguments without platform, platform.* or tag are evaluated once per image (speed);
    # those with them on each platform. The order of the arguments is kept.
    text = REG.replace("[linux/amd64]", "[linux/amd64, linux/arm64]") + """
image app {
    tags = ["1.0"]
    args {
        NAME = "{name}"
        TAG = "{tag}"
        ARCH = "x{platform.arch|upper}"
        PLAIN = "x"
    }
}
"""
    image = project(tmp_path, text).images["app"]
    assert image.args[AMD64] == (("NAME", "app"), ("TAG", "1.0"), ("ARCH", "xAMD64"), ("PLAIN", "x"))
    assert image.args[ARM64] == (("NAME", "app"), ("TAG", "1.0"), ("ARCH", "xARM64"), ("PLAIN", "x"))
    assert image.args[AMD64][0][1] is image.args[ARM64][0][1]  # evaluated once


def test_platform_tags(tmp_path: Path) -> None:
    text = REG.replace("[linux/amd64]", "[linux/amd64, linux/arm/v7]") + 'image app {\n tags = ["1.0"]\n}\n'
    image = project(tmp_path, text).images["app"]
    assert [image.platform_tags[p] for p in image.platforms] == ["1.0-linux-amd64", "1.0-linux-arm-v7"]
    custom = text.replace('tags = ["1.0"]', 'tags = ["1.0"]\n platform_tag = "{tag}.{platform.arch}"')
    image = project(tmp_path, custom).images["app"]
    assert [image.platform_tags[p] for p in image.platforms] == ["1.0.amd64", "1.0.arm"]
    # platform.variant is unset without a variant: like any unset name, an error here.
    variant = text.replace('tags = ["1.0"]', 'tags = ["1.0"]\n platform_tag = "{tag}{platform.variant}"')
    assert failure(tmp_path, variant).message == "platform_tag refers to 'platform.variant', which is unset here"


def test_platform_names_are_unknown_outside_per_platform_places(tmp_path: Path) -> None:
    e = failure(tmp_path, REG + 'image app {\n tags = ["{platform.arch}"]\n}\n')
    assert e.hint == "platform.arch is only known in per-platform places: args and platform_tag"


# ---------------------------------------------------------------- paths, backends, groups


def test_context_and_dockerfile_are_relative(tmp_path: Path) -> None:
    (tmp_path / "images" / "app").mkdir(parents=True)
    (tmp_path / "images" / "app" / "app.Dockerfile").write_text("FROM scratch\n")
    text = REG + 'image app {\n context = "images"\n dockerfile = "app/app.Dockerfile"\n target = "run"\n}\n'
    image = project(tmp_path, text).images["app"]
    assert image.context == tmp_path / "images"
    assert image.dockerfile == tmp_path / "images" / "app" / "app.Dockerfile"
    assert image.target == "run"


def test_backend_defaults_and_overrides(tmp_path: Path) -> None:
    text = REG + "backend = kaniko\nimage a {\n}\nimage b {\n backend = buildah\n}\n"
    p = project(tmp_path, text)
    assert (p.backend, p.images["a"].backend, p.images["b"].backend) == ("kaniko", "kaniko", "buildah")
    assert p.images["b"].backend_span == Span("Buildfile", 7, 12, 19)
    assert project(tmp_path, REG + "image a {\n}\n").backend == "auto"


def test_groups_resolve_to_images_in_order(tmp_path: Path) -> None:
    text = MATRIX + "image app {\n}\ngroup rt = [runtime-full-2, runtime]\ngroup default = [app, rt]\n"
    p = project(tmp_path, text)
    assert p.groups["rt"] == ("runtime-full-2", "runtime-slim-1", "runtime-slim-2", "runtime-full-1")
    assert p.groups["default"] == ("app", *p.groups["rt"])
    assert p.default_targets() == p.groups["default"]


def test_without_a_default_group_every_image_is_the_default(tmp_path: Path) -> None:
    p = project(tmp_path, MATRIX + "image app {\n}\n")
    assert p.default_targets() == (*p.declared["runtime"], "app")


# ---------------------------------------------------------------- several repositories


def test_a_repository_list_publishes_to_each_and_builds_push_to_the_first(tmp_path: Path) -> None:
    text = REG + 'image app {\n repository = ["{registry}/app", "ghcr.io/acme/app"]\n tags = ["1.0.0"]\n}\n'
    app = project(tmp_path, text).images["app"]
    assert app.repositories == ("localhost:5000/acme/app", "ghcr.io/acme/app")
    assert app.repository == "localhost:5000/acme/app"


def test_a_registry_list_gives_every_image_one_repository_per_registry(tmp_path: Path) -> None:
    text = ('registry = ["localhost:5000/acme", "registry.gitlab.com/acme"]\nplatforms = [linux/amd64]\n'
            'image app {\n}\nimage tool {\n repository = "ghcr.io/acme/tool"\n}\n')
    images = project(tmp_path, text).images
    assert images["app"].repositories == ("localhost:5000/acme/app", "registry.gitlab.com/acme/app")
    assert images["tool"].repositories == ("ghcr.io/acme/tool",)


def test_one_repository_is_a_list_of_one(tmp_path: Path) -> None:
    assert project(tmp_path, REG + "image app {\n}\n").images["app"].repositories == ("localhost:5000/acme/app",)


def test_a_bad_repository_in_a_list_points_at_it(tmp_path: Path) -> None:
    e = failure(tmp_path, REG + 'image app {\n repository = ["{registry}/app", "ghcr.io/Acme/app"]\n}\n')
    assert e.span is not None and (e.span.line, e.span.column) == (4, 34), e.span


def test_two_images_pushing_one_tag_to_a_second_repository_collide(tmp_path: Path) -> None:
    text = (REG + 'image app {\n repository = ["{registry}/app", "ghcr.io/acme/shared"]\n}\n'
            'image web {\n repository = ["{registry}/web", "ghcr.io/acme/shared"]\n}\n')
    assert "would both push ghcr.io/acme/shared:latest" in str(failure(tmp_path, text))
