"""Rebuilding the chronology for reading: now, as of a time, as known on a day, and over time.

`load_timeline` and `timeline_pages` serve the current view from the materialized projection,
and for another point in time or another policy fold the log again into a scratch copy of it
(`chronology.scratch.scratch_replay`), read the same way. `field_history` shows how a
field's best value changed as claims came in, by record time or by publication time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, zip_longest
from types import MappingProxyType
from typing import Any

from chronology.bestview import IncidentView
from chronology.errors import ChronologyError, UnknownReference
from chronology.fields import field_type
from chronology.projection import (
    MemoryViews,
    Projection,
    TableState,
    aggregates_of,
    build_view,
    collector_paused,
    fold,
)
from chronology.resolution import BUILT_IN_POLICIES
from chronology.scratch import scratch_replay, view_known_at
from chronology.state import MemoryState
from chronology.timeline import Timeline

DEFAULT_POLICY = "balanced"


@dataclass(frozen=True)
class Filters:
    """Which incidents a timeline keeps (all when empty)."""

    tags: tuple[str, ...] = ()
    incidents: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None

    def keep(self, view: IncidentView) -> bool:
        tags = view.field("tags")
        return self._keeps(view.slug, view.aliases, tags.best if tags else None, view.date)

    def keep_stored(self, content: dict[str, Any]) -> bool:
        """`keep` for a view as the projection stores it (`IncidentView.content_json`), before
        the rest of it is decoded."""
        tags = next((f[1] for f in content["fields"] if f[0] == "tags"), None)  # (field, best, ...)
        return self._keeps(content["slug"], content["aliases"], tags, content["date"])

    def stored_check(self) -> Callable[[dict[str, Any]], bool] | None:
        """`keep_stored`, or None when these filters keep every view (none need be checked)."""
        return None if self == Filters() else self.keep_stored

    def _keeps(self, slug: str, aliases: Any, tags: Any, date: dict[str, str] | None) -> bool:
        if self.incidents and slug not in self.incidents and not (set(aliases) & set(self.incidents)):
            return False
        if self.tags and not set(self.tags) & set(tags or []):
            return False
        if self.since or self.until:
            if date is None:
                return False
            if self.since and dt.date.fromisoformat(date["latest"]) < self.since:
                return False
            if self.until and dt.date.fromisoformat(date["earliest"]) > self.until:
                return False
        return True


def load_timeline(
    archive: Any,
    *,
    policy: str = DEFAULT_POLICY,
    policy_function: Any = None,
    as_of: dt.datetime | None = None,
    known_at: dt.date | None = None,
    filters: Filters = Filters(),
    title: str = "Chronology",
    projection: Projection | None = None,
) -> Timeline:
    """The timeline exporters and `chron replay` read, whole. A long-lived caller (the server)
    passes its own caught-up `projection`; otherwise one is opened and closed here."""
    if filters.incidents and not _is_now(as_of, known_at, policy):
        return _named_incidents_folded_alone(archive, filters, as_of, known_at, policy, policy_function, title)
    with _state_at(archive, projection, as_of, known_at, policy, policy_function) as state, collector_paused():
        if filters.incidents:  # read by key, not by scanning every view or source
            views = [v for v in state.views_named(filters.incidents) if filters.keep(v)]
            sources = {i: state.get_source(i) for v in views for i in v.sources}
        else:
            views = state.views(filters.stored_check())
            sources = state.sources
        claims = state.claims_about(views)
        position = state.tx.tracking_position()
        last_changed = state.tx.tracking_last_changed()
    return Timeline(
        title=title,
        incidents=tuple(views),
        claims=claims,
        sources=sources,
        policy=policy,
        position=position,
        last_changed=last_changed,
    )


def _named_incidents_folded_alone(
    archive: Any,
    filters: Filters,
    as_of: dt.datetime | None,
    known_at: dt.date | None,
    policy: str,
    policy_function: Any,
    title: str,
) -> Timeline:
    """`load_timeline` of a choice of incidents at another point in time or under another
    policy: each incident folded from its own events only (its claims', their sources', its
    merged slugs'), read by aggregate id as `field_history` reads them, so that `chron show
    --policy` or `--incident` with `--as-of` costs in proportion to the incident, not to the
    log. The timeline's position and last change as of a time come from the transaction times
    the projection keeps (`Transaction.log_as_of`)."""
    function = policy_function or BUILT_IN_POLICIES[policy]
    with _current_state(archive) as state, collector_paused():
        concerned: set[Any] = set()
        for name in filters.incidents:
            canonical = state.canonical(name)
            concerned |= aggregates_of(state, canonical, state.claims_of(canonical))
        upto = state.tx.tracking_position()
        if as_of is None:
            position, last_changed = upto, state.tx.tracking_last_changed()
        else:
            position, last_changed = state.tx.log_as_of(as_of)
    events = archive.read_of(concerned, upto=upto)
    if as_of is not None:
        events = [e for e in events if e.recorded_at <= as_of]
    folded, folded_views = MemoryState(), MemoryViews()
    found: dict[str, IncidentView] = {}
    with collector_paused():
        fold(folded, folded_views, events, function)
        for name in filters.incidents:
            entry = folded_views.views.get(folded.canonical(name))
            view = entry[0] if entry is not None else None
            if view is not None and known_at is not None:
                filtered = view_known_at(folded, view.slug, view.retracted, function, known_at)
                view = filtered and dataclasses.replace(filtered, revision=view.revision, changed_at=view.changed_at)
            if view is not None and filters.keep(view):
                found[view.slug] = view
    views = sorted(found.values(), key=lambda v: v.sort_key)
    cited = {i for v in views for i in v.claims}
    return Timeline(
        title=title,
        incidents=tuple(views),
        claims={c.id: c for v in views for c in folded.claims_of(v.slug) if c.id in cited},
        sources={i: folded.get_source(i) for v in views for i in v.sources},
        policy=policy,
        position=position,
        last_changed=last_changed,
    )


def timeline_pages(
    archive: Any,
    *,
    policy: str = DEFAULT_POLICY,
    policy_function: Any = None,
    as_of: dt.datetime | None = None,
    known_at: dt.date | None = None,
    filters: Filters = Filters(),
    title: str = "Chronology",
    projection: Projection | None = None,
    page: int = 1000,
) -> Iterator[Timeline]:
    """`load_timeline` a page of up to `page` incidents at a time, in chronological order, so
    that printing or exporting an archive of any size takes the memory of one page (pause the
    cycle collector around the loop, as `load_timeline` does). The pages are read in one
    transaction: together they are one timeline, at one log position, whose size each page's
    `total` gives. There is always a first page, empty for an empty timeline. (A choice of
    incidents, read by key, is one page.)"""
    if filters.incidents:
        yield load_timeline(
            archive,
            policy=policy,
            policy_function=policy_function,
            as_of=as_of,
            known_at=known_at,
            filters=filters,
            title=title,
            projection=projection,
        )
        return
    with _state_at(archive, projection, as_of, known_at, policy, policy_function) as state:
        total, pages = state.view_pages(filters.stored_check(), page)
        common = {
            "title": title,
            "sources": MappingProxyType(state.sources),
            "policy": policy,
            "position": state.tx.tracking_position(),
            "last_changed": state.tx.tracking_last_changed(),
            "total": total,
        }
        empty = True
        for views, claims in pages:
            empty = False
            yield Timeline(incidents=tuple(views), claims=MappingProxyType(claims), **common)
        if empty:
            yield Timeline(incidents=(), claims={}, **common)


def _is_now(as_of: dt.datetime | None, known_at: dt.date | None, policy: str) -> bool:
    """Whether a reading is the one the projection keeps: now, under the default policy."""
    return as_of is None and known_at is None and policy == DEFAULT_POLICY


@contextmanager
def _state_at(
    archive: Any,
    projection: Projection | None,
    as_of: dt.datetime | None,
    known_at: dt.date | None,
    policy: str,
    policy_function: Any,
) -> Iterator[TableState]:
    """The folded state a timeline is read from: the materialized view, or for another point
    in time or another policy, the log folded again into a scratch copy of it."""
    if _is_now(as_of, known_at, policy):
        with _current_state(archive, projection) as state:
            yield state
        return
    function = policy_function or BUILT_IN_POLICIES[policy]
    with scratch_replay(archive, as_of=as_of, known_at=known_at, policy=function) as state:
        yield state


@contextmanager
def _current_state(archive: Any, projection: Projection | None = None) -> Iterator[TableState]:
    """The materialized view in one read transaction. A long-lived caller (the server) passes
    its own caught-up `projection`; otherwise one is caught up here and closed after."""
    owned = projection is None
    if owned:
        projection = Projection(archive).catch_up()
    try:
        with projection.state() as state:
            yield state
    finally:
        if owned:
            projection.close()


def difference_from_a_full_replay(archive: Any) -> str | None:
    """`chron replay --verify`: the stored view against the whole log folded again from
    position 0 (`scratch_replay`), view by view in chronological order: content, revision and
    date of change. None when they are identical; otherwise what differs, at the first
    incident that does. Takes the memory of a rebuild, whatever the archive's size."""
    with scratch_replay(archive) as full, _current_state(archive) as stored:
        if full.tx.tracking_position() != stored.tx.tracking_position():
            raise ChronologyError("the log grew while it was being checked: run the check again")
        rows = zip_longest(chain.from_iterable(stored.view_rows(1000)), chain.from_iterable(full.view_rows(1000)))
        for kept, replayed in rows:
            if kept == replayed:
                continue
            if replayed is None or kept is not None and kept[:2] < replayed[:2]:
                return f"incident '{kept[1]}' of the stored view is not where a full replay puts it (or not in it)"
            if kept is None or kept[1] != replayed[1]:
                return f"incident '{replayed[1]}' of a full replay is not where the stored view has it (or not in it)"
            parts = ("sort date", "slug", "content", "revision", "date of change")
            differing = [name for name, a, b in zip(parts, kept, replayed, strict=True) if a != b]
            verb = "differ" if len(differing) > 1 else "differs"
            return f"incident '{kept[1]}': its {' and '.join(differing)} {verb}"
    return None


# --- history ---------------------------------------------------------------------------------


def field_history(
    archive: Any,
    slug: str,
    field: str | None = None,
    by: str = "record",
) -> list[dict[str, Any]]:
    """How the best value of `field` (or of every field) of an incident changed.

    by="record": after each transaction in the log that touched the incident (retractions and
    rankings included). by="publication": adding the incident's claims in order of their
    sources' publication, as the public record grew (claims as they stand now).

    Either costs in proportion to the incident, not to the log: the claims come from the
    materialized view, and "record" folds only the events of those claims, of the sources
    they cite and of the slugs merged with the incident, read by aggregate id."""
    if field is not None:
        field_type(field)  # unknown field: clear error
    with _current_state(archive) as state, collector_paused():
        canonical = state.canonical(slug)
        claims = state.claims_of(canonical)
        if not claims:
            raise UnknownReference(f"unknown incident '{slug}'")
        if by == "publication":
            return _history_by_publication(state, canonical, claims, field)
        concerned = aggregates_of(state, canonical, claims)
        position = state.tx.tracking_position()
    folded = MemoryState()
    views = _NotingViews(folded, slug, _FieldChanges(field))
    with collector_paused():
        fold(folded, views, archive.read_of(concerned, upto=position))
    return views.changes.entries


def _history_by_publication(state: Any, canonical: str, claims: list[Any], field: str | None) -> list[dict[str, Any]]:
    day_of = {c.id: state.get_source(c.source_id).published_day for c in claims}
    ordered = sorted(claims, key=lambda c: (day_of[c.id], c.position))
    changes = _FieldChanges(field)
    for index, claim in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and day_of[following.id] == day_of[claim.id]:
            continue  # one step per publication day
        view = build_view(state, canonical, ordered[: index + 1])
        changes.note(view.fields, {"published": day_of[claim.id].isoformat()})
    return changes.entries


class _FieldChanges:
    """The history entries: a field's summary each time it differs from the last one noted."""

    def __init__(self, field: str | None) -> None:
        self.field = field
        self.last: dict[str, tuple] = {}
        self.entries: list[dict[str, Any]] = []

    def note(self, field_views: Any, when: dict[str, Any]) -> None:
        for view in field_views:
            if self.field is not None and view.field != self.field:
                continue
            summary = (view.best, view.status, view.low, view.high, view.hedge)
            if self.last.get(view.field) == summary:
                continue
            self.last[view.field] = summary
            self.entries.append(
                {
                    "field": view.field,
                    **when,
                    "best": view.best,
                    "low": view.low,
                    "high": view.high,
                    "qualifier": view.qualifier,
                    "hedge": view.hedge,
                    "status": view.status,
                    "number_of_sources": view.number_of_sources,
                }
            )


class _NotingViews(MemoryViews):
    """In-memory views that note the changes of one incident (under its surviving slug) as the
    fold refreshes it after each transaction."""

    def __init__(self, state: MemoryState, slug: str, changes: _FieldChanges) -> None:
        super().__init__()
        self.state, self.slug, self.changes = state, slug, changes

    def put(self, view: IncidentView, digest: str, body: bytes) -> None:
        super().put(view, digest, body)
        if view.slug == self.state.canonical(self.slug):
            self.changes.note(
                view.fields, {"position": self.state.position, "recorded_at": view.changed_at.isoformat()}
            )


def current_view(
    archive: Any,
    slug: str,
    policy: str = DEFAULT_POLICY,
    policy_function: Any = None,
    *,
    as_of: dt.datetime | None = None,
    known_at: dt.date | None = None,
) -> tuple[IncidentView, Timeline]:
    """One incident's view (now, or as of a time, or as known on a day), with the claims and
    sources that explain it."""
    timeline = load_timeline(
        archive,
        policy=policy,
        policy_function=policy_function,
        as_of=as_of,
        known_at=known_at,
        filters=Filters(incidents=(slug,)),
    )
    if not timeline.incidents:
        when = "".join(
            [f" as of {as_of.isoformat()}" if as_of else "", f" as known on {known_at.isoformat()}" if known_at else ""]
        )
        raise UnknownReference(f"unknown incident '{slug}'{when}")
    return timeline.incidents[0], timeline
