"""The log's rows decoded in C (`chronology._transcoder`) come out exactly as the Python
reference decodes them (`transcoder.decode_state`, `Archive._logged` and `_decoded`)."""

from __future__ import annotations

import datetime as dt
import os
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronology import archive as archive_module
from chronology import transcoder
from chronology.archive import Archive
from chronology.records import LoggedEvent

native = archive_module._decoding
if native is None:
    if os.environ.get("CI"):
        pytest.fail("chronology._transcoder was not built (is a C compiler installed?)", pytrace=False)
    pytest.skip("chronology._transcoder was not built here (no C compiler at install)", allow_module_level=True)


def same(left, right):
    """Equal, with the same types throughout (`repr` tells 12 from 12.0, and a UUID from its text)."""
    return left == right and repr(left) == repr(right)


def as_read(logged: LoggedEvent) -> tuple:
    return (
        logged.position,
        logged.recorded_at,
        logged.topic,
        logged.originator_id,
        logged.version,
        type(logged.event),
        vars(logged.event),
        logged.state,
    )


def in_python(archive: Archive) -> list[LoggedEvent]:
    return [archive._decoded(logged) for logged in archive.read_raw()]


def test_the_bundled_chronology_reads_the_same_in_c_and_in_python(bundled):
    archive = Archive(bundled.store)
    claim = next(e for e in in_python(archive) if e.topic == "chronology:Claim.Recorded")
    archive.retract(claim.originator_id, "a later report", recorded_by="test")
    expected = [as_read(logged) for logged in in_python(archive)]
    found = [as_read(logged) for logged in archive.read()]
    assert len(expected) > 100 and expected[-1][2] == "chronology:Claim.Retracted"
    assert all(same(a, b) for a, b in zip(found, expected, strict=True))
    # a window of the log, as a catch-up reads it
    window = [as_read(logged) for logged in archive.read(after=10, upto=40)]
    assert all(same(a, b) for a, b in zip(window, expected[10:40], strict=True))


tagged_values = st.one_of(
    st.uuids().map(lambda u: ("uuid_hex", u.hex)),
    st.dates().map(lambda d: ("date_iso", d.isoformat())),
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: ("datetime_iso", d.isoformat())),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(lambda d: ("decimal_str", str(d))),
    st.just(("unknown_kind", "kept as it is")),
)
plain = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12), st.sampled_from(['"_type_"'])
)


def tag(kind_text):
    kind, text = kind_text
    return {"_type_": kind, "_data_": text}


states = st.recursive(
    st.one_of(plain, tagged_values.map(tag)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=800, deadline=None)
@given(states)
def test_any_stored_state_decodes_the_same_in_c_and_in_python(state):
    data = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    assert same(native.decode_state(data), transcoder.decode_state(data))


def test_a_state_that_is_not_json_fails_alike():
    for data in (b"{not json", b""):
        with pytest.raises(orjson.JSONDecodeError):
            transcoder.decode_state(data)
        with pytest.raises(orjson.JSONDecodeError):
            native.decode_state(data)


def test_rows_of_other_topics_go_to_the_fallback():
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    class Older:
        timestamp = moment

    handed: list[LoggedEvent] = []

    def fallback(logged):
        handed.append(logged)
        return Older()

    state = orjson.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": moment.isoformat()}})
    upcast = orjson.dumps({"class_version": 2, "timestamp": {"_type_": "datetime_iso", "_data_": moment.isoformat()}})
    rows = [
        (1, UUID(int=1).hex, 1, "chronology:Something.Else", state),
        (2, UUID(int=2).hex, 1, "chronology:Claim.Recorded", upcast),
    ]
    events = [native.logged_event(row, fallback) for row in rows]
    assert [e.position for e in handed] == [1, 2] and all(type(e.event) is Older for e in events)
    assert events[0].originator_id == UUID(int=1) and events[0].recorded_at == moment
