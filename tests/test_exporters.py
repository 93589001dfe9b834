"""The built-in exporters, checked with independent parsers of what they emit."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

TAJI = "2020-03-11-camp-taji-rocket-attack"


def export(chron, fmt, *args) -> bytes:
    return chron("export", fmt, *args).stdout_bytes


def claim_stating(chron, slug, name, value):
    shown = json.loads(chron("show", slug, "--json").stdout)
    return next(c["id"] for c in shown["claims"] if c["field"] == name and c["value"] == value)


# --- iCalendar ------------------------------------------------------------------------------------


def vevents(ics: bytes) -> list[dict[str, str]]:
    """Our own unfolding reader, for lint checks independent of the libraries."""
    text = ics.decode("utf-8").replace("\r\n ", "")
    events, current = [], None
    for line in text.split("\r\n"):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None and ":" in line:
            name, _, value = line.partition(":")
            current[name] = value
    return events


def test_ical_parses_in_three_independent_parsers(bundled):
    ics = export(bundled, "ical")
    import icalendar
    import vobject
    from ical.calendar_stream import IcsCalendarStream

    parsed = icalendar.Calendar.from_ical(ics)
    assert len(parsed.walk("VEVENT")) == 12
    assert len(list(vobject.readOne(ics.decode("utf-8")).vevent_list)) == 12
    calendar = IcsCalendarStream.calendar_from_ics(ics.decode("utf-8"))
    assert len(calendar.events) == 12
    taji = next(e for e in calendar.events if e.summary == "Rocket attack on Camp Taji")
    assert str(taji.dtstart) == "2020-03-11" and str(taji.dtend) == "2020-03-12"


def test_ical_passes_our_lint_checks(bundled):
    ics = export(bundled, "ical")
    lines = ics.split(b"\r\n")
    assert ics.endswith(b"\r\n") and b"\n" not in ics.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in lines), max(lines, key=len)
    events = vevents(ics)
    uids = [e["UID"] for e in events]
    assert len(uids) == len(set(uids))
    for event in events:
        assert re.fullmatch(r"\d{8}T\d{6}Z", event["DTSTAMP"])
        assert event["LAST-MODIFIED"] == event["DTSTAMP"]
        start, end = event["DTSTART;VALUE=DATE"], event["DTEND;VALUE=DATE"]
        assert end > start
        assert int(event["SEQUENCE"]) >= 0
    calendar = ics.decode()
    for needed in (
        "NAME:Chronology",
        "X-WR-CALNAME:Chronology",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ):
        assert needed in calendar


CHARACTERS = ["a", " ", ",", ";", ":", "\\", "^", '"', "\t", "é", "中", "😀"]
"""One to four UTF-8 octets each, and the escapes a fold must not split."""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(CHARACTERS), min_size=60, max_size=400).map("".join) | st.text(max_size=300))
@example("a" * 73 + "\\n" + "b" * 80)  # an escape across the first fold
@example("a" * 72 + "中" + "b" * 10)  # a character across it
def test_ical_lines_fold_exactly_as_icalendar_folds_them(line):
    from icalendar.parser import Contentline

    from plugins.chron_ical import fold_line

    line = line.replace("\n", "")
    assert fold_line(line) == Contentline(line).to_ical()


def test_each_event_is_written_exactly_as_icalendar_writes_it(bundled, tmp_path):
    """The exporter writes each VEVENT from icalendar's own encoding of its values without
    filling an `icalendar.Event`; the bytes are those of the Event, for every incident of the
    bundled chronology and of a synthetic one, with and without links, and for an incident
    whose texts hold what needs escaping, folding or removing."""
    import dataclasses
    import sys

    import plugins.chron_ical as ical
    from chronology.archive import Archive
    from chronology.replay import load_timeline
    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT))
    from bench.synthetic import write_corpus
    from chronology.factfile import read_fact_file

    synthetic = Archive(str(tmp_path / "synthetic.db"))
    for path in write_corpus(tmp_path / "corpus", 60)[0]:
        synthetic.ingest(read_fact_file(path), recorded_by="test")
    timelines = [load_timeline(Archive(bundled.store))]
    timelines.append(load_timeline(synthetic))
    first = next(i for i in timelines[0].incidents if i.date and i.location)
    awkward = dataclasses.replace(
        first,
        title='Strike; "near", the base\\ — ünïcödé ' * 4 + "\x07bell\nnew line",
        location={**first.location, "name": "Camp, Taji; Iraq\r\n" * 3},
        retracted=True,
    )
    checked = 0
    for timeline in timelines:
        for incident in [*timeline.incidents, awkward] if timeline is timelines[0] else timeline.incidents:
            if not incident.date:
                continue
            for base_url in ("", "https://example.org/chronology"):
                expected = ical._ical(ical._event(incident, timeline, base_url))
                assert ical._event_ical(incident, timeline, base_url) == expected, incident.slug
                checked += 1
    assert checked > 2 * 60


def test_ical_event_shows_disputes_sources_place_and_uncertainty(bundled):
    events = {e["SUMMARY"]: e for e in vevents(export(bundled, "ical"))}
    taji = events["Rocket attack on Camp Taji"]
    assert taji["STATUS"] == "CONFIRMED"
    assert taji["GEO"] == "33.524;44.257"
    assert "Disputed:" in taji["DESCRIPTION"] and "about 30 (U.S. Department of Defense)" in taji["DESCRIPTION"]
    assert "Reuters" in taji["DESCRIPTION"] and "rocket attack" in taji["CATEGORIES"]
    week = events["Action near Kirkuk that killed two Marine Raiders"]
    assert week["STATUS"] == "TENTATIVE"
    assert (week["DTSTART;VALUE=DATE"], week["DTEND;VALUE=DATE"]) == ("20200308", "20200312")


def test_ical_sequence_rises_after_a_correction_and_retraction_cancels(bundled):
    before = {e["UID"]: e for e in vevents(export(bundled, "ical"))}
    time.sleep(1.1)  # DTSTAMP has one-second resolution
    bundled("retract", claim_stating(bundled, TAJI, "munitions_launched", 18), "--reason", "mis-coded")
    shown = json.loads(bundled("show", "2021-02-rocket-barrage-on-us-embassy-baghdad", "--json").stdout)
    for claim in shown["claims"]:
        bundled("retract", claim["id"], "--reason", "duplicate report")
    after = {e["UID"]: e for e in vevents(export(bundled, "ical"))}
    assert set(after) == set(before)
    for uid, event in after.items():
        assert int(event["SEQUENCE"]) >= int(before[uid]["SEQUENCE"])
    taji = next(uid for uid, e in after.items() if e["SUMMARY"] == "Rocket attack on Camp Taji")
    assert int(after[taji]["SEQUENCE"]) == int(before[taji]["SEQUENCE"]) + 1
    assert after[taji]["DTSTAMP"] > before[taji]["DTSTAMP"]
    embassy = next(e for e in after.values() if "Embassy" in e["SUMMARY"])
    assert embassy["STATUS"] == "CANCELLED"


def test_every_export_is_byte_identical_across_runs(bundled):
    for fmt, args in (
        ("ical", ()),
        ("jsonld", ()),
        ("csv", ()),
        ("csv", ("--option", "table=claims")),
        ("csv", ("--option", "table=timelinejs")),
    ):
        assert export(bundled, fmt, *args) == export(bundled, fmt, *args)


def test_export_filters_by_tag_incident_and_date(bundled):
    def slugs(*args):
        rows = csv.DictReader(io.StringIO(export(bundled, "csv", *args).decode()))
        return {row["slug"] for row in rows}

    assert slugs("--incident", TAJI) == {TAJI}
    syria = slugs("--tag", "syria")
    assert syria == {"2020-03-albukamal-airstrikes", "2021-02-us-airstrikes-in-eastern-syria"}
    in_2021 = slugs("--since", "2021-01-01")
    assert in_2021 and all(s.startswith("2021-") for s in in_2021)
    assert TAJI in slugs("--until", "2020-03-11") and "2020-03-12-us-retaliatory-strikes-in-iraq" not in slugs(
        "--until", "2020-03-11"
    )


def test_exporting_an_unknown_incident_is_an_error_not_an_empty_export(bundled, tmp_path):
    out = tmp_path / "taji.csv"
    result = bundled("export", "csv", "--incident", TAJI, "--incident", "2020-03-11-camp-tajii", "-o", out, expect=1)
    assert result.stderr == "error: unknown incident '2020-03-11-camp-tajii'\n"
    assert not out.exists()
    bundled("merge", TAJI, "2020-03-12-us-retaliatory-strikes-in-iraq", "--reason", "the same night")
    merged = csv.DictReader(io.StringIO(export(bundled, "csv", "--incident", TAJI).decode()))
    assert [row["slug"] for row in merged] == ["2020-03-12-us-retaliatory-strikes-in-iraq"]  # named by its old slug


def test_export_writes_to_a_file(bundled, tmp_path):
    bundled("export", "ical", "-o", tmp_path / "chronology.ics")
    assert (tmp_path / "chronology.ics").read_bytes().startswith(b"BEGIN:VCALENDAR\r\n")


def test_unknown_format_and_option_are_clear_errors(bundled):
    assert "unknown export format 'pdf'" in bundled("export", "pdf", expect=1).stderr
    assert "has no option colour" in bundled("export", "csv", "--option", "colour=red", expect=1).stderr
    assert "unknown table" in bundled("export", "csv", "--option", "table=sources", expect=1).stderr


# --- JSON-LD ----------------------------------------------------------------------------------------


def _offline_loader(url, options=None):
    raise AssertionError(f"JSON-LD processing tried to fetch {url}")


def test_jsonld_expands_and_converts_to_rdf_offline(bundled):
    from pyld import jsonld

    document = json.loads(export(bundled, "jsonld"))
    options = {"documentLoader": _offline_loader}
    expanded = jsonld.expand(document, options)
    assert expanded
    nquads = jsonld.to_rdf(document, {**options, "format": "application/n-quads"})
    events = set(
        re.findall(
            r"^(<urn:uuid:[^>]+>) <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
            r"<https://schema.org/Event>",
            nquads,
            re.M,
        )
    )
    assert len(events) == 12
    for event in events:
        assert re.search(rf"^{re.escape(event)} <https://schema.org/startDate> \"\d{{4}}-\d\d-\d\d\"", nquads, re.M), (
            event
        )
    assert "<http://www.w3.org/ns/prov#wasDerivedFrom>" in nquads
    assert "<https://schema.org/NewsArticle>" in nquads
    assert "<https://schema.org/GeoCoordinates>" in nquads


# --- CSV --------------------------------------------------------------------------------------------


def test_csv_tables_round_trip_through_csv_and_pandas(bundled):
    import pandas

    for table, rows in (("incidents", 12), ("claims", 176)):
        data = export(bundled, "csv", "--option", f"table={table}")
        assert data.count(b"\r\n") == rows + 1
        parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert len(parsed) == rows + 1 and len({len(r) for r in parsed}) == 1
        frame = pandas.read_csv(io.BytesIO(data), encoding="utf-8")
        assert len(frame) == rows
    incidents = pandas.read_csv(io.BytesIO(export(bundled, "csv")))
    taji = incidents[incidents.slug == TAJI].iloc[0]
    assert (taji.munitions_launched_low, taji.munitions_launched_high) == (18, 30)
    assert taji.killed_best == 3 and taji.munitions_launched_status == "disputed"
    timelinejs = pandas.read_csv(io.BytesIO(export(bundled, "csv", "--option", "table=timelinejs")))
    assert list(timelinejs.columns)[:3] == ["Year", "Month", "Day"] and len(timelinejs) == 12


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_csv_cells_that_look_like_formulas_cannot_run(chron, tmp_path, start):
    hostile = f'{start}HYPERLINK("http://evil.example","x")'
    (tmp_path / "hostile.toml").write_text(
        '[source]\nid = "hostile"\npublisher = "' + start + 'cmd|/c calc"\ntitle = "t"\npublished = 2020-03-12\n\n'
        '[[claim]]\nincident = "a-b"\nfield = "summary"\nvalue = \'' + hostile + "'\nevidence = '" + hostile + "'\n"
        '[[claim]]\nincident = "a-b"\nfield = "title"\nvalue = \'' + hostile + "'\nevidence = 'x'\n"
        '[[claim]]\nincident = "a-b"\nfield = "date"\nvalue = 2020-03-11\nevidence = \'x\'\n',
        encoding="utf-8",
    )
    chron("ingest", tmp_path / "hostile.toml")
    for table in ("incidents", "claims", "timelinejs"):
        rows = list(csv.reader(io.StringIO(export(chron, "csv", "--option", f"table={table}").decode())))
        for cell in (c for row in rows[1:] for c in row):
            assert not cell.startswith(("=", "+", "-", "@")), (table, cell)
        assert any(cell.startswith("'" + start) for row in rows[1:] for cell in row), table
