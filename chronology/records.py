"""The read-side records: one `Source` and one `Claim` type, as the projection, the best view,
the exporters and the server all see them. Immutable: a correction makes a new record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from chronology import accelerated, transcoder
from chronology.transcoder import UuidMemo, shared, uuid_from_text


@dataclass(frozen=True, slots=True)
class Source:
    """A document in the archive, as currently known (amendments and grades applied)."""

    id: UUID
    key: str
    publisher: str
    title: str
    published: dt.date | dt.datetime
    reliability: str
    language: str = "en"
    url: str | None = None
    published_how: str | None = None
    author: str | None = None
    kind: str | None = None
    sha256: str | None = None
    registered_at: dt.datetime | None = None

    @property
    def published_day(self) -> dt.date:
        """The publication day (a datetime's UTC day), for `--known-at` and ordering."""
        if isinstance(self.published, dt.datetime):
            return self.published.astimezone(dt.UTC).date()
        return self.published

    @classmethod
    def from_metadata(cls, id: UUID, key: str, metadata: dict[str, Any], published: Any, registered_at: Any) -> Source:
        return cls(
            id=id,
            key=key,
            publisher=metadata["publisher"],
            title=metadata["title"],
            published=published,
            reliability=metadata.get("reliability", "F"),
            language=metadata.get("language", "en"),
            url=metadata.get("url"),
            published_how=metadata.get("published_how"),
            author=metadata.get("author"),
            kind=metadata.get("kind"),
            sha256=metadata.get("sha256"),
            registered_at=registered_at,
        )


class Claim(NamedTuple):
    """One sourced fact and where it stands now: active, retracted, preferred or deprecated.

    A named tuple rather than a dataclass: a full replay makes one per claim in the log, and
    a tuple is built several times faster than a frozen dataclass while being just as
    immutable. A correction makes a new one with `claim._replace(...)`."""

    id: UUID
    incident: str
    field: str
    value: Any
    qualifier: str
    source_id: UUID
    evidence: dict[str, Any]
    recorded_at: dt.datetime
    recorded_by: str
    position: int
    said_by: str | None = None
    hedge: str | None = None
    generic: bool = False
    credibility: int | None = None
    note: str | None = None
    retracted: bool = False
    retraction_reason: str | None = None
    rank: str = "normal"
    rank_reason: str | None = None

    @property
    def counts(self) -> bool:
        """Whether the claim takes part in the best view (not retracted, not deprecated)."""
        return not self.retracted and self.rank != "deprecated"

    @classmethod
    def from_content(
        cls,
        id: UUID,
        content: dict[str, Any],
        source_id: UUID,
        recorded_at: dt.datetime,
        recorded_by: str,
        position: int,
    ) -> Claim:
        get = content.get
        return _new_claim(
            cls,
            (
                id,
                content["incident"],
                content["field"],
                content["value"],
                get("qualifier", "exact"),
                source_id,
                content["evidence"],
                recorded_at,
                recorded_by,
                position,
                get("said_by"),
                get("hedge"),
                get("generic", False),
                get("credibility"),
                get("note"),
                False,
                None,
                "normal",
                None,
            ),
        )


_new_claim = tuple.__new__


# --- claims as rows: how the projection stores an incident's claims ------------------------------

_ID, _SOURCE_ID, _RECORDED_AT = (Claim._fields.index(n) for n in ("id", "source_id", "recorded_at"))
_REQUIRED = len(Claim._fields) - len(Claim._field_defaults)
"""How many of a claim's fields come before those with a default: every stored row has these."""
_DEFAULTS = tuple(Claim._field_defaults.values())


def _at_default(value: Any, default: Any) -> bool:
    return value is default or (type(value) is str and type(default) is str and value == default)


def _stored_row(claim: Claim) -> tuple:
    """`claim` as a stored row: its fields in order, less the trailing ones that hold their
    default (most claims are not hedged, retracted or ranked: a seventh fewer bytes)."""
    if not isinstance(claim, tuple) or len(claim) != len(Claim._fields):
        return tuple(claim)  # not a claim: orjson says what it cannot write
    end = len(claim)
    while end > _REQUIRED and _at_default(claim[end - 1], _DEFAULTS[end - 1 - _REQUIRED]):
        end -= 1
    return claim[:end]


def encode_claims(claims: Iterable[Claim]) -> bytes:
    """Claims as one JSON array of rows, each in `Claim`'s field order without the trailing
    fields at their defaults (orjson writes ids and datetimes as their standard strings): how
    the projection stores an incident's claims, and how it hands them to a helper process."""
    return orjson.dumps([_stored_row(c) for c in claims])


def decode_claims(data: bytes, memo: UuidMemo | None = None) -> list[Claim]:
    """Inverse of `encode_claims` (`memo`: one UUID per id text across calls, see
    `chronology.transcoder.UuidMemo`). Rows holding every field, as earlier versions stored
    them, read alike."""
    claims = []
    for row in orjson.loads(data):
        if not _REQUIRED <= len(row) <= len(Claim._fields):
            raise ValueError(f"a stored claim has {len(row)} fields, not {_REQUIRED} to {len(Claim._fields)}")
        row.extend(_DEFAULTS[len(row) - _REQUIRED :])
        row[_ID] = uuid_from_text(row[_ID]) if memo is None else memo[row[_ID]]
        row[_SOURCE_ID] = shared("uuid_hex", row[_SOURCE_ID], uuid_from_text)
        row[_RECORDED_AT] = shared("datetime_iso", row[_RECORDED_AT], dt.datetime.fromisoformat)
        claims.append(_new_claim(Claim, row))
    return claims


python_encode_claims, python_decode_claims = encode_claims, decode_claims
"""The reference: `chronology._records` (C) does exactly these steps, faster."""

_accelerated = accelerated.load(
    "_records",
    {
        "Claim": Claim,
        "dumps": orjson.dumps,
        "loads": orjson.loads,
        "recent": transcoder._RECENT,
        "recent_at_most": transcoder._RECENT_AT_MOST,
        "datetime_decoder": transcoder._DECODERS["datetime_iso"],
        "decode_claims": decode_claims,
        "UUID": UUID,
        "unknown_safety": transcoder._UNKNOWN_SAFETY,
        "uuid_from_text": uuid_from_text,
        "UuidMemo": UuidMemo,
        "defaults": _DEFAULTS,
    },
)
NATIVE = _accelerated is not None
"""Whether stored claims are encoded and decoded in C."""
if _accelerated is not None:
    encode_claims, decode_claims = _accelerated.encode_claims, _accelerated.decode_claims  # noqa: F811


@dataclass(frozen=True)
class Link:
    """A relation between incidents asserted by an analyst (IncidentLinked)."""

    incident: str
    relation: str
    other: str
    position: int


@dataclass(slots=True)
class LoggedEvent:
    """One event of the log with its position and transaction time, as `chron log` lists it."""

    position: int
    recorded_at: dt.datetime | None
    """Transaction time; None when read raw (undecoded)."""
    topic: str
    originator_id: UUID
    version: int
    event: Any = field(repr=False)
    state: bytes = field(default=b"", repr=False)
    """The event's stored bytes, exactly as in the log (for the digest chain and export)."""
