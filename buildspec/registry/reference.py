"""Image references: ``registry[:port]/path[:tag][@algorithm:hex]``.

The grammar is the one of the CNCF distribution project (``distribution/reference``),
which Docker, containerd, skopeo and every registry enforce. Checking it here means a
bad tag in a Buildfile is reported before anything is built, not by a registry an
hour later::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path            (at most 255 characters)
    domain     := host [ ":" port ]
    path       := component ( "/" component )*
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    digest     := algorithm ":" hex              (sha256: exactly 64 lowercase hex)

As Docker does, the first part of a name is a registry only when it contains a ``.``
or a ``:`` or is ``localhost``; otherwise the name lives on Docker Hub
(``docker.io``), where a single component gets the ``library/`` prefix.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from buildspec.errors import UsageError

DOCKER_HUB = "docker.io"
# The host that actually serves Docker Hub's registry API.
DOCKER_HUB_API = "registry-1.docker.io"
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(_COMPONENT)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


class InvalidReference(UsageError, ValueError):
    """A string that is not a valid image reference; the message says why."""


@functools.lru_cache(maxsize=4096)  # every image of a release checks the same few tags
def validate_tag(tag: str) -> str | None:
    """The reason ``tag`` is not a valid tag, or None when it is."""
    if not tag:
        return "a tag cannot be empty"
    if len(tag) > 128:
        return f"tag '{tag[:40]}...' is {len(tag)} characters long; at most 128 are allowed"
    if not _TAG_RE.fullmatch(tag):
        return f"tag '{tag}' is not valid: a tag is letters, digits, '_', '.' and '-', and cannot start with '.' or '-'"
    return None


def validate_digest(digest: str) -> str | None:
    """The reason ``digest`` is not a valid content digest, or None when it is."""
    if not _DIGEST_RE.fullmatch(digest):
        return f"digest '{digest}' is not valid: expected algorithm:hex, e.g. sha256:<64 hex>"
    algorithm, hex_ = digest.split(":", 1)
    expected = _HEX_LENGTHS.get(algorithm)
    if expected is not None and (len(hex_) != expected or hex_ != hex_.lower()):
        return f"digest '{digest}' is not valid: {algorithm} needs {expected} lowercase hex digits"
    return None


def _split_domain(name: str) -> tuple[str | None, str]:
    """Split ``name`` into (registry or None, path) the way Docker decides it."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def validate_repository(name: str) -> str | None:
    """The reason ``name`` is not a valid repository name, or None when it is.

    ``name`` may carry a registry (``127.0.0.1:5000/team/app``) or not (``team/app``)
    but no tag or digest.
    """
    if not name:
        return "a repository name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"repository name '{name[:40]}...' is longer than {MAX_NAME_LENGTH} characters"
    domain, path = _split_domain(name)
    if domain is not None and not _DOMAIN_RE.fullmatch(domain):
        return f"registry '{domain}' in '{name}' is not a valid host[:port]"
    if domain is not None and not domain.startswith("[") and any(
            len(label) > 63 for label in domain.rsplit(":", 1)[0].split(".")):
        return f"registry '{domain}' in '{name}' is not a valid host: a DNS label has at most 63 characters"
    if not path:
        return f"repository name '{name}' has no path after the registry"
    for component in path.split("/"):
        if _COMPONENT_RE.fullmatch(component):
            continue
        if component.lower() != component and _COMPONENT_RE.fullmatch(component.lower()):
            return f"repository name '{name}' must be lowercase ('{component}')"
        if not component:
            return f"repository name '{name}' has an empty path component"
        return (
            f"repository name '{name}' is not valid: path component '{component}' may only "
            "contain lowercase letters, digits and single separators ('.', '_', '__', '-')"
            " between them"
        )
    return None


@dataclass(frozen=True)
class Reference:
    """A parsed, normalized image reference.

    ``registry`` is the registry host as written (``docker.io`` for Docker Hub),
    ``repository`` the path within it (``library/busybox``).
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse and normalize ``text``; raise InvalidReference naming what is wrong."""
        rest, at, digest = text.partition("@")
        if at:
            problem = validate_digest(digest)
            if problem:
                raise InvalidReference(f"'{text}': {problem}")
        # A ':' after the last '/' starts the tag; one before it belongs to a port.
        name, tag = rest, None
        colon = rest.rfind(":")
        if colon > rest.rfind("/"):
            name, tag = rest[:colon], rest[colon + 1 :]
            problem = validate_tag(tag)
            if problem:
                raise InvalidReference(f"'{text}': {problem}")
        problem = validate_repository(name)
        if problem:
            raise InvalidReference(f"'{text}': {problem}")
        domain, path = _split_domain(name)
        if domain is None or domain == "index.docker.io":
            domain = DOCKER_HUB
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        return cls(domain, path, tag, digest if at else None)

    @property
    def name(self) -> str:
        """``registry/repository``: the repository this reference lives in."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host[:port] that serves the registry API for ``registry``."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/`` in the API: the digest if any, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        problem = validate_tag(tag)
        if problem:
            raise InvalidReference(problem)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        problem = validate_digest(digest)
        if problem:
            raise InvalidReference(problem)
        return replace(self, tag=None, digest=digest)

    def repository_only(self) -> Reference:
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def as_reference(value: Reference | str) -> Reference:
    """Accept either form wherever a reference is expected."""
    return value if isinstance(value, Reference) else Reference.parse(value)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; ``host`` may carry a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        import ipaddress  # only for an address, not a name (start-up time)

        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
