"""The bundled chronology in events/ against the five seed documents it was built from."""

from __future__ import annotations

import hashlib
import re

import pytest

from chronology.factfile import fact_file_paths, read_fact_file
from tests.conftest import EVENTS, SEEDS, needs_seeds

FACT_FILES = fact_file_paths([EVENTS])


def _folded(text: str) -> str:
    """Whitespace folded (the documents use non-breaking spaces) as evidence matching does."""
    return re.sub(r"\s+", " ", text)


def _document_for(fact_file):
    digest = fact_file.sources[0].metadata["sha256"]
    for path in sorted(SEEDS.glob("*.txt")):
        if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            return path.read_text(encoding="utf-8")
    raise AssertionError(f"no seed document has sha256 {digest}")


def test_every_bundled_fact_file_reads_cleanly():
    assert len(FACT_FILES) == 5
    for path in FACT_FILES:
        fact_file = read_fact_file(path)
        assert len(fact_file.sources) == 1 and fact_file.claims


@needs_seeds()
@pytest.mark.parametrize("path", FACT_FILES, ids=lambda p: p.name)
def test_every_evidence_quote_is_in_its_document(path):
    fact_file = read_fact_file(path)
    document = _folded(_document_for(fact_file))
    missing = [
        (claim.content["field"], claim.content["evidence"]["quote"])
        for claim in fact_file.claims
        if _folded(claim.content["evidence"]["quote"]) not in document
    ]
    assert not missing, f"{path.name}: quotes not found in the document: {missing}"


def test_every_claim_keeps_its_source_and_a_short_quote():
    for path in FACT_FILES:
        for claim in read_fact_file(path).claims:
            assert claim.content["said_by"]
            assert len(claim.content["evidence"]["quote"].split()) <= 15


RELATIVE = (
    "Wednesday",
    "Thursday",
    "yesterday",
    "earlier this week",
    "days later",
    "January",
    "December",
    "Dec. 27",
    "Jan. 8",
    "February 15",
)


def test_date_claims_from_relative_or_yearless_words_say_how_they_were_resolved():
    for path in FACT_FILES:
        for claim in read_fact_file(path).claims:
            if claim.content["field"] != "date":
                continue
            quote = claim.content["evidence"]["quote"]
            words = [w for w in RELATIVE if w in quote and not re.search(r"\b(19|20)\d\d\b", quote)]
            if words:
                assert claim.content.get("note"), (path.name, quote)
