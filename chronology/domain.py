"""The domain model: sources, claims and incidents as event-sourced aggregates.

One aggregate per claim and per source, so concurrent ingesters never contend and a duplicate is
rejected by the store's own uniqueness; an incident aggregate exists only once an analyst merges
or links it. Ids are derived from content (uuid5), so ingesting the same fact twice is a no-op.

Every event class carries an explicit, stable TOPIC ("chronology:Claim.Recorded"): moving a
module never orphans the archive. (The aggregate classes keep eventsourcing's module-path topic,
which is only used to rebuild an aggregate in this process, never by the projection.)
Event versions are upcast here, in one place (`upcast_vN_vM` methods), never rewritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, register_topic

from chronology.ids import claim_id, incident_id, source_id


def claim_recorded_states(
    claims: Iterable[tuple[dict[str, Any], UUID]], recorded_by: str, timestamp: dt.datetime
) -> Iterator[bytes]:
    """The stored state of the `Claim.Recorded` event of each (content, source) of one
    transaction (an ingested file), encoded directly: byte for byte what the aggregate path
    (Claim.record, then the mapper and OrjsonTranscoder) writes, without building aggregate
    and event objects; tests/test_log.py proves the two paths agree. `content` is already
    JSON-native (chronology.fields makes it so). The time and each source's id are written
    out once. Each result is copied to its exact size: orjson keeps a 4 KiB buffer behind
    each output, and ingest holds a whole file's worth."""
    when = {"_data_": timestamp.isoformat(), "_type_": "datetime_iso"}
    tagged: dict[UUID, dict[str, str]] = {}
    for content, source in claims:
        source_tag = tagged.get(source)
        if source_tag is None:
            source_tag = tagged[source] = {"_data_": source.hex, "_type_": "uuid_hex"}
        encoded = orjson.dumps(
            {
                "content": content,
                "originator_topic": _CLAIM_TOPIC,
                "recorded_by": recorded_by,
                "source_id": source_tag,
                "timestamp": when,
            },
            option=orjson.OPT_SORT_KEYS,
        )
        yield bytes(memoryview(encoded))


class Source(Aggregate):
    """A document in the archive: who published it, when, and how far it can be trusted."""

    class Registered(Aggregate.Created):
        TOPIC = "chronology:Source.Registered"
        key: str
        metadata: dict[str, Any]
        published: dt.date | dt.datetime
        recorded_by: str

    class Amended(Aggregate.Event):
        TOPIC = "chronology:Source.Amended"
        changes: dict[str, Any]
        reason: str
        recorded_by: str

        def apply(self, source: Source) -> None:
            source.metadata = {**source.metadata, **self.changes}
            if "published" in self.changes:
                source.published = self.changes["published"]

    class Graded(Aggregate.Event):
        TOPIC = "chronology:Source.Graded"
        reliability: str
        reason: str
        recorded_by: str

        def apply(self, source: Source) -> None:
            source.metadata = {**source.metadata, "reliability": self.reliability}

    def __init__(self, key: str, metadata: dict[str, Any], published: dt.date | dt.datetime, recorded_by: str) -> None:
        self.key = key
        self.metadata = metadata
        self.published = published

    @staticmethod
    def create_id(key: str) -> UUID:
        return source_id(key)

    @classmethod
    def register(
        cls,
        key: str,
        metadata: dict[str, Any],
        published: dt.date | dt.datetime,
        recorded_by: str,
        timestamp: dt.datetime,
    ) -> Source:
        return cls._create(
            cls.Registered,
            id=source_id(key),
            key=key,
            metadata=metadata,
            published=published,
            recorded_by=recorded_by,
            timestamp=timestamp,
        )

    def amend(self, changes: dict[str, Any], reason: str, recorded_by: str) -> None:
        self.trigger_event(self.Amended, changes=changes, reason=reason, recorded_by=recorded_by)

    def grade(self, reliability: str, reason: str, recorded_by: str) -> None:
        self.trigger_event(self.Graded, reliability=reliability, reason=reason, recorded_by=recorded_by)


class Claim(Aggregate):
    """One statement, by one source, about one field of one incident."""

    class Recorded(Aggregate.Created):
        TOPIC = "chronology:Claim.Recorded"
        content: dict[str, Any]
        source_id: UUID
        recorded_by: str

    class Retracted(Aggregate.Event):
        TOPIC = "chronology:Claim.Retracted"
        reason: str
        recorded_by: str

        def apply(self, claim: Claim) -> None:
            claim.retracted = True

    class Ranked(Aggregate.Event):
        TOPIC = "chronology:Claim.Ranked"
        rank: str
        reason: str
        recorded_by: str

        def apply(self, claim: Claim) -> None:
            claim.rank = self.rank

    def __init__(self, content: dict[str, Any], source_id: UUID, recorded_by: str) -> None:
        self.content = content
        self.source_id = source_id
        self.retracted = False
        self.rank = "normal"

    @classmethod
    def record(cls, content: dict[str, Any], source: UUID, recorded_by: str, timestamp: dt.datetime) -> Claim:
        return cls._create(
            cls.Recorded,
            id=claim_id(content, source),
            content=content,
            source_id=source,
            recorded_by=recorded_by,
            timestamp=timestamp,
        )

    def retract(self, reason: str, recorded_by: str) -> None:
        self.trigger_event(self.Retracted, reason=reason, recorded_by=recorded_by)

    def set_rank(self, rank: str, reason: str, recorded_by: str) -> None:
        self.trigger_event(self.Ranked, rank=rank, reason=reason, recorded_by=recorded_by)


class Incident(Aggregate):
    """An incident's own history: only merges into another slug and links to other incidents."""

    class Named(Aggregate.Created):
        TOPIC = "chronology:Incident.Named"
        slug: str
        recorded_by: str

    class Merged(Aggregate.Event):
        """IncidentsMerged: this slug turned out to be the same incident as `into`."""

        TOPIC = "chronology:Incident.Merged"
        slug: str
        into: str
        reason: str
        recorded_by: str

        def apply(self, incident: Incident) -> None:
            incident.merged_into = self.into

    class Linked(Aggregate.Event):
        """IncidentLinked: this incident `relation` the `other` one (e.g. responds_to)."""

        TOPIC = "chronology:Incident.Linked"
        slug: str
        relation: str
        other: str
        reason: str
        recorded_by: str

        def apply(self, incident: Incident) -> None:
            incident.links.append((self.relation, self.other))

    def __init__(self, slug: str, recorded_by: str) -> None:
        self.slug = slug
        self.merged_into: str | None = None
        self.links: list[tuple[str, str]] = []

    @classmethod
    def name(cls, slug: str, recorded_by: str) -> Incident:
        return cls._create(cls.Named, id=incident_id(slug), slug=slug, recorded_by=recorded_by)

    def merge_into(self, into: str, reason: str, recorded_by: str) -> None:
        self.trigger_event(self.Merged, slug=self.slug, into=into, reason=reason, recorded_by=recorded_by)

    def link(self, relation: str, other: str, reason: str, recorded_by: str) -> None:
        self.trigger_event(
            self.Linked,
            slug=self.slug,
            relation=relation,
            other=other,
            reason=reason,
            recorded_by=recorded_by,
        )


EVENT_CLASSES = (
    Source.Registered,
    Source.Amended,
    Source.Graded,
    Claim.Recorded,
    Claim.Retracted,
    Claim.Ranked,
    Incident.Named,
    Incident.Merged,
    Incident.Linked,
)
"""The event catalog (DESIGN.md §3), in the order docs/log-format.md describes it."""

for _event_class in EVENT_CLASSES:
    register_topic(_event_class.TOPIC, _event_class)

_CLAIM_TOPIC = get_topic(Claim)
