"""Chronology's ids: uuid5 of a name in one namespace, derived from content, so that
ingesting the same fact twice gives the same id (docs/log-format.md). Apart from the domain
model so that a process building views (`chronology.parallel`) needs no eventsourcing."""

from __future__ import annotations

from hashlib import sha1
from typing import Any
from uuid import UUID

import orjson

from chronology.transcoder import uuid_from_int

NAMESPACE = UUID("5b0f4c0e-6c2a-5f3e-9d1a-2f6e0c8b7a41")
"""The uuid5 namespace of every Chronology id. Never change it: ids in archives depend on it."""

CLAIM_IDENTITY = ("incident", "field", "value", "qualifier", "said_by", "hedge", "generic", "source_id")
"""The parts of a claim that make it a different statement. Evidence, credibility and notes
describe the statement and do not change its identity."""
_CLAIM_CONTENT_IDENTITY = CLAIM_IDENTITY[:-1]  # all but source_id, which a claim's content does not hold


_NAMESPACE_BYTES = NAMESPACE.bytes
_VERSION_5 = 5 << 76 | 0x8000 << 48
_VERSION_BITS = 0xF000 << 64 | 0xC000 << 48


def name_id(name: str) -> UUID:
    """`uuid5(NAMESPACE, name)`, built from the digest without `UUID.__init__`'s general
    checks (an ingest makes one per claim; tests hold it to `uuid.uuid5`)."""
    digest = sha1(_NAMESPACE_BYTES + name.encode()).digest()
    return uuid_from_int(int.from_bytes(digest[:16]) & ~_VERSION_BITS | _VERSION_5)


def source_id(key: str) -> UUID:
    """The id of the source registered under `key` (the fact file's [source] id)."""
    return name_id("source:" + key)


INCIDENT_PREFIX = "incident:"
"""What an incident's id is named by, before its slug (`chronology/_bestview.c` writes the id too)."""


def incident_id(slug: str) -> UUID:
    """The id of the incident named by `slug`."""
    return name_id(INCIDENT_PREFIX + slug)


def claim_id(content: dict[str, Any], source: UUID) -> UUID:
    """The id of a claim: uuid5 of the canonical JSON of its identifying content and its
    source's id (docs/log-format.md; orjson writes the UUID in its 36-character form)."""
    identity = {key: content.get(key) for key in _CLAIM_CONTENT_IDENTITY}
    identity["source_id"] = source
    return name_id("claim:" + orjson.dumps(identity, option=orjson.OPT_SORT_KEYS).decode())
