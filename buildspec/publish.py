"""Publishing a release: every index by digest first, then the tags, all or nothing
as far as registries allow.

`run` calls this module from two kinds of nodes:

* ``manifest:X`` calls ``stage_index``: assemble X's index from its per-platform
  images in the first repository, copy those images to X's other repositories
  (``registry/blobs.py``), and push the index *by digest* to every repository.
  A digest is no tag: a failed run leaves at most unreferenced manifests.
* ``tags`` (atomic publishing: it follows every manifest) calls ``move_tags`` for
  all the staged indexes at once; with ``--publish eager`` each manifest node moves
  its own image's tags right after staging.

``move_tags`` asks first (HEAD) and leaves alone a tag that already points at the
index (a rerun, or a ``--manifests-only`` after a partial run, pushes only what is
missing); a failing tag push is retried (beyond the client's own retries of 5xx
and resets), and if it still fails no further tag is moved: the report then names
every tag that moved, the one that failed and those not pushed, and says what to
rerun. Since an index is deterministic (same images, same annotations, same
bytes), ``run --manifests-only`` rebuilds the same index and completes the tags.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from buildspec import graph as graphs
from buildspec.errors import RegistryError
from buildspec.executor import RunResult, Status
from buildspec.registry.blobs import copy_image
from buildspec.registry.client import RegistryClient, sha256_digest
from buildspec.registry.index import IndexEntry, ResolvedChild, render_index, resolve_entry
from buildspec.registry.reference import as_reference, validate_tag
from buildspec.reporting import ImageSummary

if TYPE_CHECKING:
    import networkx as nx

TAG_ATTEMPTS = 3
TAG_QUESTIONS = 8  # where the tags point now: asked this many at a time
RETRY_PAUSE = 1.0  # seconds, doubled after each failed attempt

PUSHED, UNCHANGED, FAILED, NOT_PUSHED = "pushed", "unchanged", "failed", "not pushed"
MOVED = (PUSHED, UNCHANGED)  # the tag points at the index now

Log = Callable[[str], None]


@dataclass(frozen=True)
class StagedIndex:
    """An index in every repository of its image, by digest, with no tag moved yet."""

    image: str
    repositories: tuple[str, ...]  # the first is where the builds pushed
    tags: tuple[str, ...]
    digest: str
    media_type: str
    body: bytes = field(repr=False)
    manifests: tuple[tuple[str, str], ...]  # (platform, digest), in the image's order


@dataclass(frozen=True)
class TagMove:
    image: str
    repository: str
    tag: str
    digest: str
    state: str  # PUSHED, UNCHANGED, FAILED or NOT_PUSHED
    error: str = ""

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class TagReport:
    moves: tuple[TagMove, ...]

    @property
    def complete(self) -> bool:
        return all(m.state in MOVED for m in self.moves)

    def of(self, image: str) -> tuple[TagMove, ...]:
        return tuple(m for m in self.moves if m.image == image)

    def summary(self) -> str:
        """One line: ``6 tags pushed, 2 already there`` or what failed."""
        counts = {state: sum(1 for m in self.moves if m.state == state) for state in (PUSHED, UNCHANGED)}
        text = f"{counts[PUSHED]} tags pushed, {counts[UNCHANGED]} already there"
        failed = [m for m in self.moves if m.state == FAILED]
        if failed:
            pending = sum(1 for m in self.moves if m.state == NOT_PUSHED)
            text = f"tag {failed[0].ref} failed: {failed[0].error}; {text}, {pending} not pushed"
        return text


def stage_index(client: RegistryClient, image: str, repositories: Sequence[str], entries: Sequence[IndexEntry],
                tags: Sequence[str], annotations: Mapping[str, str], log: Log,
                known: Mapping[IndexEntry, ResolvedChild] | None = None) -> StagedIndex:
    """Assemble the index in the first repository and push it by digest everywhere.
    ``known``: entries already fetched and checked in the first repository (by the
    build that pushed them, pushed.py); the others are fetched and checked here."""
    first = as_reference(repositories[0]).repository_only()
    for tag in tags:
        problem = validate_tag(tag)
        if problem:
            raise RegistryError(f"{first.name}: {problem}")
    known = known or {}
    children = [known.get(entry) or resolve_entry(client, first, entry) for entry in entries]
    media_type, body = render_index(children, annotations)
    digest = sha256_digest(body)
    for repository in repositories[1:]:
        for child in children:
            copy_image(client, first.name, repository, child.digest, log)
    for repository in repositories:
        # put_manifest checks the registry's digest against these bytes.
        client.put_manifest(repository, digest, media_type, body)
        log(f"pushed {repository}@{digest} ({media_type}), no tag yet")
    return StagedIndex(image, tuple(repositories), tuple(tags), digest, media_type, body,
                       tuple((str(child.platform), child.digest) for child in children))


def move_tags(client: RegistryClient, staged: Sequence[StagedIndex], log: Log, *,
              cancelled: threading.Event | None = None, attempts: int = TAG_ATTEMPTS,
              pause: float = RETRY_PAUSE) -> TagReport:
    """Point every tag of every staged index at it, in every repository.

    After a tag that still fails after ``attempts``, or once ``cancelled`` is set,
    no further tag is pushed: they are reported NOT_PUSHED. Where each tag points now
    is asked first for all of them at once (reads move nothing); the pushes go one
    after the other, in order.
    """
    planned = [TagMove(index.image, repository, tag, index.digest, NOT_PUSHED)
               for index in staged for repository in index.repositories for tag in index.tags]
    indexes = [index for index in staged for _ in index.repositories for _ in index.tags]
    stopped = cancelled is not None and cancelled.is_set()
    current = {} if stopped else _where_tags_point(client, planned)
    moves: list[TagMove] = []
    stop = False
    for move, index in zip(planned, indexes, strict=True):
        if not stop and not (cancelled is not None and cancelled.is_set()):
            if current.get(move.ref) == index.digest:
                log(f"{move.ref} already points at {index.digest}")
                move = dataclasses.replace(move, state=UNCHANGED)
            else:
                move = _move(client, move, index, log, attempts, pause, asked=move.ref in current)
            stop = move.state == FAILED
        moves.append(move)
    return TagReport(tuple(moves))


def _where_tags_point(client: RegistryClient, moves: Sequence[TagMove]) -> dict[str, str | None]:
    """ref -> the digest it points at (None: no such tag), for the refs the registry
    answered about; a question that failed is left out (``_move`` asks again)."""

    def ask(move: TagMove) -> tuple[str, str | None] | None:
        try:
            return move.ref, client.manifest_digest(as_reference(move.ref))
        except RegistryError:
            return None

    with ThreadPoolExecutor(max_workers=TAG_QUESTIONS, thread_name_prefix="tags") as pool:
        return dict(answer for answer in pool.map(ask, moves) if answer is not None)


def _move(client: RegistryClient, move: TagMove, index: StagedIndex, log: Log, attempts: int,
          pause: float, asked: bool = False) -> TagMove:
    """``asked``: where the tag points was just asked (and it is not the index)."""
    ref = as_reference(move.ref)
    error = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause * 2 ** (attempt - 1))
        try:
            if not (asked and attempt == 0) and client.manifest_digest(ref) == index.digest:
                log(f"{move.ref} already points at {index.digest}")
                return dataclasses.replace(move, state=UNCHANGED)
            client.put_manifest(ref, move.tag, index.media_type, index.body)
            log(f"pushed {move.ref} -> {index.digest}")
            return dataclasses.replace(move, state=PUSHED)
        except RegistryError as e:
            error = str(e)
            log(f"{move.ref}: attempt {attempt + 1} of {attempts} failed: {error}")
    return dataclasses.replace(move, state=FAILED, error=error)


def rerun_hint(images: Sequence[str]) -> str:
    return (f"buildspec run --manifests-only {' '.join(images)}  "
            "(with the same -f, --set and --publish options: the indexes are in the registries, "
            "and tags already at them are skipped)")


def report_lines(report: TagReport, images: Sequence[str]) -> list[str]:
    """What the end of a run says about tags when not every one moved."""
    if report.complete:
        return []
    lines = ["", "TAGS PARTLY MOVED: the release is incomplete"]
    for state in (PUSHED, UNCHANGED, FAILED, NOT_PUSHED):
        refs = [m for m in report.moves if m.state == state]
        for move in refs:
            detail = f": {move.error}" if move.error else ""
            lines.append(f"  {state:<11} {move.ref} -> {move.digest}{detail}")
    lines.append(f"  rerun: {rerun_hint(images)}")
    return lines


def report_json(report: TagReport | None, images: Sequence[str]) -> dict[str, object]:
    """The ``publish`` section of ``--metadata-file``."""
    moves = report.moves if report is not None else ()
    complete = report is not None and report.complete
    return {
        "complete": complete,
        "tags": [
            {"image": m.image, "repository": m.repository, "tag": m.tag, "digest": m.digest, "state": m.state,
             **({"error": m.error} if m.error else {})}
            for m in moves
        ],
        "rerun": None if complete or not any(m.state in MOVED for m in moves) else rerun_hint(images),
    }


def tag_report(plan: nx.DiGraph[str], run: RunResult) -> TagReport | None:
    """Every tag move of the run (None if no tag step ran)."""
    nodes = [graphs.TAGS_NODE] if graphs.TAGS_NODE in plan else [graphs.manifest_id(i) for i in graphs.images_in(plan)]
    reports = [r.data["tags"] for n in nodes if (r := run.results.get(n)) is not None and "tags" in r.data]
    if not reports:
        return None
    return TagReport(tuple(m for report in reports for m in report.moves))  # type: ignore[attr-defined]


def with_tags(summary: ImageSummary, report: TagReport | None, run: RunResult) -> ImageSummary:
    """The summary of an image with the tags that point at its index in every
    repository (not those the index step would have pushed), and its status."""
    moves = report.of(summary.name) if report is not None else ()
    moved = [m for m in moves if m.state in MOVED]
    tags = tuple(t for t in dict.fromkeys(m.tag for m in moves)
                 if all(m.state in MOVED for m in moves if m.tag == t))
    status = summary.status
    if summary.status == Status.SUCCEEDED.value and summary.index_digest and len(moved) < len(moves or [None]):
        tags_result = run.results.get(graphs.TAGS_NODE)
        status = tags_result.status.value if tags_result is not None else Status.FAILED.value
    build = summary.build
    if build == "up to date" and any(m.state == PUSHED for m in moves):
        build = "retagged"  # nothing built, but a tag moved (the tag step knows, not the manifest)
    return dataclasses.replace(summary, tags=tags, status=status, build=build,
                               repositories=tuple(dict.fromkeys(m.repository for m in moves)) or
                               summary.repositories)


def print_published(report: TagReport | None) -> None:
    """Every ``repository:tag@digest`` that points at its index now, one per line, on
    stdout, for scripts (`... | xargs`)."""
    for move in report.moves if report is not None else ():
        if move.state in MOVED:
            print(f"{move.ref}@{move.digest}")
