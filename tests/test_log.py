"""The log: exact round trips of event state, stable topics, content-derived ids."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from chronology import domain, ids
from chronology.archive import Archive, OrjsonTranscoder
from chronology.factfile import read_fact_file
from chronology.transcoder import uuid_from_text
from tests.conftest import EVENTS

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(values)
def test_transcoder_round_trips_values_exactly_with_their_types(value):
    transcoder = OrjsonTranscoder()
    decoded = transcoder.decode(transcoder.encode({"v": value}))["v"]
    assert decoded == value
    assert _types(decoded) == _types(value)


def _types(value):
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_types(v) for v in value]
    return type(value)


def test_transcoder_keeps_datetime_offsets_and_microseconds():
    transcoder = OrjsonTranscoder()
    moment = dt.datetime(2020, 3, 11, 19, 35, 1, 123456, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    state = {"at": moment, "id": uuid4(), "day": dt.date(2020, 3, 11), "n": Decimal("1.10")}
    decoded = transcoder.decode(transcoder.encode(state))
    assert decoded == state and decoded["at"].utcoffset() == dt.timedelta(hours=3)
    assert str(decoded["n"]) == "1.10"


@given(st.uuids())
def test_ids_read_back_fast_are_the_uuids_the_standard_library_makes(value):
    for text in (value.hex, str(value), str(value).upper()):
        fast = uuid_from_text(text)
        assert fast == value and hash(fast) == hash(value) and str(fast) == str(value)
        assert fast.is_safe == UUID(text).is_safe and fast.version == value.version


ODD_ID_TEXTS = ["0x" + "a" * 30, "{" + "a" * 32 + "}", "urn:uuid:" + "b" * 32, " " * 32, "g" * 32, "é" * 32, ""]


@given(st.one_of(st.sampled_from(ODD_ID_TEXTS), st.text(alphabet="0123456789abcdefABCDEFxX-_+ {}:urnidé", max_size=40)))
def test_any_other_id_text_is_judged_as_the_standard_library_judges_it(text):
    def outcome(make):
        try:
            return make(text)
        except ValueError:
            return ValueError

    assert outcome(uuid_from_text) == outcome(UUID)


def test_events_survive_a_round_trip_through_the_store(store):
    archive = Archive(store)
    report = archive.ingest(read_fact_file(EVENTS / "2020-03-12-reuters.toml"))
    assert report.events_added > 1
    logged = list(archive.read())
    archive.close()
    reopened = Archive(store)
    again = list(reopened.read())
    assert len(again) == len(logged) == report.events_added
    for before, after in zip(logged, again, strict=True):
        assert type(after.event) is type(before.event)
        assert vars(after.event) == vars(before.event)
        assert isinstance(after.event.timestamp, dt.datetime) and after.event.timestamp.tzinfo
    registered = again[0].event
    assert isinstance(registered, domain.Source.Registered)
    assert registered.published == dt.date(2020, 3, 12) and type(registered.published) is dt.date
    recorded = again[1].event
    assert isinstance(recorded.source_id, UUID)
    reopened.close()


def test_new_sqlite_stores_get_large_pages_and_older_stores_keep_theirs(tmp_path):
    from chronology.archive import SQLITE_PAGE_SIZE
    from chronology.projection import Projection

    def page_size_and_mode(path):
        connection = sqlite3.connect(path)
        try:
            return connection.execute("PRAGMA page_size").fetchone()[0], connection.execute(
                "PRAGMA journal_mode"
            ).fetchone()[0]
        finally:
            connection.close()

    new = tmp_path / "new.db"
    Archive(str(new)).close()
    assert page_size_and_mode(new) == (SQLITE_PAGE_SIZE, "wal")

    older = tmp_path / "older.db"  # as an earlier version (or another tool) made it
    connection = sqlite3.connect(older)
    connection.execute("PRAGMA page_size=4096")
    connection.execute("CREATE TABLE made_before (x)")
    connection.close()
    archive = Archive(str(older))
    archive.ingest(read_fact_file(EVENTS / "2020-03-12-reuters.toml"))
    views = Projection(archive).catch_up().views()
    archive.close()
    assert page_size_and_mode(older)[0] == 4096
    assert {v.slug for v in views} and all(v.fields for v in views)


def test_a_new_sqlite_store_appears_whole_once_however_many_open_it(tmp_path, monkeypatch):
    """A new store's file is made under another name and linked into place with its page size
    and WAL mode already set, so processes opening it at once never convert one file together
    (SQLite can refuse one of two such conversions at once: "database is locked"). One that
    finds another process's file already linked keeps that one and leaves nothing behind."""
    from chronology import archive as archive_module

    def page_size_and_mode(path):
        connection = sqlite3.connect(path)
        try:
            return tuple(connection.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "journal_mode"))
        finally:
            connection.close()

    new = tmp_path / "new.db"
    Archive(str(new)).close()
    assert page_size_and_mode(new) == (archive_module.SQLITE_PAGE_SIZE, "wal")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.db")) == []

    raced = tmp_path / "raced.db"
    real_link = archive_module.os.link

    def another_process_first(source, target):
        other = sqlite3.connect(tmp_path / "other.db")  # what the other process linked
        other.execute("PRAGMA page_size=8192")
        other.execute("PRAGMA journal_mode=WAL")
        other.close()
        real_link(tmp_path / "other.db", target)
        real_link(source, target)  # raises FileExistsError, as the loser's link does

    monkeypatch.setattr(archive_module.os, "link", another_process_first)
    archive = Archive(str(raced))
    archive.ingest(read_fact_file(EVENTS / "2020-03-12-reuters.toml"))
    archive.close()
    assert page_size_and_mode(raced) == (8192, "wal")  # the other process's file, now holding the log
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")]


def test_events_are_stored_under_explicit_stable_topics(store):
    archive = Archive(store)
    archive.ingest(read_fact_file(EVENTS / "2020-03-12-reuters.toml"))
    topics = {e.topic for e in archive.read()}
    assert topics == {"chronology:Source.Registered", "chronology:Claim.Recorded"}
    archive.close()


def test_claim_ids_are_derived_from_content():
    content = {
        "incident": "a-b",
        "field": "killed",
        "value": 3,
        "qualifier": "exact",
        "said_by": "X",
        "evidence": {"quote": "three"},
    }
    source = ids.source_id("s")
    same = ids.claim_id(content, source)
    assert same == ids.claim_id({**content, "evidence": {"quote": "3 dead"}}, source)
    assert same != ids.claim_id({**content, "value": 4}, source)
    assert same != ids.claim_id(content, ids.source_id("t"))
    assert ids.incident_id("a-b") == ids.incident_id("a-b")


@given(st.text())
def test_ids_are_uuid5_in_the_chronology_namespace(name):
    """`name_id` builds ids without `UUID.__init__`; they must be `uuid.uuid5`'s, to the bit."""
    from uuid import uuid5

    try:
        expected = uuid5(ids.NAMESPACE, name)
    except UnicodeEncodeError:  # a lone surrogate: no id, either way
        with pytest.raises(UnicodeEncodeError):
            ids.name_id(name)
        return
    made = ids.name_id(name)
    assert (made, made.int, made.version, made.variant, str(made), hash(made)) == (
        expected,
        expected.int,
        5,
        expected.variant,
        str(expected),
        hash(expected),
    )


def test_claim_ids_are_those_the_documented_formula_gives(tmp_path):
    """docs/log-format.md: uuid5 of "claim:" + the sorted, spaceless JSON of the identifying
    keys, source_id as text. Computed here with the standard library, for every claim of the
    bundled chronology and a synthetic one: ids in existing archives must never change."""
    import json
    import sys
    from uuid import uuid5

    sys.path.insert(0, str(EVENTS.parent))
    from bench.synthetic import write_corpus
    from chronology.factfile import fact_file_paths

    files, _ = write_corpus(tmp_path / "synthetic", 100)
    checked = 0
    for path in [*fact_file_paths([EVENTS]), *files]:
        for spec in read_fact_file(path).claims:
            source = ids.source_id(spec.source_key)
            assert source == uuid5(ids.NAMESPACE, "source:" + spec.source_key)
            identity = {key: spec.content.get(key) for key in ids.CLAIM_IDENTITY if key != "source_id"}
            identity["source_id"] = str(source)
            canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            assert ids.claim_id(spec.content, source) == uuid5(ids.NAMESPACE, "claim:" + canonical)
            checked += 1
    assert checked > 1000


def test_the_direct_claim_encoding_is_byte_identical_to_the_aggregate_path(tmp_path):
    """Ingest writes ClaimRecorded rows directly; they must be what the domain model writes."""
    import sys

    sys.path.insert(0, str(EVENTS.parent))
    from bench.synthetic import write_corpus
    from chronology.factfile import fact_file_paths

    archive = Archive(str(tmp_path / "chron.db"))
    files, _ = write_corpus(tmp_path / "synthetic", 300)
    moment = dt.datetime(2026, 11, 21, 7, 54, 26, 643108, tzinfo=dt.UTC)
    checked = 0
    for path in [*fact_file_paths([EVENTS]), *files]:
        specs = read_fact_file(path).claims
        sources = [ids.source_id(spec.source_key) for spec in specs]
        direct = domain.claim_recorded_states(
            [(spec.content, source) for spec, source in zip(specs, sources, strict=True)], "an archivist", moment
        )
        for spec, source, state in zip(specs, sources, direct, strict=True):
            aggregate = domain.Claim.record(spec.content, source, "an archivist", moment)
            (event,) = aggregate.collect_events()
            stored = archive.mapper.to_stored_event(event)
            assert stored.topic == domain.Claim.Recorded.TOPIC
            assert stored.originator_id == ids.claim_id(spec.content, source)
            assert stored.state == state
            checked += 1
    assert checked > 1000
    archive.close()


def test_the_direct_decoder_builds_what_the_mapper_builds_for_every_event_type(sqlite_store):
    """`Archive.decode` skips eventsourcing's mapper for current-version events; every kind of
    event in the catalog must come out exactly as the mapper would make it."""
    from eventsourcing.persistence import StoredEvent

    from cli import cli

    def run(*args):
        result = CliRunner().invoke(cli, ["--store", sqlite_store, *map(str, args)], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    run("ingest", EVENTS)
    archive = Archive(sqlite_store)
    claim = next(e for e in archive.read() if e.topic == domain.Claim.Recorded.TOPIC).originator_id
    other = next(e for e in archive.read() if e.topic == domain.Claim.Recorded.TOPIC and e.originator_id != claim)
    run("retract", claim, "--reason", "test")
    run("rank", other.originator_id, "preferred", "--reason", "test")
    source_key = next(e for e in archive.read() if e.topic == domain.Source.Registered.TOPIC).event.key
    run("grade", source_key, "B", "--reason", "test")
    archive.amend(source_key, {"title": "Amended title"}, "test")
    slugs = sorted({e.event.content["incident"] for e in archive.read() if e.topic == domain.Claim.Recorded.TOPIC})
    run("link", slugs[0], "follows", slugs[1], "--reason", "test")
    run("merge", slugs[2], slugs[3], "--reason", "test")
    topics = set()
    for logged in archive.read_raw():
        stored = StoredEvent(logged.originator_id, logged.version, logged.topic, logged.state)
        by_mapper, direct = archive.mapper.to_domain_event(stored), archive.decode(logged)
        assert type(direct) is type(by_mapper) and vars(direct) == vars(by_mapper), logged.topic
        topics.add(logged.topic)
    assert topics == {cls.TOPIC for cls in domain.EVENT_CLASSES}
    archive.close()
