"""What `run` does in the registry once a build pushed, and the bake batches that share it.

After a build, its node fetches what it pushed, once, and hands it on in its outcome
data, so that no later step asks the registry for it again:

* ``digests``: platform -> the platform image's digest (what the index lists);
* ``fetched``: platform -> its manifest, for the key records (uptodate/records.py);
* ``children``: platform -> the image checked for the index (registry/index.py:
  its config read, its platform compared with the one asked for), for the manifest
  step (publish.stage_index), which then only renders and pushes the index.

A merged build pushed one index under its first platform tag: each platform's image
then gets its own platform tag (``retag_platforms``), so the registry holds what
separate builds would have pushed.

A bake batch (``Bake``) runs one ``docker buildx bake`` for many merged builds. Once it
succeeded, the registry work of every build of the batch (platform tags, checks, key
records) runs at once, up to ``FINISH_THREADS`` at a time, by the thread that ran the
bake: the batch's other nodes then only pick their result up. Done by each node in its
own task, that work would wait for a build slot (``-j``) once per image.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from buildspec.backends.buildx import BAKE_FILE
from buildspec.errors import BuildspecError
from buildspec.evaluate import Image
from buildspec.executor import Outcome, TaskContext
from buildspec.jobs import BakeCall
from buildspec.platform import Platform
from buildspec.registry.client import Manifest, RegistryClient
from buildspec.registry.index import ResolvedChild, resolve_manifest, select_child
from buildspec.registry.reference import as_reference

FINISH_THREADS = 8

Log = Callable[[str], None]
PushAgain = Callable[[], None]
# (log, when the build ended as time.monotonic()) -> the node's outcome
Finisher = Callable[[Log, float], Outcome]


def pushed(log: Log, client: RegistryClient, image: Image, platforms: tuple[Platform, ...], push_ref: str,
           digest: str, push_again: PushAgain | None = None) -> Outcome:
    """The outcome of a build that pushed ``push_ref`` as ``digest``. ``push_again``: for
    a build that left its push to BuildKit (BuildxBackend.push_command), what pushes the
    image when the registry does not have it."""
    log(f"pushed {push_ref}@{digest}")
    if len(platforms) == 1:
        if push_again is not None and not client.manifest_exists(as_reference(image.repository).with_digest(digest)):
            push_again()
        return Outcome(True, digest, {"digests": {str(platforms[0]): digest}})
    digests, fetched, children = retag_platforms(log, client, image, platforms, digest, push_again)
    return Outcome(True, digest, {"digests": digests, "fetched": fetched, "children": children})


def push_again_with(log: Log, run: Callable[[Sequence[str]], int], argv: Sequence[str] | None) -> PushAgain | None:
    """``push_again`` for ``pushed``: run ``argv`` (``docker push REF``), None when there is none."""
    if argv is None:
        return None

    def push() -> None:
        log(f"the registry does not have what the build pushed: BuildKit did not push it itself; "
            f"pushing it as buildx would: {shlex.join(argv)}")
        status = run(argv)
        if status != 0:
            raise BuildspecError(f"{shlex.join(argv)} exited with {status}")

    return push


def retag_platforms(log: Log, client: RegistryClient, image: Image, platforms: tuple[Platform, ...],
                    index_digest: str, push_again: PushAgain | None = None,
                    ) -> tuple[dict[str, str], dict[str, Manifest], dict[str, ResolvedChild]]:
    """A merged build pushed one index: check each platform's image (config and platform)
    and give it its own platform tag. Returns (digests, manifests, checked images), by platform."""
    repository = as_reference(image.repository)
    where = f"{image.repository}@{index_digest}"
    found = client.find_manifest(repository.with_digest(index_digest)) if push_again is not None else None
    if push_again is not None and found is None:
        push_again()
    index = (found or client.get_manifest(repository.with_digest(index_digest))).json()
    digests: dict[str, str] = {}
    fetched: dict[str, Manifest] = {}
    children: dict[str, ResolvedChild] = {}
    for platform in platforms:
        child = client.get_manifest(repository.with_digest(select_child(index, platform, where)["digest"]))
        children[str(platform)] = resolve_manifest(client, repository, platform, child)
        client.put_manifest(image.repository, image.platform_tags[platform], child.media_type, child.body)
        log(f"tagged {image.repository}:{image.platform_tags[platform]} -> {child.digest}")
        digests[str(platform)] = child.digest
        fetched[str(platform)] = child
    return digests, fetched, children


@dataclass
class _Prepared:
    lines: list[str] = field(default_factory=list)
    result: Outcome | BaseException | None = None


class Bake:
    """A batch's ``docker buildx bake``, run once by whichever of its builds starts first.

    The others wait for it (their work is being done) and then pick up their outcome.
    A failed bake leaves each build to run alone (``commands``). ``finishers[node]``
    (set before the run starts) is the node's registry work after the bake pushed.
    """

    def __init__(self, call: BakeCall, threads: int = FINISH_THREADS) -> None:
        self.call = call
        self.threads = threads  # 1 for `run -j 1`: everything one at a time
        self.finishers: dict[str, Finisher] = {}
        self._lock = threading.Lock()
        self._log: Path | None = None  # of the build that ran the bake
        self.run: Callable[[Sequence[str]], int] | None = None  # that build's TaskContext.run
        self._ok = False
        self._ended = 0.0
        self._prepared: dict[str, _Prepared] = {}

    def build(self, ctx: TaskContext) -> bool:
        """Whether the bake succeeded (running it if no build of the batch did yet)."""
        with self._lock:
            if self._log is None:
                self._log = ctx.log_path
                self.run = ctx.run
                self.call.folder.mkdir(parents=True, exist_ok=True)
                (self.call.folder / BAKE_FILE).write_text(json.dumps(self.call.definition, indent=2) + "\n")
                ctx.log(f"{self.call.batch}: one bake for {', '.join(self.call.requests)}")
                self._ok = ctx.run(self.call.argv) == 0
                self._ended = time.monotonic()
                if self._ok:
                    self._finish_all()
            else:
                ctx.log(f"{self.call.batch}: {'built' if self._ok else 'failed'} in one bake with "
                        f"{len(self.call.requests) - 1} other builds; its output is in {self._log}")
            return self._ok

    def digest(self, node: str) -> str:
        return self.call.backend.read_bake_digest(self.call.requests[node], self.call.folder)

    def outcome(self, node: str, ctx: TaskContext) -> Outcome:
        """``node``'s outcome after the bake succeeded: the one prepared beside the others,
        its log lines copied into the node's log (or its error raised); done now when
        there is none (the node is being retried)."""
        with self._lock:
            prepared = self._prepared.pop(node, None)
        if prepared is None or prepared.result is None:
            return self.finishers[node](ctx.log, self._ended)
        for line in prepared.lines:
            ctx.log(line)
        if isinstance(prepared.result, BaseException):
            raise prepared.result
        return prepared.result

    def _finish_all(self) -> None:
        def finish(node: str) -> tuple[str, _Prepared]:
            prepared = _Prepared()
            try:
                prepared.result = self.finishers[node](prepared.lines.append, self._ended)
            except Exception as exc:  # raised again in the node's own task (Bake.outcome)
                prepared.result = exc
            return node, prepared

        nodes = [node for node in self.call.requests if node in self.finishers]
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="after-bake") as pool:
            self._prepared.update(pool.map(finish, nodes))


def children_of(results: Mapping[str, object]) -> Mapping[str, ResolvedChild]:
    """The checked images a build's outcome data carries (``children``), by platform."""
    children = results.get("children")
    return children if isinstance(children, dict) else {}
