"""The archive: the append-only log of sourced facts, and the commands that append to it.

`Archive` is the eventsourcing application. Every command checks its references first and
then appends all its events in one `save()`, which is one transaction: a fact file is recorded
whole or not at all. Nothing here ever updates or deletes a stored event.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent, Transcoder

from chronology import accelerated, domain, transcoder
from chronology.errors import FactFileError, InvalidCorrection, StoreError, UnknownReference
from chronology.factfile import FactFile
from chronology.fields import RELIABILITY_GRADES
from chronology.projection import collector_paused
from chronology.records import LoggedEvent
from chronology.transcoder import decode_state, tag, uuid_from_text

DEFAULT_STORE = "chron.db"
LOCK_WAIT_SECONDS = 60
"""How long a command waits for another process's write to a SQLite store before giving up
(a rebuild of a large archive holds it for as long as it takes). Env: CHRON_LOCK_WAIT."""
RELATIONS = ("responds_to", "part_of", "follows")
RANKS = ("preferred", "normal", "deprecated")


def store_location(store: str | None = None) -> str:
    """The store to use: the given one, else $CHRON_STORE, else ./chron.db."""
    return store or os.environ.get("CHRON_STORE") or DEFAULT_STORE


def is_postgres_store(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def store_environment(store: str) -> dict[str, str]:
    """eventsourcing's environment for a store given as a SQLite path or a postgresql:// URL."""
    if is_postgres_store(store):
        url = urlparse(store)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "chronology.stores:CopyingPostgresApplicationRecorder",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or getpass.getuser()),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
        }
    if "://" in store:
        raise StoreError(f"unknown store '{_redact(store)}': expected a SQLite file path or postgresql://...")
    if store == ":memory:" or store.startswith("file:"):
        raise StoreError(f"store '{store}' is not a file: an archive is kept in a SQLite file or in PostgreSQL")
    path = Path(store)
    if path.is_dir():
        raise StoreError(f"store '{store}' is a folder: expected a SQLite file path")
    if not path.parent.exists():
        raise StoreError(f"cannot create store '{store}': folder '{path.parent}' does not exist")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path.resolve()),
        "SQLITE_LOCK_TIMEOUT": str(lock_wait_seconds()),
    }


def lock_wait_seconds() -> int:
    """`LOCK_WAIT_SECONDS`, or $CHRON_LOCK_WAIT when set to a whole number of seconds."""
    text = os.environ.get("CHRON_LOCK_WAIT", "")
    if not text:
        return LOCK_WAIT_SECONDS
    if not text.isdigit() or int(text) < 1:
        raise StoreError(f"CHRON_LOCK_WAIT must be a whole number of seconds, at least 1; found {text!r}")
    return int(text)


SQLITE_PAGE_SIZE = 16384
"""Page size of a new SQLite store. The projection keeps each incident's claims and each view
as one blob of a few KB: at SQLite's default 4 KB most would spill into chains of overflow
pages, each a separate read and write when a rebuild replaces them."""


def _prepare_sqlite_file(path: Path) -> bool:
    """Give a new SQLite store its page size, which is fixed once the file has content (an
    existing store keeps its own), and WAL mode; True if this call made the file.

    The new file is made under a name of this process's own and linked into place, so it
    appears with both already set. Processes opening a new store at once then never turn the
    same file to WAL together: two connections doing that can each wait for the other's lock,
    and SQLite answers one of them "database is locked" at once rather than wait. A store made
    some other way, even as an empty file, is left as it is."""
    if path.exists():
        if path.stat().st_size == 0:
            _set_up_sqlite_file(path)  # made empty by someone else: as before, in place
        return False
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        _set_up_sqlite_file(draft)
        os.link(draft, path)
    except FileExistsError:
        return False  # another process linked its own first: the same page size and mode
    except OSError:  # a file system without hard links
        _set_up_sqlite_file(path)
    finally:
        draft.unlink(missing_ok=True)
    return True


def _set_up_sqlite_file(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        connection.execute("PRAGMA journal_mode=WAL")  # writes the header: the size is now set
    finally:
        connection.close()


def postgres_connection(env: Any):
    """A psycopg connection (autocommit) to the PostgreSQL store `env` describes."""
    import psycopg

    return psycopg.connect(
        dbname=env.get("POSTGRES_DBNAME"),
        host=env.get("POSTGRES_HOST"),
        port=env.get("POSTGRES_PORT"),
        user=env.get("POSTGRES_USER"),
        password=env.get("POSTGRES_PASSWORD") or None,
        connect_timeout=int(env.get("connect_timeout") or 10),
        autocommit=True,
    )


def _check_postgres(env: dict[str, str], store: str) -> None:
    import psycopg

    try:
        with postgres_connection({**env, "connect_timeout": "5"}):
            pass
    except psycopg.Error as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise StoreError(f"cannot open store '{_redact(store)}': {reason}") from None


def current_user() -> str:
    """Who records events: $CHRON_USER, else the login name."""
    return os.environ.get("CHRON_USER") or getpass.getuser()


@dataclass
class IngestReport:
    """What one fact file added to the log."""

    path: str
    sources_added: int = 0
    claims_added: int = 0
    sources_present: int = 0
    claims_present: int = 0
    dry_run: bool = False

    @property
    def events_added(self) -> int:
        return self.sources_added + self.claims_added


@dataclass
class _Plan:
    sources: list[Any] = field(default_factory=list)
    """New Source aggregates (few per file: the domain path)."""
    claims: list[tuple[UUID, dict[str, Any], UUID]] = field(default_factory=list)
    """New claims as (id, content, source id): written by `domain.claim_recorded_states`."""
    report: IngestReport | None = None
    recorded_at: dt.datetime | None = None
    recorded_by: str = ""


class OrjsonTranscoder(Transcoder):
    """The transcoder every Chronology store uses: `chronology.transcoder`'s encoding, in the
    shape eventsourcing's mapper asks for."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(tag(obj), option=orjson.OPT_SORT_KEYS)

    def decode(self, data: bytes) -> Any:
        return decode_state(data)


class Archive(Application):
    """The Chronology application over one store."""

    name = "Chronology"

    def __init__(self, store: str | None = None) -> None:
        self.store = store_location(store)
        self.is_postgres = is_postgres_store(self.store)
        env = store_environment(self.store)
        if self.is_postgres:
            env["CREATE_TABLE"] = "false"  # created below, under a lock
            _check_postgres(env, self.store)  # the pool would retry for 30 s and hide why
        self._made_file: Path | None = None
        """The SQLite file opening this store made, if it did (see `remove_if_unused`)."""
        try:
            if not self.is_postgres and _prepare_sqlite_file(Path(env["SQLITE_DBNAME"])):
                self._made_file = Path(env["SQLITE_DBNAME"])
            super().__init__(env=env)
            if self.is_postgres:
                self._create_postgres_tables()
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(f"cannot open store '{_redact(self.store)}': {error}") from error

    def remove_if_unused(self) -> bool:
        """Close this archive and delete the SQLite file opening it made, if nothing has been
        appended to it since: a command that fails before writing leaves no new store behind.
        False, with the store left as it is (and open), otherwise."""
        if self._made_file is None or self.max_position() > 0:
            return False
        self.close()
        for name in (self._made_file.name, f"{self._made_file.name}-wal", f"{self._made_file.name}-shm"):
            (self._made_file.parent / name).unlink(missing_ok=True)
        return True

    def _create_postgres_tables(self) -> None:
        """PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent one: several
        processes opening a new store at once take turns under an advisory lock."""
        with postgres_connection(self.env) as connection:
            connection.execute("SELECT pg_advisory_lock(7243000)")
            try:
                self.recorder.create_table()
            finally:
                connection.execute("SELECT pg_advisory_unlock(7243000)")

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    # --- appending ---------------------------------------------------------------------------

    def ingest(
        self,
        fact_file: FactFile,
        *,
        dry_run: bool = False,
        recorded_by: str | None = None,
    ) -> IngestReport:
        """Append a checked fact file's new sources and claims in one transaction."""
        for attempt in range(3):
            with collector_paused():  # a file's worth of new objects, none in cycles
                plan = self._plan_ingest(fact_file, recorded_by or current_user(), dry_run)
                if dry_run or not (plan.sources or plan.claims):
                    return plan.report
                stored = self._stored_events(plan)
            try:
                self.recorder.insert_events(stored)  # one transaction
            except IntegrityError:
                # Another ingester appended some of the same facts meanwhile: plan again.
                if attempt == 2:
                    raise
                continue
            return plan.report
        raise AssertionError("unreachable")

    def _stored_events(self, plan: _Plan) -> list[StoredEvent]:
        """The plan's events as stored rows. Sources go through the aggregates and the mapper;
        claims, which are most of every file, are encoded directly (byte-identical: tested)."""
        stored = [self.mapper.to_stored_event(e) for source in plan.sources for e in source.collect_events()]
        topic = domain.Claim.Recorded.TOPIC
        states = domain.claim_recorded_states(
            ((content, source_id) for _claim_id, content, source_id in plan.claims), plan.recorded_by, plan.recorded_at
        )
        for (claim_id, _content, _source_id), state in zip(plan.claims, states, strict=True):
            stored.append(StoredEvent(originator_id=claim_id, originator_version=1, topic=topic, state=state))
        return stored

    def _plan_ingest(self, fact_file: FactFile, recorded_by: str, dry_run: bool) -> _Plan:
        report = IngestReport(fact_file.path, dry_run=dry_run)
        now = dt.datetime.now(dt.UTC)
        plan = _Plan(report=report, recorded_at=now, recorded_by=recorded_by)
        source_ids = {key: domain.source_id(key) for key in {c.source_key for c in fact_file.claims}}
        claims = [
            (domain.claim_id(c.content, source_ids[c.source_key]), c.content, source_ids[c.source_key])
            for c in fact_file.claims
        ]
        present = self.existing(
            [c[0] for c in claims] + [domain.source_id(s.key) for s in fact_file.sources] + list(source_ids.values())
        )
        known_sources: set[str] = set()
        for spec in fact_file.sources:
            known_sources.add(spec.key)
            if domain.source_id(spec.key) in present:
                report.sources_present += 1
                continue
            plan.sources.append(domain.Source.register(spec.key, spec.metadata, spec.published, recorded_by, now))
            report.sources_added += 1
        seen: set[UUID] = set()
        for spec, claim in zip(fact_file.claims, claims, strict=True):
            if spec.source_key not in known_sources:
                if domain.source_id(spec.source_key) not in present:
                    raise FactFileError(
                        fact_file.path,
                        "claim for a missing source",
                        line=spec.line,
                        field="source",
                        expected="a source registered in this file or earlier",
                        found=spec.source_key,
                    )
                known_sources.add(spec.source_key)
            if claim[0] in seen or claim[0] in present:
                report.claims_present += 1
                continue
            seen.add(claim[0])
            plan.claims.append(claim)
            report.claims_added += 1
        return plan

    def existing(self, ids: list[UUID], batch: int = 500) -> set[UUID]:
        """Which of `ids` already have events in the log (one query per `batch` ids).

        Asks for each id's first event (version 1, which every aggregate has) by the full
        primary key. Asking by id alone, PostgreSQL's planner, lacking statistics on a table
        that grew within the hour, estimated thousands of rows per id and scanned the whole
        table: ingest then slowed in proportion to the log (measured: 0.16 s per 500 ids at
        600k events, against 1.6 ms by the full key)."""
        found: set[UUID] = set()
        unique = list(dict.fromkeys(ids))
        table = self.recorder.events_table_name
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            with self.recorder.datastore.transaction(commit=False) as cursor:
                if self.is_postgres:
                    cursor.execute(
                        f"SELECT originator_id FROM {self.recorder.datastore.schema}.{table}"
                        " WHERE originator_id = ANY(%s) AND originator_version = 1",
                        (chunk,),
                    )
                    found.update(row["originator_id"] for row in cursor.fetchall())
                else:
                    marks = ",".join("?" * len(chunk))
                    cursor.execute(
                        f"SELECT originator_id FROM {table}"
                        f" WHERE originator_id IN ({marks}) AND originator_version = 1",
                        [i.hex for i in chunk],
                    )
                    found.update(uuid_from_text(row["originator_id"]) for row in cursor.fetchall())
        return found

    def append_into_empty(self, batches: Iterable[Sequence[StoredEvent]]) -> None:
        """Append stored events, batch after batch, into an empty log in one database
        transaction: all of them or, if anything fails or the process dies, none
        (`chron log import`). StoreError if the log is not empty when the transaction starts.

        eventsourcing's `insert_events` commits each call on its own, so this runs the
        recorder's per-batch insert inside one transaction of its datastore: COPY under the
        table lock for PostgreSQL (`chronology.stores`), eventsourcing 9.5's `_insert_events`
        for SQLite."""
        recorder = self.recorder
        with recorder.datastore.transaction(commit=True) as cursor:
            if self.is_postgres:
                recorder._lock_table(cursor)
                recorder._notify_channel(cursor)
                insert = recorder.copy_events
                table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
            else:
                insert = recorder._insert_events
                table = recorder.events_table_name
            cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")
            if cursor.fetchone() is not None:
                raise self._not_empty()
            for batch in batches:
                insert(cursor, batch)

    def require_empty(self) -> None:
        """StoreError unless the log holds no event (what `append_into_empty` checks again
        inside its transaction; this is the early refusal, before a long file is read)."""
        if self.max_position():
            raise self._not_empty()

    def _not_empty(self) -> StoreError:
        return StoreError(f"store '{_redact(self.store)}' is not empty: import only into an empty store")

    def retract(self, claim_id: UUID, reason: str, recorded_by: str | None = None) -> None:
        """ClaimRetracted: the claim leaves the best view; it stays in the log."""
        claim = self._get(domain.Claim, claim_id, "claim")
        if claim.retracted:
            raise InvalidCorrection(f"claim {claim_id} is already retracted")
        claim.retract(_reason(reason), recorded_by or current_user())
        self.save(claim)

    def rank(self, claim_id: UUID, rank: str, reason: str, recorded_by: str | None = None) -> None:
        """ClaimRanked: mark a claim preferred, normal or deprecated."""
        if rank not in RANKS:
            raise InvalidCorrection(f"unknown rank '{rank}': expected one of {', '.join(RANKS)}")
        claim = self._get(domain.Claim, claim_id, "claim")
        claim.set_rank(rank, _reason(reason), recorded_by or current_user())
        self.save(claim)

    def grade(self, source_key: str, reliability: str, reason: str, recorded_by: str | None = None) -> None:
        """SourceGraded: change a source's reliability grade."""
        if reliability not in RELIABILITY_GRADES:
            raise InvalidCorrection(f"unknown grade '{reliability}': expected one of A B C D E F")
        source = self._get(domain.Source, domain.source_id(source_key), "source", source_key)
        source.grade(reliability, _reason(reason), recorded_by or current_user())
        self.save(source)

    def amend(self, source_key: str, changes: dict[str, Any], reason: str, recorded_by: str | None = None) -> None:
        """SourceAmended: correct a source's metadata (e.g. its publication date)."""
        source = self._get(domain.Source, domain.source_id(source_key), "source", source_key)
        source.amend(changes, _reason(reason), recorded_by or current_user())
        self.save(source)

    def merge(self, old: str, new: str, reason: str, recorded_by: str | None = None) -> None:
        """IncidentsMerged: `old` is the same incident as `new`; `old` becomes an alias."""
        if old == new:
            raise InvalidCorrection(f"cannot merge incident '{old}' into itself")
        surviving = self.known_incidents(old, new)
        already, target = surviving[old], surviving[new]
        if already != old:
            raise InvalidCorrection(f"incident '{old}' is already merged into '{already}'")
        if target == old:
            raise InvalidCorrection(f"merging '{old}' into '{new}' would make a cycle of merges")
        user = recorded_by or current_user()
        incident = self._incident(old) or domain.Incident.name(old, user)
        incident.merge_into(new, _reason(reason), user)
        self.save(incident)

    def link(self, incident: str, relation: str, other: str, reason: str = "", recorded_by: str | None = None) -> None:
        """IncidentLinked: `incident` responds_to / part_of / follows `other`."""
        if relation not in RELATIONS:
            raise InvalidCorrection(f"unknown relation '{relation}': expected one of {', '.join(RELATIONS)}")
        if incident == other:
            raise InvalidCorrection(f"cannot link incident '{incident}' to itself")
        self.known_incidents(incident, other)
        aggregate = self._incident(incident) or domain.Incident.name(incident, recorded_by or current_user())
        aggregate.link(relation, other, reason, recorded_by or current_user())
        self.save(aggregate)

    def source(self, key: str) -> domain.Source:
        """The source registered under `key` (its fact-file id)."""
        return self._get(domain.Source, domain.source_id(key), "source", key)

    def _incident(self, slug: str) -> domain.Incident | None:
        try:
            return self.repository.get(domain.incident_id(slug))
        except AggregateNotFoundError:
            return None

    def _get(self, kind: type, originator_id: UUID, what: str, named: str | None = None) -> Any:
        """The aggregate `originator_id`, a `kind`; `named`: what the user called it (a
        source's fact-file id), for the error."""
        try:
            aggregate = self.repository.get(originator_id)
        except AggregateNotFoundError:
            raise UnknownReference(
                f"unknown {what} {named!r}" if named else f"unknown {what} {originator_id}"
            ) from None
        if not isinstance(aggregate, kind):
            raise UnknownReference(f"{originator_id} is not a {what}")
        return aggregate

    def known_incidents(self, *slugs: str, projection: Any = None) -> dict[str, str]:
        """Each slug's surviving slug (after merges), if claims were ever recorded under it
        (merged slugs stay known); UnknownReference otherwise. One read of `projection` (the
        caller's, caught up) or of one opened and caught up here."""
        from chronology.projection import Projection  # the projection indexes claims by slug

        own = projection is None
        if own:
            projection = Projection(self).catch_up()
        try:
            with projection.state() as state:
                for slug in slugs:
                    if not state.tx.has_claims_about(slug):
                        raise UnknownReference(f"unknown incident '{slug}'")
                return {slug: state.canonical(slug) for slug in slugs}
        finally:
            if own:
                projection.close()

    # --- reading -----------------------------------------------------------------------------

    def incident_of_claim(self, claim_id: UUID) -> str | None:
        """The slug a claim was recorded under, from its `Claim.Recorded` event (None if the log
        holds no such claim), found by the log's index of aggregate ids (`claim_select`) on the
        archive's own connection."""
        rows = self._rows(*self.claim_select(claim_id))
        return self.incident_of_row(tuple(rows[0])[:5]) if rows else None

    def incident_of_row(self, row: tuple) -> str | None:
        """The slug a claim was recorded under, from the log's row (position, id, version, topic,
        state) of its `Claim.Recorded` event; None for a row of any other event."""
        if row[3] != domain.Claim.Recorded.TOPIC:
            return None
        return self.decode_row(row).event.content["incident"]

    def claim_select(self, claim_id: UUID) -> tuple[str, tuple]:
        """The SELECT of the log's row of a claim's `Claim.Recorded` event (as `log_select` gives
        rows), with its parameters, for a caller that reads the log on a connection of its own;
        one more column, `slug`, is the text after the first `"incident":"` in the stored bytes,
        read without decoding them. That is where the transcoder writes the slug, so a caller may
        join on it (the projection reads the incident's stored claims in the same query), but it
        is only a guess: `incident_of_row` says what the event holds, and anything else (a state
        of another shape, not found, not UTF-8) makes a `slug` no incident has."""
        select, position, mark = self._log_rows()
        table = select.split(" FROM ", 1)[1]
        key = '"incident":"'
        if self.is_postgres:
            rest = f"substring(state from position('{key}'::bytea in state) + {len(key)})"
            slug = "encode(substring(rest from 1 for greatest(position('\"'::bytea in rest) - 1, 0)), 'escape')"
        else:
            rest = f"substr(state, instr(state, X'{key.encode().hex()}') + {len(key)})"
            slug = "CAST(substr(rest, 1, max(instr(rest, X'22') - 1, 0)) AS TEXT)"
        sql = (
            f"SELECT position, originator_id, originator_version, topic, state, {slug} AS slug FROM"
            f" (SELECT {position} AS position, originator_id, originator_version, topic, state, {rest} AS rest"
            f" FROM {table} WHERE originator_id = {mark} AND originator_version = 1) AS recorded"
        )
        return sql, (claim_id if self.is_postgres else claim_id.hex,)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read_raw(self, after: int = 0, upto: int | None = None, batch: int = 5000) -> Iterator[LoggedEvent]:
        """The log in order after position `after`, undecoded: position, id, version, topic and
        stored bytes (what the digest chain and `log export` need; a tampered event may not decode)."""
        for rows in self._row_batches(after, upto, batch):
            yield from self._logged(rows)

    def log_select(self, after: int = 0, upto: int | None = None) -> tuple[str, tuple[int, int]]:
        """The SELECT of the log's rows after position `after` (up to `upto`), in order, with
        its parameters, in the store's own placeholders: for a caller that reads the log on a
        connection of its own (the projection, in the transaction it writes in), then decodes
        the rows with `decoded`. Straight from the recorder's table, by its notification id:
        the same rows, order and bounds as eventsourcing's `select_notifications`, without a
        notification object per row."""
        select, position, mark = self._log_rows()
        sql = f"{select} WHERE {position} > {mark} AND {position} <= {mark} ORDER BY {position}"
        return sql, (after, upto if upto is not None else 2**63 - 1)

    def _row_batches(self, after: int, upto: int | None, batch: int = 5000) -> Iterator[list[tuple]]:
        """The log's rows after `after` (up to `upto`), `batch` at a time, as `_rows` gives
        them: `log_select`, one SELECT per batch on the archive's own connection."""
        sql, (last, stop) = self.log_select(after, upto)
        sql += f" LIMIT {self._log_rows()[2]}"
        while True:
            rows = self._rows(sql, (last, stop, batch))
            yield rows
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def rows(self, after: int = 0, upto: int | None = None) -> Iterator[tuple]:
        """The log's rows after position `after` (up to `upto`), undecoded, as `log_select`
        gives them: for a fold that decodes them itself (`projection.fold_rows`) on a
        database other than the log's (`chronology.scratch`)."""
        for rows in self._row_batches(after, upto):
            yield from rows

    def read_of(self, originator_ids: Iterable[UUID], upto: int, batch: int = 500) -> list[LoggedEvent]:
        """The events of the given claims, sources and incidents up to position `upto`, in log
        order, decoded: found by the log's index of aggregate ids, so that what one incident
        needs costs in proportion to it, not to the log."""
        ids = sorted(set(originator_ids), key=lambda i: i.int)
        select, position, mark = self._log_rows()
        found = []
        for start in range(0, len(ids), batch):
            part = ids[start : start + batch]
            if self.is_postgres:
                among, params = "= ANY(%s)", (part, upto)
            else:
                among, params = f"IN ({', '.join('?' for _ in part)})", (*(i.hex for i in part), upto)
            found += self._rows(f"{select} WHERE originator_id {among} AND {position} <= {mark}", params)
        found.sort(key=lambda row: row[0])
        return [self._decoded(logged) for logged in self._logged(found)]

    def _log_rows(self) -> tuple[str, str, str]:
        """For raw SELECTs of the log: "SELECT position, originator id, version, topic, state
        FROM" its table, then the position column and the store's placeholder."""
        table, position, mark = self.recorder.events_table_name, "rowid", "?"
        if self.is_postgres:
            table, position, mark = f"{self.recorder.datastore.schema}.{table}", "notification_id", "%s"
        return f"SELECT {position}, originator_id, originator_version, topic, state FROM {table}", position, mark

    def _rows(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of one SELECT of (position, id, version, topic, state) from the log."""
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return [tuple(row.values()) if type(row) is dict else tuple(row) for row in cursor.fetchall()]

    @staticmethod
    def _logged(rows: list[tuple]) -> Iterator[LoggedEvent]:
        """`_rows` as undecoded events, made one at a time as they are read."""
        for position, originator_id, version, topic, state in rows:
            if type(originator_id) is str:  # SQLite keeps ids as hex text
                originator_id = uuid_from_text(originator_id)
            yield LoggedEvent(position, None, topic, originator_id, version, None, bytes(state))

    def read(self, after: int = 0, upto: int | None = None) -> Iterator[LoggedEvent]:
        """The log in order after position `after`, decoded into domain events."""
        for rows in self._row_batches(after, upto):
            yield from self.decoded(rows)

    def decoded(self, rows: Iterable[tuple]) -> Iterator[LoggedEvent]:
        """Rows of the log as `log_select` gives them, decoded into domain events one at a
        time as they are read, so that what the fold works on stays in the CPU's cache (each
        row in C when `chronology._transcoder` was built: see `chronology.accelerated`)."""
        if _decoding is None:
            for logged in self._logged(rows):
                yield self._decoded(logged)
            return
        logged_event, fallback = _decoding.logged_event, self.decode
        for row in rows:
            yield logged_event(row, fallback)

    def decode_row(self, row: tuple) -> LoggedEvent:
        """One row of the log as `log_select` gives it, decoded (`decoded` of one row)."""
        if _decoding is None:
            return self._decoded(next(self._logged([row])))
        return _decoding.logged_event(row, self.decode)

    def _decoded(self, logged: LoggedEvent) -> LoggedEvent:
        logged.event = self.decode(logged)
        logged.recorded_at = logged.event.timestamp
        return logged

    def decode(self, logged: LoggedEvent) -> Any:
        """One stored event as a domain event: what eventsourcing's mapper makes of it, built
        directly for the catalog's current-version events (no topic resolution, no id
        conversion); anything else (an older class version to upcast) goes through the mapper."""
        cls = _CURRENT_EVENT_CLASSES.get(logged.topic)
        if cls is not None:
            state = decode_state(logged.state)
            if "class_version" not in state:
                state["originator_id"] = logged.originator_id
                state["originator_version"] = logged.version
                event = object.__new__(cls)
                object.__setattr__(event, "__dict__", state)
                return event
        return self.mapper.to_domain_event(
            StoredEvent(logged.originator_id, logged.version, logged.topic, logged.state)
        )


_CURRENT_EVENT_CLASSES = {cls.TOPIC: cls for cls in domain.EVENT_CLASSES if getattr(cls, "class_version", 1) == 1}
"""Event classes whose stored state needs no upcasting (every one, until a class version rises)."""


# `Archive._logged`, `_decoded` and `decode` in C (see `chronology.accelerated`), or None.
_decoding = accelerated.load(
    "_transcoder",
    {
        "LoggedEvent": LoggedEvent,
        "event_classes": _CURRENT_EVENT_CLASSES,
        "decoders": transcoder._DECODERS,
        "recent": transcoder._RECENT,
        "recent_at_most": transcoder._RECENT_AT_MOST,
        "loads": orjson.loads,
        "untag": transcoder.untag,
        "uuid_from_text": uuid_from_text,
        "UUID": UUID,
        "unknown_safety": transcoder._UNKNOWN_SAFETY,
    },
)
NATIVE = _decoding is not None
"""Whether the log's rows are decoded in C."""
state_decoder = _decoding.decode_state if _decoding is not None else decode_state
"""`transcoder.decode_state`, in C where it was built (for `chronology._fold`)."""


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidCorrection("a correction needs a reason (--reason)")
    return reason


def _redact(store: str) -> str:
    url = urlparse(store)
    if url.password:
        return store.replace(f":{url.password}@", ":***@")
    return store
