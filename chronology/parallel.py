"""Building incident views in a helper process, so that a large fold uses a second core.

Resolving an incident's fields is the largest part of a rebuild. While the projection reads and
folds the log in its own process, `ViewBuilder` sends the incidents each transaction touched
to one helper process (`python -m chronology.helper`), in batches: each incident's claims as the
projection stores them (`encode_claims`: compact, quick to decode, and encoded once for both:
`TableState.encoded_claims`) and the sources they cite (each version of a source once: the
helper keeps what it was sent). The helper returns each view as the projection stores it: sort
date, digest and content JSON. Batches come back in the order they were sent, so the projection
applies them, and counts revisions, exactly as if it had built them itself. When the helper is
behind, the calling process builds the newest waiting batch itself, from the claims it still
holds; at the end of a fold it builds the newest batches, sent or not, while the helper works
through the oldest, so that both finish together. The helper says when it starts on a batch,
and the caller leaves that one to it, waiting for it rather than building it a second time,
unless the helper takes twice as long as a batch takes here (then it is stalled or slow, and
from then on the caller builds whatever the helper has not returned). A reply for a batch
built here is dropped, and a helper with nothing left that is wanted is stopped rather than
waited for. A helper that
fails or exits is warned about and done without: the calling process builds the rest.

The pipes to and from the helper are widened to hold a whole batch where the system allows
(`PIPE_SIZE`): a write into a full pipe waits for the reading thread on the other side, and in
the calling process that thread needs the interpreter lock, which the fold holds for up to a
switch interval at a time; with narrow pipes the helper spent a third of its time waiting so.

The helper is a plain subprocess speaking length-prefixed pickles over its stdin and stdout,
not a `multiprocessing` pool: those start workers by re-running the caller's main script, which
a script without a `__main__` guard does not survive.

Only the materialized projection uses this, and only for large folds (see
`chronology.projection.PARALLEL_FROM`); `CHRON_PARALLEL=0` turns it off.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from chronology.helper import Built, Incident, build_batch, read_frame, write_frame
from chronology.records import Source
from chronology.resolution import BUILT_IN_POLICIES, Policy

BATCH = 200
"""Incidents per batch."""
IN_FLIGHT = 8
"""Batches sent to the helper and not yet returned, at most: the rest wait here, so that
whichever process is free can build them (order is restored when they are handed back)."""
PIPE_SIZE = 1 << 20
"""Bytes each pipe to and from the helper is asked to hold (Linux: `F_SETPIPE_SZ`, up to
/proc/sys/fs/pipe-max-size; a batch is about 800 KB)."""
WAIT_AT_LEAST = 0.05
"""Seconds the caller waits, at the least, for the batch the helper is building before it
builds that batch itself too."""
WAITING_AT_MOST = 16
"""Batches waiting here, at most: beyond that the caller builds one itself before folding on
(each holds its incidents' claims: this bounds the memory they take)."""


class _Batch:
    __slots__ = ("incidents", "sources", "built", "sent")

    def __init__(self, incidents: list[Incident], sources: dict[UUID, Source]) -> None:
        self.incidents, self.sources = incidents, sources
        self.built: list[Built] | None = None
        self.sent = False


def enabled() -> bool:
    """Whether a helper process may be used: a second core, and not turned off."""
    return os.environ.get("CHRON_PARALLEL", "1") != "0" and (os.cpu_count() or 1) > 1


def helper_command(policy: Policy) -> tuple[list[str], dict[str, str]]:
    """The command starting the helper, and its environment. For a built-in policy the helper
    skips the `site` module (`-S`: a few milliseconds sooner ready) and is given this process's
    import path instead, which finds everything the views need; a policy from a plugin may be
    importable only through what `site` sets up (a `.pth` file's import hook), so its helper
    starts as this process did."""
    package_root = str(Path(__file__).resolve().parent.parent)
    if any(policy is built_in for built_in in BUILT_IN_POLICIES.values()):
        path = os.pathsep.join([package_root, *(entry for entry in sys.path if entry)])
        return [sys.executable, "-S", "-m", "chronology.helper"], {**os.environ, "PYTHONPATH": path}
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "chronology.helper"], {**os.environ, "PYTHONPATH": path}


class ViewBuilder:
    """Views built by one helper process and by the caller, handed back in the order their
    incidents were added."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        command, env = helper_command(policy)
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for pipe in (self._process.stdin, self._process.stdout):
            _widen(pipe)
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._writer.start()
        self._reader.start()
        self._batches: deque[_Batch] = deque()
        """Every batch not yet handed back, oldest first."""
        self._sent: deque[_Batch] = deque()
        """The batches with the helper, in the order it returns them."""
        self._incidents: list[Incident] = []
        self._sources: dict[UUID, Source] = {}
        self._helper_has: dict[UUID, Source] = {}
        """The version of each source last sent to the helper, which keeps every one it is sent."""
        self._helper_failed = False
        self._helper_keeps_up = True
        """Whether the batch the helper is building is left to it rather than built here too
        (until it once fails to answer in time: `_wait_for_the_helper`)."""
        self._batch_seconds = 0.0
        """How long building the last batch here took."""
        self._head_started: float | None = None
        """When the helper said it started on the oldest batch it has not returned, if it has."""

    def add(self, incident: Incident, sources: dict[UUID, Source]) -> None:
        """Queue one incident, with the sources its claims cite (as its transaction left them)."""
        if any(self._sources.get(i, s) is not s and self._sources[i] != s for i, s in sources.items()):
            # A batch holds one version of each source: an incident citing a newer one than an
            # incident before it (the source was amended in between) starts the next batch.
            self._close_batch()
        self._incidents.append(incident)
        self._sources.update(sources)
        if len(self._incidents) >= BATCH:
            self._close_batch()

    def _close_batch(self) -> None:
        if self._incidents:
            self._batches.append(_Batch(self._incidents, self._sources))
            self._incidents, self._sources = [], {}
        self._feed()
        if sum(1 for b in self._batches if not b.sent and b.built is None) > WAITING_AT_MOST:
            self._build_one_here()

    def _feed(self) -> None:
        """Send the oldest unbuilt batches to the helper, keeping `IN_FLIGHT` there."""
        if self._helper_failed:
            return
        for batch in self._batches:
            if len(self._sent) >= IN_FLIGHT:
                return
            if not batch.sent and batch.built is None:
                # Batches reach the helper in this order, so it already holds every source
                # version sent before: only new ones (or new versions) go with this batch.
                news = {i: s for i, s in batch.sources.items() if self._helper_has.get(i) is not s}
                self._helper_has.update(news)
                jobs = [
                    (slug, None if claims is None else encoded, links, aliases)
                    for slug, claims, encoded, links, aliases in batch.incidents
                ]
                frame = pickle.dumps((jobs, news, self.policy), protocol=pickle.HIGHEST_PROTOCOL)
                self._outbox.put(frame)
                batch.sent = True  # its claims are kept until it is built, here or there
                self._sent.append(batch)

    def _build_one_here(self, sent_too: bool = False) -> bool:
        """Build the newest batch nobody has taken (`sent_too`: or that the helper has not
        returned yet, but for the one it is building, while it keeps up); False if there is
        none."""
        building = self._sent[0] if self._sent and self._head_started is not None and self._helper_keeps_up else None
        for batch in reversed(self._batches):
            if batch.built is None and (sent_too or not batch.sent) and batch is not building:
                started = time.perf_counter()
                batch.built = build_batch(batch.incidents, batch.sources, self.policy)
                self._batch_seconds = time.perf_counter() - started
                batch.incidents = []
                return True
        return False

    def _wait_for_the_helper(self) -> None:
        """Wait for the batch the helper is building until it has taken twice as long as
        building one here took (`WAIT_AT_LEAST` at the least): a helper that has not returned
        it by then is stalled or slow, and from then on its batches are built here too."""
        sent = len(self._sent)
        due = self._head_started + max(WAIT_AT_LEAST, 2 * self._batch_seconds)
        self._take_replies(block=True, timeout=max(0.0, due - time.perf_counter()))
        if len(self._sent) == sent:
            self._helper_keeps_up = False

    def _take_replies(self, block: bool, timeout: float | None = None) -> None:
        """Take what the helper has said: the batches it returned, and whether it has started
        on the next (`_head_started`). `block`: wait for one batch (for `timeout` seconds)."""
        due = None if timeout is None else time.perf_counter() + timeout
        while self._sent:
            try:
                left = None if due is None else max(0.0, due - time.perf_counter())
                ok, built = self._inbox.get(block=block, timeout=left if block else None)
            except queue.Empty:
                return
            if ok is None:  # it started on the oldest batch it has not returned
                self._head_started = time.perf_counter()
                continue
            if not ok:
                self._do_without_helper(built)
                return
            batch = self._sent.popleft()
            self._head_started = None
            if batch.built is None:  # else built here meanwhile: the same views
                batch.built = built
                batch.incidents = []
            block = False

    def _do_without_helper(self, why: str) -> None:
        """The helper failed: build here whatever was sent to it, and send it nothing more
        (a batch whose building failed there fails here too, with this process's traceback)."""
        warnings.warn(
            f"the view-building helper process failed; this process builds the views instead:\n{why}",
            RuntimeWarning,
            stacklevel=2,
        )
        self._helper_failed = True
        self._head_started = None
        for batch in self._sent:
            batch.sent = False
        self._sent.clear()

    def ready(self, wait: bool = False) -> Iterator[Built]:
        """The views built so far, in the order their jobs were added; with `wait`, all of
        them (building here, newest first, what the helper has not returned, rather than
        waiting for it)."""
        if wait:
            self._close_batch()
        while self._batches:
            self._take_replies(block=False)
            self._feed()
            head = self._batches[0]
            if head.built is None:
                if not wait:
                    return
                if not self._build_one_here(sent_too=True):
                    self._wait_for_the_helper()  # it is building the only batch left
                continue
            self._batches.popleft()
            yield from head.built

    def close(self) -> None:
        """End the helper: let it finish if it still owes batches that are wanted, else stop it
        (what it is still building was built here)."""
        wanted = any(batch.built is None for batch in self._sent)
        self._outbox.put(None)
        if not wanted:
            self._process.kill()
        self._writer.join()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join()

    def _write(self) -> None:
        pipe = self._process.stdin
        try:
            while (frame := self._outbox.get()) is not None:
                write_frame(pipe, frame)
        except (BrokenPipeError, OSError):
            pass  # the helper exited; the reader reports it
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _read(self) -> None:
        with self._process.stdout as pipe:  # closed once the helper has exited
            while (frame := read_frame(pipe)) is not None:
                self._inbox.put(pickle.loads(frame))
        self._inbox.put((False, "it exited before returning every batch"))


def _widen(pipe: IO[bytes]) -> None:
    """Ask for a pipe of `PIPE_SIZE` bytes, where the system has a way to (else leave it)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above the system's limit: the default size still works
