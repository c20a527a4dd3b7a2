"""docker/metadata-action inputs -> a Buildfile, by the mapping docs/tags.md documents.

Each function below is one row of the table "From metadata-action, entry by entry" in
docs/tags.md, applied mechanically: nothing here looks at the tags a row expects. An
input the table does not cover raises ``Untranslatable`` with the reason, and the peer
test counts that row as "does not translate".

The inputs are parsed the way metadata-action parses them (src/tag.ts, src/flavor.ts):
each entry is one CSV record of ``key=value`` fields (split at the first ``=``), a
field without ``=`` is the ``value``, and the entries are sorted by priority (stable).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

PRIORITY = {"schedule": 1000, "semver": 900, "pep440": 900, "match": 800, "edge": 700, "ref": 600,
            "raw": 200, "sha": 100}
DEFAULT_TAGS = ("type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr")
PLACEHOLDER_REPOSITORY = "registry.example/peer/app"  # for rows with `images: []` (bare tags)


class Untranslatable(Exception):
    """The row uses an input that the documented mapping has no Buildfile line for."""


@dataclass
class Entry:
    type: str
    attrs: dict[str, str]


def _fields(record: str) -> list[tuple[str, str | None]]:
    (fields,) = list(csv.reader([record]))
    out: list[tuple[str, str | None]] = []
    for f in fields:
        key, eq, value = f.partition("=")
        out.append((key.strip().lower(), value.strip()) if eq else (f.strip(), None))
    return out


def parse_entry(record: str) -> Entry:
    attrs: dict[str, str] = {}
    kind = "raw"
    for key, value in _fields(record):
        if value is None:
            attrs["value"] = key
        elif key == "type":
            kind = value
        else:
            attrs[key] = value
    if kind not in PRIORITY:
        raise ValueError(f"unknown type {kind!r}")
    defaults = {
        "schedule": {"pattern": "nightly"},
        "semver": {"value": ""},
        "pep440": {"value": ""},
        "match": {"group": "0", "value": ""},
        "edge": {"branch": ""},
        "ref": {"prefix": "pr-"} if attrs.get("event") == "pr" else {},
        "sha": {"prefix": "sha-", "format": "short"},
    }.get(kind, {})
    attrs = {**defaults, **attrs}
    attrs.setdefault("enable", "true")
    attrs.setdefault("priority", str(PRIORITY[kind]))
    return Entry(kind, attrs)


def sorted_entries(tags: Sequence[str]) -> list[Entry]:
    entries = [parse_entry(t) for t in (tags or DEFAULT_TAGS)]
    return sorted(entries, key=lambda e: -int(e.attrs["priority"]))  # sorted() is stable, as Array.sort


# ------------------------------------------------------------------ handlebars -> template

_MUSTACHE = re.compile(r"\{\{\s*([A-Za-z_]+)((?:\s+[^}]*)?)\}\}")
_ARG = re.compile(r"\s*(?:(\w+)=)?('[^']*'|\"[^\"]*\"|\S+)")
# {{name}} in a value, prefix or suffix (metadata-action's "global expressions") -> the Buildfile
# name; the second element: the name is unset in some runs, so the line needs `if NAME`.
GLOBAL_NAMES = {
    "branch": ("git.branch|sanitize", "git.branch"),
    "tag": ("git.tag|sanitize", "git.tag"),
    "sha": ("git.short_sha", "git.short_sha"),
    "base_ref": ("git.base_ref|sanitize", "git.base_ref"),
    "is_default_branch": ("git.is_default_branch", None),
}
VERSION_NAMES = {"version": "version", "raw": "version.raw", "major": "version.major",
                 "minor": "version.minor", "patch": "version.patch"}
MOMENT = [("YYYY", "%Y"), ("YY", "%y"), ("MM", "%m"), ("DD", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]


def moment_to_strftime(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "[":
            end = fmt.index("]", i)
            out.append(fmt[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        for token, directive in MOMENT:
            if fmt.startswith(token, i):
                out.append(directive)
                i += len(token)
                break
        else:
            if fmt[i].isalpha():
                raise Untranslatable(f"moment format token {fmt[i]!r} has no strftime mapping in docs/tags.md")
            out.append("%%" if fmt[i] == "%" else fmt[i])
            i += 1
    return "".join(out)


def _date(name: str, args: str) -> str:
    positional: list[str] = []
    tz: str | None = None
    for key, value in _ARG.findall(args):
        if not (value[0] == value[-1] and value[0] in "'\""):
            raise Untranslatable(f"{{{{{name} {args.strip()}}}}}: handlebars reads an unquoted argument "
                                 "as a (missing) name, which falls back to moment's default format")
        if key == "tz":
            tz = value[1:-1]
        elif key:
            raise Untranslatable(f"{name}: unknown argument {key}")
        else:
            positional.append(value[1:-1])
    if len(positional) != 1:
        raise Untranslatable(f"{name} without exactly one format")
    filters = ([f"tz={tz}"] if tz else []) + [moment_to_strftime(positional[0])]
    subject = "date" if name == "date" else "git.commit_date"
    return "{" + subject + "|" + "|".join(filters) + "}"


def hb(text: str, names: dict[str, tuple[str, str | None]], guards: list[str]) -> str:
    """A handlebars text -> a Buildfile template; names that can be unset go to ``guards``."""
    out, at = [], 0
    for m in _MUSTACHE.finditer(text):
        out.append(text[at : m.start()].replace("{", "{{").replace("}", "}}"))
        at = m.end()
        name, args = m.group(1), m.group(2)
        if name in ("date", "commit_date") and name in names:
            out.append(_date(name, args))
            if name == "commit_date":
                guards.append("git.commit_date")
        elif name in names and not args.strip():
            target, guard = names[name]
            out.append("{" + target + "}")
            if guard:
                guards.append(guard)
        else:
            raise Untranslatable(f"handlebars expression {m.group(0)!r} has no mapping")
    out.append(text[at:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


GLOBAL = {**GLOBAL_NAMES, "date": ("", None), "commit_date": ("", None)}
SCHEDULE = {"date": ("", None), "commit_date": ("", None)}


def is_raw_statement(pattern: str) -> bool:
    return re.fullmatch(r"\{\{\s*raw\s*\}\}", pattern) is not None


def js_regex(pattern: str) -> str:
    """``/re/flags`` -> ``(?flags)re`` (i, m, s; ``g`` changes nothing for the first match)."""
    m = re.fullmatch(r"/(.+)/([a-z]*)", pattern)
    if m is None:
        return pattern
    flags = "".join(f for f in m.group(2) if f in "ims")
    return (f"(?{flags})" if flags else "") + m.group(1)


def bf_string(text: str) -> str:
    """A Buildfile string literal. A backslash stays as written unless it would start an
    escape (\\n, \\t, \\", \\\\) or end the string, as docs/language.md reads strings:
    so a regex reads as written (``"v(\\d.\\d)"``)."""
    out = []
    for i, char in enumerate(text):
        if char == '"':
            out.append('\\"')
        elif char == "\\" and (i + 1 == len(text) or text[i + 1] in 'nt"\\'):
            out.append("\\\\")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


# ------------------------------------------------------------------ the mapping


@dataclass
class Line:
    template: str
    condition: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    latest_eligible: bool = False  # a line metadata-action's latest=auto counts

    def text(self, latest: bool) -> str:
        options = [*self.options, *(["latest"] if latest else [])]
        line = bf_string(self.template)
        if options:
            line += " [" + ", ".join(options) + "]"
        if self.condition:
            line += " if " + " and ".join(self.condition)
        return line


@dataclass
class Translation:
    variables: list[str] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    scheme: str | None = None  # "semver" | "pep440"
    version: str | None = None


def _enable(entry: Entry) -> list[str] | None:
    """enable=... -> condition parts; None: the entry is off."""
    value = entry.attrs["enable"].strip()
    if value == "true":
        return []
    if value == "false":
        return None
    if re.fullmatch(r"\{\{\s*is_default_branch\s*\}\}", value):
        return ["git.is_default_branch"]
    raise Untranslatable(f"enable={value} has no mapping")


def _affixes(entry: Entry, guards: list[str]) -> list[str]:
    return [f"{key} = {bf_string(hb(entry.attrs[key], GLOBAL, guards))}"
            for key in ("prefix", "suffix") if key in entry.attrs]


def translate_entry(entry: Entry, out: Translation) -> None:
    enable = _enable(entry)
    if enable is None:
        return
    guards: list[str] = []
    options = _affixes(entry, guards)
    kind, a = entry.type, entry.attrs

    def add(template: str, condition: list[str], eligible: bool = False) -> None:
        out.lines.append(Line(template, [*condition, *enable, *dict.fromkeys(guards)], options, eligible))

    if kind == "schedule":
        add(hb(a["pattern"], SCHEDULE, guards), ['git.event == "schedule"'])
    elif kind in ("semver", "pep440"):
        if out.scheme not in (None, kind):
            raise Untranslatable("semver and pep440 entries in one list: a Buildfile has one version_scheme")
        out.scheme = kind
        value = hb(a["value"], GLOBAL, guards) if a["value"] else None
        if out.version is not None and value != out.version:
            raise Untranslatable("entries with different value=: a Buildfile has one version")
        out.version = value
        is_kind = f"version.is_{kind}"
        names = {k: (v, None) for k, v in VERSION_NAMES.items()}
        stable = "{version.raw}" if is_raw_statement(a["pattern"]) else hb(a["pattern"], names, guards)
        pre = "{version.raw}" if is_raw_statement(a["pattern"]) else "{version}"
        add(stable, [is_kind, "version.stable"], eligible=True)
        add(pre, [is_kind, "not version.stable"])
    elif kind == "match":
        name = f"match_{len(out.variables) + 1}"
        subject = bf_string(hb(a["value"], GLOBAL, guards)) if a["value"] else "git.tag"
        out.variables.append(f"{name} = match({subject}, {bf_string(js_regex(a['pattern']))}, {int(a['group'])})")
        add("{" + name + "}", [name], eligible=True)
    elif kind == "edge":
        if a["branch"]:
            add("edge", [f"git.branch == {bf_string(a['branch'])}", "not git.pr"])
        else:
            add("edge", ["git.is_default_branch"])
    elif kind == "ref":
        if a["event"] == "branch":
            add("{git.branch|sanitize}", ["git.branch", "not git.pr"])
        elif a["event"] == "tag":
            add("{git.tag|sanitize}", ['git.ref_type == "tag"'], eligible=True)
        else:
            add("{git.pr}", ["git.pr"])
    elif kind == "raw":
        add(hb(a["value"], GLOBAL, guards), [])
    elif kind == "sha":
        name = "git.sha" if a["format"] == "long" else "git.short_sha"
        add("{" + name + "}", [name])


@dataclass
class Flavor:
    latest: str = "auto"
    prefix: str | None = None
    prefix_onlatest: bool = False
    suffix: str | None = None
    suffix_onlatest: bool = False


def parse_flavor(lines: Sequence[str]) -> Flavor:
    flavor = Flavor()
    for record in lines:
        fields = dict((k, v or "") for k, v in _fields(record))
        onlatest = fields.get("onlatest", "false") == "true"
        if "latest" in fields:
            flavor.latest = fields["latest"]
        if "prefix" in fields:
            flavor.prefix, flavor.prefix_onlatest = fields["prefix"], onlatest
        if "suffix" in fields:
            flavor.suffix, flavor.suffix_onlatest = fields["suffix"], onlatest
    return flavor


def repositories_of(images: Sequence[str]) -> list[str]:
    """The enabled images, lowercased as metadata-action does (``images: []``: a placeholder,
    the row then compares bare tags)."""
    names = [name.lower() for name, _, rest in (i.partition(",") for i in images) if "enable=false" not in rest]
    return names or [PLACEHOLDER_REPOSITORY]


def translate(images: Sequence[str], tags: Sequence[str], flavor_lines: Sequence[str],
              default_branch: str) -> str:
    """The Buildfile for one row of meta.test.ts (the image's context is ``.``)."""
    out = Translation()
    for entry in sorted_entries(tags):
        translate_entry(entry, out)
    flavor = parse_flavor(flavor_lines)
    if flavor.latest not in ("auto", "true", "false"):
        raise Untranslatable(f"latest={flavor.latest}")
    header = [f"default_branch = {bf_string(default_branch)}   # the repository's default branch (GitHub API)"]
    if out.scheme == "pep440":
        header.append("version_scheme = pep440")
    if out.version is not None:
        header.append(f"version = {bf_string(out.version)}")
    header += out.variables
    body = []
    for line in out.lines:
        latest = flavor.latest == "true" or (flavor.latest == "auto" and line.latest_eligible)
        body.append("    " + line.text(latest))
    repositories = repositories_of(images)
    written = bf_string(repositories[0]) if len(repositories) == 1 else \
        "[" + ", ".join(bf_string(r) for r in repositories) + "]"
    image = [f"    repository = {written}", "    tags = meta"]
    guards: list[str] = []
    for key, value in (("prefix", flavor.prefix), ("suffix", flavor.suffix)):
        if value:
            image.append(f"    {key} = {bf_string(hb(value, GLOBAL, guards))}")
    if guards:
        raise Untranslatable("a flavor prefix/suffix that uses a name that can be unset")
    onlatest = {on for value, on in ((flavor.prefix, flavor.prefix_onlatest), (flavor.suffix, flavor.suffix_onlatest))
                if value}
    if len(onlatest) > 1:
        raise Untranslatable("onlatest differs between the flavor's prefix and suffix")
    if onlatest:
        image.append(f"    affix_latest = {'true' if onlatest.pop() else 'false'}")
    return "\n".join([*header, "", "tags meta {", *body, "}", "", "image app {", *image, "}", ""])
