"""Tamper evidence: a digest chain over the log, checked by `chron log verify`.

Event n's link is sha256(link(n-1) || sha256(canonical bytes of event n)); link(0) is the
sha256 of "chronology-log-v1". The canonical bytes (docs/log-format.md) are the originator id
(32 hex digits), the originator version, the topic and the stored state, joined by newlines:
they depend only on the events and their order, never on a store's positions, so a chain
survives `chron log export` / `import` between SQLite and PostgreSQL.

The chain is stored in `chron_chain` next to the log and extended in the same transaction as the
projection's catch-up, which every command runs right after appending. `verify` recomputes it
from the log and names the first event whose link differs; a published checkpoint
(`chron log checkpoint`: event count and head link) proves the log still extends it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from chronology.errors import LogIntegrityError
from chronology.transcoder import uuid_from_text

GENESIS = hashlib.sha256(b"chronology-log-v1").hexdigest()


def canonical_bytes(originator_id: UUID, version: int, topic: str, state: bytes | str) -> bytes:
    """The bytes of one event that the chain covers."""
    if not isinstance(state, bytes):  # a tampered row may come back as text
        state = str(state).encode("utf-8", "surrogateescape")
    return b"\n".join([originator_id.hex.encode(), str(version).encode(), topic.encode(), state])


def next_link(previous: str, originator_id: UUID, version: int, topic: str, state: bytes) -> str:
    digest = hashlib.sha256(canonical_bytes(originator_id, version, topic, state)).digest()
    return hashlib.sha256(bytes.fromhex(previous) + digest).hexdigest()


def links(events: Iterable[Any]) -> Iterator[tuple[Any, int, str]]:
    """(event, its 1-based index, its chain link) for a log read from its start."""
    link = GENESIS
    for index, logged in enumerate(events, 1):
        link = next_link(link, logged.originator_id, logged.version, logged.topic, logged.state)
        yield logged, index, link


@dataclass(frozen=True)
class Checkpoint:
    """How many events the log held, and the chain's link after the last of them."""

    count: int
    head: str

    def __str__(self) -> str:
        return f"{self.count}:{self.head}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        match = re.fullmatch(r"\s*(\d+):([0-9a-f]{64})\s*", text)
        if not match:
            raise LogIntegrityError(f"not a checkpoint: {text.strip()!r} (expected COUNT:64-hex-digest)")
        return cls(int(match[1]), match[2])


class Chain:
    """The stored chain, read and extended inside one projection transaction."""

    def __init__(self, tx: Any) -> None:
        self.tx = tx
        row = tx.one("SELECT idx, digest, position FROM chron_chain ORDER BY idx DESC LIMIT 1")
        self.count, self.head, self.position = (row[0], row[1], row[2]) if row else (0, GENESIS, 0)
        self._rows: list[tuple[int, int, str]] = []

    def extending(self, events: Iterable[Any]) -> Iterator[Any]:
        """Pass `events` through, adding each one (beyond the chain's end) to the chain."""
        for logged in events:
            if logged.position > self.position:
                self._add(logged.position, logged.originator_id, logged.version, logged.topic, logged.state)
            yield logged

    def extending_rows(self, rows: Iterable[tuple]) -> Iterator[tuple]:
        """`extending` for the log's rows as `Archive.log_select` gives them, undecoded (SQLite
        keeps ids as text)."""
        for row in rows:
            position, originator_id, version, topic, state = row
            if position > self.position:
                if not isinstance(originator_id, UUID):
                    originator_id = uuid_from_text(originator_id)
                self._add(
                    position, originator_id, version, topic, bytes(state) if isinstance(state, memoryview) else state
                )
            yield row

    def _add(self, position: int, originator_id: UUID, version: int, topic: str, state: bytes) -> None:
        self.head = next_link(self.head, originator_id, version, topic, state)
        self.count += 1
        self.position = position
        self._rows.append((position, self.count, self.head))

    def flush(self) -> None:
        if self._rows:
            self.tx.executemany("INSERT INTO chron_chain (position, idx, digest) VALUES (?, ?, ?)", self._rows)
            self._rows.clear()


@dataclass
class Verification:
    checked: int
    unchained: int
    checkpoint: Checkpoint


def verify(archive: Any, against: Checkpoint | None = None) -> Verification:
    """Recompute the chain from the log and compare it with the stored one (and a checkpoint).
    Raises LogIntegrityError naming the first position that does not match."""
    from chronology.projection import Projection

    projection = Projection(archive)
    try:
        with projection.state() as state:
            stored = {
                row[0]: (row[1], row[2]) for row in state.tx.rows("SELECT position, idx, digest FROM chron_chain")
            }
    finally:
        projection.close()
    head, count, unchained = GENESIS, 0, 0
    seen_positions = set()
    checkpoint_head = None
    for logged, count, head in links(archive.read_raw()):
        seen_positions.add(logged.position)
        if against is not None and count == against.count:
            checkpoint_head = head
        expected = stored.get(logged.position)
        if expected is None:
            unchained += 1
            continue
        if expected != (count, head):
            raise LogIntegrityError(
                f"log verification failed at position {logged.position} (event {count}): "
                "its bytes, or an event before it, differ from what was chained"
            )
    missing = sorted(set(stored) - seen_positions)
    if missing:
        raise LogIntegrityError(f"log verification failed at position {missing[0]}: a chained event is missing")
    if against is not None:
        if count < against.count:
            raise LogIntegrityError(f"the log holds {count} events, fewer than the checkpoint's {against.count}")
        if checkpoint_head != against.head:
            raise LogIntegrityError(
                f"the log does not extend checkpoint {against}: event {against.count} links to {checkpoint_head}"
            )
    return Verification(checked=count - unchained, unchained=unchained, checkpoint=Checkpoint(count, head))


def checkpoint(archive: Any) -> Checkpoint:
    """The chain's head after catching up: publish it to prove later that nothing changed."""
    from chronology.projection import Projection

    projection = Projection(archive).catch_up()
    try:
        with projection.state() as state:
            row = state.tx.one("SELECT idx, digest FROM chron_chain ORDER BY idx DESC LIMIT 1")
    finally:
        projection.close()
    return Checkpoint(row[0], row[1]) if row else Checkpoint(0, GENESIS)
