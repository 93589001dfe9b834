"""The timeline: the read-only object every exporter receives, and the `Exporter` contract.

This is the API plugin authors code against (docs/plugins.md); `TIMELINE_VERSION` goes up when
a field is removed or changes meaning, never when one is added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from uuid import UUID

from chronology.bestview import IncidentView
from chronology.records import Claim, Source

TIMELINE_VERSION = 1


@dataclass(frozen=True)
class Timeline:
    """Incidents in chronological order with their best views, and the claims and sources
    those views rest on. Everything in it is immutable."""

    title: str
    incidents: tuple[IncidentView, ...]
    claims: Mapping[UUID, Claim]
    sources: Mapping[UUID, Source]
    policy: str
    position: int
    """Log position the timeline reflects."""
    last_changed: dt.datetime | None
    """The latest transaction time the timeline reflects (never moves backwards when writers'
    clocks disagree; None for an empty log)."""
    total: int | None = None
    """When this timeline is one page of a larger one (see `Exporter.render_pages`): how many
    incidents all the pages hold. None: this is the whole timeline."""
    version: int = TIMELINE_VERSION

    def __post_init__(self) -> None:
        for name in ("claims", "sources"):  # read-only views of copies (pages share theirs)
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    @property
    def incident_count(self) -> int:
        """How many incidents the whole timeline holds (every page of it, when paged)."""
        return len(self.incidents) if self.total is None else self.total

    def claims_of(self, incident: IncidentView) -> list[Claim]:
        """Every claim about the incident (retracted ones included), in id order."""
        return [self.claims[i] for i in incident.claims]

    def sources_of(self, incident: IncidentView) -> list[Source]:
        """The sources the incident's claims cite, by publication then key."""
        found = [self.sources[i] for i in incident.sources]
        return sorted(found, key=lambda s: (s.published_day, s.key))


@dataclass(frozen=True)
class Exporter:
    """One output format. `render(timeline, options)` returns bytes: same timeline, same bytes."""

    name: str
    description: str
    media_type: str
    file_extension: str
    render: Callable[[Timeline, Mapping[str, str]], bytes]
    options: Mapping[str, str] = field(default_factory=dict)
    """Options the exporter understands, {name: help}; passed as `--option name=value`."""
    render_pages: Callable[[Iterable[Timeline], Mapping[str, str]], Iterable[bytes]] | None = None
    """Optional: the bytes `render` makes, in pieces, from the timeline given as pages of its
    incidents in order. Each page is a `Timeline` with those incidents and the claims and
    sources they rest on; all share the title, policy, position and `total`; there is always a
    first page, empty for an empty timeline. With it, `chron export` and the feeds publish an
    archive of any size in the memory of one page; without it, they hold the whole timeline."""
