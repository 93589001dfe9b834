"""Moving an archive between stores: `chron log export` and `chron log import` (JSON Lines).

The first line is a header, {"format": "chronology-log", "version": 2}; then one event a line,
in log order: {"index", "position", "originator_id", "originator_version", "topic", "state",
"link"}, where "state" is the event's stored bytes as text (kept exact, so digests survive) and
"link" its digest-chain link (chronology.integrity); last, an end line {"end": {"events",
"link"}} that says how many events came and the chain's head, so that a file cut short at a
line boundary is refused rather than imported as a shorter archive. Transaction times travel
inside the state.

Import checks the whole file (shape, chain, each originator's versions running 1, 2, 3, ...,
that every event decodes, the end line) before writing anything, writes only into an empty
store, and writes every event in one database transaction: an import that fails or is killed
leaves the store empty. Version 1 files (no end line) still import. Documented in
docs/log-format.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from chronology.errors import LogImportError
from chronology.integrity import GENESIS, links, next_link

FORMAT = "chronology-log"
VERSION = 2
"""2 added the end line; version 1 files (without one) are still read."""
HEADER = {"format": FORMAT, "version": VERSION}
BATCH = 5000


def export_log(archive: Any, out: IO[bytes]) -> int:
    """Write the whole log to `out`, ending with the end line; return the number of events."""
    out.write(orjson.dumps(HEADER) + b"\n")
    count, head = 0, GENESIS
    for logged, count, head in links(archive.read_raw()):
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
                    "link": head,
                }
            )
            + b"\n"
        )
    out.write(orjson.dumps({"end": {"events": count, "link": head}}) + b"\n")
    return count


def _header_version(path: Path, line: bytes) -> int:
    try:
        header = orjson.loads(line)
        if header.get("format") == FORMAT and header.get("version") in (1, VERSION) and len(header) == 2:
            return header["version"]
    except (ValueError, AttributeError):
        pass
    raise LogImportError(f"{path}:1: not a Chronology log export (expected header {HEADER})")


def _events(path: Path) -> Iterator[tuple[int, StoredEvent]]:
    """Every event in the file, checked: shape, order, chain, versions and (version 2) the end."""
    with open(path, "rb") as lines:
        version = _header_version(path, lines.readline())
        link, index, end = GENESIS, 0, None
        last_version: dict[int, int] = {}
        for number, line in enumerate(lines, 2):
            if not line.strip():
                continue
            if end is not None:
                raise LogImportError(f"{path}:{number}: a line after the end line (line {end})")
            try:
                record = orjson.loads(line)
                if version > 1 and "end" in record:
                    _check_end(path, number, record, index, link)
                    end = number
                    continue
                originator_id = UUID(record["originator_id"])
                originator_version = int(record["originator_version"])
                topic = str(record["topic"])
                state = record["state"].encode("utf-8")
                given_index = int(record["index"])
                given_link = str(record["link"])
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise LogImportError(f"{path}:{number}: malformed event line ({error})") from None
            index += 1
            link = next_link(link, originator_id, originator_version, topic, state)
            if given_index != index or given_link != link:
                raise LogImportError(
                    f"{path}:{number}: the chain breaks at event {given_index}: the file was changed or cut"
                )
            expected = last_version.get(originator_id.int, 0) + 1
            if originator_version != expected:
                raise LogImportError(
                    f"{path}:{number}: event {index} is version {originator_version} of {originator_id},"
                    f" expected version {expected}"
                )
            last_version[originator_id.int] = originator_version
            yield (
                number,
                StoredEvent(
                    originator_id=originator_id, originator_version=originator_version, topic=topic, state=state
                ),
            )
        if version > 1 and end is None:
            raise LogImportError(f"{path}: the file ends after event {index} without its end line: it was cut short")


def _check_end(path: Path, number: int, record: dict, count: int, link: str) -> None:
    end = record["end"]
    if set(record) != {"end"} or not isinstance(end, dict) or set(end) != {"events", "link"}:
        raise LogImportError(f'{path}:{number}: malformed end line (expected {{"end": {{"events", "link"}}}})')
    if end["events"] != count or end["link"] != link:
        raise LogImportError(
            f"{path}:{number}: the end line says {end['events']} events with head {end['link']},"
            f" the file holds {count} with head {link}"
        )


def import_log(archive: Any, path: Path) -> int:
    """Append every event of an export to an empty store, in one transaction; return the
    number of events."""
    archive.require_empty()
    count = 0
    for number, stored in _events(path):  # first pass: check everything, write nothing
        try:
            archive.mapper.to_domain_event(stored)
        except Exception as error:
            raise LogImportError(f"{path}:{number}: event does not decode: {error}") from None
        count += 1
    archive.append_into_empty(_batches(path))
    return count


def _batches(path: Path) -> Iterator[list[StoredEvent]]:
    batch: list[StoredEvent] = []
    for _number, stored in _events(path):
        batch.append(stored)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
