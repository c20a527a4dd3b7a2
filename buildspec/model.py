"""Stage 2: syntax tree -> model: which statements and attributes a Buildfile has.

This stage knows the vocabulary (statement kinds, image attributes, which of
them are blocks) and checks the *shape* of each statement; evaluate.py gives
values their meaning. Every check reports the user's position and, for a
misspelt word, the word that was probably meant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildspec.errors import BuildfileError, Span
from buildspec.syntax import (
    Assign,
    Block,
    Condition,
    ListValue,
    NamedAssign,
    SourceFile,
    Str,
    TagLine,
    TagOption,
    Value,
    Word,
)

STATEMENTS = ("image", "tags", "group")
# Variables with a meaning of their own; every other variable is just a name in templates.
SETTINGS = {
    "platforms": "the default platforms of every image",
    "backend": "the default backend: auto, buildx, kaniko or buildah",
    "registry": "the registry (and path) images are pushed to by default",
    "version": "the release version; defaults to the git tag at HEAD",
    "version_scheme": "how version is parsed: semver (default) or pep440",
    "default_branch": "the default branch when neither the CI nor origin/HEAD says",
    "short_sha_length": "length of git.short_sha (default 7)",
    "publish": "atomic (default) or eager",
    "no_tags": "what an image whose tag lines all drop does: build (default: build, push nothing) or error",
    "builder": "the buildx builder to use",
    "kaniko_executor": "path of the kaniko executor binary",
    "kaniko_image": "kaniko executor image for container mode",
}
SIMPLE_ATTRIBUTES = (
    "context",
    "dockerfile",
    "target",
    "platforms",
    "repository",
    "tags",
    "prefix",
    "suffix",
    "affix_latest",
    "no_tags",
    "needs",
    "name",
    "backend",
    "platform_tag",
    "cache",
    "builder",
    "release_labels",
    # Build options with bake's names and value formats (evaluate/build_options.py).
    "secrets",
    "ssh",
    "attest",
    "no_cache",
    "pull",
    "network",
    "shm_size",
    "ulimits",
    "cache_from",
    "cache_to",
)
# KEY = VALUE blocks read by evaluate/build_options.py (ImageDecl.blocks).
OPTION_BLOCKS = ("contexts", "hosts", "annotations")
BLOCK_ATTRIBUTES = ("args", "labels", "matrix", "tags", *OPTION_BLOCKS)
ALL_ATTRIBUTES = tuple(sorted(set(SIMPLE_ATTRIBUTES) | set(BLOCK_ATTRIBUTES)))


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    import difflib  # only on the way to an error (start-up time)

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    value: Value
    span: Span


TAG_OPTIONS = {
    "prefix": "replaces the image's prefix on this line",
    "suffix": "replaces the image's suffix on this line",
    "latest": "when this line gives the image's first tag, 'latest' is added after the last tag",
}


@dataclass(frozen=True, slots=True)
class TagTemplate:
    template: Str
    condition: Condition | None
    # A line's own prefix/suffix (even "") replaces the image's, as metadata-action's per-entry ones do.
    prefix: Str | None = None
    suffix: Str | None = None
    latest: bool = False  # metadata-action's latest=auto, per line: see TAG_OPTIONS


@dataclass(frozen=True)
class TagScheme:
    name: str | None  # None for an inline block or list
    templates: tuple[TagTemplate, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``KEY = value`` line of an args, labels or matrix block."""

    key: str
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class ImageDecl:
    name: str
    span: Span
    attributes: Mapping[str, Assign]  # simple attributes by name
    args: tuple[Entry, ...] = ()
    labels: tuple[Entry, ...] = ()
    matrix: tuple[Entry, ...] = ()
    inline_tags: TagScheme | None = None
    blocks: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict)  # OPTION_BLOCKS by name
    block_spans: Mapping[str, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupDecl:
    name: str
    members: tuple[Word, ...]
    span: Span


@dataclass(frozen=True)
class Buildfile:
    file: str  # as the user named it, for messages
    directory: Path  # relative paths in the file are relative to this
    variables: tuple[Variable, ...]
    schemes: Mapping[str, TagScheme]
    images: tuple[ImageDecl, ...]
    groups: Mapping[str, GroupDecl]
    source: str = field(repr=False, default="")


def build_model(source: SourceFile, directory: Path) -> Buildfile:
    variables: dict[str, Variable] = {}
    schemes: dict[str, TagScheme] = {}
    images: dict[str, ImageDecl] = {}
    groups: dict[str, GroupDecl] = {}

    def first_definition(name: str) -> Span | None:
        for table in (variables, schemes, images, groups):
            if name in table:
                return table[name].span
        return None

    for statement in source.statements:
        if isinstance(statement, Assign):
            if statement.key in variables:
                _duplicate("variable", statement.key, statement.span, variables[statement.key].span)
            _check_name(statement.key, statement.span, "variable")
            variables[statement.key] = Variable(statement.key, statement.value, statement.span)
        elif isinstance(statement, NamedAssign):
            if statement.kind != "group":
                raise BuildfileError(
                    f"unknown statement '{statement.kind}'",
                    statement.span,
                    hint=did_you_mean(statement.kind, ["group"])
                    or "a named list is written: group NAME = [a, b]",
                )
            if statement.name in groups or statement.name in images:
                what = "group" if statement.name in groups else "target"
                _duplicate(what, statement.name, statement.name_span, first_definition(statement.name))
            groups[statement.name] = _group(statement)
        else:
            if statement.kind not in ("image", "tags"):
                raise _unknown_statement(statement)
            if statement.label is None:
                raise BuildfileError(
                    f"'{statement.kind}' needs a name: {statement.kind} NAME {{ ... }}", statement.span
                )
            label_span = statement.label_span or statement.span
            if statement.kind == "tags":
                if statement.label in schemes:
                    _duplicate("tag scheme", statement.label, label_span, schemes[statement.label].span)
                schemes[statement.label] = _scheme(statement, statement.label)
            else:
                if statement.label in images or statement.label in groups:
                    what = "image" if statement.label in images else "target"
                    _duplicate(what, statement.label, label_span, first_definition(statement.label))
                images[statement.label] = _image(statement)
    return Buildfile(
        file=source.path,
        directory=directory,
        variables=tuple(variables.values()),
        schemes=schemes,
        images=tuple(images.values()),
        groups=groups,
        source=source.text,
    )


def _check_name(name: str, span: Span, what: str) -> None:
    if not name.replace("_", "a").replace("-", "a").replace(".", "a").isalnum() or "." in name:
        raise BuildfileError(f"'{name}' is not a valid {what} name", span,
                             hint="names use letters, digits, '_' and '-'")


def _duplicate(what: str, name: str, span: Span, first: Span | None) -> None:
    notes = ((f"'{name}' was first defined here", first),) if first else ()
    raise BuildfileError(f"duplicate {what} '{name}'", span, notes=notes)


def _unknown_statement(block: Block) -> BuildfileError:
    if block.kind in ("matrix", "args", "labels"):
        return BuildfileError(f"'{block.kind}' belongs inside an image block", block.span)
    return BuildfileError(
        f"unknown statement '{block.kind}'",
        block.span,
        hint=did_you_mean(block.kind, STATEMENTS) or "statements are: image, tags, group, NAME = VALUE",
    )


def _group(statement: NamedAssign) -> GroupDecl:
    value = statement.value
    if not isinstance(value, ListValue):
        raise BuildfileError("a group is a list of target names: group NAME = [a, b]", value.span)
    for item in value.items:
        if not isinstance(item, Word):
            raise BuildfileError("a group is a list of target names: group NAME = [a, b]", item.span)
    return GroupDecl(statement.name, tuple(i for i in value.items if isinstance(i, Word)), statement.name_span)


def _scheme(block: Block, name: str | None) -> TagScheme:
    templates = []
    for item in block.items:
        if not isinstance(item, TagLine):
            span = item.span
            raise BuildfileError(
                "a tags block holds one tag template per line, each optionally followed by 'if CONDITION'",
                span,
                hint='for example:  "{version}"  if version.stable',
            )
        templates.append(_tag_template(item))
    return TagScheme(name, tuple(templates), block.label_span or block.span)


def _tag_template(item: TagLine) -> TagTemplate:
    given: dict[str, TagOption] = {}
    for option in item.options:
        if option.name not in TAG_OPTIONS:
            raise BuildfileError(f"unknown tag option '{option.name}'", option.span,
                                 hint=did_you_mean(option.name, TAG_OPTIONS)
                                 or "tag options: " + ", ".join(TAG_OPTIONS))
        if option.name in given:
            _duplicate("tag option", option.name, option.span, given[option.name].span)
        given[option.name] = option
        if option.name == "latest":
            if option.value is not None:
                raise BuildfileError("latest is a flag and takes no value", option.span,
                                     hint='write  "{version}" [latest] if version.stable')
        elif not isinstance(option.value, Str):
            raise BuildfileError(f"{option.name} takes a string: [{option.name} = \"...\"]", option.span)
    prefix, suffix = given.get("prefix"), given.get("suffix")
    return TagTemplate(
        item.template,
        item.condition,
        prefix=prefix.value if prefix is not None and isinstance(prefix.value, Str) else None,
        suffix=suffix.value if suffix is not None and isinstance(suffix.value, Str) else None,
        latest="latest" in given,
    )


def _entries(block: Block) -> tuple[Entry, ...]:
    seen: dict[str, Span] = {}
    entries = []
    for item in block.items:
        if not isinstance(item, Assign):
            article = "an" if block.kind[0] in "aeiou" else "a"
            raise BuildfileError(f"{article} {block.kind} block holds KEY = VALUE lines", item.span,
                                 hint=f'for example:  {block.kind} {{ KEY = "value" }}')
        if item.key in seen:
            _duplicate(f"key in {block.kind}", item.key, item.span, seen[item.key])
        seen[item.key] = item.span
        entries.append(Entry(item.key, item.value, item.span))
    return tuple(entries)


def _image(block: Block) -> ImageDecl:
    name = block.label or ""
    _check_name(name, block.label_span or block.span, "image")
    attributes: dict[str, Assign] = {}
    blocks: dict[str, Block] = {}
    for item in block.items:
        if isinstance(item, TagLine):
            raise BuildfileError(
                "a tag template belongs in a tags block", item.span, hint='tags { "latest" }'
            )
        if isinstance(item, Block):
            if item.kind not in BLOCK_ATTRIBUTES:
                hint = did_you_mean(item.kind, BLOCK_ATTRIBUTES)
                if item.kind in SIMPLE_ATTRIBUTES:
                    hint = f"'{item.kind}' takes a value: {item.kind} = ..."
                raise BuildfileError(f"unknown block '{item.kind}' in image '{name}'", item.span, hint=hint)
            if item.label is not None:
                raise BuildfileError(f"'{item.kind}' inside an image takes no name", item.label_span)
            first = blocks.get(item.kind) or attributes.get(item.kind)
            if first is not None:
                _duplicate("attribute", item.kind, item.span, first.span)
            blocks[item.kind] = item
            continue
        if item.key not in SIMPLE_ATTRIBUTES:
            if item.key in BLOCK_ATTRIBUTES:
                raise BuildfileError(
                    f"'{item.key}' is a block: {item.key} {{ KEY = VALUE }}", item.span
                )
            raise BuildfileError(
                f"unknown attribute '{item.key}' in image '{name}'",
                item.span,
                hint=did_you_mean(item.key, ALL_ATTRIBUTES),
            )
        first_decl = attributes.get(item.key) or blocks.get(item.key)
        if first_decl is not None:
            _duplicate("attribute", item.key, item.span, first_decl.span)
        attributes[item.key] = item
    return ImageDecl(
        name=name,
        span=block.label_span or block.span,
        attributes=attributes,
        args=_entries(blocks["args"]) if "args" in blocks else (),
        labels=_entries(blocks["labels"]) if "labels" in blocks else (),
        matrix=_entries(blocks["matrix"]) if "matrix" in blocks else (),
        inline_tags=_scheme(blocks["tags"], None) if "tags" in blocks else None,
        blocks={kind: _entries(blocks[kind]) for kind in OPTION_BLOCKS if kind in blocks},
        block_spans={kind: blocks[kind].span for kind in OPTION_BLOCKS if kind in blocks},
    )
