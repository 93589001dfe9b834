"""The log folded again for another reading: another point in time or another policy.

`scratch_replay` writes such a fold into a scratch copy of the projection's tables (a
temporary SQLite file), read back the way the current view is read. It folds the whole log,
as a rebuild does, except for the commonest readings under the projection's own policy:
`--known-at` a day, which starts from the stored view as it is, and `--as-of` a recent time.
Then most incidents look exactly as the stored view has them, and only the incidents the log
has touched since that time are folded again, from their own events
(`_fill_from_stored_view`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from chronology import domain, parallel
from chronology.bestview import IncidentView, content_digest
from chronology.errors import StoreError
from chronology.projection import (
    PARALLEL_FROM,
    Database,
    FoldResult,
    MemoryViews,
    Projection,
    TableState,
    TableViews,
    Transaction,
    aggregates_of,
    build_view,
    collector_paused,
    fold,
    fold_into_tables,
    microseconds,
)
from chronology.resolution import BUILT_IN_POLICIES, Policy, balanced
from chronology.state import MemoryState

FOLD_AGAIN_AT_MOST = 0.25
"""`--as-of` starts from the stored view when the events recorded after that time are at
most this share of the log and the incidents they touch at most this share of the incidents;
otherwise the whole log is folded again, which then costs no more."""


@contextmanager
def scratch_replay(
    archive: Any,
    *,
    as_of: dt.datetime | None = None,
    known_at: dt.date | None = None,
    policy: Policy = balanced,
) -> Iterator[TableState]:
    """The log folded again as the materialized projection is written, into a scratch copy
    of its tables (a temporary SQLite file in `$TMPDIR` or the system's temporary folder,
    deleted after): what the archive knew at `as_of`, what the public record said on
    `known_at`, under `policy`. It takes the memory of a rebuild rather than of the whole
    archive's claims, and is read a page at a time as the current view is (the state yielded
    is its one read transaction)."""
    with tempfile.TemporaryDirectory(prefix="chron-replay-") as folder:
        db = Database.scratch(Path(folder) / "replay.db")
        try:
            try:
                db.create_tables()
                with db.transaction() as tx, collector_paused():
                    result = None
                    if policy is balanced and (as_of is not None or known_at is not None):
                        result = _fill_from_stored_view(tx, archive, as_of)
                    if result is None:
                        result = _fold_whole_log(tx, archive, as_of, policy)
                    if known_at is not None:
                        _keep_what_was_public(TableState(tx), TableViews(tx), known_at, policy)
                    tx.set_tracking_position(result.last_position, result.last_changed)
            except sqlite3.OperationalError as error:
                if "full" not in str(error):
                    raise
                raise StoreError(
                    f"no room to fold the log again in {folder} ({error}): it needs about as much as"
                    " the store's own views; set TMPDIR to a folder with more room"
                ) from None
            with db.transaction(write=False) as tx:
                yield TableState(tx)
        finally:
            db.close()


def _fold_whole_log(tx: Transaction, archive: Any, as_of: dt.datetime | None, policy: Policy) -> FoldResult:
    """The whole log folded into `tx`'s tables as a rebuild folds it: from its rows, in C
    where `chronology._fold` was built. With `as_of`, the events recorded by then, decoded
    first: writers' clocks may disagree, so those need not be the log's first events."""
    helper = (
        parallel.enabled()
        and policy in BUILT_IN_POLICIES.values()  # the helper imports it by name
        and archive.max_position() >= PARALLEL_FROM
    )
    if as_of is None:
        return fold_into_tables(tx, archive, rows=archive.rows(), empty=True, policy=policy, helper=helper)
    events = (e for e in archive.read() if e.recorded_at <= as_of)
    return fold_into_tables(tx, archive, events, empty=True, policy=policy, helper=helper)


def _keep_what_was_public(state: TableState, views: TableViews, known_at: dt.date, policy: Policy) -> None:
    """Replace the view of each incident citing a source published after `known_at` by
    `view_known_at`'s, a page at a time in order of slug, or drop it; its revision and change
    date stay those of the archive's view. Every other view already is what was public then
    (all of its claims were), and is left as it is: the cost follows the incidents that later
    sources touched, not the archive."""
    later = {
        state.canonical(slug)
        for source in state.sources.values()
        if source.published_day > known_at
        for slug in state.incidents_citing(source.id)
    }
    for rows in _pages(state.tx, "chron_views", ("slug", "body", "revision", "changed_at"), 1):
        for slug, body, revision, changed_at in rows:
            if slug not in later:
                continue
            filtered = view_known_at(state, slug, orjson.loads(body)["retracted"], policy, known_at)
            if filtered is None:
                views.drop(slug)
                continue
            body = filtered.content_json()
            at = dt.datetime.fromisoformat(changed_at) if changed_at else None
            views.put_row(slug, filtered.sort_key[0], content_digest(body), revision, at, body)
        views.flush()  # rows after the last slug read are untouched: the next page is sound


def view_known_at(state: Any, slug: str, retracted: bool, policy: Policy, known_at: dt.date) -> IncidentView | None:
    """The view of incident `slug` (`retracted`: whether its whole view is) from only the
    claims public on `known_at`: None when there were none, or when all of those have since
    been retracted but the incident as a whole has not been."""
    filtered = build_view(state, slug, state.claims_of(slug), policy, known_at)
    if not filtered.claims or filtered.retracted and not retracted:
        return None
    return filtered


# --- as of a recent time: the stored view, and the incidents touched since folded again ------


def _fill_from_stored_view(tx: Transaction, archive: Any, as_of: dt.datetime | None) -> FoldResult | None:
    """Fill the empty scratch tables of `tx` with what the archive knew at `as_of` (None:
    now), as a fold of the events recorded by then writes them, starting from the stored
    (current) view; or write nothing and return None when too much has been recorded since
    (see `FOLD_AGAIN_AT_MOST`).

    An incident's view, its revision and date of change come only from the events of its
    claims, of the sources they cite and of its slugs (`aggregates_of`). Where none of those
    was recorded after `as_of`, a fold of the events recorded by `as_of` ends with exactly the
    stored view, and its rows are copied. The rest, the incidents touched since (each with
    every slug merged into it now, as they may have been apart then), are folded from their
    own events recorded by `as_of`, as `chron show --as-of` folds one; so are the sources
    registered, amended or graded since, the others are copied. Which events came
    after `as_of` is read from the transaction times the projection keeps, so this holds
    even when writers' clocks disagree and a later position carries an earlier time."""
    projection = Projection(archive).catch_up()
    try:
        with projection.state() as stored:
            upto = stored.tx.tracking_position()
            late = stored.tx.positions_recorded_after(as_of) if as_of is not None else []
            if sum(last - after for after, last in late) > FOLD_AGAIN_AT_MOST * upto:
                return None
            touched: set[str] = set()
            late_sources: set[UUID] = set()
            for after, last in late:
                for logged in archive.read(after=after, upto=last):
                    touched |= _incidents_touched(stored, archive, logged.event)
                    if isinstance(logged.event, _SOURCE_EVENTS):
                        late_sources.add(logged.event.originator_id)
            incidents = {stored.canonical(slug) for slug in touched}
            if len(incidents) > FOLD_AGAIN_AT_MOST * max(stored.view_count(), 1):
                return None
            groups = _in_groups(stored, incidents)
            slugs = {slug for _, group in groups for slug in group}
            _copy_untouched(stored.tx, tx, slugs, {str(i) for i in late_sources}, as_of)
            sources_then = TableState(tx, empty=True)  # the sources changed since, as they stood then
            for source in _folded(archive, late_sources, upto, as_of)[0].sources.values():
                sources_then.put_source(source)
            sources_then.flush()
            for concerned, group in groups:
                _write_folded(tx, *_folded(archive, concerned, upto, as_of), group)
            if as_of is None:
                position, last_changed = upto, stored.tx.tracking_last_changed()
            else:
                position, last_changed = stored.tx.log_as_of(as_of)
    finally:
        projection.close()
    return FoldResult(last_position=position, last_changed=last_changed)


def _folded(
    archive: Any, aggregates: set[UUID], upto: int, as_of: dt.datetime | None
) -> tuple[MemoryState, MemoryViews]:
    """The events of `aggregates` up to position `upto` recorded by `as_of`, folded in memory."""
    events = archive.read_of(aggregates, upto=upto)
    folded, folded_views = MemoryState(), MemoryViews()
    fold(folded, folded_views, (e for e in events if as_of is None or e.recorded_at <= as_of))
    return folded, folded_views


FOLD_AT_ONCE = 20_000
"""Claims of touched incidents folded together: the events of about that many are held at once."""


def _in_groups(stored: TableState, incidents: set[str]) -> list[tuple[set[UUID], set[str]]]:
    """The touched `incidents` in groups to fold one at a time, of up to `FOLD_AT_ONCE` claims
    (an incident with more alone): each group's aggregate ids (`aggregates_of`) and its slugs,
    every slug now merged into one of them included."""
    groups: list[tuple[set[UUID], set[str]]] = []
    held = 0
    for slug in sorted(incidents):
        claims = stored.claims_of(slug)
        if not groups or held and held + len(claims) > FOLD_AT_ONCE:
            groups.append((set(), set()))
            held = 0
        concerned, slugs = groups[-1]
        concerned |= aggregates_of(stored, slug, claims)
        slugs.update((slug, *stored.aliases_of(slug)))
        held += len(claims)
    return groups


_SOURCE_EVENTS = (domain.Source.Registered, domain.Source.Amended, domain.Source.Graded)


def _incidents_touched(state: TableState, archive: Any, event: Any) -> set[str]:
    """The slugs of the incidents whose views an event may change (as `apply_event` says, but
    found in the stored view rather than in a fold)."""
    if isinstance(event, domain.Claim.Recorded):
        return {event.content["incident"]}
    if isinstance(event, (domain.Claim.Retracted, domain.Claim.Ranked)):
        slug = archive.incident_of_claim(event.originator_id)
        return {slug} if slug is not None else set()
    if isinstance(event, _SOURCE_EVENTS):
        return state.incidents_citing(event.originator_id)
    if isinstance(event, domain.Incident.Merged):
        return {event.slug, event.into}
    if isinstance(event, domain.Incident.Linked):
        return {event.slug, event.other}
    return set()  # Incident.Named changes no view; nor does an event newer than this code


PAGE = 1000
"""Rows copied at a time from the stored view (bounded memory on an archive of any size)."""


def _copy_untouched(
    stored: Transaction, scratch: Transaction, slugs: set[str], sources: set[str], as_of: dt.datetime | None
) -> None:
    """Copy into the scratch tables the stored rows of every incident but `slugs` and of every
    source but `sources` (ids as text), and the transactions recorded by `as_of` (None: all)."""
    copies = (
        ("chron_views", ("slug", "sort_key", "digest", "revision", "changed_at", "body"), 1, 0, slugs),
        ("chron_incidents", ("slug", "claims"), 1, 0, slugs),
        ("chron_citations", ("source_id", "incident"), 2, 1, slugs),
        ("chron_aliases", ("old", "new"), 1, 0, slugs),
        ("chron_links", ("incident", "relation", "other", "position"), 3, 0, slugs),
        ("chron_sources", ("id", "body"), 1, 0, sources),
    )
    for table, columns, key_length, column, left_out in copies:
        for rows in _pages(stored, table, columns, key_length):
            scratch.insert_many(table, columns, [row for row in rows if row[column] not in left_out])
    limit = microseconds(as_of) if as_of is not None else 2**63 - 1
    for rows in _pages(stored, "chron_transactions", ("position", "recorded_us"), 1):
        scratch.insert_many("chron_transactions", ("position", "recorded_us"), [r for r in rows if r[1] <= limit])


def _pages(tx: Transaction, table: str, columns: tuple[str, ...], key_length: int) -> Iterator[list[tuple]]:
    """Every row of `table`, `PAGE` at a time in order of its primary key (its first
    `key_length` columns)."""
    key = ", ".join(columns[:key_length])
    listed = ", ".join(columns)
    rows = tx.rows(f"SELECT {listed} FROM {table} ORDER BY {key} LIMIT ?", (PAGE,))
    while rows:
        yield [tuple(row) for row in rows]
        if len(rows) < PAGE:
            return
        marks = ", ".join("?" for _ in range(key_length))
        rows = tx.rows(
            f"SELECT {listed} FROM {table} WHERE ({key}) > ({marks}) ORDER BY {key} LIMIT ?",
            (*rows[-1][:key_length], PAGE),
        )


def _write_folded(tx: Transaction, folded: MemoryState, folded_views: MemoryViews, slugs: set[str]) -> None:
    """Write what the fold of a group of touched incidents (`slugs`) knew at `as_of`: their
    claims, views, merges and links."""
    state, views = TableState(tx, empty=True), TableViews(tx, empty=True)
    for slug in sorted(slugs):
        for claim in folded.claims_recorded_under(slug):
            state.put_claim(claim)
    for old, new in folded.aliases.items():
        state.add_alias(old, new)
    for link in folded.links:
        state.add_link(link)
    for slug, (view, digest) in folded_views.views.items():
        if slug in slugs:
            views.put(view, digest, view.content_json())
    state.flush()
    views.flush()
