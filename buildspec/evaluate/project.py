"""Stage 3: model -> project: every variable, matrix cell, platform, tag and argument resolved.

Scope, from outermost to innermost: the file's variables (after ``--set``),
``git.*``, ``version.*``, ``registry``, ``date``; per image cell the matrix
axes and ``name``; per platform ``platform.*`` (args and platform_tag only).

This module holds the entry point and the file-level settings; images.py
evaluates one image, tags.py its tags and labels, targets.py the checks across images.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from buildspec import templates
from buildspec.errors import BuildfileError, Span, UsageError
from buildspec.evaluate.images import _expand, _FileScope, _platforms
from buildspec.evaluate.tags import _LatestProbe
from buildspec.evaluate.targets import _check_pushes_are_distinct, _check_references, _resolve_groups
from buildspec.evaluate.types import BACKENDS, Image, Project, TagLister
from buildspec.gitcontext import StartedGit, read_git_context
from buildspec.model import SETTINGS, Buildfile, did_you_mean
from buildspec.platform import Platform, PlatformError
from buildspec.syntax import Call, ListValue, Str, Value, Word
from buildspec.templates import Scope, ScopeValue, UnsetName
from buildspec.versions import parse_version


def evaluate(
    buildfile: Buildfile,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    tag_lister: TagLister | None = None,
    *,
    local: bool = False,
    git_started: StartedGit | None = None,
) -> Project:
    """``tag_lister(repository)`` lists existing tags, for ``version.is_latest`` only.
    ``local`` (``run --load``/``--output``): an image without a registry is named by its
    name alone, as ``docker build -t NAME`` does. ``git_started``: the git processes of
    ``gitcontext.start_git_context(buildfile.directory, environ)``, if already started."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    _check_overrides(buildfile, overrides)
    declared_names = {v.name for v in buildfile.variables}
    default_branch_var = overrides.get("default_branch") or _literal(buildfile, "default_branch")
    short_len = overrides.get("short_sha_length") or _literal(buildfile, "short_sha_length") or "7"
    if not short_len.isdigit() or not 4 <= int(short_len) <= 64:
        problem = f"must be a number from 4 to 64, not '{short_len}'"
        if "short_sha_length" in overrides:
            raise UsageError(f"--set short_sha_length: {problem}")
        raise _setting_error(buildfile, "short_sha_length", problem)
    git = read_git_context(
        buildfile.directory,
        environ,
        default_branch=default_branch_var,
        short_sha_length=int(short_len),
        started=git_started,
    )
    scope: dict[str, ScopeValue] = {f"git.{k}": v for k, v in git.as_template_values().items()}
    scope["registry"] = None
    scope["date"] = _now(environ)
    warnings: list[str] = []
    functions = _functions(environ, warnings)

    version_scheme = "semver"
    for variable in buildfile.variables:
        if variable.name in overrides:
            value: ScopeValue = overrides[variable.name]
            if variable.name == "platforms":
                value = tuple(p for p in str(value).split(",") if p)
        else:
            value = _variable_value(variable.value, scope, functions, variable.name)
        scope[variable.name] = value
        if variable.name == "version_scheme":
            version_scheme = templates.to_text(value) or "semver"
    for name in overrides.keys() - declared_names:
        scope[name] = overrides[name]

    version_text = scope.get("version") if "version" in scope else git.tag
    version = None
    if isinstance(version_text, str) and version_text:
        if version_scheme not in ("semver", "pep440"):
            raise _setting_error(buildfile, "version_scheme", "must be semver or pep440")
        version = parse_version(version_text, version_scheme)
        scope.update({f"version.{k}": v for k, v in version.as_template_values().items()})
        scope["version"] = version.text
    else:
        scope.update({f"version.{k}": None for k in parse_version("0.0.0").as_template_values()})
        scope["version"] = None
    scope["version.is_latest"] = None  # per repository: set in _image when a condition asks

    backend = _choice(buildfile, scope, "backend", BACKENDS, "auto")
    publish = _choice(buildfile, scope, "publish", ("atomic", "eager"), "atomic")
    default_platforms = _default_platforms(buildfile, scope, overrides.get("platforms"))

    images: dict[str, Image] = {}
    declared: dict[str, tuple[str, ...]] = {}
    latest = _LatestProbe(version, tag_lister)
    file = _FileScope(buildfile, scope, functions, default_platforms, backend, git, latest, local)
    for decl in buildfile.images:
        cells = []
        for image in _expand(decl, file):
            if image.name in images or (image.name != decl.name and image.name in declared):
                other = images.get(image.name)
                span = decl.attributes["name"].value.span if "name" in decl.attributes else image.span
                if other is not None and other.declared_as == decl.name:
                    first = ", ".join(f"{k}={v}" for k, v in other.matrix.items())
                    this = ", ".join(f"{k}={v}" for k, v in image.matrix.items())
                    raise BuildfileError(f"matrix cells {first} and {this} are both named '{image.name}'", span,
                                         hint="use every axis in name, e.g. name = \"...{axis}...\"")
                raise BuildfileError(
                    f"two images are named '{image.name}'",
                    span,
                    notes=((f"'{image.name}' is also defined here", other.span),) if other else (),
                )
            images[image.name] = image
            cells.append(image.name)
        declared[decl.name] = tuple(cells)
    _check_pushes_are_distinct(images)
    project = Project(
        buildfile=buildfile,
        images=images,
        groups={},
        declared=declared,
        variables={k: v for k, v in scope.items() if k in declared_names},
        git=git,
        version=version,
        backend=backend,
        publish=publish,
        notes=tuple(dict.fromkeys([*warnings, *latest.notes])),
    )
    groups = _resolve_groups(project)
    _check_references(project, groups)
    return Project(**{**project.__dict__, "groups": groups})


# ---------------------------------------------------------------- variables and settings


def _check_overrides(buildfile: Buildfile, overrides: Mapping[str, str]) -> None:
    declared = {v.name for v in buildfile.variables}
    for name in overrides:
        if name not in declared and name not in SETTINGS:
            hint = did_you_mean(name, declared | set(SETTINGS))
            raise UsageError(
                f"--set {name}=...: the Buildfile has no variable '{name}'"
                + (f"; {hint}" if hint else "")
            )


def _literal(buildfile: Buildfile, name: str) -> str | None:
    for variable in buildfile.variables:
        if variable.name == name and isinstance(variable.value, Str | Word):
            return variable.value.text
    return None


def _now(environ: Mapping[str, str]) -> datetime:
    # SOURCE_DATE_EPOCH makes {date} reproducible, as in reproducible-builds.org tooling.
    epoch = environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def _functions(environ: Mapping[str, str], warnings: list[str]) -> dict[str, Callable[[Call, Scope], ScopeValue]]:
    """``warnings`` collects what plan prints as notes (a match() group the pattern lacks)."""

    def env(call: Call, scope: Scope) -> ScopeValue:
        args = _string_args(call, scope, 1, 2, 'env("NAME", "default")')
        return environ.get(args[0], args[1] if len(args) > 1 else None)

    def match(call: Call, scope: Scope) -> ScopeValue:
        if not 2 <= len(call.args) <= 3:
            raise BuildfileError('match takes a subject, a pattern and a group: match(git.tag, "^v(.*)$", 1)',
                                 call.span)
        subject_node, pattern_node, *group_node = call.args
        if isinstance(subject_node, Word):
            if subject_node.text not in scope:
                raise templates.unknown_name_error(subject_node.text, scope, subject_node.span)
            subject = templates.to_text(scope[subject_node.text])
        else:
            subject = templates.to_text(_variable_value(subject_node, scope, {}, "match"))
        if not isinstance(pattern_node, Str):
            raise BuildfileError("match's pattern is a string", pattern_node.span)
        try:
            pattern = re.compile(pattern_node.text)
        except re.error as e:
            raise BuildfileError(f"invalid regular expression: {e}", pattern_node.span) from None
        group = 0
        if group_node:
            if not isinstance(group_node[0], Word) or not group_node[0].text.isdigit():
                raise BuildfileError("match's group is a number", group_node[0].span)
            group = int(group_node[0].text)
        if group > pattern.groups:
            # metadata-action warns and skips the entry; so does buildspec: the value is unset,
            # which drops the tag lines that use it (their condition is false).
            span = call.span
            warnings.append(f"{span.file}:{span.line}:{span.column}: match(): the pattern "
                            f"{pattern_node.raw} has {pattern.groups} group(s), not {group}; "
                            "the value is unset, so the tags that use it are dropped")
            return None
        found = pattern.search(subject)
        return found.group(group) if found and found.group(group) is not None else None

    return {"env": env, "match": match}


def _string_args(call: Call, scope: Scope, least: int, most: int, usage: str) -> list[str]:
    if not least <= len(call.args) <= most or not all(isinstance(a, Str) for a in call.args):
        raise BuildfileError(f"{call.name} takes string arguments: {usage}", call.span)
    return [templates.render_or_error(a, scope, call.name) for a in call.args if isinstance(a, Str)]


def _variable_value(value: Value, scope: Scope, functions: templates.Functions, name: str) -> ScopeValue:
    if isinstance(value, Str):
        try:
            return templates.render(value, scope)
        except UnsetName:
            return None
    if isinstance(value, Word):
        return value.text
    if isinstance(value, ListValue):
        items = []
        for item in value.items:
            if not isinstance(item, Str | Word):
                raise BuildfileError("list items are strings or words", item.span)
            items.append(templates.render_or_error(item, scope, name) if isinstance(item, Str) else item.text)
        return tuple(items)
    if value.name not in functions:
        if value.name == "image":
            raise BuildfileError("image() is only allowed in args", value.span)
        raise BuildfileError(f"unknown function '{value.name}'", value.span,
                             hint=did_you_mean(value.name, ["env", "match", "image"]))
    return functions[value.name](value, scope)


def _setting_error(buildfile: Buildfile, name: str, message: str) -> BuildfileError:
    span = next((v.span for v in buildfile.variables if v.name == name), None)
    return BuildfileError(f"{name} {message}", span)


def _choice(buildfile: Buildfile, scope: Scope, name: str, allowed: Sequence[str], default: str) -> str:
    value = templates.to_text(scope.get(name)) or default
    if value not in allowed:
        hint = did_you_mean(value, allowed)
        raise BuildfileError(
            f"{name} must be one of {', '.join(allowed)}, not '{value}'",
            next((v.value.span for v in buildfile.variables if v.name == name), None),
            hint=hint,
        )
    return value


def host() -> Platform:
    # os.uname().machine is what platform.machine() returns on Linux, without importing platform.
    return Platform.parse(f"linux/{os.uname().machine.lower()}")


def _default_platforms(
    buildfile: Buildfile, scope: Scope, override: str | None = None
) -> tuple[tuple[Platform, ...], Span | None]:
    variable = next((v for v in buildfile.variables if v.name == "platforms"), None)
    if override is not None:  # --set platforms=linux/amd64,linux/arm64
        try:
            return tuple(Platform.parse(t) for t in override.split(",") if t.strip()) or (host(),), None
        except PlatformError as e:
            raise UsageError(f"--set platforms={override}: {e}") from None
    if variable is None:
        return (host(),), None
    if isinstance(variable.value, ListValue):
        return _platforms(variable.value), variable.span
    values = scope.get("platforms")
    texts = values if isinstance(values, tuple) else (templates.to_text(values),)
    try:
        return tuple(Platform.parse(t) for t in texts), variable.span
    except PlatformError as e:
        raise BuildfileError(str(e), variable.span) from None


