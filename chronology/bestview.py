"""The best view of an incident: every field resolved, the incident graded, in one record.

`IncidentView` is the one representation of "what we currently believe about an incident" that
the projection stores, `chron replay`/`show` print, exporters receive and the server serves.
`incident_view` builds it from claims and sources; it is pure, like the policies it calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from chronology import accelerated, ids, transcoder
from chronology.fields import CATALOG
from chronology.ids import incident_id
from chronology.records import Claim, Link, Source
from chronology.resolution import (
    Alternative,
    FieldView,
    Policy,
    balanced,
    claim_order,
    distinct_sources,
    field_views_from_stored,
    id_texts,
    ids_of_texts,
    resolve_distinct,
    stored_field,
)
from chronology.transcoder import UuidMemo, uuid_from_text

GRADES = ("confirmed", "fair", "weak", "contested")
"""Airwars-style incident grades."""

_FIELD_ORDER = {name: index for index, name in enumerate(CATALOG)}

UNDATED = "9999-12-31"
"""Where an incident no source has dated sorts: after every dated one."""


@dataclass(frozen=True)
class IncidentView:
    """What the archive currently holds about one incident."""

    slug: str
    id: UUID
    title: str
    grade: str
    retracted: bool
    date: dict[str, str] | None
    location: dict[str, Any] | None
    fields: tuple[FieldView, ...]
    claims: tuple[UUID, ...]
    sources: tuple[UUID, ...]
    aliases: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    revision: int = 0
    """How many times this view changed in the log (iCal SEQUENCE); set by the projection."""
    changed_at: dt.datetime | None = None
    """Transaction time of the last change (iCal LAST-MODIFIED); set by the projection."""

    def field(self, name: str) -> FieldView | None:
        return next((f for f in self.fields if f.field == name), None)

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.date["earliest"] if self.date else UNDATED, self.slug)

    def content(self, text_ids: bool = True) -> dict[str, Any]:
        """The view as plain data, without the projection's revision bookkeeping; ids as text,
        or left as UUIDs for orjson to write."""
        return self._content([f.as_dict(text_ids) for f in self.fields], text_ids)

    def stored(self) -> dict[str, Any]:
        """`content()` as the projection stores it: each field as `stored_field` makes it (a
        list, its ids given by their place in the view's `claims` and `sources`); ids left as
        UUIDs for orjson to write."""
        claim_at = {claim_id: place for place, claim_id in enumerate(self.claims)}
        source_at = {source_id: place for place, source_id in enumerate(self.sources)}
        return self._content([stored_field(f, claim_at, source_at) for f in self.fields], text_ids=False)

    def _content(self, fields: list[Any], text_ids: bool) -> dict[str, Any]:
        ids = id_texts if text_ids else list
        return {
            "slug": self.slug,
            "id": str(self.id) if text_ids else self.id,
            "title": self.title,
            "grade": self.grade,
            "retracted": self.retracted,
            "date": self.date,
            "location": self.location,
            "fields": fields,
            "claims": ids(self.claims),
            "sources": ids(self.sources),
            "aliases": list(self.aliases),
            "links": [list(link) for link in self.links],
        }

    def content_json(self) -> bytes:
        """`stored()` as sorted-key JSON: what the projection stores and digests. UUIDs go to
        orjson as they are; it writes the same text as `str()`, without a Python call each."""
        return orjson.dumps(self.stored(), option=orjson.OPT_SORT_KEYS)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.content(),
            "revision": self.revision,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any], memo: UuidMemo | None = None) -> IncidentView:
        """Inverse of `stored()`, with the projection's `revision` and `changed_at` (when `data`
        has them); `memo` shares one UUID per id text across the views read."""
        memo = memo if memo is not None else UuidMemo()
        changed_at = data.get("changed_at")
        claims, sources = ids_of_texts(data["claims"], memo), ids_of_texts(data["sources"], memo)
        return cls(
            slug=data["slug"],
            id=uuid_from_text(data["id"]),
            title=data["title"],
            grade=data["grade"],
            retracted=data["retracted"],
            date=data["date"],
            location=data["location"],
            fields=field_views_from_stored(data["fields"], claims, sources),
            claims=claims,
            sources=sources,
            aliases=tuple(data["aliases"]),
            links=tuple((relation, other) for relation, other in data["links"]),
            revision=data.get("revision", 0),
            changed_at=dt.datetime.fromisoformat(changed_at) if changed_at else None,
        )

    def digest(self) -> str:
        """sha256 of the view's content: the projection counts a revision when it changes."""
        return content_digest(self.content_json())


def content_digest(body: bytes) -> str:
    """The digest of a view's `content_json()`."""
    return hashlib.sha256(body).hexdigest()


def field_order(name: str) -> tuple[int, str]:
    base = name.partition(".")[0]
    return (_FIELD_ORDER.get(base, len(_FIELD_ORDER)), name)


def incident_view(
    slug: str,
    claims: Sequence[Claim],
    sources: Mapping[UUID, Source],
    links: Iterable[Link] = (),
    aliases: Iterable[str] = (),
    policy: Policy = balanced,
) -> IncidentView:
    """Resolve every field of one incident and grade it."""
    claims = sorted({claim.id.int: claim for claim in claims}.values(), key=claim_order)  # a claim counts once
    by_field: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        by_field[claim.field].append(claim)
    views = tuple(resolve_distinct(n, by_field[n], sources, policy) for n in sorted(by_field, key=field_order))
    resolved = {v.field: v for v in views}
    active = [c for c in claims if c.counts]
    link_pairs = {(link.relation, link.other) for link in links}
    for relation in ("responds_to", "part_of", "follows"):
        view = resolved.get(relation)
        if view is not None and view.best:
            link_pairs.update((relation, other) for other in view.best)
    if not active:
        # Everything was retracted: keep what it was called, when and where, so that
        # calendars can show the incident as cancelled rather than drop it.
        revived = [c._replace(retracted=False, rank="normal") for c in claims]
        resolved = {
            name: resolve_distinct(name, [c for c in revived if c.field == name], sources, policy)
            for name in ("title", "date", "location")
            if name in by_field
        }
    title_view = resolved.get("title")
    date_view = resolved.get("date")
    place_view = resolved.get("location")
    return IncidentView(
        slug=slug,
        id=incident_id(slug),
        title=title_view.best if title_view and title_view.best else slug.replace("-", " "),
        grade=_grade(resolved, active, sources),
        retracted=not active,
        date=date_view.best if date_view else None,
        location=place_view.best if place_view else None,
        fields=views,
        claims=tuple(c.id for c in claims),
        sources=distinct_sources(claims),
        aliases=tuple(sorted(aliases)),
        links=tuple(sorted(link_pairs)),
    )


def view_body(
    slug: str,
    claims: Sequence[Claim],
    sources: Mapping[UUID, Source],
    links: Iterable[Link] = (),
    aliases: Iterable[str] = (),
    policy: Policy = balanced,
) -> tuple[str, bytes]:
    """(sort date, content JSON) of `incident_view(...)`: all the materialized projection keeps
    of a view (with its digest). In C where `chronology._bestview` was built, without making the
    view itself; this is the reference it is held to (tests/test_native_bestview.py)."""
    view = incident_view(slug, claims, sources, links, aliases, policy)
    return view.sort_key[0], view.content_json()


def _grade(resolved: Mapping[str, FieldView], active: Sequence[Claim], sources: Mapping[UUID, Source]) -> str:
    if any(resolved[name].status == "disputed" for name in ("date", "location", "perpetrator") if name in resolved):
        return "contested"
    publishers = {sources[c.source_id].publisher for c in active}
    date = resolved.get("date")
    if len(publishers) >= 2 and date is not None and date.status == "confirmed":
        return "confirmed"
    if len(publishers) >= 2 or any(sources[c.source_id].reliability in "AB" for c in active):
        return "fair"
    return "weak"


# --- the stored view in C -----------------------------------------------------------------------

python_view_body = view_body
"""The reference: `chronology._bestview` (C) does exactly these steps, faster."""

_accelerated = accelerated.load(
    "_bestview",
    {
        "Claim": Claim,
        "FieldView": FieldView,
        "Alternative": Alternative,
        "resolve_distinct": resolve_distinct,
        "balanced": balanced,
        "id_namespace": ids.NAMESPACE.bytes,
        "incident_prefix": ids.INCIDENT_PREFIX.encode(),
        "field_order": field_order,
        "UNDATED": UNDATED,
        "dumps": orjson.dumps,
        "dumps_options": {"option": orjson.OPT_SORT_KEYS},
        "UUID": UUID,
        "unknown_safety": transcoder._UNKNOWN_SAFETY,
        "uuid_from_text": uuid_from_text,
    },
)
NATIVE = _accelerated is not None
"""Whether stored views are made in C."""
if _accelerated is not None:
    view_body = _accelerated.view_body  # noqa: F811
