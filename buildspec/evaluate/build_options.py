"""The image attributes named after ``docker buildx bake``'s, with bake's value formats:
secrets, ssh, contexts, attest, no_cache, pull, network, hosts, shm_size, ulimits,
annotations, cache_from, cache_to.

Only the *shape* of each value is checked here (file:line:col on a mistake); whether
the image's backend can honour it is support.py's question, once the backend is known.
A secret is kept as a reference (an id and a file path or variable name): its value
is never read here or anywhere else in buildspec.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from buildspec import templates
from buildspec.errors import BuildfileError, Span
from buildspec.evaluate.types import BuildOptions, Pin, Secret
from buildspec.model import Entry, ImageDecl, did_you_mean
from buildspec.syntax import Call, ListValue, Str, Value, Word
from buildspec.templates import Scope

NETWORKS = ("default", "none", "host")
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?[bkmgBKMG]?$")
_ULIMIT = re.compile(r"^([a-z]+)=(-?[0-9]+)(?::(-?[0-9]+))?$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_URL_CONTEXT = re.compile(r"^[a-z][a-z0-9+.-]*://")


def build_options(decl: ImageDecl, scope: Scope, directory: Path) -> BuildOptions:
    attrs = decl.attributes
    spans = {name: attrs[name].value.span for name in attrs}
    spans.update(decl.block_spans)

    def strings(name: str) -> list[tuple[str, Span]]:
        if name not in attrs:
            return []
        value = attrs[name].value
        if not isinstance(value, ListValue):
            raise BuildfileError(f'{name} is a list of strings: {name} = ["..."]', value.span)
        return [(_text(item, scope, name), item.span) for item in value.items]

    def flag(name: str) -> bool:
        if name not in attrs:
            return False
        value = attrs[name].value
        if not isinstance(value, Word) or value.text not in ("true", "false"):
            raise BuildfileError(f"{name} is true or false", value.span)
        return value.text == "true"

    def single(name: str, check: Callable[[str], str | None]) -> str | None:
        if name not in attrs:
            return None
        value = attrs[name].value
        text = _text(value, scope, name)
        problem = check(text)
        if problem:
            raise BuildfileError(f"{name}: {problem}", value.span)
        return text

    blocks = decl.blocks
    return BuildOptions(
        secrets=tuple(_secret(text, span, directory) for text, span in strings("secrets")),
        ssh=tuple(_ssh(text, span, directory) for text, span in strings("ssh")),
        contexts=tuple(_context(e, scope, directory) for e in blocks.get("contexts", ())),
        attest=tuple(_attest(text, span) for text, span in strings("attest")),
        no_cache=flag("no_cache"),
        pull=flag("pull"),
        network=single("network", lambda t: None if t in NETWORKS else
                       f"must be one of {', '.join(NETWORKS)}, not '{t}'"),
        hosts=tuple(_host(e, scope) for e in blocks.get("hosts", ())),
        shm_size=single("shm_size", lambda t: None if _SIZE.match(t) else
                        f"'{t}' is not a size: a number with an optional unit b, k, m or g (\"256m\")"),
        ulimits=tuple(_ulimit(text, span) for text, span in strings("ulimits")),
        annotations=tuple((e.key, _text(e.value, scope, f"annotation {e.key}")) for e in blocks.get("annotations", ())),
        cache_from=tuple(_cache(text, span) for text, span in strings("cache_from")),
        cache_to=tuple(_cache(text, span) for text, span in strings("cache_to")),
        spans=spans,
    )


def _text(value: Value, scope: Scope, what: str) -> str:
    if isinstance(value, Word):
        return value.text
    if not isinstance(value, Str):
        raise BuildfileError(f"{what} is a string", value.span)
    return templates.render_or_error(value, scope, what)


def _fields(text: str, span: Span, what: str, example: str) -> dict[str, str]:
    """``a=1,b=2`` (bake's CSV form) -> {"a": "1", "b": "2"}."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise BuildfileError(f"{what} '{part}' is not KEY=VALUE", span, hint=f'for example "{example}"')
        fields[key.strip()] = value.strip()
    return fields


def _path(text: str, directory: Path) -> Path:
    """A path of the Buildfile: ``~`` is the home folder, a relative one is relative to its folder."""
    return (directory / Path(text).expanduser()).resolve()


def _secret(text: str, span: Span, directory: Path) -> Secret:
    example = "id=npmrc,src=~/.npmrc"
    fields = _fields(text, span, "secret", example)
    unknown = set(fields) - {"id", "src", "source", "env", "type"}
    if unknown:
        raise BuildfileError(f"secret: unknown field '{sorted(unknown)[0]}'", span,
                             hint="a secret is id=ID,src=FILE or id=ID,env=VARIABLE, as in bake")
    kind = fields.get("type")
    src = fields.get("src") or fields.get("source")
    env = fields.get("env")
    if kind not in (None, "file", "env"):
        raise BuildfileError(f"secret type must be file or env, not '{kind}'", span)
    if src and env:
        raise BuildfileError("a secret comes from a file (src=) or a variable (env=), not both", span)
    secret_id = fields.get("id") or env or (Path(src).name if src else None)
    if kind == "env" and not env:
        env = secret_id
    if not secret_id or not _ID.match(secret_id):
        raise BuildfileError(f"secret id '{secret_id or ''}' is missing or not [A-Za-z0-9_.-]", span,
                             hint=f'for example "{example}"')
    if env:
        return Secret(secret_id, "env", env, span)
    if not src:
        raise BuildfileError(f"secret '{secret_id}' names no source", span,
                             hint=f'add src=FILE or env=VARIABLE: "id={secret_id},env=TOKEN"')
    return Secret(secret_id, "src", str(_path(src, directory)), span)


def _ssh(text: str, span: Span, directory: Path) -> str:
    key, sep, paths = text.partition("=")
    if not _ID.match(key):
        raise BuildfileError(f"ssh '{text}' is not default or ID=PATH[,PATH]", span,
                             hint='for example "default" or "github=/run/ssh-agent.sock"')
    if not sep:
        return key
    if not paths:
        raise BuildfileError(f"ssh '{key}=' names no socket or key", span)
    return f"{key}=" + ",".join(str(_path(p, directory)) for p in paths.split(","))


def _context(entry: Entry, scope: Scope, directory: Path) -> tuple[str, Pin | Path | str]:
    value = entry.value
    if isinstance(value, Call):
        if value.name != "image" or len(value.args) != 1 or not isinstance(value.args[0], Word):
            raise BuildfileError("a context is a path, a URL (docker-image://REF) or image(NAME)", value.span,
                                 hint=did_you_mean(value.name, ["image"]))
        return entry.key, Pin(value.args[0].text, value.args[0].span)
    text = _text(value, scope, f"context {entry.key}")
    if _URL_CONTEXT.match(text):
        return entry.key, text
    if text.startswith("target:"):
        raise BuildfileError("bake's target:NAME is written image(NAME) here", value.span,
                             hint=f"{entry.key} = image({text.removeprefix('target:')})")
    path = _path(text, directory)
    if not path.is_dir():
        raise BuildfileError(f"context {entry.key}: '{text}' is not a directory", value.span,
                             hint="a path is relative to the Buildfile's folder")
    return entry.key, path


def _attest(text: str, span: Span) -> str:
    fields = _fields(text, span, "attest", "type=provenance,mode=max")
    kind = fields.get("type")
    if kind == "sbom":
        raise BuildfileError("SBOM attestations need BuildKit's scanner image, which buildspec does not "
                             "support", span, hint='attest = ["type=provenance,mode=max"]')
    if kind != "provenance":
        raise BuildfileError(f"attest type must be provenance, not '{kind or ''}'", span,
                             hint='attest = ["type=provenance,mode=max"]')
    mode = fields.get("mode", "min")
    if mode not in ("min", "max"):
        raise BuildfileError(f"provenance mode is min or max, not '{mode}'", span)
    return text


def _host(entry: Entry, scope: Scope) -> tuple[str, str]:
    if not _HOST.match(entry.key):
        raise BuildfileError(f"'{entry.key}' is not a host name", entry.span)
    address = _text(entry.value, scope, f"host {entry.key}")
    import ipaddress  # only for hosts { } (start-up time)

    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise BuildfileError(f"host {entry.key}: '{address}' is not an IP address", entry.value.span) from None
    return entry.key, address


def _ulimit(text: str, span: Span) -> tuple[str, str]:
    match = _ULIMIT.match(text)
    if not match:
        raise BuildfileError(f"ulimit '{text}' is not NAME=SOFT[:HARD]", span, hint='for example "nofile=1024:2048"')
    name, soft, hard = match.groups()
    return name, f"{soft}:{hard or soft}"


def _cache(text: str, span: Span) -> str:
    fields = _fields(text, span, "cache", "type=registry,ref=REPO:buildcache")
    if "type" not in fields:
        raise BuildfileError(f"cache '{text}' has no type=", span,
                             hint='bake\'s format: "type=registry,ref=REPO:buildcache"')
    return text

