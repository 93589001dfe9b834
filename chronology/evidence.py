"""Evidence anchoring: archived documents, and every quote checked against its document.

`attach` keeps a document's text in the store, addressed by its sha256 (table chron_documents),
and records the digest on the source (SourceAmended) unless the source already names it. A
document whose digest differs from the one its source declares is refused. `check_evidence`
looks for each claim's quote in its source's document: exactly (white space folded), else by a
bounded fuzzy match (the best window of the quote's length scoring at least FUZZY_THRESHOLD);
otherwise the claim is reported orphaned. Nothing is ever re-anchored silently.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronology.errors import ChronologyError

FUZZY_THRESHOLD = 0.85
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def folded(text: str) -> str:
    """White space folded to single spaces (documents carry non-breaking spaces, line breaks)."""
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Anchor:
    claim_id: str
    incident: str
    field: str
    quote: str
    status: str
    """exact, fuzzy, orphaned, or unanchored (no document archived for the source)."""
    score: float = 0.0
    offset: int | None = None
    """Character offset of the match in the folded document text."""
    found: str | None = None


def _tables(archive: Any):
    from chronology.projection import Database

    db = Database.for_archive(archive)
    with db.transaction() as tx:
        tx.execute(f"CREATE TABLE IF NOT EXISTS chron_documents (sha256 TEXT PRIMARY KEY, body {db.blob} NOT NULL)")
    return db


def attach(archive: Any, source_key: str, path: Path) -> str:
    """Archive the document at `path` as the text of source `source_key`; return its sha256."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ChronologyError(f"{path}: cannot read document: {error.strerror}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise ChronologyError(f"{path}: document too large (at most {MAX_DOCUMENT_BYTES} bytes, found {size})")
    body = path.read_bytes()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise ChronologyError(f"{path}: document is not UTF-8 text") from None
    digest = hashlib.sha256(body).hexdigest()
    source = archive.source(source_key)
    declared = source.metadata.get("sha256")
    if declared and declared != digest:
        raise ChronologyError(
            f"{path}: sha256 {digest} does not match the {declared} that source '{source_key}' declares"
        )
    db = _tables(archive)
    try:
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO chron_documents (sha256, body) VALUES (?, ?) ON CONFLICT DO NOTHING", (digest, body)
            )
    finally:
        db.close()
    if not declared:
        archive.amend(source_key, {"sha256": digest}, "document archived")
    return digest


def check_evidence(archive: Any) -> list[Anchor]:
    """Every claim's quote against its source's archived document."""
    from chronology.projection import Projection

    db = _tables(archive)
    try:
        with db.transaction(write=False) as tx:
            documents = {
                row[0]: folded(bytes(row[1]).decode("utf-8"))
                for row in tx.rows("SELECT sha256, body FROM chron_documents")
            }
    finally:
        db.close()
    projection = Projection(archive).catch_up()
    anchors = []
    try:
        with projection.state() as state:
            sources = state.sources
            for slug in state.incident_slugs():
                for claim in state.claims_of(slug):
                    digest = sources[claim.source_id].sha256
                    anchors.append(_anchor(claim, documents.get(digest) if digest else None))
    finally:
        projection.close()
    return sorted(anchors, key=lambda a: (a.status != "orphaned", a.incident, a.field, a.claim_id))


def _anchor(claim: Any, document: str | None) -> Anchor:
    quote = folded(claim.evidence["quote"])
    base = {"claim_id": str(claim.id), "incident": claim.incident, "field": claim.field, "quote": quote}
    if document is None:
        return Anchor(**base, status="unanchored")
    offset = document.find(quote)
    if offset >= 0:
        return Anchor(**base, status="exact", score=1.0, offset=offset, found=quote)
    score, offset, found = best_window(quote, document)
    if score >= FUZZY_THRESHOLD:
        return Anchor(**base, status="fuzzy", score=round(score, 3), offset=offset, found=found)
    return Anchor(**base, status="orphaned", score=round(score, 3))


def best_window(quote: str, document: str) -> tuple[float, int, str]:
    """The window of the document, as many words long as the quote, most similar to it."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", document)]
    length = len(quote.split())
    best = (0.0, -1, "")
    if not words or length == 0:
        return best
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(quote.lower())
    for start in range(0, max(1, len(words) - length + 1)):
        end = min(len(words), start + length) - 1
        window = document[words[start][0] : words[end][1]]
        matcher.set_seq1(window.lower())
        if matcher.real_quick_ratio() < best[0] or matcher.quick_ratio() < best[0]:
            continue
        score = matcher.ratio()
        if score > best[0]:
            best = (score, words[start][0], window)
    return best
