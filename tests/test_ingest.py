"""Fact files in, events in the log: all or nothing, never twice, with clear errors."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import EVENTS

SOURCE = """\
[source]
id = "test-wire-2020-03-12"
publisher = "Test Wire"
title = "A test report"
published = 2020-03-12
reliability = "B"
"""

CLAIM = """
[[claim]]
incident = "2020-03-11-camp-taji-rocket-attack"
field = "killed"
value = 3
evidence = "three were killed"
"""


def event_count(chron) -> int:
    return len(json.loads(chron("log", "--json").stdout))


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_ingesting_the_bundled_chronology_prints_every_incident(chron):
    chron("ingest", EVENTS)
    output = chron("replay").stdout
    slugs = {line.strip() for line in output.splitlines() if line.startswith("    2")}
    assert "2020-03-11-camp-taji-rocket-attack" in slugs
    assert "2021-02-15-irbil-airport-rocket-attack" in slugs
    assert len(slugs) == 12
    assert output.rstrip().endswith("12 incidents")


def test_reingesting_a_file_appends_nothing(chron):
    chron("ingest", EVENTS)
    before = event_count(chron)
    result = chron("ingest", EVENTS)
    assert "0 event(s) appended" in result.stdout
    assert event_count(chron) == before


def test_replay_lists_incidents_in_date_order(bundled):
    views = json.loads(bundled("replay", "--json").stdout)
    keys = [v["date"]["earliest"] for v in views]
    assert keys == sorted(keys)


def test_log_lists_events_with_position_time_type_and_summary(bundled):
    events = json.loads(bundled("log", "--json").stdout)
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert events[0]["type"] == "chronology:Source.Registered"
    assert any("munitions_launched = about 30" in e["summary"] for e in events)
    text = bundled("log", "--limit", "3").stdout.splitlines()
    assert len(text) == 3 and "Source.Registered" in text[0]


def test_dry_run_checks_but_appends_nothing(chron):
    result = chron("ingest", "--dry-run", EVENTS)
    assert "would add" in result.stdout
    assert event_count(chron) == 0


def test_jsonl_bulk_form_registers_sources_and_claims(chron, tmp_path):
    lines = [
        {
            "source": {
                "id": "bulk-wire",
                "publisher": "Bulk Wire",
                "title": "Bulk",
                "published": "2020-03-12",
                "reliability": "C",
            }
        },
        {
            "source": "bulk-wire",
            "incident": "2020-03-11-camp-taji-rocket-attack",
            "field": "wounded",
            "value": 14,
            "evidence": "14 were wounded",
        },
        {
            "source": "bulk-wire",
            "incident": "2020-03-11-camp-taji-rocket-attack",
            "field": "date",
            "value": "2020-03-11",
            "evidence": "on Wednesday",
        },
    ]
    path = write(tmp_path, "bulk.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    result = chron("ingest", path)
    assert "added 1 source(s), 2 claim(s)" in result.stdout
    view = json.loads(chron("show", "2020-03-11-camp-taji-rocket-attack", "--json").stdout)
    wounded = next(f for f in view["incident"]["fields"] if f["field"] == "wounded")
    assert wounded["best"] == 14


def test_claims_can_be_added_to_a_source_registered_earlier(chron, tmp_path):
    chron("ingest", write(tmp_path, "first.toml", SOURCE + CLAIM))
    later = 'source = "test-wire-2020-03-12"\n' + CLAIM.replace("value = 3", "value = 4")
    result = chron("ingest", write(tmp_path, "later.toml", later))
    assert "added 0 source(s), 1 claim(s)" in result.stdout


# --- malformed input: one clear line, exit 1, log unchanged ------------------------------------

MALFORMED = {
    "bad-toml": (SOURCE + "[[claim]\nincident = 1\n", "not valid TOML", ":7"),
    "unknown-field": (SOURCE + CLAIM.replace('"killed"', '"casualties"'), "unknown field", ":10"),
    "wrong-type": (SOURCE + CLAIM.replace("value = 3", 'value = "three"'), "expected an integer", ":11"),
    "bad-date": (
        SOURCE + CLAIM.replace('field = "killed"\nvalue = 3', 'field = "date"\nvalue = "11 March"'),
        "date does not parse",
        ":11",
    ),
    "missing-source": ('source = "never-registered"\n' + CLAIM, "claim for a missing source", ":3"),
    "long-quote": (
        SOURCE + CLAIM.replace('"three were killed"', '"' + " ".join(["word"] * 16) + '"'),
        "quote too long",
        ":12",
    ),
    "empty": ("", "file is empty", ""),
    "negative-count": (SOURCE + CLAIM.replace("value = 3", "value = -3"), "negative number", ":11"),
    "bad-qualifier": (SOURCE + CLAIM + 'qualifier = "roughly"\n', "unknown qualifier", ":13"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_fact_file_gives_one_clear_error_and_appends_nothing(chron, tmp_path, case):
    chron("ingest", EVENTS)
    before = event_count(chron)
    text, message, line = MALFORMED[case]
    path = write(tmp_path, f"{case}.toml", text)
    result = chron("ingest", path, expect=1)
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith(f"error: {path}{line}")
    assert message in error_lines[0]
    assert event_count(chron) == before


def test_error_names_the_field_expected_and_found(chron, tmp_path):
    path = write(tmp_path, "typo.toml", SOURCE + CLAIM.replace("value = 3", 'value = "three"'))
    error = chron("ingest", path, expect=1).stderr
    assert "field 'value'" in error and "expected an integer, found 'three'" in error


def test_non_utf8_file_is_refused(chron, tmp_path):
    path = write(tmp_path, "latin1.toml", (SOURCE + CLAIM).encode() + "# caf\xe9\n".encode("latin-1"))
    result = chron("ingest", path, expect=1)
    assert "file is not UTF-8" in result.stderr and f"{path}:13" in result.stderr
    assert event_count(chron) == 0


def test_jsonl_claim_for_a_missing_source_names_its_line(chron, tmp_path):
    line = {"source": "nobody", "incident": "a-b", "field": "killed", "value": 1, "evidence": "x"}
    path = write(tmp_path, "bulk.jsonl", "\n" + json.dumps(line) + "\n")
    result = chron("ingest", path, expect=1)
    assert f"{path}:2" in result.stderr and "claim for a missing source" in result.stderr


def test_a_bad_claim_anywhere_in_a_file_appends_none_of_it(chron, tmp_path):
    text = SOURCE + CLAIM + CLAIM.replace('"killed"', '"wounded"').replace("value = 3", "value = []")
    chron("ingest", write(tmp_path, "half.toml", text), expect=1)
    assert event_count(chron) == 0


def test_one_bad_file_among_many_appends_nothing(chron, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder, "a-good.toml", SOURCE + CLAIM)
    write(folder, "b-bad.toml", SOURCE.replace("test-wire", "other-wire") + CLAIM + "value2 = 1\n")
    chron("ingest", folder, expect=1)
    assert event_count(chron) == 0


def test_missing_path_is_a_clear_error(chron, tmp_path):
    result = chron("ingest", tmp_path / "nowhere.toml", expect=1)
    assert "no such file or folder" in result.stderr


def test_a_large_file_is_ingested_whole_in_one_transaction(chron, tmp_path):
    """A fact file of many megabytes (here 12,000 claims) goes in as one transaction on either
    store; on PostgreSQL this once stalled inside eventsourcing's single-parameter pipeline."""
    lines = [
        json.dumps({"source": {"id": "big-wire", "publisher": "Big Wire", "title": "t", "published": "2020-03-12"}})
    ]
    lines += [
        json.dumps(
            {
                "source": "big-wire",
                "incident": f"incident-{n % 500}",
                "field": "killed",
                "value": n,
                "evidence": "a fairly long evidence quote of about fifteen words to make the rows big",
                "note": "x" * 300,
            }
        )
        for n in range(12_000)
    ]
    path = write(tmp_path, "big.jsonl", "\n".join(lines) + "\n")
    result = chron("ingest", path)
    assert "added 1 source(s), 12000 claim(s)" in result.stdout
    events = json.loads(chron("log", "--json").stdout)
    assert len(events) == 12_001 and len({e["recorded_at"] for e in events}) == 1


@pytest.mark.parametrize("size", [3, 150], ids=["few", "many"])
def test_a_batch_with_one_duplicate_appends_nothing_and_the_next_gets_its_own_positions(store, size):
    """The recorder's insert (on PostgreSQL: eventsourcing's statement for a few events, COPY
    for many) is all or nothing, and the positions it hands back are those of the rows it
    wrote, even after a rolled-back insert left a gap in them."""
    import uuid

    from eventsourcing.persistence import IntegrityError, StoredEvent

    from chronology.archive import Archive

    def rows(n):
        return [StoredEvent(uuid.uuid4(), 1, "chronology.test:Probe", b'{"n":%d}' % i) for i in range(n)]

    archive = Archive(store)
    first = rows(size)
    assert list(archive.recorder.insert_events(first)) == list(range(1, size + 1))
    with pytest.raises(IntegrityError):
        archive.recorder.insert_events([*rows(size), first[1]])
    assert archive.max_position() == size
    second = rows(size + 1)
    positions = archive.recorder.insert_events(second)
    logged = {e.position: e for e in archive.read_raw()}
    assert len(logged) == 2 * size + 1 and sorted(positions) == sorted(set(logged) - set(range(1, size + 1)))
    assert [logged[p].originator_id for p in positions] == [e.originator_id for e in second]
    assert [logged[p].state for p in positions] == [e.state for e in second]
    archive.close()


def test_a_store_that_cannot_be_opened_is_one_clear_error(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    cases = {
        str(tmp_path / "missing" / "chron.db"): "folder",
        str(tmp_path): "is a folder",
        "mysql://somewhere/db": "unknown store",
        ":memory:": "is not a file",
        "postgresql://postgres@127.0.0.1:1/nowhere": "cannot open store",
    }
    for store, message in cases.items():
        result = CliRunner().invoke(cli, ["--store", store, "replay"])
        assert result.exit_code == 1, store
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
