"""Reading the current view back: a page at a time, by key, under filters, in one snapshot.
Each way must give what reading the whole timeline and filtering it gives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import multiprocessing
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import icalendar
import orjson
import pytest

from chronology import render, scratch
from chronology.archive import Archive
from chronology.bestview import IncidentView
from chronology.errors import StoreError
from chronology.factfile import read_fact_file
from chronology.plugins import load_plugins
from chronology.projection import MemoryViews, Projection, build_view, fold
from chronology.render import NAME_WIDTH, VALUE_WIDTH, chronology_text, incident_count, log_text
from chronology.replay import Filters, field_history, load_timeline, timeline_pages
from chronology.resolution import BUILT_IN_POLICIES, balanced
from chronology.scratch import scratch_replay
from chronology.state import MemoryState
from tests.conftest import EVENTS, ROOT

TAJI = "2020-03-11-camp-taji-rocket-attack"
STRIKES = "2020-03-12-us-retaliatory-strikes-in-iraq"
ALBUKAMAL = "2020-03-albukamal-airstrikes"


@pytest.fixture
def merged(bundled):
    """The bundled chronology with one incident merged into another (so views have aliases)."""
    bundled("merge", ALBUKAMAL, STRIKES, "--reason", "the same strikes")
    return Archive(bundled.store)


def claims_of(timeline, views):
    return {i: timeline.claims[i] for v in views for i in v.claims}


@pytest.mark.parametrize("page", [1, 5, 1000])
def test_the_timeline_read_a_page_at_a_time_is_the_timeline_read_whole(merged, page):
    whole = load_timeline(merged)
    pages = list(timeline_pages(merged, page=page))
    assert len(pages) == -(-len(whole.incidents) // page)
    assert [v for p in pages for v in p.incidents] == list(whole.incidents)
    for part in pages:
        assert dict(part.claims) == claims_of(whole, part.incidents)  # exactly its views' claims
        assert dict(part.sources) == dict(whole.sources)
        assert (part.position, part.last_changed) == (whole.position, whole.last_changed)
    text = "".join(chronology_text(p.incidents, p.claims, p.sources) for p in pages)
    assert text == chronology_text(whole.incidents, whole.claims, whole.sources)


FILTERS = [
    Filters(tags=("rocket-attack",)),
    Filters(tags=("no-such-tag",)),
    Filters(since=dt.date(2020, 3, 11)),
    Filters(until=dt.date(2020, 1, 31)),
    Filters(since=dt.date(2020, 3, 1), until=dt.date(2020, 3, 31), tags=("us-strike",)),
    Filters(incidents=(TAJI, ALBUKAMAL)),  # an old slug names the incident it was merged into
    Filters(incidents=("no-such-incident",)),
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_a_filtered_timeline_is_the_whole_one_filtered(merged, filters):
    whole = load_timeline(merged)
    expected = [v for v in whole.incidents if filters.keep(v)]
    assert expected or filters.tags == ("no-such-tag",) or filters.incidents == ("no-such-incident",)
    for timeline in (load_timeline(merged, filters=filters), *timeline_pages(merged, filters=filters, page=2)):
        assert dict(timeline.claims) == claims_of(whole, timeline.incidents)
        assert all(timeline.sources[i] == whole.sources[i] for v in timeline.incidents for i in v.sources)
    assert list(load_timeline(merged, filters=filters).incidents) == expected
    assert [v for p in timeline_pages(merged, filters=filters, page=2) for v in p.incidents] == expected


def test_one_incident_is_read_by_its_key_not_by_decoding_every_view(merged, monkeypatch):
    built = []
    original = IncidentView.from_stored.__func__
    monkeypatch.setattr(IncidentView, "from_stored", classmethod(lambda cls, *a: built.append(1) or original(cls, *a)))
    timeline = load_timeline(merged, filters=Filters(incidents=(ALBUKAMAL,)))
    assert [v.slug for v in timeline.incidents] == [STRIKES]
    assert len(built) == 1
    assert {c.incident for c in timeline.claims.values()} == {STRIKES, ALBUKAMAL}


def test_replay_prints_json_and_text_as_it_did_when_it_held_the_whole_timeline(merged, bundled):
    whole = load_timeline(merged)
    as_json = bundled("replay", "--json").stdout_bytes
    expected = orjson.dumps([v.as_dict() for v in whole.incidents], option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    assert as_json == expected + b"\n"
    text = chronology_text(whole.incidents, whole.claims, whole.sources) + incident_count(len(whole.incidents))
    assert bundled("replay").stdout == text
    assert text.endswith("\n11 incidents\n")


def test_replay_keeps_every_fields_status_in_its_column_when_a_value_is_long(bundled):
    lines = bundled("replay").stdout.splitlines()
    status_at = 4 + NAME_WIDTH + 1 + VALUE_WIDTH + 1
    statuses = ("confirmed", "reported", "disputed", "retracted")
    field_lines = [i for i, line in enumerate(lines) if re.search(r" \d+ sources?$", line)]
    assert len(field_lines) > 50
    for i in field_lines:
        assert lines[i][status_at - 1] == " " and lines[i][status_at:].split(" ", 1)[0] in statuses, lines[i]
    # A value longer than its column goes on under it, on lines of its own.
    location = next(i for i, line in enumerate(lines) if "Irbil International Airport," in line)
    assert lines[location + 1] == " " * (4 + NAME_WIDTH + 1) + "Region, Iraq"
    # A field name longer than its column (an analyst's x- field) has a line of its own.
    named = lines.index("    x-responsibility_claimed")
    assert lines[named + 1].startswith(" " * (4 + NAME_WIDTH + 1) + "no ")


def test_a_long_value_of_nothing_but_spaces_still_has_its_line():
    assert render._value_lines(" " * (VALUE_WIDTH + 5)) == [" " * (VALUE_WIDTH + 5)]
    assert render._value_lines("word " * 20) == ["word " * 7 + "word", "word " * 7 + "word", "word " * 3 + "word"]


def test_replay_of_an_empty_store_prints_an_empty_list(chron):
    assert chron("replay", "--json").stdout_bytes == b"[]\n"
    assert chron("replay").stdout == "0 incidents\n"


def _ingest_and_catch_up(store: str, path: str) -> None:
    archive = Archive(store)
    archive.ingest(read_fact_file(path), recorded_by="another process")
    Projection(archive).catch_up()


def test_one_read_sees_one_state_of_the_view_while_another_process_changes_it(store, tmp_path):
    """The pages of `chron replay`, or a timeline's views, claims and position, are read in
    one transaction: a catch-up committed by another process meanwhile is not half seen."""
    archive = Archive(store)
    archive.ingest(read_fact_file(EVENTS / "2020-03-12-reuters.toml"))
    projection = Projection(archive).catch_up()
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        '{"source": {"id": "later", "publisher": "Later Wire", "title": "T", "published": "2020-03-20"}}\n'
        '{"source": "later", "incident": "a-later-incident", "field": "killed", "value": 1, "evidence": "one"}\n',
        encoding="utf-8",
    )
    with projection.state() as state:
        before = (state.tx.tracking_position(), [v.slug for v in state.views()])
        other = multiprocessing.get_context("spawn").Process(target=_ingest_and_catch_up, args=(store, str(extra)))
        other.start()
        other.join(60)
        assert other.exitcode == 0
        assert (state.tx.tracking_position(), [v.slug for v in state.views()]) == before
    with projection.state() as state:
        assert state.tx.tracking_position() > before[0]
        assert "a-later-incident" in [v.slug for v in state.views()]
    projection.close()


# --- history, read by aggregate id -----------------------------------------------------------


class _EveryPut(MemoryViews):
    """Views that record every view the fold puts, with the log position it had reached."""

    def __init__(self, state: MemoryState) -> None:
        super().__init__()
        self.state, self.puts = state, []

    def put(self, view, digest, body) -> None:
        super().put(view, digest, body)
        self.puts.append((self.state.position, view))


def history_from_the_whole_log(archive, slug):
    """A reference: fold every event of the log, and note a field's summary each time it
    changes in a view of the incident `slug` named then (itself, or the one it was merged
    into: the view lists it among its aliases)."""
    state = MemoryState()
    views = _EveryPut(state)
    fold(state, views, archive.read())
    last, entries = {}, []
    for position, view in views.puts:
        if slug != view.slug and slug not in view.aliases:
            continue
        for f in view.fields:
            summary = (f.best, f.status, f.low, f.high, f.hedge)
            if last.get(f.field) != summary:
                last[f.field] = summary
                entries.append((f.field, view.changed_at.isoformat(), summary, position))
    return entries


@pytest.fixture
def corrected(bundled):
    """The bundled chronology after each kind of correction: a retraction, a ranking, a
    source graded, a merge and a link."""
    shown = orjson.loads(bundled("show", TAJI, "--json").stdout_bytes)
    by_value = {(c["field"], str(c["value"])): c["id"] for c in shown["claims"]}
    bundled("retract", by_value[("munitions_launched", "18")], "--reason", "mis-coded")
    bundled("rank", by_value[("munitions_launched", "18")], "preferred", "--reason", "the count that hit")
    bundled("grade", "consultancy-2020-03-12-al-taji-strike-brief", "A", "--reason", "vetted")
    bundled("merge", ALBUKAMAL, STRIKES, "--reason", "the same strikes")
    bundled("link", STRIKES, "responds_to", TAJI)
    return Archive(bundled.store)


def test_history_read_by_aggregate_id_is_the_history_a_fold_of_the_whole_log_gives(corrected, monkeypatch):
    slugs = [v.slug for v in load_timeline(corrected).incidents] + [ALBUKAMAL]
    expected = {slug: history_from_the_whole_log(corrected, slug) for slug in slugs}
    folded = []
    reading_whole = []
    read_of = Archive.read_of
    monkeypatch.setattr(Archive, "read_of", lambda *a, **k: folded.append(read_of(*a, **k)) or folded[-1])
    monkeypatch.setattr(Archive, "read", lambda *a, **k: reading_whole.append(1))
    for slug in slugs:
        history = field_history(corrected, slug)
        assert [
            (h["field"], h["recorded_at"], (h["best"], h["status"], h["low"], h["high"], h["hedge"])) for h in history
        ] == [e[:3] for e in expected[slug]], slug
        # The position shown is the incident's last event in that transaction: never later
        # than the transaction's end, which the whole-log fold shows.
        assert all(h["position"] <= e[3] for h, e in zip(history, expected[slug], strict=True))
    assert not reading_whole
    assert max(len(events) for events in folded) < corrected.max_position() / 2
    assert any(
        h["status"] == "retracted" or h["best"] == 18 for h in field_history(corrected, TAJI, "munitions_launched")
    )


def test_history_of_an_unknown_incident_or_field_is_a_clear_error(bundled):
    assert "unknown incident 'no-such-incident'" in bundled("history", "no-such-incident", expect=1).stderr
    assert "unknown field" in bundled("history", TAJI, "no_such_field", expect=1).stderr


def test_the_index_counts_views_and_spans_the_dated_ones_without_decoding_them(bundled, tmp_path):
    (tmp_path / "undated.jsonl").write_text(
        '{"source": {"id": "wire", "publisher": "Wire", "title": "T", "published": "2020-03-20"}}\n'
        '{"source": "wire", "incident": "an-undated-incident", "field": "killed", "value": 1, "evidence": "one"}\n',
        encoding="utf-8",
    )
    bundled("ingest", tmp_path / "undated.jsonl")
    views = orjson.loads(bundled("replay", "--json").stdout_bytes)
    dated = sorted(v["date"]["earliest"] for v in views if v["date"])
    assert len(dated) == len(views) - 1
    projection = Projection(Archive(bundled.store))
    with projection.state() as state:
        assert state.dated_span() == (len(views), dated[0], dated[-1])
    projection.close()


# --- exporting in pages ----------------------------------------------------------------------

EXPORTS = [
    ("ical", {"base_url": "https://example.org/chronology"}),
    ("jsonld", {}),
    ("csv", {"table": "incidents"}),
    ("csv", {"table": "claims"}),
    ("csv", {"table": "timelinejs"}),
]


@pytest.mark.parametrize(("name", "options"), EXPORTS, ids=lambda x: str(x))
def test_an_export_written_a_page_at_a_time_is_the_whole_export(merged, name, options):
    plugins = load_plugins()
    for filters in (Filters(), Filters(tags=("rocket-attack",)), Filters(tags=("no-such-tag",))):
        whole = plugins.export(name, load_timeline(merged, filters=filters), dict(options))
        for page in (1, 4):
            pieces = list(plugins.export_pages(name, timeline_pages(merged, filters=filters, page=page), dict(options)))
            assert b"".join(pieces) == whole, (filters, page)
            assert len(pieces) > 2 or not load_timeline(merged, filters=filters).incidents


def test_streamed_documents_are_exactly_what_their_libraries_write(merged):
    """Pieced together, the calendar is what icalendar writes for it, and the JSON-LD what
    orjson writes for the document (two-space indent, sorted keys)."""
    plugins = load_plugins()
    ics = b"".join(plugins.export_pages("ical", timeline_pages(merged, page=3), {}))
    assert icalendar.Calendar.from_ical(ics).to_ical() == ics
    assert "DESCRIPTION:11 incidents\\, resolved with the balanced policy" in ics.decode()
    document = b"".join(plugins.export_pages("jsonld", timeline_pages(merged, page=3), {}))
    assert orjson.dumps(orjson.loads(document), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n" == document


def test_a_failure_to_read_the_pages_is_not_blamed_on_the_exporter(merged):
    def failing_pages():
        yield from timeline_pages(merged, page=2)
        raise StoreError("the store went away")

    with pytest.raises(StoreError, match="went away"):
        b"".join(load_plugins().export_pages("ical", failing_pages(), {}))


def test_an_exporter_failing_half_way_leaves_no_file(bundled, tmp_path, monkeypatch):
    import chron_csv

    def rows_then_failure(timeline):
        yield from chron_csv._incident_rows(timeline)
        raise RuntimeError("disk of the exporter's own making")

    monkeypatch.setitem(chron_csv.TABLES, "incidents", (chron_csv.INCIDENT_COLUMNS, rows_then_failure))
    out = tmp_path / "incidents.csv"
    result = bundled("export", "csv", "-o", out, expect=1)
    assert "plugin 'csv' failed to export 'csv': RuntimeError" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


DEV_FULL = Path("/dev/full")
"""A device whose every write fails with 'No space left on device' (Linux)."""


def _chron_process(store: str, *args: str, stdout, closed_stdout: bool = False) -> subprocess.CompletedProcess:
    """`chron` in a process of its own; `closed_stdout`: started with no descriptor 1 at all,
    as `chron replay >&-` starts it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "--store", store, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        timeout=120,
        preexec_fn=(lambda: os.close(1)) if closed_stdout else None,
    )


@pytest.mark.skipif(not DEV_FULL.is_char_device(), reason="needs /dev/full, a Linux device")
@pytest.mark.parametrize(
    "command", [("replay",), ("export", "ical"), ("log", "export"), ("show", "2020-03-11-camp-taji-rocket-attack")]
)
def test_output_to_a_full_disk_is_one_clear_error(bundled, command):
    with DEV_FULL.open("wb") as full:
        result = _chron_process(bundled.store, *command, stdout=full)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "error: cannot write to standard output: No space left on device\n"


@pytest.mark.parametrize("command", [("replay",), ("log", "--json"), ("export", "csv")])
def test_a_closed_standard_output_is_one_clear_error(bundled, command):
    result = _chron_process(bundled.store, *command, stdout=subprocess.DEVNULL, closed_stdout=True)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "error: cannot write to standard output: Bad file descriptor\n"


def test_a_closed_standard_output_does_not_stop_a_command_writing_to_a_file(bundled, tmp_path):
    out = tmp_path / "timeline.csv"
    result = _chron_process(
        bundled.store, "export", "csv", "-o", str(out), stdout=subprocess.DEVNULL, closed_stdout=True
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert out.read_bytes() == bundled("export", "csv").stdout_bytes


@pytest.mark.skipif(not DEV_FULL.is_char_device(), reason="needs /dev/full, a Linux device")
def test_an_output_file_that_cannot_be_written_is_one_clear_error(bundled, tmp_path):
    result = bundled("export", "ical", "-o", DEV_FULL, expect=1)  # written directly, never replaced
    assert result.stderr == f"error: cannot write to {DEV_FULL}: No space left on device\n"
    assert DEV_FULL.is_char_device()
    missing = tmp_path / "no-such-folder" / "timeline.ics"
    result = bundled("export", "ical", "-o", missing, expect=1)
    assert result.stderr == f"error: cannot write to {missing}: No such file or directory\n"
    assert not missing.parent.exists()


def test_output_to_a_named_pipe_is_written_into_the_pipe(bundled, tmp_path):
    pipe = tmp_path / "feed"
    os.mkfifo(pipe)
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_bytes()))
    reader.start()
    bundled("export", "csv", "-o", pipe)
    reader.join(timeout=60)
    assert pipe.exists() and not pipe.is_file()  # still the pipe: not replaced by a file
    assert read[0] == bundled("export", "csv").stdout_bytes


def test_an_output_file_named_through_a_link_is_replaced_and_the_link_kept(bundled, tmp_path):
    (tmp_path / "site").mkdir()
    published = tmp_path / "site" / "timeline.csv"
    published.write_text("yesterday's\n")
    link = tmp_path / "timeline.csv"
    link.symlink_to(published)
    bundled("export", "csv", "-o", link)
    assert link.is_symlink() and link.resolve() == published
    assert published.read_bytes() == bundled("export", "csv").stdout_bytes
    assert not list(tmp_path.rglob("*.partial"))


def test_a_reader_that_stops_early_ends_the_command_quietly(chron, tmp_path):
    from bench.synthetic import write_corpus

    files, _ = write_corpus(tmp_path / "synthetic", 200)  # about 2,600 events: megabytes as JSON
    chron("ingest", *files)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "--store", chron.store, "log", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    process.stdout.readline()
    process.stdout.close()  # as `chron log --json | head -1` does, long before the end
    _, errors = process.communicate(timeout=120)
    assert errors == b""
    assert process.returncode == 1  # click's exit status for a closed pipe: no traceback, no message


def test_the_log_listed_in_batches_is_the_log_listed_whole(chron, tmp_path):
    from bench.synthetic import write_corpus

    files, _ = write_corpus(tmp_path / "synthetic", 100)  # about 1,300 events: two batches
    chron("ingest", *files)
    archive = Archive(chron.store)
    events = list(archive.read())
    assert len(events) > 1000
    assert chron("log").stdout == log_text(events)
    listed = orjson.loads(chron("log", "--json").stdout_bytes)
    assert [(e["position"], e["type"]) for e in listed] == [(e.position, e.topic) for e in events]
    assert chron("log", "--after", 1000, "--limit", 5).stdout == log_text(events[1000:1005])


@pytest.mark.parametrize(("option", "value"), [("--limit", "-1"), ("--after", "-5"), ("--limit", "many")])
def test_a_log_listing_out_of_range_is_a_usage_error(bundled, option, value):
    result = bundled("log", option, value, expect=2)
    assert f"Invalid value for '{option}'" in result.stderr
    assert bundled("log", "--limit", "0").stdout == ""


# --- another point in time or another policy: the log folded into a scratch projection --------


def transaction_times(archive):
    return sorted({e.recorded_at for e in archive.read()})


def point_in_time_readings(archive):
    """(as_of, known_at, policy) for every transaction time, several publication days, every
    built-in policy and some of them combined."""
    times = transaction_times(archive)
    days = [None, dt.date(2020, 1, 1), dt.date(2020, 3, 12), dt.date(2020, 3, 14), dt.date(2021, 1, 1)]
    readings = [(at, None, "balanced") for at in times[:-1]]
    readings += [(None, day, "balanced") for day in days[1:]]
    readings += [(None, None, policy) for policy in ("conservative", "informative", "representative")]
    readings += [(times[len(times) // 2], dt.date(2020, 3, 14), "informative"), (times[-2], days[2], "conservative")]
    return readings


def replay_in_memory(archive, *, as_of=None, known_at=None, policy=balanced):
    """The reference for every reading at another point in time or under another policy: the
    whole log folded in memory (`MemoryState`), by code the scratch projection does not share:
    what the archive knew at `as_of`, and what the public record said on `known_at`."""
    state, views = MemoryState(), MemoryViews()
    events = archive.read()
    if as_of is not None:
        events = (e for e in events if e.recorded_at <= as_of)
    state.last_changed = fold(state, views, events, policy).last_changed
    result = []
    for view, _digest in views.views.values():
        if known_at is not None:
            filtered = build_view(state, view.slug, state.claims_of(view.slug), policy, known_at)
            if not filtered.claims or filtered.retracted and not view.retracted:
                continue
            view = dataclasses.replace(filtered, revision=view.revision, changed_at=view.changed_at)
        result.append(view)
    return state, sorted(result, key=lambda v: v.sort_key)


def test_every_point_in_time_and_policy_reads_what_a_fold_of_the_whole_log_in_memory_gives(corrected):
    for as_of, known_at, policy in point_in_time_readings(corrected):
        state, views = replay_in_memory(corrected, as_of=as_of, known_at=known_at, policy=BUILT_IN_POLICIES[policy])
        timeline = load_timeline(corrected, as_of=as_of, known_at=known_at, policy=policy)
        reading = (as_of, known_at, policy)
        assert [v.as_dict() for v in timeline.incidents] == [v.as_dict() for v in views], reading
        assert dict(timeline.claims) == {
            i: c for v in views for c in state.claims_of(v.slug) if (i := c.id) in v.claims
        }
        assert dict(timeline.sources) == dict(state.sources), reading
        assert (timeline.position, timeline.last_changed) == (state.position, state.last_changed), reading


def test_a_point_in_time_is_read_a_page_at_a_time_like_the_current_view(corrected):
    middle = transaction_times(corrected)[4]
    for reading in ({"as_of": middle}, {"known_at": dt.date(2020, 3, 14)}, {"policy": "conservative"}):
        whole = load_timeline(corrected, **reading)
        pages = list(timeline_pages(corrected, page=2, **reading))
        assert len(whole.incidents) > 2 and len(pages) == -(-len(whole.incidents) // 2), reading
        assert [v for p in pages for v in p.incidents] == list(whole.incidents)
        for part in pages:
            assert dict(part.claims) == claims_of(whole, part.incidents)
            assert part.total == len(whole.incidents)


def test_the_scratch_projection_is_deleted_after_reading_even_when_reading_stops_early(
    corrected, tmp_path, monkeypatch
):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    pages = timeline_pages(corrected, as_of=transaction_times(corrected)[3], page=1)
    next(pages)
    assert [p.name for p in scratch.iterdir()][0].startswith("chron-replay-")  # in use while read
    pages.close()
    load_timeline(corrected, policy="informative")
    with pytest.raises(RuntimeError):
        for _page in timeline_pages(corrected, known_at=dt.date(2020, 3, 14), page=1):
            raise RuntimeError("the reader failed")
    assert list(scratch.iterdir()) == []


def test_an_incident_whose_claims_public_on_a_day_were_all_retracted_is_left_out_that_day(chron, tmp_path):
    incident = 'incident = "2020-01-01-an-attack"'
    for day, title in (("2020-01-01", "First word"), ("2020-02-01", "Second word")):
        (tmp_path / f"{day}.toml").write_text(
            f'[source]\nid = "wire-{day}"\npublisher = "Wire {day}"\ntitle = "Report"\npublished = {day}\n\n'
            f'[[claim]]\n{incident}\nfield = "title"\nvalue = "{title}"\nevidence = "said so"\n\n'
            f'[[claim]]\n{incident}\nfield = "date"\nvalue = 2020-01-01\nevidence = "said so"\n'
        )
    chron("ingest", tmp_path / "2020-01-01.toml", tmp_path / "2020-02-01.toml")
    shown = orjson.loads(chron("show", "2020-01-01-an-attack", "--json").stdout_bytes)
    first = next(s["id"] for s in shown["sources"] if s["key"] == "wire-2020-01-01")
    for claim in shown["claims"]:
        if claim["source_id"] == first:
            chron("retract", claim["id"], "--reason", "withdrawn")
    archive = Archive(chron.store)
    assert [v.title for v in load_timeline(archive).incidents] == ["Second word"]
    assert load_timeline(archive, known_at=dt.date(2020, 1, 15)).incidents == ()  # only retracted claims then
    assert [v.title for v in load_timeline(archive, known_at=dt.date(2020, 2, 1)).incidents] == ["Second word"]


def test_no_room_for_the_scratch_projection_is_a_clear_error_that_leaves_nothing_behind(
    corrected, tmp_path, monkeypatch
):
    import tempfile

    from chronology.projection import Database

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made = Database.scratch

    def small(path):  # a folder with room for a few pages: SQLite says the disk is full
        db = made(path)
        db.connection.execute("PRAGMA max_page_count = 12")
        return db

    monkeypatch.setattr(Database, "scratch", small)
    with pytest.raises(StoreError, match="no room to fold the log again in .*set TMPDIR"):
        load_timeline(corrected, policy="conservative")
    assert list(scratch.iterdir()) == []


def test_an_incident_at_another_time_or_under_another_policy_is_folded_from_its_own_events(corrected, monkeypatch):
    times = transaction_times(corrected)
    readings = [(None, None, policy) for policy in ("conservative", "informative", "representative")]
    readings += [(None, day, "balanced") for day in (dt.date(2020, 3, 12), dt.date(2020, 3, 14), dt.date(2021, 1, 1))]
    readings += [(at, None, "balanced") for at in [times[0] - dt.timedelta(seconds=1), *times]]
    readings += [(times[len(times) // 2], dt.date(2020, 3, 14), "conservative")]
    expected = {}
    for as_of, known_at, policy in readings:
        expected[as_of, known_at, policy] = replay_in_memory(
            corrected, as_of=as_of, known_at=known_at, policy=BUILT_IN_POLICIES[policy]
        )
    slugs = [v.slug for v in load_timeline(corrected).incidents]
    monkeypatch.setattr(Archive, "read", lambda *a, **k: pytest.fail("read the whole log"))
    for (as_of, known_at, policy), (state, all_views) in expected.items():
        views = {v.slug: v for v in all_views}
        reading = {"as_of": as_of, "known_at": known_at, "policy": policy}
        for names in [(slug,) for slug in slugs] + [(ALBUKAMAL,), (TAJI, ALBUKAMAL, "no-such-incident")]:
            timeline = load_timeline(corrected, filters=Filters(incidents=names), **reading)
            named = {s: views[s] for n in names if (s := state.canonical(n)) in views}
            wanted = sorted(named.values(), key=lambda v: v.sort_key)
            assert [v.as_dict() for v in timeline.incidents] == [v.as_dict() for v in wanted], (names, reading)
            assert dict(timeline.claims) == {
                i: c for v in wanted for c in state.claims_of(v.slug) if (i := c.id) in v.claims
            }
            assert dict(timeline.sources) == {i: state.get_source(i) for v in wanted for i in v.sources}
            assert (timeline.position, timeline.last_changed) == (state.position, state.last_changed), reading


# --- as of a recent time: the stored view, and only the incidents touched since folded again ----

SCRATCH_TABLES = {
    "chron_views": "slug",
    "chron_incidents": "slug",
    "chron_citations": "source_id, incident",
    "chron_aliases": "old",
    "chron_links": "incident, relation, other",
    "chron_sources": "id",
    "chron_transactions": "position",
    "chron_tracking": "name",
}


def scratch_rows(archive, **reading):
    """Every row of every table of the scratch projection that a reading writes."""
    with scratch_replay(archive, **reading) as state:
        return {
            table: [tuple(row) for row in state.tx.rows(f"SELECT * FROM {table} ORDER BY {key}")]
            for table, key in SCRATCH_TABLES.items()
        }


def whole_log_folds(monkeypatch):
    """A list that grows by one each time a scratch projection folds the whole log."""
    calls = []
    fold_whole_log = scratch._fold_whole_log
    monkeypatch.setattr(scratch, "_fold_whole_log", lambda *a: calls.append(a) or fold_whole_log(*a))
    return calls


def assert_as_of_from_the_stored_view_is_the_whole_fold(archive, monkeypatch):
    folds = whole_log_folds(monkeypatch)
    at_once_by_default = scratch.FOLD_AT_ONCE
    for as_of in [*transaction_times(archive), None]:
        for known_at in (None, dt.date(2020, 3, 14)) if as_of is not None else (dt.date(2020, 3, 14),):
            monkeypatch.setattr(scratch, "FOLD_AGAIN_AT_MOST", -1.0)  # never
            whole = scratch_rows(archive, as_of=as_of, known_at=known_at)
            assert len(folds) == 1
            monkeypatch.setattr(scratch, "FOLD_AGAIN_AT_MOST", 1.0)
            for at_once in (at_once_by_default, 1):  # touched incidents folded together, or one by one
                monkeypatch.setattr(scratch, "FOLD_AT_ONCE", at_once)
                assert scratch_rows(archive, as_of=as_of, known_at=known_at) == whole, (as_of, known_at, at_once)
            assert len(folds) == 1  # the stored view was the start
            folds.clear()


@pytest.fixture
def amended_and_grown(corrected, bundled, tmp_path):
    """`corrected`, then a source amended and a new report about an incident already known."""
    corrected.amend("consultancy-2020-03-12-al-taji-strike-brief", {"publisher": "Reuters"}, "same newsroom")
    (tmp_path / "late.toml").write_text(
        '[source]\nid = "wire-late"\npublisher = "Late Wire"\ntitle = "Follow-up"\npublished = 2020-03-20\n\n'
        f'[[claim]]\nincident = "{TAJI}"\nfield = "killed"\nvalue = 4\nevidence = "four were killed"\n'
    )
    bundled("ingest", tmp_path / "late.toml")
    return Archive(bundled.store)


def test_as_of_from_the_stored_view_writes_what_folding_the_whole_log_writes(amended_and_grown, monkeypatch):
    """At every transaction time, with and without --known-at, and --known-at alone: the same
    rows in every table (views with their revisions and dates, claims, citations, merges,
    links, sources as they stood, transactions, position)."""
    assert_as_of_from_the_stored_view_is_the_whole_fold(amended_and_grown, monkeypatch)


def test_as_of_from_the_stored_view_holds_when_writers_clocks_disagree(
    amended_and_grown, tmp_path, request, monkeypatch
):
    """The log moved to a store whose transactions carry their times out of order (as from
    writers whose clocks disagree): a later position may have an earlier time, so what was
    recorded after a time is not the end of the log."""
    from tests.test_integrity_and_transfer import chron_on, other_store, rechained

    export, shuffled = tmp_path / "log.jsonl", tmp_path / "shuffled.jsonl"
    chron_on(amended_and_grown.store, "log", "export", "-o", export)
    lines = export.read_text().splitlines()
    records = [orjson.loads(line) for line in lines[1:-1]]
    times = sorted({orjson.loads(r["state"])["timestamp"]["_data_"] for r in records})
    # Each pair of transactions in turn trades times: the second of a pair is the earlier.
    swapped = {times[i]: times[i ^ 1] if (i ^ 1) < len(times) else times[i] for i in range(len(times))}
    for record in records:
        old = orjson.loads(record["state"])["timestamp"]["_data_"]
        record["state"] = record["state"].replace(old, swapped[old])
    shuffled.write_text(rechained(lines[0], records))
    moved = other_store(amended_and_grown.store, tmp_path, request)
    chron_on(moved, "log", "import", shuffled)
    archive = Archive(moved)
    recorded = [e.recorded_at for e in archive.read()]
    assert any(later < earlier for earlier, later in itertools.pairwise(recorded))
    assert_as_of_from_the_stored_view_is_the_whole_fold(archive, monkeypatch)


def test_as_of_long_ago_folds_the_whole_log_again(amended_and_grown, monkeypatch):
    """When much of the log came after the time asked for, folding it all costs no more."""
    folds = whole_log_folds(monkeypatch)
    times = transaction_times(amended_and_grown)
    load_timeline(amended_and_grown, as_of=times[-2])
    assert folds == []
    load_timeline(amended_and_grown, as_of=times[0])
    assert len(folds) == 1
