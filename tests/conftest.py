"""Fixtures shared by all tests: the machine's test environment.

``scripts/setup-env.sh`` (run as root) installs and starts Docker + buildx,
buildah, skopeo, qemu and two local registries, pushes a multi-arch busybox
base image, and describes all that in ``/var/lib/buildspec-env/env`` (KEY=VALUE
lines). The ``env`` fixture reads that file; a test that needs the environment
FAILS (never skips) when it is missing or a registry does not answer.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ENV_FILE = Path(os.environ.get("BUILDSPEC_ENV_FILE", "/var/lib/buildspec-env/env"))
SETUP_HINT = "run `scripts/setup-env.sh` as root first (it installs and starts everything)"

_KEYS = {
    "registry": "BUILDSPEC_REGISTRY",
    "auth_registry": "BUILDSPEC_AUTH_REGISTRY",
    "auth_user": "BUILDSPEC_AUTH_USER",
    "auth_ca": "BUILDSPEC_AUTH_CA",
    "base_image": "BUILDSPEC_BASE_IMAGE",
}
_PASSWORD_FILE_KEY = "BUILDSPEC_AUTH_PASSWORD_FILE"


@dataclass(frozen=True)
class Env(Mapping[str, str]):
    """The test environment that ``scripts/setup-env.sh`` set up.

    Attributes for typed use (``env.registry``); it is also a read-only mapping
    of the raw ``BUILDSPEC_*`` lines of the env file (``env["BUILDSPEC_REGISTRY"]``).
    """

    registry: str  # plain HTTP registry, "127.0.0.1:5000"
    auth_registry: str  # TLS + basic auth registry, "127.0.0.1:5001"
    auth_user: str
    auth_password: str
    auth_ca: str  # path of the CA certificate that signed the auth registry's cert
    base_image: str  # multi-arch busybox: linux/amd64, linux/arm64, linux/arm/v7
    raw: tuple[tuple[str, str], ...] = ()

    def __getitem__(self, key: str) -> str:
        for k, v in self.raw:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and ``#`` comments are ignored."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def load_env(path: Path = ENV_FILE) -> Env:
    """Read the env file; ``pytest.fail`` with a hint when it is missing or incomplete."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        error = f"test environment not set up: cannot read {path} ({exc.strerror}); {SETUP_HINT}"
    else:
        error = ""
    if error:  # (failing outside `except` keeps the report to this one line)
        pytest.fail(error)
    values = parse_env_file(text)
    missing = [k for k in [*_KEYS.values(), _PASSWORD_FILE_KEY] if not values.get(k)]
    if missing:
        pytest.fail(f"{path} lacks {', '.join(missing)}; {SETUP_HINT}")
    password_file = Path(values[_PASSWORD_FILE_KEY])
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        password = ""
        error = f"cannot read the auth registry password {password_file} ({exc.strerror}); {SETUP_HINT}"
    if error:
        pytest.fail(error)
    return Env(
        **{field: values[key] for field, key in _KEYS.items()},
        auth_password=password,
        raw=tuple(values.items()),
    )


def check_registries(env: Env) -> None:
    """``pytest.fail`` unless both registries answer ``GET /v2/`` as expected."""
    checks = [
        (f"http://{env.registry}/v2/", 200, {}),
        (f"https://{env.auth_registry}/v2/", 401, {"verify": env.auth_ca}),
    ]
    for url, expected, kwargs in checks:
        try:
            status = requests.get(url, timeout=5, **kwargs).status_code
        except requests.RequestException as exc:
            error = f"registry {url} does not answer ({type(exc).__name__}: {exc}); {SETUP_HINT}"
        else:
            error = "" if status == expected else f"registry {url} answered HTTP {status}, not {expected}; {SETUP_HINT}"
        if error:
            pytest.fail(error)


@pytest.fixture(scope="session")
def env() -> Env:
    """The environment of ``/var/lib/buildspec-env/env``, with both registries answering."""
    loaded = load_env()
    check_registries(loaded)
    return loaded


@pytest.fixture(scope="session")
def registry(env: Env) -> str:
    """Address of the plain HTTP registry, ``127.0.0.1:5000``."""
    return env.registry


def _slug(name: str) -> str:
    """A test name as a valid repository path component (lowercase, [a-z0-9-])."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "test"


@pytest.fixture
def unique_repo(registry: str, request: pytest.FixtureRequest) -> str:
    """A repository no other test (or run) uses: ``{registry}/t/{test-name}-{random}``."""
    return f"{registry}/t/{_slug(request.node.name)}-{uuid.uuid4().hex[:12]}"


def need_tools(*names: str) -> None:
    """Fail (never skip) the calling test unless every binary in ``names`` is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.fail(f"not on PATH: {', '.join(missing)}; {SETUP_HINT}")


@pytest.fixture
def require_tools() -> Callable[..., None]:
    """``require_tools("docker", "skopeo")``: :func:`need_tools` as a fixture."""
    return need_tools
