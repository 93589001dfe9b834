"""Evidence quotes anchored in the archived documents."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import SEEDS, needs_seeds

SOURCE_OF = {
    "000": "al-monitor-2020-03-12-iran-backed-groups-likely-behind-attack",
    "001": "reuters-2020-03-12-us-retaliatory-strikes",
    "002": "consultancy-2020-03-12-al-taji-strike-brief",
    "003": "dod-2020-03-12-iranian-backed-group-kills-3",
    "004": "rferl-2021-02-26-us-bombs-iran-backed-militias",
}


def attach_all(chron):
    for document in sorted(SEEDS.glob("*.txt")):
        chron("sources", "attach", SOURCE_OF[document.name[:3]], document)


@needs_seeds()
def test_every_bundled_quote_is_found_exactly_in_its_archived_document(bundled):
    attach_all(bundled)
    anchors = json.loads(bundled("verify-evidence", "--json").stdout)
    assert len(anchors) == 176
    assert {a["status"] for a in anchors} == {"exact"}


@needs_seeds()
def test_a_document_that_does_not_match_its_source_digest_is_refused(bundled):
    wrong = SEEDS / "001_7d88fd1eb3acfcd6.txt"
    result = bundled("sources", "attach", SOURCE_OF["000"], wrong, expect=1)
    assert "does not match" in result.stderr


def test_quotes_are_exact_fuzzy_or_orphaned_never_silently_reanchored(chron, tmp_path):
    document = tmp_path / "report.txt"
    document.write_text(
        "On Wednesday militants fired eighteen rockets at the base, officials said.\nFourteen people were wounded.",
        encoding="utf-8",
    )
    digest = hashlib.sha256(document.read_bytes()).hexdigest()
    (tmp_path / "facts.toml").write_text(
        f'''
[source]
id = "report"
publisher = "Wire"
title = "t"
published = 2020-03-12
sha256 = "{digest}"

[[claim]]
incident = "a-b"
field = "munitions_launched"
value = 18
evidence = "militants fired eighteen rockets"

[[claim]]
incident = "a-b"
field = "wounded"
value = 14
evidence = "Fourteen people where wounded"

[[claim]]
incident = "a-b"
field = "killed"
value = 3
evidence = "three soldiers died in the blast"
''',
        encoding="utf-8",
    )
    chron("ingest", tmp_path / "facts.toml")
    before = json.loads(chron("verify-evidence", "--json", expect=None).stdout)
    assert {a["status"] for a in before} == {"unanchored"}
    chron("sources", "attach", "report", document)
    result = chron("verify-evidence", "--json", expect=1)
    anchors = {a["field"]: a for a in json.loads(result.stdout)}
    assert anchors["munitions_launched"]["status"] == "exact"
    assert anchors["wounded"]["status"] == "fuzzy" and anchors["wounded"]["found"] == "Fourteen people were wounded."
    assert anchors["killed"]["status"] == "orphaned"
    text = chron("verify-evidence", expect=1).stdout
    assert "orphaned" in text and "1 exact, 1 fuzzy, 1 orphaned, 0 unanchored" in text
    # the claims themselves are untouched
    shown = json.loads(chron("show", "a-b", "--json").stdout)
    assert {c["evidence"]["quote"] for c in shown["claims"]} >= {"Fourteen people where wounded"}
