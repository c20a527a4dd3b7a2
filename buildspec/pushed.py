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

A bake batch (``Bake``) runs one ``docker buildx bake`` for many merged builds. The
registry work of every build of the batch (platform tags, checks, key records) runs beside
the others', up to ``FINISH_THREADS`` at a time, by the thread that ran the bake: the
batch's other nodes then only pick their result up. Done by each node in its own task,
that work would wait for a build slot (``-j``) once per image. Where BuildKit alone
pushes, a build's work starts as soon as the bake's output says its index was pushed,
while the bake still builds the others; otherwise once the bake succeeded.

A build that left its push to BuildKit (``push=``, backends/buildx.py) is looked up in
the registry by the request its work makes first anyway; if the registry lacks it,
``push_again`` pushes it with ``docker push`` as buildx would have.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
# (log, when the build ended as time.monotonic(), the digest BuildKit pushed or None to read
# it from the bake's metadata) -> the node's outcome
Finisher = Callable[[Log, float, str | None], Outcome]


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
    ref = repository.with_digest(index_digest)
    found = client.find_manifest(ref) if push_again is not None else None
    if found is None and push_again is not None:
        push_again()
    index = (found or client.get_manifest(ref)).json()
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

    Where BuildKit alone pushes (BuildxBackend.leaves_push_to_buildkit), a build's registry
    work starts as soon as the bake's output says its index was pushed (``_PushWatch``),
    while the bake still builds the others; the digest in the bake's metadata file decides
    at the end (work done for another digest is done again). With buildx's own push,
    that work waits for the bake: its second push "with docker" would put the index back
    under the first platform tag.
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
                self._run_and_finish(ctx)
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
            return self.finishers[node](ctx.log, self._ended, None)
        for line in prepared.lines:
            ctx.log(line)
        if isinstance(prepared.result, BaseException):
            raise prepared.result
        return prepared.result

    def _early_refs(self, nodes: Sequence[str]) -> dict[str, str]:
        """push ref -> node, for the nodes whose registry work may start during the bake
        (not with `run -j 1`: one thing at a time)."""
        backend = self.call.backend
        requests = [self.call.requests[node] for node in nodes]
        if self.threads == 1 or backend is None or not all(backend.leaves_push_to_buildkit(r) for r in requests):
            return {}
        return {request.push_ref: node for request, node in zip(requests, nodes, strict=True)}

    def _run_and_finish(self, ctx: TaskContext) -> None:
        """Run the bake, and each build's registry work beside the others' (``threads``
        at a time): started during the bake where that is safe, else once it succeeded."""
        nodes = [node for node in self.call.requests if node in self.finishers]
        started: dict[str, tuple[str | None, Future[_Prepared]]] = {}  # node -> (digest, its work)
        guard = threading.Lock()

        def finish(node: str, digest: str | None, built_at: float) -> _Prepared:
            prepared = _Prepared()
            try:
                prepared.result = self.finishers[node](prepared.lines.append, built_at, digest)
            except Exception as exc:  # raised again in the node's own task (Bake.outcome)
                prepared.result = exc
            return prepared

        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="after-bake") as pool:
            def start(node: str, digest: str | None, built_at: float) -> None:
                with guard:
                    if node not in started:
                        started[node] = (digest, pool.submit(finish, node, digest, built_at))

            refs = self._early_refs(nodes)
            watch = _PushWatch(ctx.log_path, refs, lambda node, digest: start(node, digest, time.monotonic()))
            if refs:
                watch.start()
            try:
                self._ok = ctx.run(self.call.argv) == 0
            finally:
                self._ended = time.monotonic()
                watch.stop()
            if not self._ok:
                return  # each build runs alone; work begun early ends before that (the pool waits)
            for node in nodes:
                digest, _ = started.get(node, (None, None))
                if digest is not None:
                    try:
                        agrees = self.digest(node) == digest
                    except BuildspecError:
                        agrees = False  # the metadata's problem is the node's error, below
                    if agrees:
                        continue
                    started[node][1].result()  # done for another digest: done again, after it
                    del started[node]
                    ctx.log(f"{node}: the bake's metadata names another digest than its output did "
                            f"({digest}): its registry work is done again")
                start(node, None, self._ended)
        self._prepared.update({node: future.result() for node, (_, future) in started.items()})


# A line of BuildKit's plain progress once it pushed an image (index) under a name:
# "#66 pushing manifest for 127.0.0.1:5000/app:1.0-linux-amd64@sha256:<hex> 0.1s done"
_PUSHED_LINE = re.compile(rb"^#\d+ pushing manifest for (\S+)@(sha256:[0-9a-f]{64})(?: [0-9.]+s)? done\r?$", re.M)
POLL_SECONDS = 0.05


class _PushWatch:
    """Follows a bake's output in its log file and calls ``pushed(node, digest)`` once for
    each node whose push ref BuildKit reports pushed."""

    def __init__(self, log_path: Path, refs: Mapping[str, str], pushed: Callable[[str, str], None]) -> None:
        self._path, self._refs, self._pushed = log_path, refs, pushed
        self._offset = log_path.stat().st_size if log_path.exists() else 0
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="bake-pushes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """After the bake ended: one last look, then no more calls."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._scan()
        self._scan()

    def _scan(self) -> None:
        try:
            with self._path.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
        except OSError:
            return
        whole = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self._offset += len(whole)
        for match in _PUSHED_LINE.finditer(whole):
            node = self._refs.get(match.group(1).decode(errors="replace"))
            if node is not None and node not in self._seen:
                self._seen.add(node)
                self._pushed(node, match.group(2).decode())


def children_of(results: Mapping[str, object]) -> Mapping[str, ResolvedChild]:
    """The checked images a build's outcome data carries (``children``), by platform."""
    children = results.get("children")
    return children if isinstance(children, dict) else {}
