"""Hostile and malformed input: our own clear errors only, and inert text in every exporter."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronology.errors import FactFileError
from chronology.factfile import read_fact_file
from tests.conftest import ROOT

VALID = """[source]
id = "wire"
publisher = "Wire"
title = "A report"
published = 2020-03-12

[[claim]]
incident = "a-b"
field = "munitions_hit"
value = 18
qualifier = "at_most"
said_by = "a general"
evidence = { quote = "up to 18 hit", start = 10, end = 22 }

[[claim]]
incident = "a-b"
field = "date"
value = { earliest = 2020-03-08, latest = 2020-03-11, precision = "days" }
evidence = "earlier this week"
"""
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read(tmp_path, data: bytes, suffix: str = ".toml"):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        read_fact_file(path)
    except FactFileError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error).strip()


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_only_clear_errors(tmp_path, data):
    read(tmp_path, data)
    read(tmp_path, data, ".jsonl")


@FUZZ
@given(st.data())
def test_mutated_fact_files_give_only_clear_errors(tmp_path, data):
    lines = VALID.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "garble", "retype", "insert"]))
        if action == "delete":
            del lines[where]
        elif action == "duplicate":
            lines.insert(where, lines[where])
        elif action == "garble":
            position = data.draw(st.integers(0, max(0, len(lines[where]))))
            lines[where] = lines[where][:position] + data.draw(st.text(max_size=8)) + lines[where][position:]
        elif action == "retype" and "=" in lines[where]:
            key = lines[where].split("=")[0]
            value = data.draw(
                st.sampled_from(
                    [
                        '""',
                        "-1",
                        "1e999",
                        "[]",
                        "{}",
                        "true",
                        "2020-13-45",
                        '"x" ' * 3,
                        "18446744073709551617",
                        '"' + "w " * 40 + '"',
                        "nan",
                    ]
                )
            )
            lines[where] = f"{key}= {value}"
        elif lines:
            lines.insert(where, data.draw(st.text(max_size=40)))
        if not lines:
            break
    read(tmp_path, "\n".join(lines).encode("utf-8", "surrogatepass"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=15,
)


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "source",
                    "incident",
                    "field",
                    "value",
                    "qualifier",
                    "evidence",
                    "said_by",
                    "hedge",
                    "id",
                    "publisher",
                    "title",
                    "published",
                    "credibility",
                    "generic",
                    "note",
                ]
            ),
            json_values,
            max_size=8,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_fuzzed_json_lines_give_only_clear_errors(tmp_path, records):
    read(tmp_path, "\n".join(json.dumps(r) for r in records).encode(), ".jsonl")


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_coverage_guided_fuzzing_finds_no_crash(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "fuzz_fact_files.py"),
            "-max_total_time=20",
            "-rss_limit_mb=2048",
            "-timeout=10",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr


def test_size_and_count_limits_are_clear_errors(tmp_path):
    from chronology import factfile

    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (factfile.MAX_FILE_BYTES + 1))
    with pytest.raises(FactFileError, match="file too large"):
        read_fact_file(big)
    many = tmp_path / "many.jsonl"
    claim = json.dumps({"source": "s", "incident": "a-b", "field": "killed", "value": 1, "evidence": "q"})
    many.write_text("\n".join([claim] * (factfile.MAX_CLAIMS_PER_FILE + 1)))
    with pytest.raises(FactFileError, match="too many claims"):
        read_fact_file(many)
    long_title = tmp_path / "long.toml"
    long_title.write_text(
        VALID.replace('value = 18\nqualifier = "at_most"', 'value = 18\nqualifier = "at_most"').replace(
            'field = "munitions_hit"\nvalue = 18\nqualifier = "at_most"',
            'field = "title"\nvalue = "' + "x" * 3000 + '"',
        )
    )
    with pytest.raises(FactFileError, match="text too long"):
        read_fact_file(long_title)


HOSTILE = [
    "line one\nBEGIN:VEVENT\nUID:evil\nEND:VEVENT",
    "comma, semicolon; backslash \\ colon: done",
    '=cmd|"/c calc"!A1',
    '"}], "@context": {"@vocab": "http://evil.example/"}, "x": [{"',
    "<script>alert(1)</script>",
    "long " * 300,
    "\u202eright-to-left override, emoji 🚀, tab\tand line\rbreaks",
]


@pytest.mark.parametrize("where", ["title", "said_by", "note", "evidence", "publisher"])
def test_control_characters_are_refused_where_they_enter(chron, tmp_path, where):
    bell = "ring\u0007bell"
    source = {"id": "s", "publisher": bell if where == "publisher" else "P", "title": "t", "published": "2020-03-12"}
    claim = {
        "source": "s",
        "incident": "a-b",
        "field": "title",
        "value": bell if where == "title" else "ok",
        "evidence": bell if where == "evidence" else "q",
    }
    if where in ("said_by", "note"):
        claim[where] = bell
    (tmp_path / "bell.jsonl").write_text(json.dumps({"source": source}) + "\n" + json.dumps(claim) + "\n")
    result = chron("ingest", tmp_path / "bell.jsonl", expect=1)
    assert "control character in text" in result.stderr and "U+0007" in result.stderr


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_stays_inert_in_every_exporter(chron, tmp_path, text):
    claims = []
    for field in ("title", "summary", "weapon", "x-remark"):
        claims.append(
            {
                "source": "hostile",
                "incident": "a-b",
                "field": field,
                "value": text,
                "evidence": {"quote": " ".join(text.split()[:15]) or "x"},
                "said_by": text[:200],
                "note": text,
            }
        )
    claims.append({"source": "hostile", "incident": "a-b", "field": "date", "value": "2020-03-11", "evidence": "x"})
    lines = [
        json.dumps(
            {
                "source": {
                    "id": "hostile",
                    "publisher": text[:100] or "p",
                    "title": text[:200],
                    "published": "2020-03-12",
                }
            }
        )
    ] + [json.dumps(c) for c in claims]
    (tmp_path / "hostile.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    chron("ingest", tmp_path / "hostile.jsonl")

    ics = chron("export", "ical").stdout_bytes
    import icalendar
    import vobject
    from ical.calendar_stream import IcsCalendarStream

    calendar = icalendar.Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert len(events) == 1 and str(events[0]["UID"]).endswith("@chronology")
    assert str(events[0]["SUMMARY"]) == " ".join(text.split())
    assert len(list(vobject.readOne(ics.decode()).vevent_list)) == 1
    assert len(IcsCalendarStream.calendar_from_ics(ics.decode()).events) == 1
    assert all(len(line) <= 75 for line in ics.split(b"\r\n"))

    document = json.loads(chron("export", "jsonld").stdout)
    from pyld import jsonld

    def offline(url, options=None):
        raise AssertionError(f"tried to fetch {url}")

    nquads = jsonld.to_rdf(document, {"documentLoader": offline, "format": "application/n-quads"})
    assert "<http://evil.example" not in nquads  # present only as quoted text, never as a term
    event = next(node for node in document["@graph"] if node["@type"] == "Event")
    assert event["name"] == " ".join(text.split())

    for table in ("incidents", "claims", "timelinejs"):
        data = chron("export", "csv", "--option", f"table={table}").stdout
        rows = list(csv.reader(io.StringIO(data, newline="")))
        assert len({len(row) for row in rows}) == 1
        assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row)


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../../etc/passwd",
        "/feeds/%2e%2e%2fetc%2fpasswd",
        "/incidents/..%2F..%2Fchron.db",
        "/feeds/ical/../../../chron.db",
        "//etc/passwd",
        "/feeds/ical%00.ics",
    ],
)
def test_path_traversal_in_urls_is_refused(path, tmp_path):
    from chronology.server import FeedApp, HTTPError

    app = FeedApp(store=str(tmp_path / "chron.db"))
    with pytest.raises(HTTPError) as refused:
        app.handle(path, b"", {}, {})
    assert refused.value.status == 404
