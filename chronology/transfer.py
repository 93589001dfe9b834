"""Moving an archive between stores: `chron log export` and `chron log import` (JSON Lines).

The first line is a header, {"format": "chronology-log", "version": 1}; then one event a line,
in log order: {"index", "position", "originator_id", "originator_version", "topic", "state",
"link"}, where "state" is the event's stored bytes as text (kept exact, so digests survive) and
"link" its digest-chain link (chronology.integrity). Transaction times travel inside the state.
Import checks the whole file (shape, chain, that every event decodes) before writing anything,
and writes only into an empty store. Documented in docs/log-format.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from chronology.errors import LogImportError, StoreError
from chronology.integrity import GENESIS, links, next_link

HEADER = {"format": "chronology-log", "version": 1}
BATCH = 5000


def export_log(archive: Any, out: IO[bytes]) -> int:
    """Write the whole log to `out`; return the number of events."""
    out.write(orjson.dumps(HEADER) + b"\n")
    count = 0
    for logged, count, link in links(archive.read_raw()):
        state = logged.state if isinstance(logged.state, bytes) else str(logged.state).encode()
        out.write(
            orjson.dumps(
                {
                    "index": count,
                    "position": logged.position,
                    "originator_id": str(logged.originator_id),
                    "originator_version": logged.version,
                    "topic": logged.topic,
                    "state": state.decode("utf-8"),
                    "link": link,
                }
            )
            + b"\n"
        )
    return count


def _events(path: Path) -> Iterator[tuple[int, StoredEvent]]:
    """Every event in the file, checked: shape, order and chain."""
    with open(path, "rb") as lines:
        header = lines.readline()
        try:
            if orjson.loads(header) != HEADER:
                raise ValueError
        except ValueError:
            raise LogImportError(f"{path}:1: not a Chronology log export (expected header {HEADER})") from None
        link = GENESIS
        for number, line in enumerate(lines, 2):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                originator_id = UUID(record["originator_id"])
                version = int(record["originator_version"])
                topic = str(record["topic"])
                state = record["state"].encode("utf-8")
                index = int(record["index"])
                given = str(record["link"])
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise LogImportError(f"{path}:{number}: malformed event line ({error})") from None
            link = next_link(link, originator_id, version, topic, state)
            if number - 1 != index or given != link:
                raise LogImportError(f"{path}:{number}: the chain breaks at event {index}: the file was changed or cut")
            yield (
                number,
                StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state),
            )


def import_log(archive: Any, path: Path) -> int:
    """Append every event of an export to an empty store; return the number of events."""
    if archive.max_position():
        raise StoreError(f"store '{archive.store}' is not empty: import only into an empty store")
    count = 0
    for number, stored in _events(path):  # first pass: check everything, write nothing
        try:
            archive.mapper.to_domain_event(stored)
        except Exception as error:
            raise LogImportError(f"{path}:{number}: event does not decode: {error}") from None
        count += 1
    batch: list[StoredEvent] = []
    for _number, stored in _events(path):
        batch.append(stored)
        if len(batch) >= BATCH:
            archive.recorder.insert_events(batch)
            batch = []
    if batch:
        archive.recorder.insert_events(batch)
    return count
