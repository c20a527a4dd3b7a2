"""An independent registry reader for tests, built on ``skopeo``.

Tests check what buildspec pushed through a second client that shares no code
with it: this module never imports the ``buildspec`` package. Every call runs
``skopeo`` (``--tls-verify=false``: the test registries are on loopback) and
raises :class:`SkopeoError` with skopeo's message when it fails.

References are ``host:port/repo:tag`` or ``host:port/repo@sha256:...``.
``creds="user:password"`` is passed to skopeo for the auth registry.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
UNKNOWN_PLATFORM = "unknown/unknown"
TIMEOUT = 300


class SkopeoError(RuntimeError):
    """skopeo exited non-zero (message: its argv and stderr)."""


def skopeo(*args: str, creds: str | None = None, timeout: float = TIMEOUT) -> bytes:
    """Run ``skopeo ARGS`` and return its stdout. ``creds`` goes after the subcommand."""
    argv = ["skopeo", *args]
    if creds is not None:
        # Options follow the subcommand: skopeo inspect --creds U:P ...
        flag = "--src-creds" if args and args[0] == "copy" else "--creds"
        argv[2:2] = [flag, creds]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        shown = [a if a != creds else "***" for a in argv]
        raise SkopeoError(f"{' '.join(shown)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def repository_of(ref: str) -> str:
    """``host:port/repo`` of a reference with a tag and/or a digest."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def is_index(manifest: dict[str, Any]) -> bool:
    return manifest.get("mediaType") in INDEX_TYPES or ("manifests" in manifest and "layers" not in manifest)


def platform_string(platform: dict[str, Any]) -> str:
    """``os/architecture[/variant]`` of an index entry's platform object."""
    parts = [platform.get("os", ""), platform.get("architecture", "")]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(parts)


def raw_manifest(ref: str, *, creds: str | None = None) -> dict[str, Any]:
    """The manifest (image manifest or index) exactly as the registry serves it."""
    out = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}", creds=creds)
    result: dict[str, Any] = json.loads(out)
    return result


def image_config(ref: str, *, creds: str | None = None) -> dict[str, Any]:
    """The image config blob of a single-platform image (os, architecture, config, rootfs...)."""
    out = skopeo("inspect", "--tls-verify=false", "--config", "--raw", f"docker://{ref}", creds=creds)
    result: dict[str, Any] = json.loads(out)
    return result


def index_platforms(ref: str, *, creds: str | None = None) -> list[str]:
    """Sorted ``os/arch[/variant]`` of an index's images, without attestations (unknown/unknown).

    For a single image manifest: its one platform, read from the config blob.
    """
    manifest = raw_manifest(ref, creds=creds)
    if not is_index(manifest):
        config = image_config(ref, creds=creds)
        return [platform_string(config)]
    platforms = (platform_string(m.get("platform", {})) for m in manifest["manifests"])
    return sorted(p for p in platforms if p != UNKNOWN_PLATFORM)


def platform_ref(ref: str, platform: str, *, creds: str | None = None) -> str:
    """``repo@digest`` of the image for ``platform`` (e.g. ``linux/arm64``) in index ``ref``."""
    manifest = raw_manifest(ref, creds=creds)
    if not is_index(manifest):
        raise ValueError(f"{ref} is a single image manifest, not an index")
    digests = [m["digest"] for m in manifest["manifests"] if platform_string(m.get("platform", {})) == platform]
    if len(digests) != 1:
        raise LookupError(f"{ref}: {len(digests)} images for {platform} in the index")
    return f"{repository_of(ref)}@{digests[0]}"


def _single_image(ref: str, platform: str | None, creds: str | None) -> tuple[str, dict[str, Any]]:
    manifest = raw_manifest(ref, creds=creds)
    if is_index(manifest):
        if platform is None:
            raise ValueError(f"{ref} is an index: pass platform= or a single-platform reference")
        ref = platform_ref(ref, platform, creds=creds)
        manifest = raw_manifest(ref, creds=creds)
    return ref, manifest


def layers(ref: str, *, platform: str | None = None, creds: str | None = None) -> list[str]:
    """Layer digests (bottom first) of a single-platform image (or ``platform`` of an index)."""
    _, manifest = _single_image(ref, platform, creds)
    return [layer["digest"] for layer in manifest["layers"]]


def tags(repo: str, *, creds: str | None = None) -> list[str]:
    """Sorted tags of ``host:port/repo`` (skopeo fails on a repository that does not exist)."""
    out = skopeo("list-tags", "--tls-verify=false", f"docker://{repo}", creds=creds)
    return sorted(json.loads(out).get("Tags") or [])


def _norm(path: str) -> str:
    """A path inside the image as ``a/b/c`` (no leading slash, no ``.``/``..``)."""
    return posixpath.normpath("/" + path).lstrip("/")


class _RootFS:
    """The merged view of image layers: path -> (layer tar, member); whiteouts applied."""

    def __init__(self, layer_files: list[Path]) -> None:
        self.tars = [tarfile.open(f, mode="r:*") for f in layer_files]  # noqa: SIM115
        self.entries: dict[str, tuple[tarfile.TarFile, tarfile.TarInfo]] = {}
        for tar in self.tars:
            members = tar.getmembers()
            # Whiteouts hide lower layers only: apply them before this layer's files.
            for member in members:
                name = _norm(member.name)
                parent, base = posixpath.split(name)
                if base == ".wh..wh..opq":
                    self._remove_below(parent, keep_dir=True)
                elif base.startswith(".wh."):
                    self._remove_below(posixpath.join(parent, base[len(".wh.") :]))
            for member in members:
                name = _norm(member.name)
                if name and not posixpath.basename(name).startswith(".wh."):
                    self.entries[name] = (tar, member)

    def _remove_below(self, path: str, keep_dir: bool = False) -> None:
        prefix = f"{path}/" if path else ""
        for name in list(self.entries):
            if name.startswith(prefix) or (name == path and not keep_dir):
                del self.entries[name]

    def close(self) -> None:
        for tar in self.tars:
            tar.close()

    def resolve(self, path: str, depth: int = 0) -> tuple[tarfile.TarFile, tarfile.TarInfo]:
        """The entry of ``path``, following symlinks in every component."""
        if depth > 40:
            raise OSError(f"too many levels of symbolic links: /{path}")
        parts = _norm(path).split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            entry = self.entries.get(prefix)
            if entry is None:
                raise FileNotFoundError(f"/{path} is not in the image (no /{prefix})")
            member = entry[1]
            if member.issym():
                target = member.linkname
                if not target.startswith("/"):
                    target = posixpath.join(posixpath.dirname(prefix), target)
                rest = "/".join(parts[i:])
                return self.resolve(posixpath.join(target, rest) if rest else target, depth + 1)
        return entry

    def read(self, path: str) -> bytes:
        tar, member = self.resolve(path)
        if member.isdir():
            raise IsADirectoryError(f"/{_norm(path)} is a directory in the image")
        handle = tar.extractfile(member)  # also follows a hard link within its layer
        if handle is None:
            raise OSError(f"/{_norm(path)} is not a regular file in the image")
        with handle:
            return handle.read()


def read_file(ref: str, path_in_image: str, *, platform: str | None = None, creds: str | None = None) -> bytes:
    """Contents of ``path_in_image`` in a single-platform image (or ``platform`` of an index).

    The image is copied with ``skopeo copy`` to a ``dir:`` folder and its layer
    tars are merged as a container runtime would (whiteouts, symlinks).
    """
    ref, _ = _single_image(ref, platform, creds)
    with tempfile.TemporaryDirectory(prefix="oci-reader-") as tmp:
        dest = Path(tmp) / "image"
        skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}", creds=creds)
        manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
        files = [dest / layer["digest"].split(":", 1)[1] for layer in manifest["layers"]]
        rootfs = _RootFS(files)
        try:
            return rootfs.read(path_in_image)
        finally:
            rootfs.close()


def tree(ref: str, *, platform: str | None = None, creds: str | None = None) -> dict[str, tuple[str, str, int]]:
    """Every path of the merged image: ``path -> (kind, link target, size)``, kind one of
    ``file``, ``dir``, ``symlink``, ``hardlink``, ``other``; and whether any layer,
    decompressed, holds given bytes is :func:`layers_contain`."""
    ref, _ = _single_image(ref, platform, creds)
    with tempfile.TemporaryDirectory(prefix="oci-reader-") as tmp:
        dest = Path(tmp) / "image"
        skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}", creds=creds)
        manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
        rootfs = _RootFS([dest / layer["digest"].split(":", 1)[1] for layer in manifest["layers"]])
        try:
            found = {}
            for name, (_, member) in rootfs.entries.items():
                kind = ("file" if member.isreg() else "dir" if member.isdir() else "symlink" if member.issym()
                        else "hardlink" if member.islnk() else "other")
                found[name] = (kind, member.linkname, member.size)
            return found
        finally:
            rootfs.close()


def layers_contain(ref: str, needle: bytes, *, platform: str | None = None, creds: str | None = None) -> bool:
    """Whether any layer of the image, decompressed, contains ``needle`` (a leak check)."""
    ref, _ = _single_image(ref, platform, creds)
    with tempfile.TemporaryDirectory(prefix="oci-reader-") as tmp:
        dest = Path(tmp) / "image"
        skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}", creds=creds)
        manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
        for layer in manifest["layers"]:
            with tarfile.open(dest / layer["digest"].split(":", 1)[1], mode="r:*") as tar:
                for member in tar:
                    handle = tar.extractfile(member) if member.isreg() else None
                    if handle is not None and needle in handle.read():
                        return True
        return False
