"""A git remote's URL as the ``git.remote_url`` of templates and the source label."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(?P<host>\[[^\]/]+\]|[^:/\[\]@]+):(?P<path>.*)")
_SSH_SCHEMES = {"ssh", "git", "git+ssh", "ssh+git"}


def normalize_remote_url(url: str) -> str | None:
    """A remote URL as a browsable ``https://host/path``, or ``None``.

    ``git@host:a/b.git``, ``ssh://git@host:22/a/b.git``, ``git://host/a/b``
    and ``https://user:token@host/a/b.git`` all become ``https://host/a/b``:
    credentials, a trailing ``.git`` or ``/``, query and fragment are dropped,
    the host is lowercased. An ssh/git port is dropped (it is not the web
    server's); an http(s) port is kept, and ``http://`` stays ``http://`` (a
    plain-http server, such as a local Gitea, has no https twin). Local paths,
    ``file://`` and other schemes give ``None``.
    """
    url = url.strip()
    if not url:
        return None
    port: int | None = None
    if "://" in url:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        host = parts.hostname
        path = parts.path
        if scheme in _SSH_SCHEMES:
            scheme, port = "https", None
        elif scheme not in ("http", "https"):
            return None
    else:
        m = _SCP_LIKE.fullmatch(url)
        # One letter before the colon is a Windows drive (C:/src/repo), as git reads it.
        if m is None or len(m["host"]) == 1:
            return None
        scheme, host, path = "https", m["host"].strip("[]").lower(), m["path"]
    if not host:
        return None
    path = path.strip("/").removesuffix(".git").rstrip("/")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}/{path}" if path else f"{scheme}://{netloc}"


# ------------------------------------------------------------------------- local
