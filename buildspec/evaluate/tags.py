"""An image's tags (its scheme rendered, prefix/suffix, version.is_latest) and labels."""

from __future__ import annotations

from collections.abc import Sequence

from buildspec import templates
from buildspec.errors import BuildfileError
from buildspec.evaluate.types import OCI, TagDecision, TagLister
from buildspec.gitcontext import GitContext
from buildspec.model import Buildfile, ImageDecl, TagScheme, TagTemplate, did_you_mean
from buildspec.registry.reference import validate_tag
from buildspec.syntax import BoolOp, Compare, Condition, ListValue, NameRef, Not, Str, Word
from buildspec.templates import Scope, UnsetName
from buildspec.versions import Version, is_latest


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


_Tags = tuple[tuple[str, ...], tuple[TagDecision, ...]]
_MISSING = object()


class TagMemo:
    """The tags of a named scheme, worked out once per set of values it reads.

    Images that share a scheme usually give it the same values (version, git.*): a plan of
    1,000 images rendered the same scheme 1,000 times. A scheme's result depends only on the
    values of the names its templates, conditions and line options refer to (and on the
    image's prefix, suffix and affix_latest), so those are the key. A scheme that calls a
    function, or a value that cannot be a key, is worked out every time; so is any error.
    """

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, ...] | None] = {}
        self.results: dict[tuple[object, ...], _Tags] = {}  # key() -> what the scheme gave

    def key(self, scheme: TagScheme, scope: Scope, affixes: tuple[str, str, bool]) -> tuple[object, ...] | None:
        if scheme.name is None:  # an image's own list or block: used once
            return None
        if scheme.name not in self._names:
            self._names[scheme.name] = _names_read(scheme)
        names = self._names[scheme.name]
        if names is None:
            return None
        key = (scheme.name, affixes, *(scope.get(name, _MISSING) for name in names))
        try:
            hash(key)
        except TypeError:
            return None
        return key


def _names_read(scheme: TagScheme) -> tuple[str, ...] | None:
    """Every name the scheme's lines can read, sorted; None if a condition calls a function."""
    names: set[str] = set()

    def condition(node: Condition) -> bool:
        if isinstance(node, NameRef):
            names.add(node.path)
        elif isinstance(node, Str):
            names.update(templates.names_in(node.text))
        elif isinstance(node, Not):
            return condition(node.operand)
        elif isinstance(node, BoolOp | Compare):
            return condition(node.left) and condition(node.right)
        elif not isinstance(node, Word):  # a Call: what it returns is not a value of the scope
            return False
        return True

    for line in scheme.templates:
        for text in (line.template, line.prefix, line.suffix):
            if text is not None:
                names.update(templates.names_in(text.text))
        if line.condition is not None and not condition(line.condition):
            return None
    return tuple(sorted(names))


def _tags(
    decl: ImageDecl, buildfile: Buildfile, scope: Scope, functions: templates.Functions,
    prefix: str, suffix: str, affix_latest: bool, memo: TagMemo,
) -> _Tags:
    """The image's tags in the order of its scheme's lines, and what each line did
    (``memo``: shared with the other images that give the scheme the same values).

    A line's own ``[prefix = ...]``/``[suffix = ...]`` replaces the image's (metadata-action's
    per-entry prefix/suffix). ``[latest]`` on the line that gives the first tag adds
    ``latest`` after the last one (metadata-action's ``latest=auto``). No tag at all is not
    an error here: images.py decides (``no_tags``).
    """
    scheme = _scheme_of(decl, buildfile)
    key = memo.key(scheme, scope, (prefix, suffix, affix_latest))
    if key is not None and key in memo.results:
        return memo.results[key]
    result = _render_tags(scheme, scope, functions, prefix, suffix, affix_latest)
    if key is not None:
        memo.results[key] = result
    return result


def _render_tags(scheme: TagScheme, scope: Scope, functions: templates.Functions,
                 prefix: str, suffix: str, affix_latest: bool) -> _Tags:
    tags: list[str] = []
    decisions: list[TagDecision] = []
    auto_latest: TagTemplate | None = None
    for item in scheme.templates:
        seen: dict[str, str] = {}
        condition = templates.condition_text(item.condition) if item.condition is not None else None

        def decide(tag: str | None, reason: str, item: TagTemplate = item,
                   seen: dict[str, str] = seen, condition: str | None = condition) -> None:
            decisions.append(TagDecision(item.template.text, condition, dict(seen), tag, reason, _options_text(item)))

        if item.condition is not None and not templates.evaluate(item.condition, scope, functions, seen):
            decide(None, "condition false")
            continue
        try:
            tag = templates.render(item.template, scope, seen)
            own_prefix = templates.render(item.prefix, scope, seen) if item.prefix is not None else None
            own_suffix = templates.render(item.suffix, scope, seen) if item.suffix is not None else None
        except UnsetName as e:
            if item.condition is None:
                raise BuildfileError(
                    f"tag template refers to '{e.name}', which is unset here", e.span,
                    hint="guard the tag with a condition, e.g.  if " + e.name,
                ) from None
            decide(None, f"unset name {e.name}")
            continue
        affix = tag != "latest" or affix_latest
        tag = "".join((
            own_prefix if own_prefix is not None else prefix if affix else "",
            tag,
            own_suffix if own_suffix is not None else suffix if affix else "",
        ))
        problem = validate_tag(tag)
        if problem:
            raise BuildfileError(problem, item.template.span,
                                 hint="the |slug filter makes any text tag-safe")
        if tag in tags:
            decide(None, f"duplicate of {tag}")
            continue
        if not tags and item.latest:
            auto_latest = item
        tags.append(tag)
        decide(tag, "added")
    if auto_latest is not None:
        latest = f"{prefix}latest{suffix}" if affix_latest else "latest"
        problem = validate_tag(latest)
        if problem:
            raise BuildfileError(problem, auto_latest.template.span)
        # Shown by --explain as the condition that added it.
        origin = f"the first tag's line has [latest] ({auto_latest.template.raw})"
        if latest in tags:
            decisions.append(TagDecision("latest", origin, {}, None, f"duplicate of {latest}"))
        else:
            tags.append(latest)
            decisions.append(TagDecision("latest", origin, {}, latest, "added"))
    return tuple(tags), tuple(decisions)


def _options_text(item: TagTemplate) -> str:
    """A line's options as --explain shows them: 'prefix = "pr-", latest'."""
    options = [f"{name} = {value.raw}" for name, value in (("prefix", item.prefix), ("suffix", item.suffix))
               if value is not None]
    if item.latest:
        options.append("latest")
    return ", ".join(options)


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


