"""Local outputs: ``run --load`` and ``run --output oci:DIR``, the laptop loop without a registry.

Each build writes its image as an OCI layout in its work folder instead of pushing
(``BuildRequest.oci_layout``; dependencies are found there through named contexts,
contexts.image_source). The manifest step is then local too: it assembles the
image's multi-platform index from those layouts, with the same checks as in the
registry (registry/index.py: each platform once, the config's os/architecture
against the platform asked for, attestations carried over), and writes one OCI
layout per image holding every blob, the index and one reference per tag
(``org.opencontainers.image.ref.name``, so ``skopeo inspect oci:DIR/app:1.0.0``
works, and ``io.containerd.image.name``, the full ``REPO:TAG`` that ``docker load``
reads).

* ``--output oci:DIR``: that layout is ``DIR/<image>``. References of earlier runs
  under other tags are kept, as a registry keeps other tags.
* ``--load``: the layout is written to the work folder, packed as an OCI archive and
  given to ``docker load``; with the containerd image store (which this project's
  Docker uses) every platform lands in the store under each tag, so
  ``docker run --platform linux/arm64 REPO:TAG`` works.

Nothing is pushed and no registry is asked (base images in ``FROM`` are still pulled
by the builder as usual). Local outputs always build: no up-to-date skipping applies.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from buildspec import graph as graphs
from buildspec.errors import BuildspecError, UsageError
from buildspec.evaluate import OCI, Image
from buildspec.executor import Outcome, TaskContext
from buildspec.jobs import local_layout, safe_name
from buildspec.platform import Platform
from buildspec.publish import PUSHED, TagMove, TagReport
from buildspec.registry.client import DOCKER_MANIFEST, OCI_MANIFEST, sha256_digest
from buildspec.registry.index import ResolvedChild, attestations_of, index_platform, render_index, select_child

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True)
class LocalOutput:
    kind: str  # "load" or "oci"
    folder: Path | None = None  # for "oci": DIR

    def where(self, image: Image) -> str:
        """Where ``image`` goes, for plan and the logs."""
        if self.kind == "load":
            return "docker image store " + ", ".join(f"{image.repository}:{tag}" for tag in image.tags)
        assert self.folder is not None
        return f"OCI layout {self.folder / image.name} : {', '.join(image.tags)}"


def parse_output(text: str) -> LocalOutput:
    """``--output oci:DIR``."""
    kind, sep, folder = text.partition(":")
    if kind != "oci" or not sep or not folder:
        raise UsageError(f"--output expects oci:DIR, got '{text}'")
    return LocalOutput("oci", Path(folder).resolve())


def local_index_action(image: Image, plan: nx.DiGraph[str], state_dir: Path,
                       output: LocalOutput) -> Callable[[TaskContext], Outcome]:
    annotations = {k: v for k, v in image.labels.items() if k.startswith(OCI)}
    annotations.update(image.build_options.annotations)

    def action(ctx: TaskContext) -> Outcome:
        layouts: list[Path] = []
        children: list[ResolvedChild] = []
        for platform in image.platforms:
            node = graphs.build_node(plan, image.name, platform)
            digest = str(ctx.results_of(node).data["digests"][str(platform)])  # type: ignore[index]
            layout = local_layout(state_dir, image.name, platform)
            children.append(_resolve(layout, platform, digest))
            layouts.append(layout)
        media_type, body = render_index(children, annotations)
        digest = sha256_digest(body)
        if output.kind == "oci":
            assert output.folder is not None
            target = output.folder / image.name
        else:
            target = state_dir / "work" / safe_name(f"load:{image.name}") / "layout"
            shutil.rmtree(target, ignore_errors=True)
        _write_layout(target, layouts, media_type, body, image)
        ctx.log(f"wrote {media_type} {digest} with tags {', '.join(image.tags)} to the OCI layout {target}")
        if output.kind == "load":
            archive = target.parent / "image.tar"
            _pack(target, archive)
            status = ctx.run(["docker", "load", "-i", str(archive)])
            if status != 0:
                return Outcome(False, f"docker load exited with {status}")
        moves = TagReport(tuple(TagMove(image.name, image.repository, tag, digest, PUSHED) for tag in image.tags))
        return Outcome(True, digest, {"digest": digest, "tags": moves,
                                      "manifests": {str(c.platform): c.digest for c in children}})

    return action


def local_tags_action(manifests: Sequence[str]) -> Callable[[TaskContext], Outcome]:
    """Atomic publishing's tag step, locally: each index step already wrote its tags into
    its layout (after every build); this gathers them for the report."""

    def action(ctx: TaskContext) -> Outcome:
        moves = [m for node in manifests for m in ctx.results_of(node).data["tags"].moves]  # type: ignore[attr-defined]
        return Outcome(True, f"{len(moves)} tags written", {"tags": TagReport(tuple(moves))})

    return action


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    try:
        return (layout / "blobs" / algorithm / hexdigest).read_bytes()
    except OSError as e:
        raise BuildspecError(f"the OCI layout {layout} has no blob {digest}: {e.strerror}") from None


def _resolve(layout: Path, platform: Platform, digest: str) -> ResolvedChild:
    """The image a local build wrote for ``platform``, checked as the registry step checks it."""
    where = f"{layout}@{digest} ({platform})"
    document: Any = json.loads(_blob(layout, digest))
    attestations: tuple[Mapping[str, Any], ...] = ()
    if "manifests" in document:  # buildx with attestations: an index of the image and its attestation
        digest = str(select_child(document, platform, where)["digest"])
        attestations = attestations_of(document, digest)
        document = json.loads(_blob(layout, digest))
    config_descriptor = document.get("config") or {}
    config: Any = json.loads(_blob(layout, str(config_descriptor.get("digest"))))
    media_type = document.get("mediaType") or (
        DOCKER_MANIFEST if config_descriptor.get("mediaType") == DOCKER_CONFIG_TYPE else OCI_MANIFEST)
    return ResolvedChild(
        media_type=media_type,
        digest=digest,
        size=len(_blob(layout, digest)),
        platform=index_platform(platform, config, where),
        os_version=config.get("os.version") or None,
        os_features=tuple(str(f) for f in config.get("os.features") or ()),
        attestations=attestations,
    )


def _write_layout(target: Path, sources: list[Path], media_type: str, body: bytes, image: Image) -> None:
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for source in sources:
        for blob in (source / "blobs" / "sha256").iterdir():
            if not (blobs / blob.name).exists():
                _link_or_copy(blob, blobs / blob.name)
    digest = sha256_digest(body)
    (blobs / digest.partition(":")[2]).write_bytes(body)
    (target / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_file = target / "index.json"
    kept: list[dict[str, Any]] = []
    if index_file.is_file():  # an earlier run's other tags stay, as in a registry
        kept = [d for d in json.loads(index_file.read_text()).get("manifests", [])
                if (d.get("annotations") or {}).get(REF_NAME) not in image.tags]
    entries = [{"mediaType": media_type, "digest": digest, "size": len(body),
                "annotations": {CONTAINERD_NAME: f"{normalized(image.repository)}:{tag}", REF_NAME: tag}}
               for tag in image.tags]
    document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": kept + entries}
    temporary = index_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, index_file)  # a reader never sees half an index.json


def normalized(repository: str) -> str:
    """The full name Docker's containerd image store keeps: ``app`` -> ``docker.io/library/app``."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return repository
    return f"docker.io/{repository}" if sep else f"docker.io/library/{repository}"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def _pack(layout: Path, archive: Path) -> None:
    """An OCI archive of ``layout`` (the layout's files at the archive's root)."""
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=path.relative_to(layout).as_posix(), recursive=False)
