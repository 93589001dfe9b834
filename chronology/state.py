"""The fold: how each logged event changes what the archive knows.

`apply_event` is the one place events are interpreted. It works on any `ArchiveState`: the
in-memory one here (full replays, `--as-of`) and the table-backed one in `chronology.projection`
(the materialized view), so both read the log the same way. It returns the incidents whose best
view the event may have changed, so the projection recomputes only those.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any, Protocol
from uuid import UUID

from chronology import domain
from chronology.records import Claim, Link, Source


class ArchiveState(Protocol):
    """What the fold needs to read and write. Slugs passed in are as recorded (maybe aliases)."""

    def get_source(self, source_id: UUID) -> Source | None: ...
    def put_source(self, source: Source) -> None: ...
    def get_claim(self, claim_id: UUID) -> Claim | None: ...
    def put_claim(self, claim: Claim) -> None: ...
    def incidents_citing(self, source_id: UUID) -> set[str]: ...
    def canonical(self, slug: str) -> str: ...
    def add_alias(self, old: str, new: str) -> None: ...
    def add_link(self, link: Link) -> None: ...
    # read by the best-view builder (chronology.projection.build_view)
    def claims_of(self, slug: str) -> list[Claim]: ...
    def aliases_of(self, slug: str) -> list[str]: ...
    def links_of(self, slug: str) -> list[Link]: ...


def follow_aliases(aliases: dict[str, str], slug: str) -> str:
    """The surviving slug of an incident, after any chain of merges (a cycle stops the walk;
    corrections refuse to make one)."""
    seen = set()
    while slug in aliases and slug not in seen:
        seen.add(slug)
        slug = aliases[slug]
    return slug


def has_link(links: list[Link], link: Link) -> bool:
    """Whether `links` already relate the same incidents the same way (a link is asserted once,
    at its first position)."""
    return any((x.incident, x.relation, x.other) == (link.incident, link.relation, link.other) for x in links)


class Merges:
    """`aliases_of` and `links_of` for a state holding `aliases` (old slug -> new) and `links`,
    answered from an index of both by surviving slug, made when first asked and dropped by
    `merges_changed()` (a state calls it from `add_alias` and `add_link`). A rebuild asks once
    per incident: scanning every merge and link each time would cost incidents × merges."""

    aliases: dict[str, str]
    links: list[Link]
    _merges: tuple[dict[str, list[str]], dict[str, list[Link]]] | None = None

    def merges_changed(self) -> None:
        self._merges = None

    def aliases_of(self, slug: str) -> list[str]:
        """The slugs merged into `slug`, through any chain of merges, sorted."""
        return [old for old in self._merge_index()[0].get(slug, ()) if old != slug]

    def links_of(self, slug: str) -> list[Link]:
        """Analysts' links from `slug` (or a slug merged into it), to the surviving slugs."""
        return [
            Link(slug, link.relation, follow_aliases(self.aliases, link.other), link.position)
            for link in self._merge_index()[1].get(slug, ())
        ]

    def _merge_index(self) -> tuple[dict[str, list[str]], dict[str, list[Link]]]:
        if self._merges is None:
            merged: dict[str, list[str]] = defaultdict(list)
            for old in self.aliases:
                merged[follow_aliases(self.aliases, old)].append(old)
            linked: dict[str, list[Link]] = defaultdict(list)
            for link in self.links:  # in the order they were made
                linked[follow_aliases(self.aliases, link.incident)].append(link)
            self._merges = {new: sorted(olds) for new, olds in merged.items()}, dict(linked)
        return self._merges


def apply_event(state: ArchiveState, position: int, event: Any) -> set[str]:
    """Fold one event into `state`; return the canonical slugs of the incidents it touches."""
    if isinstance(event, domain.Claim.Recorded):
        claim = Claim.from_content(
            event.originator_id,
            event.content,
            event.source_id,
            event.timestamp,
            event.recorded_by,
            position,
        )
        state.put_claim(claim)
        return {state.canonical(claim.incident)}
    if isinstance(event, (domain.Claim.Retracted, domain.Claim.Ranked)):
        claim = state.get_claim(event.originator_id)
        if claim is None:  # cannot happen in a log written by Chronology
            return set()
        if isinstance(event, domain.Claim.Retracted):
            claim = claim._replace(retracted=True, retraction_reason=event.reason)
        else:
            claim = claim._replace(rank=event.rank, rank_reason=event.reason)
        state.put_claim(claim)
        return {state.canonical(claim.incident)}
    if isinstance(event, domain.Source.Registered):
        state.put_source(
            Source.from_metadata(event.originator_id, event.key, event.metadata, event.published, event.timestamp)
        )
        return set()
    if isinstance(event, (domain.Source.Amended, domain.Source.Graded)):
        source = state.get_source(event.originator_id)
        if source is None:
            return set()
        if isinstance(event, domain.Source.Graded):
            source = dataclasses.replace(source, reliability=event.reliability)
        else:
            changes = {k: v for k, v in event.changes.items() if k != "id"}
            source = dataclasses.replace(source, **changes)
        state.put_source(source)
        return {state.canonical(slug) for slug in state.incidents_citing(source.id)}
    if isinstance(event, domain.Incident.Merged):
        state.add_alias(event.slug, event.into)
        return {event.slug, state.canonical(event.into)}
    if isinstance(event, domain.Incident.Linked):
        state.add_link(Link(event.slug, event.relation, event.other, position))
        return {state.canonical(event.slug), state.canonical(event.other)}
    return set()  # Incident.Named and anything newer than this code: no effect on the view


class MemoryState(Merges):
    """The whole archive folded in memory: used for full replays and time travel."""

    def __init__(self) -> None:
        self.sources: dict[UUID, Source] = {}
        self.claims: dict[UUID, Claim] = {}
        self.aliases: dict[str, str] = {}
        self.links: list[Link] = []
        self._by_incident: dict[str, list[UUID]] = defaultdict(list)
        self._by_source: dict[UUID, set[str]] = defaultdict(set)
        self.position = 0
        self.last_changed: dt.datetime | None = None

    # ArchiveState
    def get_source(self, source_id: UUID) -> Source | None:
        return self.sources.get(source_id)

    def put_source(self, source: Source) -> None:
        self.sources[source.id] = source

    def get_claim(self, claim_id: UUID) -> Claim | None:
        return self.claims.get(claim_id)

    def put_claim(self, claim: Claim) -> None:
        if claim.id not in self.claims:
            self._by_incident[claim.incident].append(claim.id)
            self._by_source[claim.source_id].add(claim.incident)
        self.claims[claim.id] = claim

    def incidents_citing(self, source_id: UUID) -> set[str]:
        return set(self._by_source.get(source_id, ()))

    def canonical(self, slug: str) -> str:
        return follow_aliases(self.aliases, slug)

    def add_alias(self, old: str, new: str) -> None:
        self.aliases[old] = new
        self.merges_changed()

    def add_link(self, link: Link) -> None:
        if not has_link(self.links, link):
            self.links.append(link)
            self.merges_changed()

    # reading
    def incident_slugs(self) -> list[str]:
        """Canonical slugs of every incident that has claims, sorted."""
        return sorted({self.canonical(slug) for slug in self._by_incident})

    def claims_of(self, slug: str) -> list[Claim]:
        """Every claim about the incident, under its own slug or any slug merged into it."""
        return [claim for name in (slug, *self.aliases_of(slug)) for claim in self.claims_recorded_under(name)]

    def claims_recorded_under(self, slug: str) -> list[Claim]:
        """The claims recorded under `slug` itself (not under slugs merged into it)."""
        return [self.claims[i] for i in self._by_incident.get(slug, ())]
