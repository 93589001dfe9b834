"""Projections: folding the log into best views, in memory or materialized in the store.

Both run the same loop (`fold`): apply each event with `chronology.state.apply_event`, and at
the end of each transaction (a run of events with one transaction time: one `save()`) rebuild
the views of the incidents it touched, counting a revision when a view's content changes.

`Projection` keeps that result in tables next to the log (same SQLite file or PostgreSQL
database) with its tracking position, updated in the same database transaction, so a catch-up
after one new claim reads one transaction's events and recomputes one incident.
`chronology.scratch` writes folds for another point in time or another policy into a temporary
copy of those tables.
`MemoryState` and `MemoryViews` hold a fold in memory instead, for a fold of a few events (an
incident's history).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import itertools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

import orjson

from chronology import accelerated, domain, parallel, transcoder
from chronology.bestview import UNDATED, IncidentView, content_digest, incident_view, view_body
from chronology.errors import DamagedView
from chronology.integrity import Chain
from chronology.records import Claim, Link, LoggedEvent, Source, decode_claims, encode_claims
from chronology.resolution import Policy, balanced
from chronology.state import Merges, apply_event, follow_aliases, has_link
from chronology.transcoder import UuidMemo, tag, untag, uuid_from_text


class Views(Protocol):
    """Where folded views are kept: a dict (replay) or a table (the materialized projection)."""

    def current(self, slug: str) -> tuple[str, int, dt.datetime | None] | None: ...
    def put(self, view: IncidentView, digest: str, body: bytes) -> None: ...
    def drop(self, slug: str) -> None: ...


@dataclasses.dataclass
class FoldResult:
    last_position: int = 0
    """The last position applied (0 if none)."""
    last_changed: dt.datetime | None = None
    """The latest transaction time among the events applied."""
    recomputed: set[str] = dataclasses.field(default_factory=set)
    """The incidents whose views were rebuilt."""


def fold(
    state: Any,
    views: Views,
    events: Iterable[LoggedEvent],
    policy: Policy = balanced,
    after_transaction: Any = None,
    refresh_views: Any = None,
) -> FoldResult:
    """Apply `events` to `state`, refreshing `views` after each transaction, then calling
    `after_transaction(position, transaction_time)` with the position of its last event (to
    note it, or to write out what the table state holds). `refresh_views` replaces `refresh`
    (the projection's `HelpedRefresh`)."""
    refresh_views = refresh_views or refresh
    result = FoldResult()
    dirty: set[str] = set()
    transaction_time: dt.datetime | None = None
    for logged in events:
        if transaction_time is not None and logged.recorded_at != transaction_time:
            refresh_views(state, views, dirty, transaction_time, policy)
            result.recomputed |= dirty
            dirty = set()
            if after_transaction is not None:
                after_transaction(state.position, transaction_time)
        transaction_time = logged.recorded_at
        if result.last_changed is None or transaction_time > result.last_changed:
            result.last_changed = transaction_time
        dirty |= apply_event(state, logged.position, logged.event)
        state.position = result.last_position = logged.position
    if dirty:
        refresh_views(state, views, dirty, transaction_time, policy)
        result.recomputed |= dirty
    if after_transaction is not None and transaction_time is not None:
        after_transaction(result.last_position, transaction_time)
    return result


def fold_rows(
    state: Any,
    views: Views,
    rows: Iterable[tuple],
    archive: Any,
    policy: Policy = balanced,
    after_transaction: Any = None,
    refresh_views: Any = None,
) -> FoldResult:
    """`fold` of the log's rows as `Archive.log_select` gives them, decoded by `archive` as
    they are read. Into a `TableState`, in C where `chronology._fold` was built: each claim as
    recorded goes from its stored bytes straight into the state's held incidents, without a
    domain event or a Python call; every other row is decoded and applied as `fold` does
    (`archive.decode_row`, `apply_event`). Same result either way (tests/test_native_fold.py)."""
    if _folding is None or not isinstance(state, TableState):
        return fold(state, views, archive.decoded(rows), policy, after_transaction, refresh_views)
    refresh_views = refresh_views or refresh
    result = FoldResult()

    def end_transaction(dirty: set[str], at: dt.datetime, final: bool) -> None:
        if dirty or not final:  # as `fold`: after the last transaction, only if it touched any
            refresh_views(state, views, dirty, at, policy)
            result.recomputed |= dirty
        if after_transaction is not None:
            after_transaction(state.position, at)

    result.last_position, result.last_changed = _folding.fold_rows(
        rows, state, state_decoder(), archive.decode_row, apply_event, end_transaction
    )
    return result


def state_decoder() -> Callable[[bytes], Any]:
    """`transcoder.decode_state`, in C where it was built (`chronology.archive` loads it)."""
    from chronology import archive  # it imports this module

    return archive.state_decoder


def refresh(state: Any, views: Views, slugs: set[str], at: dt.datetime | None, policy: Policy = balanced) -> None:
    """Rebuild the views of `slugs`; a content change is a new revision, dated `at`."""
    for slug in sorted(slugs):
        claims = current_claims(state, slug)
        if not claims:
            views.drop(slug)  # merged into another incident
            continue
        view = build_view(state, slug, claims, policy)
        body = view.content_json()
        digest = content_digest(body)
        revision, changed_at = next_revision(views.current(slug), digest, at)
        views.put(dataclasses.replace(view, revision=revision, changed_at=changed_at), digest, body)


def refresh_stored(state: Any, views: TableViews, slugs: set[str], at: dt.datetime | None, policy: Policy) -> None:
    """`refresh` for the materialized projection (`fold_into_tables`, without a helper), which
    keeps only each view's stored form (sort date, digest, content JSON): made by `view_body`,
    without the view itself."""
    for slug in sorted(slugs):
        inputs = view_inputs(state, slug, False)
        if inputs is None:
            views.drop(slug)
            continue
        claims, links, aliases, sources, _ = inputs
        sort_date, body = view_body(slug, claims, sources, links, aliases, policy)
        digest = content_digest(body)
        revision, changed_at = next_revision(views.current(slug), digest, at)
        views.put_row(slug, sort_date, digest, revision, changed_at, body)


def next_revision(
    current: tuple[str, int, dt.datetime | None] | None, digest: str, at: dt.datetime | None
) -> tuple[int, dt.datetime | None]:
    """(revision, changed_at) of a view with content `digest`, given the stored (digest,
    revision, changed_at): unchanged content keeps both, changed content is a new revision."""
    if current is not None and current[0] == digest:
        return current[1], current[2]
    return (current[1] if current else 0) + 1, at


ViewInputs = tuple[list[Claim], tuple[Link, ...], tuple[str, ...], dict[UUID, Source], tuple[bytes, ...] | None]
"""(claims, links, aliases, cited sources, the claims as stored per slug or None): `view_inputs`."""


def view_inputs(state: Any, slug: str, with_encoded: bool) -> ViewInputs | None:
    """What the view of the incident `slug` is built from, as the fold has left the state: its
    claims (under its own slug and every slug merged into it), analysts' links from it, the
    slugs merged into it, the sources its claims cite, and with `with_encoded` its claims as
    `encode_claims` stores them, one `bytes` for each of those slugs (for the helper process,
    and for the table); None when it was merged into another incident. In C where
    `chronology._fold` was built, for an incident held in a state without merges or links."""
    claims = current_claims(state, slug)
    if not claims:
        return None
    aliases = tuple(state.aliases_of(slug))
    encoded = tuple(state.encoded_claims(name) for name in (slug, *aliases)) if with_encoded else None
    return claims, tuple(state.links_of(slug)), aliases, cited_sources(state, claims), encoded


python_view_inputs = view_inputs
"""The reference `chronology._fold.view_inputs` is held to (tests/test_native_fold.py)."""


def current_claims(state: Any, slug: str) -> list[Claim]:
    """The claims of the incident `slug` names; none if it was merged into another."""
    return state.claims_of(slug) if state.canonical(slug) == slug else []


def cited_sources(state: Any, claims: Iterable[Claim]) -> dict[UUID, Source]:
    """The sources `claims` cite, as the folded state knows them."""
    cited = {c.source_id.int: c.source_id for c in claims}  # an int hashes in C, a UUID in Python
    return {source_id: state.get_source(source_id) for source_id in cited.values()}


def aggregates_of(state: Any, canonical: str, claims: list[Claim]) -> set[UUID]:
    """The ids of the aggregates whose events make up the incident `canonical` with `claims`
    (`claims_of` it): those claims, the sources they cite, and its slug and every slug merged
    into it. Folding only their events gives the incident's views as the whole log does."""
    slugs = (canonical, *state.aliases_of(canonical))
    return {c.id for c in claims} | {c.source_id for c in claims} | {domain.incident_id(slug) for slug in slugs}


def build_view(
    state: Any, slug: str, claims: list[Claim], policy: Policy = balanced, known_at: dt.date | None = None
) -> IncidentView:
    """The view of one incident from the folded state (optionally only claims public by a day)."""
    sources = cited_sources(state, claims)
    if known_at is not None:
        claims = [c for c in claims if sources[c.source_id].published_day <= known_at]
    return incident_view(slug, claims, sources, state.links_of(slug), state.aliases_of(slug), policy)


class MemoryViews:
    def __init__(self) -> None:
        self.views: dict[str, tuple[IncidentView, str]] = {}

    def current(self, slug: str):
        entry = self.views.get(slug)
        return (entry[1], entry[0].revision, entry[0].changed_at) if entry else None

    def put(self, view: IncidentView, digest: str, body: bytes) -> None:
        self.views[view.slug] = (view, digest)

    def drop(self, slug: str) -> None:
        self.views.pop(slug, None)


# --- the materialized projection ----------------------------------------------------------------

VIEW_FORMAT = 7
"""Bump when the stored view's shape or the fold's rules change: stores built by another
version are then rebuilt from the log on first use (the log is the archive, views are derived)."""
TRACKING_NAME = f"best_view/v{VIEW_FORMAT}"
HOLD_AT_MOST = 100_000
"""Rows a catch-up holds in memory before writing them out (within its one transaction): about
1.1 KB a claim in the benchmark's corpus, so a 1M-claim rebuild peaks near 280 MB (140 MB at
20,000). An incident written out and then touched again (a correction of an older claim, more
claims about it) is read back and decoded: with 100,000 a 100k-claim rebuild took 5 % less time
and a 1M-claim one 4.5 % (bench/README.md, twentieth session)."""
SOURCES_KEPT = 50_000
"""Sources a catch-up keeps in memory once read (beyond that they are read again after a write)."""
PARALLEL_FROM = 20_000
"""A catch-up with at least this many events to fold builds views in a helper process too
(`chronology.parallel`)."""


class Projection:
    """The best view materialized next to the log, caught up from its tracking position."""

    def __init__(self, archive: Any, parallel_from: int | None = PARALLEL_FROM) -> None:
        """`parallel_from`: fold with a helper process from this many new events on (None:
        never; it is also off with `CHRON_PARALLEL=0` or on one core)."""
        self.archive = archive
        self.parallel_from = parallel_from if parallel.enabled() else None
        self.db = Database.for_archive(archive, derived=True)
        self.db.create_tables()

    def catch_up(self, from_scratch: bool = False) -> Projection:
        """Apply whatever the log holds beyond the tracking position; cheap when nothing is new.
        `from_scratch` empties the view first, in the same transaction (readers see the old
        view until the new one is committed). `self.recomputed` then names the incidents whose
        views were rebuilt."""
        self.recomputed: set[str] = set()
        if not from_scratch and self.position() >= self.archive.max_position():
            return self
        with self.db.transaction() as tx, collector_paused():
            position = tx.tracking_position(lock=True)
            if from_scratch:
                tx.clear()
                position = 0
            empty = position == 0  # a new or cleared projection: its tables hold nothing yet
            chain = Chain(tx)
            if chain.position < position:  # a store whose chain started after its log
                for _ in chain.extending(self.archive.read_raw(after=chain.position, upto=position)):
                    pass
            helper = self.parallel_from is not None and self.archive.max_position() - position >= self.parallel_from
            runs = self._log_rows(tx, position, chain)
            try:
                result = fold_into_tables(
                    tx,
                    self.archive,
                    rows=itertools.chain.from_iterable(runs),
                    empty=empty,
                    helper=helper,
                    also_flush=chain.flush,
                    locate_claim=lambda claim_id: claim_home(self.archive, tx, claim_id),
                )
            finally:
                runs.close()  # its cursor, within this transaction
            if result.last_position > position:
                tx.set_tracking_position(result.last_position, result.last_changed)
            self.recomputed = result.recomputed
        if result.last_position - position >= CHECKPOINT_FROM:
            self.db.checkpoint_later()
        return self

    def _log_rows(self, tx: Transaction, position: int, chain: Chain) -> Iterator[Iterable[tuple]]:
        """The log's rows after `position`, read in this transaction too (one snapshot,
        streamed on this connection): first those the digest chain already covers, as read
        (a rebuild's whole log), then those beyond its end, each taken into the chain as it
        passes. Two runs of rows, for `itertools.chain.from_iterable`: the fold reads the
        first straight from the cursor, with no Python step per row."""
        if chain.position > position:
            with tx.stream(*self.archive.log_select(after=position, upto=chain.position)) as rows:
                yield rows
        with tx.stream(*self.archive.log_select(after=max(position, chain.position))) as rows:
            yield chain.extending_rows(rows)

    def rebuild(self) -> Projection:
        """Drop the materialized view and fold the whole log again, in one transaction."""
        return self.catch_up(from_scratch=True)

    def position(self) -> int:
        with self.db.transaction(write=False) as tx:
            return tx.tracking_position()

    def last_changed(self) -> dt.datetime | None:
        """The latest transaction time the view has applied: it never moves backwards, even
        when writers' clocks disagree (the feed's Last-Modified)."""
        with self.db.transaction(write=False) as tx:
            return tx.tracking_last_changed()

    def views(self) -> list[IncidentView]:
        with self.state() as state:
            return state.views()

    @contextmanager
    def state(self) -> Iterator[TableState]:
        """The folded state (sources, claims, aliases, links) as the tables hold it."""
        with self.db.transaction(write=False) as tx:
            yield TableState(tx)

    def close(self) -> None:
        self.db.close()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector during a fold, or while a large timeline is read out or
    rendered. These allocate millions of objects, none of them in cycles; the collector would
    walk every live one again and again (a fifth of a rebuild's time, half of an export's). It
    runs again, as before, when the work ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def microseconds(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _from_microseconds(count: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=count)


def fold_into_tables(
    tx: Transaction,
    archive: Any,
    events: Iterable[LoggedEvent] | None = None,
    *,
    rows: Iterable[tuple] | None = None,
    empty: bool,
    policy: Policy = balanced,
    helper: bool = False,
    also_flush: Callable[[], None] | None = None,
    locate_claim: Callable[[UUID], ClaimHome] | None = None,
) -> FoldResult:
    """`fold` into the projection's tables within `tx` (`TableState`, `TableViews`) of either
    decoded `events` or the log's `rows` as read (`fold_rows`, which decodes them itself): rows
    are written out whenever more than `HOLD_AT_MOST` are held, and at the end, so a fold of
    any size takes bounded memory. `empty`: the tables hold nothing yet. `helper`: build views
    in a helper process too (`chronology.parallel`). `also_flush` writes out whatever else the
    caller holds (the digest chain) at the same moments. `locate_claim`: where a claim was
    recorded (`TableState.locate_claim`; by default `archive.incident_of_claim` alone)."""
    state = TableState(
        tx, locate_claim or (lambda claim_id: ClaimHome(archive.incident_of_claim(claim_id))), empty=empty
    )
    views = TableViews(tx, empty=empty)
    transactions: list[tuple[int, int]] = []
    """(last position, transaction time in µs) of each transaction folded, for `log_as_of`."""
    helped = HelpedRefresh(views, parallel.ViewBuilder(policy)) if helper else None
    refresh_views = helped or refresh_stored

    def write_out() -> None:
        state.flush()  # views still being built are written at a later flush
        views.flush()
        tx.add_transactions(transactions)
        transactions.clear()
        if also_flush is not None:
            also_flush()

    def after_transaction(position: int, at: dt.datetime) -> None:
        transactions.append((position, microseconds(at)))
        if state.held() > HOLD_AT_MOST:
            write_out()

    try:
        if rows is not None:
            result = fold_rows(state, views, rows, archive, policy, after_transaction, refresh_views)
        else:
            result = fold(state, views, events or (), policy, after_transaction, refresh_views)
        if helped is not None:
            state.flush()  # while the helper still builds views
            helped.settle(wait=True)
    finally:
        if helped is not None:
            helped.builder.close()
    write_out()
    return result


# `fold_rows` in C (see `chronology.accelerated`), or None.
_folding = accelerated.load(
    "_fold",
    {
        "Claim": Claim,
        "uuid_from_text": uuid_from_text,
        "UUID": UUID,
        "unknown_safety": transcoder._UNKNOWN_SAFETY,
        "claim_topic": domain.Claim.Recorded.TOPIC,
        "encode_claims": encode_claims,
        "view_inputs": python_view_inputs,
        "loads": orjson.loads,
        "decoders": transcoder._DECODERS,
        "recent": transcoder._RECENT,
        "recent_at_most": transcoder._RECENT_AT_MOST,
    },
)
NATIVE = _folding is not None
"""Whether the log's rows are folded in C."""
if _folding is not None:
    view_inputs = _folding.view_inputs  # noqa: F811

_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)
"""What decoding a changed or cut row raises (orjson's JSONDecodeError is a ValueError)."""
Decoded = TypeVar("Decoded")


def _read_row(table: str, key: str, decode: Callable[..., Decoded], *args: Any) -> Decoded:
    """`decode(*args)`: one row of the projection's `table`, decoded. A row that does not
    decode was changed outside Chronology (the log is guarded by its digest chain, the view
    derived from it is not): `DamagedView` names it and the way back, rather than a traceback
    from deep in the decoding."""
    try:
        return decode(*args)
    except _UNREADABLE as error:
        raise DamagedView(table, key, error) from error


def _source_from(body: bytes) -> Source:
    return Source(**untag(orjson.loads(body)))


def _dump(record: Any) -> bytes:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return orjson.dumps(tag(fields), option=orjson.OPT_SORT_KEYS)


class ClaimHome(NamedTuple):
    """Where a claim not held was recorded: its incident's slug (None: no such claim in the
    log) and, when `read`, that incident's stored claims as read in the same query (`stored`:
    the `chron_incidents` row, None when it has none)."""

    slug: str | None
    stored: bytes | None = None
    read: bool = False


def claim_home(archive: Any, tx: Transaction, claim_id: UUID) -> ClaimHome:
    """Where the claim `claim_id` was recorded, in one query (`TableState.locate_claim`): its
    `Claim.Recorded` row (`Archive.claim_select`) joined to `chron_incidents` on the slug read out
    of the row's bytes. A correction to a claim folded long ago (a retraction, a rank) then costs
    one round trip to the store instead of two. The event's own slug (`Archive.incident_of_row`)
    decides; when the slug read from the bytes is not it, only the slug is given, and the
    incident is read as before."""
    sql, params = archive.claim_select(claim_id)
    rows = tx.rows(
        f"SELECT recorded.*, chron_incidents.claims FROM ({sql}) AS recorded"
        " LEFT JOIN chron_incidents ON chron_incidents.slug = recorded.slug",
        params,
    )
    if not rows:
        return ClaimHome(None)
    *row, read_slug, stored = rows[0]
    slug = archive.incident_of_row(tuple(row))
    if slug is None or read_slug != slug:
        return ClaimHome(slug)
    return ClaimHome(slug, bytes(stored) if stored is not None else None, read=True)


class TableState(Merges):
    """The fold's state kept in the projection tables (see `chronology.state.ArchiveState`).

    Claims are stored per incident: one `chron_incidents` row holds every claim recorded under
    a slug, as folded, so a catch-up reads and writes one row per incident it touches and a
    rebuild writes one row per incident rather than one per claim. A claim's own slug is found
    in the log (its `Claim.Recorded` event, by the log's index of aggregate ids, read with its
    incident's row: `claim_home`); `chron_citations` says which incidents cite a source.

    Rows read or written are held in memory and written with one `executemany` per table at
    `flush()`, inside the same transaction; reads see them first. `empty=True` says the tables
    held nothing when the transaction began (a rebuild), so slugs not yet held need no lookup.

    `chronology/_fold.c` puts claims into `_incidents`, `_home`, `_citations`, `_changed` and
    `_encoded` itself, as `put_claim` does, and adds to `_held`: a change to how these are kept
    is a change there too (tests/test_native_fold.py compares the two)."""

    def __init__(self, tx: Transaction, locate_claim: Any = None, empty: bool = False) -> None:
        self.tx = tx
        self.locate_claim = locate_claim
        """claim id -> the `ClaimHome` of a claim not held (its slug is None when it is not in
        the log)."""
        self.aliases = dict(tx.rows("SELECT old, new FROM chron_aliases"))
        self.links = [Link(*row) for row in tx.rows("SELECT incident, relation, other, position FROM chron_links")]
        """Analysts' links between incidents: few, so read once."""
        self.position = 0
        self._stored: set[str] | None = set() if empty else None
        """With `empty`: the slugs written so far in this transaction."""
        self._incidents: dict[str, dict[int, Claim]] = {}
        """Slug -> its claims by id (as `UUID.int`: hashed in C, unlike a UUID)."""
        self._changed: set[str] = set()
        self._encoded: dict[str, bytes] = {}
        """Slug -> its held claims as `encode_claims` made them, while they stay the same."""
        self._home: dict[int, str] = {}
        self._citations: set[tuple[int, str]] = set()
        """(source id as int, slug) for claims put since the last flush."""
        self._sources: dict[UUID, Source] = {}
        """Sources read or put, kept across flushes (a source is cited by many incidents, and
        the helper process is sent each version once: `chronology.parallel`), up to
        `SOURCES_KEPT` of them."""
        self._changed_sources: set[UUID] = set()
        self._held = 0
        self._ids = UuidMemo()
        """One UUID per id text for the views and claims read out (`views`, `claims_about`)."""

    def _stored_claims(self, slug: str) -> bytes | None:
        """The claims stored under `slug` (`encode_claims` bytes), or None."""
        if self._stored is not None and slug not in self._stored:
            return None
        row = self.tx.one("SELECT claims FROM chron_incidents WHERE slug = ?", (slug,))
        return bytes(row[0]) if row is not None else None

    def _read_incident(self, slug: str, home: ClaimHome | None = None) -> dict[int, Claim]:
        """The claims stored under `slug`: as `home` read them with a claim's slug, if it did."""
        stored = home.stored if home is not None and home.read else self._stored_claims(slug)
        if stored is None:
            return {}
        return {c.id.int: c for c in _read_row("chron_incidents", slug, decode_claims, stored)}

    def _incident(self, slug: str, home: ClaimHome | None = None) -> dict[int, Claim]:
        """The claims recorded under `slug`, held from now on until `flush()` (`home`: where a
        claim of it was found, with its stored claims if they were read then)."""
        claims = self._incidents.get(slug)
        if claims is None:
            claims = self._incidents[slug] = self._read_incident(slug, home)
            self._home.update(dict.fromkeys(claims, slug))
            self._held += len(claims)
        return claims

    def get_source(self, source_id: UUID) -> Source | None:
        source = self._sources.get(source_id)
        if source is not None:
            return source
        row = self.tx.one("SELECT body FROM chron_sources WHERE id = ?", (str(source_id),))
        if row is None:
            return None
        source = self._sources[source_id] = _read_row("chron_sources", str(source_id), _source_from, row[0])
        return source

    def put_source(self, source: Source) -> None:
        self._sources[source.id] = source
        self._changed_sources.add(source.id)

    def get_claim(self, claim_id: UUID) -> Claim | None:
        slug = self._home.get(claim_id.int)
        if slug is not None:
            return self._incident(slug).get(claim_id.int)
        home = self.locate_claim(claim_id) if self.locate_claim is not None else ClaimHome(None)
        return self._incident(home.slug, home).get(claim_id.int) if home.slug is not None else None

    def put_claim(self, claim: Claim) -> None:
        slug = claim.incident
        claims = self._incident(slug)
        key = claim.id.int
        if key not in claims:
            self._home[key] = slug
            self._citations.add((claim.source_id.int, slug))
            self._held += 1
        claims[key] = claim
        self._changed.add(slug)
        self._encoded.pop(slug, None)

    def encoded_claims(self, slug: str) -> bytes:
        """The claims recorded under `slug` as `encode_claims` makes them: encoded once for
        both the helper process and the table while they stay the same."""
        encoded = self._encoded.get(slug)
        if encoded is not None:
            return encoded
        held = self._incidents.get(slug)
        if held is None:  # not changed in this fold: as stored
            stored = self._stored_claims(slug)
            return stored if stored is not None else encode_claims(())
        encoded = self._encoded[slug] = encode_claims(held.values())
        return encoded

    def incidents_citing(self, source_id: UUID) -> set[str]:
        rows = self.tx.rows("SELECT incident FROM chron_citations WHERE source_id = ?", (str(source_id),))
        return {row[0] for row in rows} | {slug for source, slug in self._citations if source == source_id.int}

    def held(self) -> int:
        return self._held + len(self._changed_sources)

    def flush(self) -> None:
        """Write the changed incidents, the new citations and the sources held."""
        new, changed = _new_and_stored(sorted(self._changed), self._stored)
        columns = ("slug", "claims")
        self.tx.insert_many("chron_incidents", columns, ((slug, self.encoded_claims(slug)) for slug in new))
        self.tx.upsert_many("chron_incidents", columns, ((slug, self.encoded_claims(slug)) for slug in changed))
        # An incident's citations are written with its claims: those of an incident not written
        # before are new too. A source's id text is made once for all its citations.
        texts = {source: str(UUID(int=source)) for source in {source for source, _ in self._citations}}
        citations = sorted((texts[source], slug) for source, slug in self._citations)
        new_citations, other_citations = _new_and_stored(citations, self._stored, at=1)
        self.tx.insert_many("chron_citations", ("source_id", "incident"), new_citations)
        self.tx.executemany(
            "INSERT INTO chron_citations (source_id, incident) VALUES (?, ?) ON CONFLICT DO NOTHING", other_citations
        )
        self.tx.upsert_many(
            "chron_sources", ("id", "body"), ((str(i), _dump(self._sources[i])) for i in self._changed_sources)
        )
        if self._stored is not None:
            self._stored |= self._changed
        self._incidents.clear()
        self._changed.clear()
        self._encoded.clear()
        self._home.clear()
        self._citations.clear()
        self._changed_sources.clear()
        if len(self._sources) > SOURCES_KEPT:
            self._sources.clear()
        self._held = 0

    def canonical(self, slug: str) -> str:
        return follow_aliases(self.aliases, slug)

    def add_alias(self, old: str, new: str) -> None:
        self.aliases[old] = new
        self.merges_changed()
        self.tx.upsert("chron_aliases", ("old", "new"), (old, new))

    def add_link(self, link: Link) -> None:
        if has_link(self.links, link):
            return
        self.links.append(link)
        self.merges_changed()
        self.tx.execute(
            "INSERT INTO chron_links (incident, relation, other, position) VALUES (?, ?, ?, ?)",
            (link.incident, link.relation, link.other, link.position),
        )

    def claims_of(self, slug: str) -> list[Claim]:
        """Every claim about the incident, under its own slug or any slug merged into it."""
        claims = []
        for name in (slug, *self.aliases_of(slug)):
            held = self._incidents.get(name)
            claims.extend((held if held is not None else self._read_incident(name)).values())
        return claims

    def claims_about(self, views: list[IncidentView], memo: UuidMemo | None = None) -> dict[UUID, Claim]:
        """Every claim the given views rest on: read by key (each view names its incident and
        the slugs merged into it) unless the views are a large part of all stored ones, then in
        one scan. `memo`: where to share id texts (default: this state's own memo)."""
        memo = self._ids if memo is None else memo
        if len(views) > 200 and 4 * len(views) >= self.view_count():
            return self._claims_in(self.tx.rows("SELECT slug, claims FROM chron_incidents"), views, memo)
        return self._claims_by_key(views, memo)

    def _claims_by_key(self, views: list[IncidentView], memo: UuidMemo) -> dict[UUID, Claim]:
        slugs = [slug for v in views for slug in (v.slug, *v.aliases)]
        rows = self.tx.rows_in("SELECT slug, claims FROM chron_incidents WHERE slug IN ({})", slugs)
        return self._claims_in(rows, views, memo)

    @staticmethod
    def _claims_in(rows: Iterable[Any], views: list[IncidentView], memo: UuidMemo) -> dict[UUID, Claim]:
        """The claims `views` rest on, among the incidents' claims in `rows` (slug, claims)."""
        wanted = {i for v in views for i in v.claims}
        found = {}
        for slug, body in rows:
            claims = _read_row("chron_incidents", slug, decode_claims, body, memo)
            found.update((c.id, c) for c in claims if c.id in wanted)
        return found

    def incident_slugs(self) -> list[str]:
        rows = self.tx.rows("SELECT slug FROM chron_incidents")
        return sorted({self.canonical(row[0]) for row in rows} | {self.canonical(s) for s in self._changed})

    def views(self, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[IncidentView]:
        """Every stored view, in chronological order; with `keep`, only those whose stored
        content it accepts (checked before the rest of the view is decoded)."""
        return [view for page, _memo in self._stored_views(keep, 1000, self._ids) for view in page]

    def view_pages(
        self, keep: Callable[[dict[str, Any]], bool] | None = None, size: int = 1000
    ) -> tuple[int, Iterator[tuple[list[IncidentView], dict[UUID, Claim]]]]:
        """How many stored views `keep` accepts (all without it), and those views in
        chronological order, up to `size` at a time, each page with the claims its views rest
        on: an archive of any size read in bounded memory (ids are shared within a page, not
        across pages). With `keep`, one pass over the stored JSON finds the views it accepts
        (and so their number, before the first page); the pages then read only those, by key."""
        if keep is None:
            pages = ((views, self._claims_by_key(views, memo)) for views, memo in self._stored_views(None, size, None))
            return self.view_count(), pages
        kept = [
            slug
            for rows in self.view_rows(1000)
            for _key, slug, body, _revision, _changed in rows
            if _read_row("chron_views", slug, lambda body: keep(orjson.loads(body)), body)
        ]
        return len(kept), self._pages_of(kept, size)

    def _pages_of(self, slugs: list[str], size: int) -> Iterator[tuple[list[IncidentView], dict[UUID, Claim]]]:
        """The views of `slugs` (stored ones, in this order), `size` at a time, with their
        claims (a page's claims are always read by key: a page is a small part of the whole)."""
        for start in range(0, len(slugs), size):
            part = slugs[start : start + size]
            order = {slug: index for index, slug in enumerate(part)}
            rows = self.tx.rows_in("SELECT slug, body, revision, changed_at FROM chron_views WHERE slug IN ({})", part)
            memo = UuidMemo()
            views = [
                _read_row("chron_views", slug, _stored_view, body, revision, changed_at, memo)
                for slug, body, revision, changed_at in sorted(rows, key=lambda row: order[row[0]])
            ]
            yield views, self._claims_by_key(views, memo)

    def _stored_views(
        self, keep: Callable[[dict[str, Any]], bool] | None, size: int, memo: UuidMemo | None
    ) -> Iterator[tuple[list[IncidentView], UuidMemo]]:
        """The stored views that `keep` accepts, read `size` rows at a time (by key, so that
        the rows' bytes are held a page at a time too), with the memo their ids were read with
        (`memo`, or with None a new one per page)."""
        for rows in self.view_rows(size):
            page_memo = UuidMemo() if memo is None else memo
            views = []
            for _sort_key, slug, body, revision, changed_at in rows:
                view = _read_row("chron_views", slug, _stored_view, body, revision, changed_at, page_memo, keep)
                if view is not None:
                    views.append(view)
            if views:
                yield views, page_memo

    def view_rows(self, size: int) -> Iterator[list[tuple[str, str, bytes, int, str | None]]]:
        """Every stored view's row (`Transaction.view_page`), `size` at a time, in order."""
        after = None
        while rows := self.tx.view_page(after, size):
            yield rows
            after = rows[-1][:2]

    def view_count(self) -> int:
        return self.tx.one("SELECT count(*) FROM chron_views")[0]

    def dated_span(self) -> tuple[int, str | None, str | None]:
        """How many views are stored, and the first and last day on which a dated one may have
        begun (None, None: none is dated), from the views' sort keys rather than their bodies."""
        count = self.view_count()
        first, last = self.tx.one("SELECT min(sort_key), max(sort_key) FROM chron_views WHERE sort_key < ?", (UNDATED,))
        sorted_last = self.tx.rows("SELECT slug, body FROM chron_views WHERE sort_key = ?", (UNDATED,))
        dated = (
            _read_row("chron_views", slug, lambda body: orjson.loads(body)["date"], body) for slug, body in sorted_last
        )
        if any(dated):  # dated UNDATED itself
            first, last = first or UNDATED, UNDATED
        return count, first, last

    def views_named(self, slugs: Iterable[str]) -> list[IncidentView]:
        """The views of the incidents `slugs` name, each once, in chronological order (a slug
        merged into another incident names that incident); read one by one, by key."""
        found = {}
        for slug in slugs:
            view = self.view(slug)
            if view is not None:
                found[view.slug] = view
        return sorted(found.values(), key=lambda v: v.sort_key)

    def view(self, slug: str) -> IncidentView | None:
        canonical = self.canonical(slug)
        row = self.tx.view_row(canonical)
        if row is None:
            return None
        body, revision, changed_at = row
        return _read_row("chron_views", canonical, _stored_view, body, revision, changed_at, self._ids)

    @property
    def sources(self) -> dict[UUID, Source]:
        rows = self.tx.rows("SELECT id, body FROM chron_sources")
        return {s.id: s for s in (_read_row("chron_sources", key, _source_from, body) for key, body in rows)}


def _stored_view(
    body: bytes,
    revision: int,
    changed_at: str | None,
    memo: UuidMemo,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> IncidentView | None:
    """A view as `chron_views` stores it, or None if `keep` does not accept its content."""
    content = orjson.loads(body)
    if keep is not None and not keep(content):
        return None
    content["revision"], content["changed_at"] = revision, changed_at
    return IncidentView.from_stored(content, memo)


class TableViews:
    """Views kept in chron_views; like TableState, writes are held until `flush()`. The stored
    body is the view's content (`IncidentView.content_json`), its digest that body's sha256."""

    def __init__(self, tx: Transaction, empty: bool = False) -> None:
        self.tx = tx
        self._held: dict[str, tuple[str, str, int, dt.datetime | None, bytes]] = {}
        """slug -> (sort date, digest, revision, changed_at, body) to write."""
        self._stored: dict[str, tuple[str, int, dt.datetime | None]] | None = {} if empty else None
        """With `empty` (nothing stored when the transaction began): what has been written since."""

    def current(self, slug: str):
        held = self._held.get(slug)
        if held is not None:
            return held[1], held[2], held[3]
        if self._stored is not None:
            return self._stored.get(slug)
        row = self.tx.one("SELECT digest, revision, changed_at FROM chron_views WHERE slug = ?", (slug,))
        if row is None:
            return None
        changed_at = _read_row("chron_views", slug, dt.datetime.fromisoformat, row[2]) if row[2] else None
        return row[0], row[1], changed_at

    def put(self, view: IncidentView, digest: str, body: bytes) -> None:
        self.put_row(view.slug, view.sort_key[0], digest, view.revision, view.changed_at, body)

    def put_row(
        self, slug: str, sort_date: str, digest: str, revision: int, changed_at: dt.datetime | None, body: bytes
    ) -> None:
        self._held[slug] = (sort_date, digest, revision, changed_at, body)

    def drop(self, slug: str) -> None:
        self._held.pop(slug, None)
        if self._stored is not None:
            self._stored.pop(slug, None)
        self.tx.execute("DELETE FROM chron_views WHERE slug = ?", (slug,))

    def flush(self) -> None:
        columns = ("slug", "sort_key", "digest", "revision", "changed_at", "body")
        rows = [
            (slug, sort_date, digest, revision, changed_at.isoformat() if changed_at else None, body)
            for slug, (sort_date, digest, revision, changed_at, body) in self._held.items()
        ]  # the bodies are held already: the rows only refer to them
        new, changed = _new_and_stored(rows, self._stored, at=0)
        self.tx.insert_many("chron_views", columns, new)
        self.tx.upsert_many("chron_views", columns, changed)
        if self._stored is not None:
            self._stored.update((slug, (row[1], row[2], row[3])) for slug, row in self._held.items())
        self._held.clear()


Item = TypeVar("Item")


def _new_and_stored(
    items: list[Item], stored: Container[str] | None, at: int | None = None
) -> tuple[list[Item], list[Item]]:
    """`items` (slugs, or rows holding their slug at index `at`) split into those of incidents
    whose rows are not in their table yet (only known when the tables were empty at the start of
    the transaction: `stored` holds the slugs written since) and the rest, each in order."""
    if stored is None:
        return [], items
    if at is None:
        return [i for i in items if i not in stored], [i for i in items if i in stored]
    return [i for i in items if i[at] not in stored], [i for i in items if i[at] in stored]  # type: ignore[index]


class HelpedRefresh:
    """`refresh` for the materialized projection with the views built by a helper process
    (`chronology.parallel.ViewBuilder`). Each incident's inputs are taken when its transaction
    ends, as `refresh` takes them; the built views are applied to `views` in that same order
    (`settle`), so revisions and their dates come out exactly as `refresh` makes them. The
    views and policy are those it was made with (`fold` passes the same ones)."""

    def __init__(self, views: TableViews, builder: parallel.ViewBuilder) -> None:
        self.views = views
        self.builder = builder
        self._at: deque[dt.datetime | None] = deque()
        """The transaction time of each incident sent and not yet applied, in order."""

    def __call__(self, state: Any, views: Views, slugs: set[str], at: dt.datetime | None, policy: Policy) -> None:
        for slug in sorted(slugs):
            inputs = view_inputs(state, slug, True)
            if inputs is None:
                self.builder.add((slug, None, (), (), ()), {})  # merged into another incident
            else:
                claims, links, aliases, sources, encoded = inputs
                self.builder.add((slug, claims, encoded, links, aliases), sources)
            self._at.append(at)
        self.settle()

    def settle(self, wait: bool = False) -> None:
        """Apply the views built so far (with `wait`: every one sent)."""
        for slug, built in self.builder.ready(wait):
            at = self._at.popleft()
            if built is None:
                self.views.drop(slug)
                continue
            sort_date, digest, body = built
            revision, changed_at = next_revision(self.views.current(slug), digest, at)
            self.views.put_row(slug, sort_date, digest, revision, changed_at, body)


# --- the database under the projection ----------------------------------------------------------


class Database:
    """A DB-API connection to the store holding the log, for the projection's own tables."""

    def __init__(self, connect, placeholder: str, blob: str, is_postgres: bool, path: str | None = None) -> None:
        self._connect = connect
        self.connection = connect()
        self.placeholder = placeholder
        self.blob = blob
        self.is_postgres = is_postgres
        self.path = path
        """The SQLite file whose write-ahead log this connection leaves to `checkpoint_later`
        (a derived connection's), or None."""
        self._checkpoint: threading.Thread | None = None

    @classmethod
    def for_archive(cls, archive: Any, derived: bool = False) -> Database:
        """The store's own database. `derived`: every table this connection writes can be
        folded again from the log (the projection's), so on SQLite its commits do not wait
        for the disk (see `connect`)."""
        env = archive.env
        if archive.is_postgres:
            from chronology.archive import postgres_connection

            def connect():
                return postgres_connection(env)

            return cls(connect, "%s", "BYTEA", True)

        def connect():
            connection = sqlite3.connect(
                env.get("SQLITE_DBNAME"),
                isolation_level=None,
                timeout=int(env.get("SQLITE_LOCK_TIMEOUT")),  # as the log's writer waits
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            # Some builds of SQLite (Debian's) zero every freed page. The projection's tables
            # are derived from the log in the same file, so zeroing them hides nothing, and a
            # rebuild would write its whole old view again as zeros.
            connection.execute("PRAGMA secure_delete=OFF")
            if derived:
                # In WAL mode a commit then leaves the log file's sync to the next checkpoint:
                # the database stays whole, and a power cut can only undo the last commits of
                # views, which the tracking position, undone with them, folds again. The log's
                # own writer still syncs each commit (and with it everything before it). A
                # rebuild at 10k claims spent an eighth of its time waiting for that sync.
                connection.execute("PRAGMA synchronous=NORMAL")
                # Its commits do not copy the write-ahead log back into the database either:
                # `checkpoint_later` does, on a thread of its own.
                connection.execute("PRAGMA wal_autocheckpoint=0")
            return connection

        return cls(connect, "?", "BLOB", False, env.get("SQLITE_DBNAME") if derived else None)

    @classmethod
    def scratch(cls, path: Path) -> Database:
        """A SQLite file holding only the projection's tables, for one `scratch_replay`: it
        does not outlive the command, so it is written without a journal or waiting on disk."""

        def connect():
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=OFF")
            connection.execute("PRAGMA synchronous=OFF")
            return connection

        return cls(connect, "?", "BLOB", False)

    def create_tables(self) -> None:
        blob = self.blob
        without_rowid = "" if self.is_postgres else " WITHOUT ROWID"
        statements = [
            f"CREATE TABLE IF NOT EXISTS chron_sources (id TEXT PRIMARY KEY, body {blob} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS chron_incidents (slug TEXT PRIMARY KEY, claims {blob} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS chron_citations (source_id TEXT NOT NULL, incident TEXT NOT NULL,"
            f" PRIMARY KEY (source_id, incident)){without_rowid}",
            "CREATE TABLE IF NOT EXISTS chron_aliases (old TEXT PRIMARY KEY, new TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS chron_links (incident TEXT NOT NULL, relation TEXT NOT NULL,"
            " other TEXT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (incident, relation, other))",
            "CREATE TABLE IF NOT EXISTS chron_views (slug TEXT PRIMARY KEY, sort_key TEXT NOT NULL,"
            f" digest TEXT NOT NULL, revision INTEGER NOT NULL, changed_at TEXT, body {blob} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS chron_views_order ON chron_views (sort_key, slug)",
            "CREATE TABLE IF NOT EXISTS chron_chain (position BIGINT PRIMARY KEY, idx BIGINT NOT NULL UNIQUE,"
            " digest TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS chron_transactions (position BIGINT PRIMARY KEY, recorded_us BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS chron_transactions_time ON chron_transactions (recorded_us)",
            "CREATE TABLE IF NOT EXISTS chron_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL,"
            " last_changed TEXT)",
        ]
        with self.transaction() as tx:
            if self.is_postgres:  # concurrent CREATE IF NOT EXISTS can still collide in pg
                tx.execute("SELECT pg_advisory_xact_lock(7243001)")
            for statement in statements:
                tx.execute(statement)
            names = {row[0] for row in tx.rows("SELECT name FROM chron_tracking")}
            if names - {TRACKING_NAME}:  # views written by another version of the fold
                tx.execute("DROP TABLE chron_tracking")
                tx.execute("DROP TABLE IF EXISTS chron_claims")  # where formats before 5 kept claims
                tx.execute(statements[-1])
                tx.clear_views()
            tx.execute(
                "INSERT INTO chron_tracking (name, position) VALUES (?, 0) ON CONFLICT DO NOTHING",
                (TRACKING_NAME,),
            )

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        cursor = self.connection.cursor()
        if self.is_postgres:
            with self.connection.transaction():
                if not write:  # every statement sees one snapshot, as a SQLite read does
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Transaction(self, cursor)
            return
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Transaction(self, cursor)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def checkpoint_later(self) -> None:
        """After a commit: once the write-ahead log holds as many pages as SQLite would
        checkpoint at (`CHECKPOINT_PAGES`), copy it back into the database on a thread of its
        own, on a connection of its own, while this process goes on (SQLite releases Python's
        lock while it copies, so this runs on the other core). A rebuild's commit would
        otherwise copy everything it wrote once more before returning: a tenth of a 100k-claim
        rebuild. The thread is not a daemon: the process waits for it before exiting, and
        `close()` and `checkpointed()` wait for it. A checkpoint cut short by a crash is only
        done again later, by SQLite."""
        if self.path is None or (self._checkpoint is not None and self._checkpoint.is_alive()):
            return
        try:
            wal_bytes = Path(self.path + "-wal").stat().st_size
        except OSError:
            return
        (page_size,) = self.connection.execute("PRAGMA page_size").fetchone()
        if wal_bytes < CHECKPOINT_PAGES * page_size:
            return
        self._checkpoint = threading.Thread(target=_checkpoint, args=(self.path,), name="chron-checkpoint")
        self._checkpoint.start()

    def checkpointed(self) -> float:
        """Wait for a checkpoint `checkpoint_later` started; the seconds waited."""
        started = time.perf_counter()
        if self._checkpoint is not None:
            self._checkpoint.join()
            self._checkpoint = None
        return time.perf_counter() - started

    def close(self) -> None:
        self.checkpointed()
        self.connection.close()


CHECKPOINT_FROM = 2_000
"""Events a catch-up folds from which it asks for `checkpoint_later`: the write-ahead log's
file keeps its size once grown, so its size alone would start a thread after every small
catch-up too. Smaller catch-ups leave the log to the log's writer, whose commits checkpoint
as SQLite does by default."""
CHECKPOINT_PAGES = 1000
"""Pages of write-ahead log from which a derived connection has it copied back into the
database after a commit: SQLite's own default for `wal_autocheckpoint`, which such a
connection turns off (the log's writer keeps it)."""


def _checkpoint(path: str) -> None:
    """Copy the write-ahead log of the SQLite file `path` back into it, as far as no reader
    still needs it (PASSIVE: waiting for nobody)."""
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return  # gone: nothing to copy
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass  # busy: SQLite checkpoints at a later commit of the log's writer
    finally:
        connection.close()


_COPY_TYPES = {
    "slug": "text",
    "claims": "bytea",
    "sort_key": "text",
    "digest": "text",
    "revision": "int4",
    "changed_at": "text",
    "body": "bytea",
    "source_id": "text",
    "incident": "text",
}
"""PostgreSQL's type of each column a fold copies (`chron_incidents`, `chron_views`,
`chron_citations`, as `Database.create_tables` makes them), for `Transaction.insert_many`'s
binary COPY, which sends each value in its type's own form."""


class Transaction:
    """One database transaction of the projection; SQL is written with ? placeholders."""

    def __init__(self, db: Database, cursor: Any) -> None:
        self.db = db
        self.cursor = cursor

    def _native(self, sql: str) -> str:
        """`sql` in the store's own placeholders."""
        return sql if self.db.placeholder == "?" else sql.replace("?", self.db.placeholder)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        self.cursor.execute(self._native(sql), tuple(params))
        return self.cursor

    def one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()

    @contextmanager
    def stream(self, sql: str, params: Iterable[Any] = (), size: int = 5000) -> Iterator[Iterator[Any]]:
        """The rows of `sql` as they are iterated (bounded memory for a query of any size), on
        a cursor of their own, so that this transaction can write while they are read; the
        cursor is closed on leaving, still within the transaction. PostgreSQL keeps the rows on
        the server (a named cursor, fetched `size` at a time, in binary: a log row's state then
        travels as its bytes, not as hex text to be decoded; psycopg gives the same Python
        values either way); SQLite steps through them."""
        if self.db.is_postgres:
            cursor = self.db.connection.cursor(name="chron_stream", binary=True)
            cursor.itersize = size
        else:
            cursor = self.db.connection.cursor()
        try:
            cursor.execute(self._native(sql), tuple(params))
            yield cursor
        finally:
            cursor.close()

    def rows_in(self, sql: str, values: list[Any], chunk: int = 500) -> Iterator[Any]:
        """The rows of `sql`, whose `{}` is an IN list, for every value in `values` (queried
        `chunk` values at a time, within any store's limit on parameters)."""
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            yield from self.rows(sql.format(", ".join("?" for _ in part)), part)

    def executemany(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self.cursor.executemany(self._native(sql), rows)

    def upsert_many(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert or update many rows. Pass a generator: each encoded row is then dropped once
        written (orjson keeps a 4 KiB buffer behind every output, so holding them all is costly)."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            f" ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
        )
        self.executemany(sql, rows)

    def insert_many(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert rows none of which is in `table` yet: on PostgreSQL with a binary COPY, one
        stream of rows rather than a statement each (a rebuild writes every incident so: a
        100k-claim rebuild 4% faster than by upserts; a text COPY was slower than upserts);
        on SQLite with one `executemany`. As `upsert_many`, a generator is read as it is
        written."""
        if self.db.is_postgres:
            with self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_COPY_TYPES[column] for column in columns])
                for row in rows:
                    copy.write_row(row)
            return
        self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})", rows)

    def upsert(self, table: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> None:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        self.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            f" ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}",
            values,
        )

    def tracking_position(self, lock: bool = False) -> int:
        sql = "SELECT position FROM chron_tracking WHERE name = ?"
        if lock and self.db.is_postgres:
            sql += " FOR UPDATE"
        row = self.one(sql, (TRACKING_NAME,))
        return row[0] if row else 0

    def tracking_last_changed(self) -> dt.datetime | None:
        row = self.one("SELECT last_changed FROM chron_tracking WHERE name = ?", (TRACKING_NAME,))
        return dt.datetime.fromisoformat(row[0]) if row and row[0] else None

    def set_tracking_position(self, position: int, last_changed: dt.datetime | None = None) -> None:
        if last_changed is None:
            self.execute(
                "UPDATE chron_tracking SET position = ?, last_changed = NULL WHERE name = ?",
                (position, TRACKING_NAME),
            )
            return
        previous = self.tracking_last_changed()
        latest = max(last_changed, previous) if previous else last_changed
        self.execute(
            "UPDATE chron_tracking SET position = ?, last_changed = ? WHERE name = ?",
            (position, latest.isoformat(), TRACKING_NAME),
        )

    def clear(self) -> None:
        self.clear_views()
        self.set_tracking_position(0)

    def clear_views(self) -> None:
        for table in (
            "chron_sources",
            "chron_incidents",
            "chron_citations",
            "chron_aliases",
            "chron_links",
            "chron_views",
            "chron_transactions",
        ):
            self.execute(f"DELETE FROM {table}")

    def add_transactions(self, transactions: list[tuple[int, int]]) -> None:
        """Note folded transactions: (position of the last event, transaction time in µs since
        1970) each, kept in `chron_transactions` for `log_as_of`."""
        self.executemany(
            "INSERT INTO chron_transactions (position, recorded_us) VALUES (?, ?)"
            " ON CONFLICT (position) DO UPDATE SET recorded_us = excluded.recorded_us",
            transactions,
        )

    def log_as_of(self, as_of: dt.datetime) -> tuple[int, dt.datetime | None]:
        """The position of the last event recorded by `as_of` and the latest transaction time
        by then, from the transactions the projection has folded (`add_transactions`): what a
        fold of the log's events recorded by `as_of` ends at, without reading the log."""
        limit = microseconds(as_of)
        position, latest = self.one(
            "SELECT max(position), max(recorded_us) FROM chron_transactions WHERE recorded_us <= ?", (limit,)
        )
        return position or 0, _from_microseconds(latest) if latest is not None else None

    def positions_recorded_after(self, moment: dt.datetime) -> list[tuple[int, int]]:
        """The stretches of the log recorded after `moment`, as (after, last) positions (the
        events after `after` up to `last`), in log order, from the transactions the projection
        has folded. With writers' clocks that disagree there may be several."""
        rows = self.rows(
            "SELECT previous, position FROM (SELECT position, recorded_us,"
            " lag(position, 1, 0) OVER (ORDER BY position) AS previous FROM chron_transactions) AS folded"
            " WHERE recorded_us > ? ORDER BY position",
            (microseconds(moment),),
        )
        stretches: list[tuple[int, int]] = []
        for after, last in rows:
            if stretches and stretches[-1][1] == after:
                stretches[-1] = (stretches[-1][0], last)
            else:
                stretches.append((after, last))
        return stretches

    def view_page(self, after: tuple[str, str] | None, size: int) -> list[tuple[str, str, bytes, int, str | None]]:
        """(sort key, slug, body, revision, changed_at) of up to `size` views, in chronological
        order, from just after the (sort key, slug) `after` (None: from the first)."""
        where = "" if after is None else " WHERE (sort_key, slug) > (?, ?)"
        rows = self.rows(
            f"SELECT sort_key, slug, body, revision, changed_at FROM chron_views{where}"
            " ORDER BY sort_key, slug LIMIT ?",
            (*(after or ()), size),
        )
        return [
            (key, slug, _read_row("chron_views", slug, bytes, body), revision, changed_at)
            for key, slug, body, revision, changed_at in rows
        ]

    def view_row(self, slug: str) -> tuple[bytes, int, str | None] | None:
        row = self.one("SELECT body, revision, changed_at FROM chron_views WHERE slug = ?", (slug,))
        return (_read_row("chron_views", slug, bytes, row[0]), row[1], row[2]) if row else None

    def has_claims_about(self, slug: str) -> bool:
        return self.one("SELECT 1 FROM chron_incidents WHERE slug = ?", (slug,)) is not None
