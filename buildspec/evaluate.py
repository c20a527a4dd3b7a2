"""Stage 3: model -> project: every variable, matrix cell, platform, tag and argument resolved.

Scope, from outermost to innermost: the file's variables (after ``--set``),
``git.*``, ``version.*``, ``registry``, ``date``; per image cell the matrix
axes and ``name``; per platform ``platform.*`` (args and platform_tag only).
"""

from __future__ import annotations

import itertools
import os
import platform as host_platform
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from buildspec import templates
from buildspec.errors import BuildfileError, Span, UsageError
from buildspec.gitcontext import GitContext, read_git_context
from buildspec.model import SETTINGS, Buildfile, Entry, ImageDecl, TagScheme, TagTemplate, did_you_mean
from buildspec.platform import Platform, PlatformError
from buildspec.registry.reference import validate_repository, validate_tag
from buildspec.syntax import Call, ListValue, NameRef, Str, Value, Word
from buildspec.templates import Scope, ScopeValue, UnsetName
from buildspec.versions import Version, is_latest, parse_version

BACKENDS = ("auto", "buildx", "kaniko", "buildah")
DEFAULT_PLATFORM_TAG = "{tag}-{platform.slug}"
OCI = "org.opencontainers.image."


@dataclass(frozen=True)
class Pin:
    """``image(NAME)``: the digest of NAME's build for the same platform, known at run time."""

    target: str
    span: Span


@dataclass(frozen=True)
class TagDecision:
    """What one tag template did, for ``plan --explain``."""

    template: str
    condition: str | None
    values: Mapping[str, str]
    tag: str | None  # the tag produced, or None when dropped
    reason: str  # "added", "condition false", "unset name git.tag", "duplicate of 1.2.3"


@dataclass(frozen=True)
class Image:
    """One image to build and publish: a declared image or one cell of its matrix."""

    name: str
    declared_as: str
    span: Span
    repository: str
    platforms: tuple[Platform, ...]
    tags: tuple[str, ...]
    tag_decisions: tuple[TagDecision, ...]
    labels: Mapping[str, str]
    args: Mapping[Platform, tuple[tuple[str, str | Pin], ...]]
    platform_tags: Mapping[Platform, str]
    needs: tuple[tuple[str, Span], ...]
    context: Path
    dockerfile: Path
    target: str | None
    backend: str
    backend_span: Span | None
    matrix: Mapping[str, str] = field(default_factory=dict)
    cache: str | None = None
    builder: str | None = None

    def pins(self, platform: Platform) -> list[Pin]:
        return [v for _, v in self.args[platform] if isinstance(v, Pin)]


@dataclass(frozen=True)
class Project:
    buildfile: Buildfile
    images: Mapping[str, Image]  # by cell name, in file order
    groups: Mapping[str, tuple[str, ...]]  # group -> image names
    declared: Mapping[str, tuple[str, ...]]  # declared image -> its cell names
    variables: Mapping[str, ScopeValue]
    git: GitContext
    version: Version | None
    backend: str
    publish: str
    notes: tuple[str, ...] = ()

    def default_targets(self) -> tuple[str, ...]:
        return self.groups.get("default", tuple(self.images))


# ---------------------------------------------------------------- entry point


TagLister = Callable[[str], list[str]]


def evaluate(
    buildfile: Buildfile,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    tag_lister: TagLister | None = None,
) -> Project:
    """``tag_lister(repository)`` lists existing tags, for ``version.is_latest`` only."""
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
    )
    scope: dict[str, ScopeValue] = {f"git.{k}": v for k, v in git.as_template_values().items()}
    scope["registry"] = None
    scope["date"] = _now(environ)
    functions = _functions(environ)

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
    for decl in buildfile.images:
        cells = []
        file = _FileScope(buildfile, scope, functions, default_platforms, backend, git, latest)
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
        notes=tuple(latest.notes),
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


def _functions(environ: Mapping[str, str]) -> dict[str, Callable[[Call, Scope], ScopeValue]]:
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
            raise BuildfileError(f"the pattern has {pattern.groups} group(s), not {group}", call.span)
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
    return Platform.parse(f"linux/{host_platform.machine().lower()}")


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


def _platforms(value: Value) -> tuple[Platform, ...]:
    if not isinstance(value, ListValue):
        raise BuildfileError("platforms is a list: [linux/amd64, linux/arm64]", value.span)
    if not value.items:
        raise BuildfileError("platforms is empty", value.span)
    result: list[Platform] = []
    for item in value.items:
        if not isinstance(item, Word | Str):
            raise BuildfileError("a platform is written linux/arm64 or \"linux/arm64\"", item.span)
        try:
            platform = Platform.parse(item.text)
        except PlatformError as e:
            raise BuildfileError(str(e), item.span) from None
        if platform in result:
            raise BuildfileError(f"platform {platform} is listed twice", item.span)
        result.append(platform)
    return tuple(result)


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class _FileScope:
    """What every image of a file is evaluated against."""

    buildfile: Buildfile
    scope: Scope
    functions: templates.Functions
    default_platforms: tuple[tuple[Platform, ...], Span | None]
    default_backend: str
    git: GitContext
    latest: _LatestProbe


def _expand(decl: ImageDecl, file: _FileScope) -> list[Image]:
    axes: list[tuple[str, tuple[str, ...]]] = []
    for entry in decl.matrix:
        if entry.key in file.scope or "." in entry.key:
            raise BuildfileError(f"matrix axis '{entry.key}' hides a variable of the same name", entry.span)
        if not isinstance(entry.value, ListValue):
            raise BuildfileError(f"matrix axis '{entry.key}' is a list of values", entry.value.span)
        if not entry.value.items:
            raise BuildfileError(f"matrix axis '{entry.key}' is empty", entry.value.span,
                                 hint="give it at least one value, or remove it")
        values = []
        for item in entry.value.items:
            if not isinstance(item, Str | Word):
                raise BuildfileError("matrix values are strings", item.span)
            values.append(item.text)
        axes.append((entry.key, tuple(values)))
    combos = itertools.product(*(values for _, values in axes)) if axes else [()]
    return [
        _image(decl, file, dict(zip([a for a, _ in axes], combo, strict=True)))
        for combo in combos
    ]


def _image(decl: ImageDecl, file: _FileScope, matrix: dict[str, str]) -> Image:
    buildfile, functions, git, latest = file.buildfile, file.functions, file.git, file.latest
    attrs = decl.attributes
    scope: dict[str, ScopeValue] = {**file.scope, **matrix}

    def text(name: str, default: str | None = None) -> str | None:
        if name not in attrs:
            return default
        value = attrs[name].value
        if isinstance(value, Word):
            return value.text
        if not isinstance(value, Str):
            raise BuildfileError(f"{name} is a string", value.span)
        return templates.render_or_error(value, scope, name)

    name = decl.name
    if "name" in attrs:
        name = text("name") or decl.name
    elif matrix:
        name = "-".join([decl.name, *matrix.values()])
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name):
        name_span = attrs["name"].value.span if "name" in attrs else decl.span
        raise BuildfileError(f"'{name}' is not a valid image name", name_span,
                             hint="names use letters, digits, '.', '_' and '-'")
    scope["name"] = name

    platforms, _ = file.default_platforms
    if "platforms" in attrs:
        platforms = _platforms(attrs["platforms"].value)

    repository = text("repository")
    repo_span = attrs["repository"].value.span if "repository" in attrs else decl.span
    if repository is None:
        registry = templates.to_text(scope.get("registry"))
        if not registry:
            raise BuildfileError(f"image '{name}' has no repository", decl.span,
                                 hint='set registry = "host/path" at the top, or repository = "..." here')
        repository = f"{registry.rstrip('/')}/{name}"
    problem = validate_repository(repository)
    if problem:
        registry_var = next((v for v in buildfile.variables if v.name == "registry"), None)
        notes: tuple[tuple[str, Span | None], ...] = ()
        if "repository" not in attrs and registry_var is not None:
            notes = (("the repository is {registry}/{name}; registry is set here", registry_var.value.span),)
        raise BuildfileError(problem, repo_span, notes=notes)

    context = buildfile.directory / (text("context", ".") or ".")
    if not context.is_dir():
        raise BuildfileError(f"build context '{text('context', '.')}' is not a directory",
                             attrs["context"].value.span if "context" in attrs else decl.span)
    dockerfile = context / (text("dockerfile", "Dockerfile") or "Dockerfile")
    if not dockerfile.is_file():
        span = attrs["dockerfile"].value.span if "dockerfile" in attrs else decl.span
        raise BuildfileError(f"no Dockerfile at '{os.path.relpath(dockerfile, buildfile.directory)}'", span,
                             hint="dockerfile is relative to the context, as in docker buildx bake")

    backend = text("backend", file.default_backend) or file.default_backend
    if backend not in BACKENDS:
        raise BuildfileError(f"backend must be one of {', '.join(BACKENDS)}, not '{backend}'",
                             attrs["backend"].value.span, hint=did_you_mean(backend, BACKENDS))

    prefix, suffix = text("prefix", "") or "", text("suffix", "") or ""
    if latest.wanted(_scheme_of(decl, buildfile)):
        scope["version.is_latest"] = latest(repository, prefix, suffix)
    tags, decisions = _tags(decl, buildfile, scope, functions, prefix, suffix, _affix_latest(decl))
    labels = _labels(decl, scope, name, tags, git)
    needs = _needs(decl)

    platform_tags: dict[Platform, str] = {}
    args: dict[Platform, tuple[tuple[str, str | Pin], ...]] = {}
    tag_template = attrs["platform_tag"].value if "platform_tag" in attrs else None
    if tag_template is not None and not isinstance(tag_template, Str):
        raise BuildfileError("platform_tag is a string", tag_template.span)
    for platform in platforms:
        pscope = {**scope, **{f"platform.{k}": v for k, v in platform.template_values().items()},
                  "platform": str(platform), "tag": tags[0]}
        if tag_template is None:
            ptag = f"{tags[0]}-{platform.slug}"
            if len(ptag) > 128:
                ptag = f"{tags[0][: 127 - len(platform.slug)]}-{platform.slug}"
        else:
            ptag = templates.render_or_error(tag_template, pscope, "platform_tag")
        problem = validate_tag(ptag)
        if problem:
            raise BuildfileError(f"platform tag: {problem}",
                                 tag_template.span if tag_template else decl.span)
        platform_tags[platform] = ptag
        args[platform] = tuple((e.key, _arg_value(e, pscope)) for e in decl.args)

    return Image(
        name=name,
        declared_as=decl.name,
        span=decl.span,
        repository=repository,
        platforms=platforms,
        tags=tags,
        tag_decisions=decisions,
        labels=labels,
        args=args,
        platform_tags=platform_tags,
        needs=needs,
        context=context,
        dockerfile=dockerfile,
        target=text("target"),
        backend=backend,
        backend_span=attrs["backend"].value.span if "backend" in attrs else None,
        matrix=matrix,
        cache=text("cache"),
        builder=text("builder") or templates.to_text(scope.get("builder")) or None,
    )


class _LatestProbe:
    """``version.is_latest`` for a repository: no higher stable release is there yet.

    Asked only when a condition uses it; one registry read per repository.
    """

    def __init__(self, version: Version | None, lister: TagLister | None) -> None:
        self.version = version
        self.lister = lister
        self.notes: list[str] = []
        self._answers: dict[str, bool] = {}
        self._tags: dict[str, list[str]] = {}

    @staticmethod
    def wanted(scheme: TagScheme) -> bool:
        return any(t.condition is not None and "version.is_latest" in templates.condition_text(t.condition)
                   for t in scheme.templates)

    def __call__(self, repository: str, prefix: str = "", suffix: str = "") -> bool:
        """Matrix cells share a repository and tell their releases apart by prefix/suffix."""
        if self.version is None or not self.version.stable:
            return False
        key = f"{repository}\0{prefix}\0{suffix}"
        if key not in self._answers:
            existing = self._existing(repository)
            ours = [t[len(prefix) : len(t) - len(suffix)] for t in existing
                    if t.startswith(prefix) and t.endswith(suffix) and len(t) > len(prefix) + len(suffix)]
            self._answers[key] = is_latest(self.version, ours)
        return self._answers[key]

    def _existing(self, repository: str) -> list[str]:
        if repository not in self._tags:
            self._tags[repository] = []
            if self.lister is None:
                self.notes.append(f"version.is_latest: {repository} not read; assuming no higher release")
            else:
                try:
                    self._tags[repository] = self.lister(repository)
                except Exception as e:  # any registry failure: say so and assume the first release
                    self.notes.append(f"version.is_latest: cannot read the tags of {repository} ({e}); "
                                      "assuming no higher release exists")
        return self._tags[repository]


def _affix_latest(decl: ImageDecl) -> bool:
    if "affix_latest" not in decl.attributes:
        return True
    value = decl.attributes["affix_latest"].value
    if not isinstance(value, Word) or value.text not in ("true", "false"):
        raise BuildfileError("affix_latest is true or false", value.span)
    return value.text == "true"


def _scheme_of(decl: ImageDecl, buildfile: Buildfile) -> TagScheme:
    if decl.inline_tags is not None:
        return decl.inline_tags
    if "tags" not in decl.attributes:
        return TagScheme(None, (TagTemplate(Str("latest", '"latest"', decl.span), None),), decl.span)
    value = decl.attributes["tags"].value
    if isinstance(value, Word):
        if value.text not in buildfile.schemes:
            raise BuildfileError(f"no tag scheme named '{value.text}'", value.span,
                                 hint=did_you_mean(value.text, buildfile.schemes))
        return buildfile.schemes[value.text]
    if isinstance(value, ListValue):
        items = []
        for item in value.items:
            if not isinstance(item, Str):
                raise BuildfileError('tags are strings: tags = ["latest", "{version}"]', item.span)
            items.append(TagTemplate(item, None))
        return TagScheme(None, tuple(items), value.span)
    raise BuildfileError("tags is a scheme name, a list of templates or a block", value.span)


def _tags(
    decl: ImageDecl, buildfile: Buildfile, scope: Scope, functions: templates.Functions,
    prefix: str, suffix: str, affix_latest: bool,
) -> tuple[tuple[str, ...], tuple[TagDecision, ...]]:
    scheme = _scheme_of(decl, buildfile)
    tags: list[str] = []
    decisions: list[TagDecision] = []
    for item in scheme.templates:
        seen: dict[str, str] = {}
        condition = templates.condition_text(item.condition) if item.condition is not None else None

        def decide(tag: str | None, reason: str, item: TagTemplate = item,
                   seen: dict[str, str] = seen, condition: str | None = condition) -> None:
            decisions.append(TagDecision(item.template.text, condition, dict(seen), tag, reason))

        if item.condition is not None and not templates.evaluate(item.condition, scope, functions, seen):
            decide(None, "condition false")
            continue
        try:
            tag = templates.render(item.template, scope, seen)
        except UnsetName as e:
            if item.condition is None:
                raise BuildfileError(
                    f"tag template refers to '{e.name}', which is unset here", e.span,
                    hint="guard the tag with a condition, e.g.  if " + e.name,
                ) from None
            decide(None, f"unset name {e.name}")
            continue
        if tag != "latest" or affix_latest:
            tag = f"{prefix}{tag}{suffix}"
        problem = validate_tag(tag)
        if problem:
            raise BuildfileError(problem, item.template.span,
                                 hint="the |slug filter makes any text tag-safe")
        if tag in tags:
            decide(None, f"duplicate of {tag}")
            continue
        tags.append(tag)
        decide(tag, "added")
    if not tags:
        raise BuildfileError(f"image '{scope['name']}' resolves to no tags", decl.span,
                             hint="every tag's condition is false here; add one that always applies")
    return tuple(tags), tuple(decisions)


def _labels(decl: ImageDecl, scope: Scope, name: str, tags: Sequence[str], git: GitContext) -> dict[str, str]:
    automatic = {
        "created": git.commit_date,
        "revision": git.sha,
        "source": git.remote_url,
        "url": git.remote_url,
        "version": tags[0] if tags else None,
        "title": name,
    }
    labels = {OCI + k: v for k, v in automatic.items() if v}
    for entry in decl.labels:
        if not isinstance(entry.value, Str):
            raise BuildfileError("label values are strings", entry.value.span)
        labels[entry.key] = templates.render_or_error(entry.value, scope, f"label {entry.key}")
    return labels


def _needs(decl: ImageDecl) -> tuple[tuple[str, Span], ...]:
    if "needs" not in decl.attributes:
        return ()
    value = decl.attributes["needs"].value
    if not isinstance(value, ListValue) or not all(isinstance(i, Word) for i in value.items):
        raise BuildfileError("needs is a list of target names: needs = [a, b]", value.span)
    return tuple((i.text, i.span) for i in value.items if isinstance(i, Word))


def _arg_value(entry: Entry, scope: Scope) -> str | Pin:
    value = entry.value
    if isinstance(value, Str):
        return templates.render_or_error(value, scope, f"build argument {entry.key}")
    if isinstance(value, Word):
        return value.text
    if isinstance(value, Call) and value.name == "image":
        if len(value.args) != 1 or not isinstance(value.args[0], Word):
            raise BuildfileError("image() names one target: image(base)", value.span)
        return Pin(value.args[0].text, value.args[0].span)
    if isinstance(value, Call):
        if value.name == "env":
            raise BuildfileError('use env() in a variable, then "{variable}" here', value.span)
        raise BuildfileError(f"unknown function '{value.name}'", value.span,
                             hint=did_you_mean(value.name, ["image"]))
    raise BuildfileError("a build argument is a string or image(NAME)", value.span)


# ---------------------------------------------------------------- cross-image checks


def _check_pushes_are_distinct(images: Mapping[str, Image]) -> None:
    owners: dict[str, Image] = {}
    for image in images.values():
        for ref in [f"{image.repository}:{t}" for t in (*image.tags, *image.platform_tags.values())]:
            if ref in owners and owners[ref] is not image:
                raise BuildfileError(
                    f"images '{owners[ref].name}' and '{image.name}' would both push {ref}",
                    image.span,
                    hint="give matrix cells a suffix (suffix = \"-{axis}\") or distinct repositories"
                    if image.matrix else "give each image its own repository, or distinct tags",
                    notes=((f"'{owners[ref].name}' is defined here", owners[ref].span),),
                )
            owners[ref] = image


def _target_names(project: Project) -> list[str]:
    return [*project.images, *project.declared, *project.groups]


def resolve_target(project: Project, name: str, groups: Mapping[str, tuple[str, ...]],
                   span: Span | None) -> tuple[str, ...]:
    if name in groups:
        return groups[name]
    if name in project.images:
        return (name,)
    if name in project.declared:
        return project.declared[name]
    message = f"no target named '{name}'"
    hint = did_you_mean(name, [*project.images, *project.declared, *groups])
    if span is None:
        raise UsageError(message + (f"; {hint}" if hint else ""))
    raise BuildfileError(message, span, hint=hint)


def _resolve_groups(project: Project) -> dict[str, tuple[str, ...]]:
    decls = project.buildfile.groups
    resolved: dict[str, tuple[str, ...]] = {}

    def visit(name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
        if name in resolved:
            return resolved[name]
        members: dict[str, None] = {}
        for word in decls[name].members:
            if word.text in stack:
                raise BuildfileError(f"group '{name}' includes itself through '{word.text}'", word.span)
            if word.text in decls:
                found = visit(word.text, (*stack, word.text))
            else:
                found = resolve_target(project, word.text, {}, word.span)
            members.update(dict.fromkeys(found))
        resolved[name] = tuple(members)
        return resolved[name]

    for name in decls:
        visit(name, (name,))
    return resolved


def _check_references(project: Project, groups: Mapping[str, tuple[str, ...]]) -> None:
    for image in project.images.values():
        for name, span in image.needs:
            resolve_target(project, name, groups, span)
        for platform in image.platforms:
            for pin in image.pins(platform):
                if pin.target in project.images:
                    continue
                decl = next((d for d in project.buildfile.images if d.name == pin.target), None)
                if decl is not None and not decl.matrix:
                    (named,) = project.declared[pin.target]
                    raise BuildfileError(f"image '{pin.target}' is named '{named}' (name = ...)", pin.span,
                                         hint=f"image() takes that name: image({named})")
                if pin.target in project.declared:
                    cells = ", ".join(project.declared[pin.target])
                    raise BuildfileError(f"'{pin.target}' is a matrix; image() names one cell", pin.span,
                                         hint=f"cells: {cells}")
                raise BuildfileError(f"image() names no target: '{pin.target}'", pin.span,
                                     hint=did_you_mean(pin.target, project.images))
            break  # pins are the same on every platform


__all__ = ["Image", "NameRef", "Pin", "Project", "TagDecision", "evaluate", "resolve_target"]
