"""Rebuilding the chronology for reading: now, as of a time, as known on a day, and over time.

`load_timeline` serves the current view from the materialized projection, and folds the log in
memory when asked for another point in time or another policy. `field_history` shows how a
field's best value changed as claims came in, by record time or by publication time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from chronology.bestview import IncidentView
from chronology.errors import UnknownReference
from chronology.fields import field_type
from chronology.projection import Projection, replay
from chronology.records import Claim
from chronology.resolution import BUILT_IN_POLICIES, resolve_field
from chronology.state import MemoryState, apply_event
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
        if self.incidents and view.slug not in self.incidents and not (set(view.aliases) & set(self.incidents)):
            return False
        if self.tags:
            tags = view.field("tags")
            if tags is None or not set(self.tags) & set(tags.best or []):
                return False
        if self.since or self.until:
            if view.date is None:
                return False
            if self.since and dt.date.fromisoformat(view.date["latest"]) < self.since:
                return False
            if self.until and dt.date.fromisoformat(view.date["earliest"]) > self.until:
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
) -> Timeline:
    """The timeline exporters and `chron replay` read."""
    last_event = _last_event_time(archive, as_of)
    if as_of is None and known_at is None and policy == DEFAULT_POLICY:
        projection = Projection(archive).catch_up()
        try:
            with projection.state() as state:
                views = [v for v in state.views() if filters.keep(v)]
                claims = state.claims_about(views)
                sources = state.sources
                position = state.tx.tracking_position()
        finally:
            projection.close()
    else:
        function = policy_function or BUILT_IN_POLICIES[policy]
        state, all_views = replay(archive, as_of=as_of, known_at=known_at, policy=function)
        views = [v for v in all_views if filters.keep(v)]
        claims = {c.id: c for v in views for c in state.claims_of(v.slug)}
        sources = dict(state.sources)
        position = state.position
    return Timeline(
        title=title,
        incidents=tuple(views),
        claims=claims,
        sources=sources,
        policy=policy,
        position=position,
        last_changed=last_event,
    )


def _last_event_time(archive: Any, as_of: dt.datetime | None) -> dt.datetime | None:
    """Transaction time of the newest event (by `as_of`): the feed's Last-Modified."""
    top = archive.max_position()
    if not top:
        return None
    if as_of is None:
        last = next(iter(archive.read(after=top - 1)), None)
        return last.recorded_at if last else None
    times = [e.recorded_at for e in archive.read() if e.recorded_at <= as_of]
    return max(times) if times else None


def full_replay_matches_projection(archive: Any) -> tuple[bool, bytes, bytes]:
    """`chron replay --verify`: the materialized view against a fold from position 0."""
    import orjson

    materialized = load_timeline(archive)
    state, views = replay(archive)
    incremental = orjson.dumps([v.as_dict() for v in materialized.incidents], option=orjson.OPT_SORT_KEYS)
    full = orjson.dumps([v.as_dict() for v in views], option=orjson.OPT_SORT_KEYS)
    return incremental == full, incremental, full


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
    sources' publication, as the public record grew (claims as they stand now)."""
    if field is not None:
        field_type(field)  # unknown field: clear error
    if by == "publication":
        return _history_by_publication(archive, slug, field)
    state = MemoryState()
    changes: list[dict[str, Any]] = []
    last: dict[str, tuple] = {}
    touched = False
    group_time = None
    group: list[Any] = []

    def close_group() -> None:
        canonical = state.canonical(slug)
        claims = state.claims_of(canonical)
        _record_changes(state, canonical, claims, field, last, changes, group[-1], "recorded_at")

    for logged in archive.read():
        if group_time is not None and logged.recorded_at != group_time and touched:
            close_group()
            touched = False
        if group_time != logged.recorded_at:
            group = []
        group_time = logged.recorded_at
        group.append(logged)
        affected = apply_event(state, logged.position, logged.event)
        if state.canonical(slug) in affected or slug in affected:
            touched = True
    if touched:
        close_group()
    if not state.claims_of(state.canonical(slug)):
        raise UnknownReference(f"unknown incident '{slug}'")
    return changes


def _history_by_publication(archive: Any, slug: str, field: str | None) -> list[dict[str, Any]]:
    state, _views = replay(archive)
    canonical = state.canonical(slug)
    claims = state.claims_of(canonical)
    if not claims:
        raise UnknownReference(f"unknown incident '{slug}'")
    ordered = sorted(claims, key=lambda c: (state.sources[c.source_id].published_day, c.position))
    changes: list[dict[str, Any]] = []
    last: dict[str, tuple] = {}
    day_claims: list[Claim] = []
    for index, claim in enumerate(ordered):
        day_claims.append(claim)
        day = state.sources[claim.source_id].published_day
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and state.sources[following.source_id].published_day == day:
            continue
        marker = {"published": day.isoformat()}
        _record_changes(state, canonical, list(day_claims), field, last, changes, marker, None)
    return changes


def _record_changes(
    state,
    slug: str,
    claims: list[Claim],
    field: str | None,
    last: dict[str, tuple],
    changes: list[dict[str, Any]],
    when: Any,
    time_attribute: str | None,
) -> None:
    sources = {sid: state.get_source(sid) for sid in {c.source_id for c in claims}}
    by_field: dict[str, list[Claim]] = {}
    for claim in claims:
        by_field.setdefault(claim.field, []).append(claim)
    names = [field] if field else sorted(set(by_field) | set(last))
    for name in names:
        if not by_field.get(name):
            continue  # nothing claimed about this field yet
        view = resolve_field(name, by_field[name], sources)
        summary = (view.best, view.status, view.low, view.high, view.hedge)
        if last.get(name) == summary:
            continue
        last[name] = summary
        entry: dict[str, Any] = {"field": name}
        if time_attribute:
            entry["position"] = when.position
            entry["recorded_at"] = when.recorded_at.isoformat()
        else:
            entry.update(when)
        entry.update(
            best=view.best,
            low=view.low,
            high=view.high,
            hedge=view.hedge,
            status=view.status,
            number_of_sources=view.number_of_sources,
        )
        changes.append(entry)


def current_view(
    archive: Any,
    slug: str,
    policy: str = DEFAULT_POLICY,
    policy_function: Any = None,
) -> tuple[IncidentView, Timeline]:
    """One incident's current view, with the claims and sources that explain it."""
    timeline = load_timeline(
        archive, policy=policy, policy_function=policy_function, filters=Filters(incidents=(slug,))
    )
    if not timeline.incidents:
        raise UnknownReference(f"unknown incident '{slug}'")
    return timeline.incidents[0], timeline
