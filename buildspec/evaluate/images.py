"""One image declaration -> its Image cells (the matrix expanded, per platform args)."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from buildspec import templates
from buildspec.errors import BuildfileError, Span
from buildspec.evaluate.build_options import build_options
from buildspec.evaluate.tags import TagMemo, _affix_latest, _labels, _LatestProbe, _scheme_of, _tags
from buildspec.evaluate.types import BACKENDS, Image, Pin
from buildspec.gitcontext import GitContext
from buildspec.model import Buildfile, Entry, ImageDecl, did_you_mean
from buildspec.platform import Platform, PlatformError
from buildspec.registry.reference import validate_repository, validate_tag
from buildspec.syntax import Call, ListValue, Str, Value, Word
from buildspec.templates import Scope, ScopeValue


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
    local: bool = False  # run --load / --output: no registry needed (the repository is the name)
    tag_memo: TagMemo = field(default_factory=TagMemo)  # named schemes' tags, by the values they read


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

    repositories = _repositories(decl, buildfile, scope, name, file.local)
    repository = repositories[0]

    context = buildfile.directory / (text("context", ".") or ".")
    context_span = attrs["context"].value.span if "context" in attrs else decl.span
    if not _checked(context, Path.is_dir, context_span, buildfile.directory):
        raise BuildfileError(f"build context '{text('context', '.')}' is not a directory", context_span)
    dockerfile = context / (text("dockerfile", "Dockerfile") or "Dockerfile")
    span = attrs["dockerfile"].value.span if "dockerfile" in attrs else decl.span
    if not _checked(dockerfile, Path.is_file, span, buildfile.directory):
        raise BuildfileError(f"no Dockerfile at '{os.path.relpath(dockerfile, buildfile.directory)}'", span,
                             hint="dockerfile is relative to the context, as in docker buildx bake")

    backend = text("backend", file.default_backend) or file.default_backend
    if backend not in BACKENDS:
        raise BuildfileError(f"backend must be one of {', '.join(BACKENDS)}, not '{backend}'",
                             attrs["backend"].value.span, hint=did_you_mean(backend, BACKENDS))

    prefix, suffix = text("prefix", "") or "", text("suffix", "") or ""
    if latest.wanted(_scheme_of(decl, buildfile)):
        scope["version.is_latest"] = latest(repository, prefix, suffix)
    tags, decisions = _tags(decl, buildfile, scope, functions, prefix, suffix, _affix_latest(decl), file.tag_memo)
    if not tags and _no_tags(decl, file) == "error":
        raise BuildfileError(f"image '{name}' resolves to no tags", decl.span,
                             hint="every tag's condition is false here; add one that always applies, "
                                  "or drop no_tags = error to build it without pushing")
    labels = _labels(decl, scope, name, tags, git)
    needs = _needs(decl)

    platform_tags: dict[Platform, str] = {}
    args: dict[Platform, tuple[tuple[str, str | Pin], ...]] = {}
    tag_template = attrs["platform_tag"].value if "platform_tag" in attrs else None
    if tag_template is not None and not isinstance(tag_template, Str):
        raise BuildfileError("platform_tag is a string", tag_template.span)
    # Build arguments that name no per-platform value (platform, platform.*, tag) are the same
    # on every platform: evaluated once, and the per-platform scope is made only when needed.
    shared = {e.key: _arg_value(e, scope) for e in decl.args if not _per_platform(e.value)}
    per_platform = tag_template is not None or len(shared) < len(decl.args)
    for platform in platforms:
        pscope = {**scope, **{f"platform.{k}": v for k, v in platform.template_values().items()},
                  "platform": str(platform), "tag": tags[0] if tags else None} if per_platform else scope
        if not tags:
            # Built and never pushed (no tag applies here): a local name only, whatever platform_tag says.
            ptag = untagged_platform_tag(name, platform)
        elif tag_template is None:
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
        args[platform] = tuple((e.key, shared[e.key] if e.key in shared else _arg_value(e, pscope))
                               for e in decl.args)

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
        release_labels=_flag(decl, "release_labels", default=False),
        repositories=repositories,
        build_options=build_options(decl, scope, buildfile.directory),
    )


def _repositories(decl: ImageDecl, buildfile: Buildfile, scope: Scope, name: str,
                  local: bool = False) -> tuple[str, ...]:
    """``repository = "r"`` or ``["r1", "r2"]``, else ``{registry}/{name}`` for each
    registry of ``registry = "..."`` or ``[...]``: every repository, the first being
    where builds push; each checked, none twice. ``local`` (run --load / --output):
    without a registry the repository is the image's name, as ``docker build -t NAME``."""
    attrs = decl.attributes
    registry_var = next((v for v in buildfile.variables if v.name == "registry"), None)
    notes: tuple[tuple[str, Span | None], ...] = ()
    if "repository" in attrs:
        value = attrs["repository"].value
        items = value.items if isinstance(value, ListValue) else [value]
        if not items:
            raise BuildfileError("repository is empty", value.span, hint='repository = "host/path" or ["a", "b"]')
        found: list[tuple[str, Span]] = []
        for item in items:
            if isinstance(item, Word):
                found.append((item.text, item.span))
            elif isinstance(item, Str):
                found.append((templates.render_or_error(item, scope, "repository"), item.span))
            else:
                raise BuildfileError('repository is a string or a list of strings: ["a", "b"]', item.span)
    else:
        registry = scope.get("registry")
        registries = registry if isinstance(registry, tuple) else (templates.to_text(registry),)
        if not any(registries) and local:
            registries = ("",)
        elif not any(registries):
            raise BuildfileError(f"image '{name}' has no repository", decl.span,
                                 hint='set registry = "host/path" at the top, or repository = "..." here')
        found = [(f"{r.rstrip('/')}/{name}" if r else name, decl.span) for r in registries]
        if registry_var is not None:
            notes = (("the repository is {registry}/{name}; registry is set here", registry_var.value.span),)
    for index, (repository, span) in enumerate(found):
        problem = validate_repository(repository)
        if problem:
            raise BuildfileError(problem, span, notes=notes)
        if any(repository == other for other, _ in found[:index]):
            raise BuildfileError(f"repository {repository} is listed twice", span, notes=notes)
    return tuple(repository for repository, _ in found)


NO_TAGS = ("build", "error")


def _no_tags(decl: ImageDecl, file: _FileScope) -> str:
    """``no_tags``: the image's, else the file's; ``build`` (the default) or ``error``."""
    span: Span | None
    if "no_tags" in decl.attributes:
        value = decl.attributes["no_tags"].value
        span = value.span
        text = value.text if isinstance(value, Word | Str) else None
    else:
        text = templates.to_text(file.scope.get("no_tags")) or "build"
        span = next((v.value.span for v in file.buildfile.variables if v.name == "no_tags"), None)
    if text not in NO_TAGS:
        raise BuildfileError(f"no_tags is build or error, not '{text}'", span, hint=did_you_mean(text or "", NO_TAGS))
    return text


def untagged_platform_tag(name: str, platform: Platform) -> str:
    """The local name of a per-platform build of an image that has no tags (never pushed)."""
    return f"untagged-{name}-{platform.slug}"[:128]


def _needs(decl: ImageDecl) -> tuple[tuple[str, Span], ...]:
    if "needs" not in decl.attributes:
        return ()
    value = decl.attributes["needs"].value
    if not isinstance(value, ListValue) or not all(isinstance(i, Word) for i in value.items):
        raise BuildfileError("needs is a list of target names: needs = [a, b]", value.span)
    return tuple((i.text, i.span) for i in value.items if isinstance(i, Word))


def _checked(path: Path, test: Callable[[Path], bool], span: Span, directory: Path) -> bool:
    """``test(path)``; an error the file system gives (a name too long, no permission) is the
    Buildfile's error at ``span`` (is_dir and is_file answer False only for a missing path)."""
    try:
        return test(path)
    except OSError as e:
        raise BuildfileError(f"cannot read '{os.path.relpath(path, directory)}': {e.strerror}", span) from None


def _per_platform(value: Value) -> bool:
    """Whether a build argument's value names platform, platform.* or tag (per-platform scope only)."""
    if not isinstance(value, Str):
        return False  # a word, image(...) or a call such as env(): the same on every platform
    return any(name in ("platform", "tag") or name.startswith("platform.") for name in templates.names_in(value.text))


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


def _flag(decl: ImageDecl, name: str, *, default: bool) -> bool:
    if name not in decl.attributes:
        return default
    value = decl.attributes[name].value
    if not isinstance(value, Word) or value.text not in ("true", "false"):
        raise BuildfileError(f"{name} is true or false", value.span)
    return value.text == "true"
