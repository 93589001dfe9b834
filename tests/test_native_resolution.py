"""Fields resolved in C (`chronology._resolution`) come out exactly as chronology/resolution.py
resolves them: the Python module is the reference, the C one its faster copy."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import types
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronology import resolution
from chronology.bestview import IncidentView, incident_view
from chronology.records import Claim, Source
from chronology.transcoder import UuidMemo
from tests.conftest import ROOT

if not resolution.NATIVE:
    if os.environ.get("CI"):
        # CI's machine has a C compiler: the module must have been built there.
        pytest.fail("chronology._resolution was not built (is a C compiler installed?)", pytrace=False)
    pytest.skip("chronology._resolution was not built here (no C compiler at install)", allow_module_level=True)

native = resolution._accelerated.resolve_distinct
reference = resolution.python_resolve_distinct

SOURCE_IDS = [UUID(int=n * 0x1000_0000_0000_0001 + 7) for n in range(6)]
FIELDS = [
    "killed",
    "wounded.us_military",
    "distance",
    "date",
    "location",
    "perpetrator",
    "title",
    "time",
    "tags",
    "responds_to",
    "x-note",
]


@st.composite
def sources(draw):
    def published():
        day = dt.date(2020, 3, 1) + dt.timedelta(days=draw(st.integers(0, 20)))
        if draw(st.booleans()):
            return day
        hour = draw(st.integers(0, 23))
        zone = dt.timezone(dt.timedelta(hours=draw(st.integers(-5, 5))))
        return dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone)

    return {
        source: Source(
            id=source,
            key=f"source-{n}",
            publisher=f"Publisher {draw(st.integers(0, 2))}",
            title=f"source {n}",
            published=published(),
            reliability=draw(st.sampled_from("ABCDEF")),
        )
        for n, source in enumerate(SOURCE_IDS)
    }


def figure(draw, integer):
    if integer:
        return draw(st.integers(0, 40))
    return draw(st.integers(0, 40) | st.floats(0, 40, allow_nan=False).map(lambda x: round(x, 1)))


@st.composite
def stated(draw, field):
    """(value, qualifier) as `chronology.fields` would normalise them for `field`."""
    if field in ("killed", "wounded.us_military", "distance"):
        qualifier = draw(st.sampled_from(["exact", "exact", "about", "at_least", "at_most", "range"]))
        integer = field != "distance"
        if qualifier == "range":
            low = figure(draw, integer)
            number = [low, low + figure(draw, integer)]
        else:
            number = figure(draw, integer)
        if field == "distance":
            place = {"km": number, "from": draw(st.sampled_from(["Baghdad", "Taji"]))}
            if draw(st.booleans()):
                place["direction"] = "north"
            return place, qualifier
        return number, qualifier
    if field == "date":
        start = dt.date(2020, 2, 25) + dt.timedelta(days=draw(st.integers(0, 10)))
        end = start + dt.timedelta(days=draw(st.sampled_from([0, 0, 1, 3, 30])))
        precision = "day" if start == end else draw(st.sampled_from(["days", "week", "month"]))
        return {"earliest": start.isoformat(), "latest": end.isoformat(), "precision": precision}, "exact"
    if field == "location":
        place = {"name": draw(st.sampled_from(["Camp Taji", "Taji", "Baghdad"]))}
        if draw(st.booleans()):
            place["country"] = "Iraq"
        place["precision"] = draw(st.sampled_from(["site", "town", "region", "country"]))
        return place, "exact"
    if field == "tags":
        return sorted(set(draw(st.lists(st.sampled_from(["rocket", "iraq", "us"]), min_size=1)))), "exact"
    if field == "responds_to":
        return draw(st.sampled_from(["strike-a", "strike-b"])), "exact"
    if field == "time":
        return draw(st.sampled_from(["19:30", "20:00"])), "exact"
    if field == "x-note":
        return draw(st.sampled_from([{"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, "plain", 3])), "exact"
    return draw(st.sampled_from(["Kataib Hezbollah", "ISIS", "Iran", "Rocket attack"])), "exact"


@st.composite
def claims(draw, field):
    value, qualifier = draw(stated(field))
    return Claim(
        id=UUID(int=draw(st.integers(0, 2**128 - 1))),
        incident="a-b",
        field=field,
        value=value,
        qualifier=qualifier,
        source_id=draw(st.sampled_from(SOURCE_IDS)),
        evidence={"quote": "q"},
        recorded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        recorded_by="t",
        position=draw(st.integers(1, 1000)),
        hedge=draw(st.sampled_from([None, None, "likely", "reportedly", "alleged"])),
        generic=draw(st.sampled_from([False, False, True])),
        credibility=draw(st.none() | st.integers(1, 6)),
        retracted=draw(st.sampled_from([False, False, False, True])),
        rank=draw(st.sampled_from(["normal", "normal", "preferred", "deprecated"])),
    )


@st.composite
def fields(draw):
    """(field name, its distinct claims in claim order)."""
    field = draw(st.sampled_from(FIELDS))
    found = draw(st.lists(claims(field), min_size=1, max_size=7, unique_by=lambda c: c.id))
    return field, sorted(found, key=resolution.claim_order)


def the_last_candidate(field_name, candidates, active, sources):
    """A plugin's policy: the value stated last in candidate order."""
    return candidates[-1]


POLICIES = [*resolution.BUILT_IN_POLICIES.values(), the_last_candidate]


def same(left, right):
    """Equal, with the same types throughout (`repr` tells 12 from 12.0, as JSON output does)."""
    return left == right and repr(left) == repr(right)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields(), sources(), st.sampled_from(POLICIES))
def test_every_field_resolves_in_c_exactly_as_in_python(field, sources, policy):
    name, found = field
    expected = reference(name, found, sources, policy)
    assert same(native(name, found, sources, policy), expected)


def outcome(resolve, *args):
    """What `resolve(*args)` gives, or the type and text of what it raises."""
    try:
        return resolve(*args)
    except Exception as error:  # noqa: BLE001 - the point is which one
        return type(error), str(error)


ANY_VALUE = st.one_of(
    st.text(),  # quotes, backslashes, control characters, non-ASCII: written by orjson
    st.text(alphabet=st.characters(min_codepoint=0x1F, max_codepoint=0x7F), max_size=6),  # at the edges
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**64, -(2**63) - 1]),  # at and past 64 bits
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ANY_VALUE, min_size=1, max_size=6),
    sources(),
    st.sampled_from(POLICIES),
    st.sampled_from(["x-note", "perpetrator"]),
)
def test_values_of_any_kind_are_told_apart_and_ordered_alike(values, sources, policy, field):
    """A value's key (`resolution._key`, its canonical JSON) decides which claims agree and in
    what order the alternatives come: C writes the plain ones (null, booleans, ints within 64
    bits, printable ASCII) itself and hands the rest to orjson."""
    found = [
        Claim(
            id=UUID(int=n + 1),
            incident="a-b",
            field=field,
            value=value,
            qualifier="exact",
            source_id=SOURCE_IDS[n % len(SOURCE_IDS)],
            evidence={"quote": "q"},
            recorded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            recorded_by="t",
            position=n + 1,
        )  # fmt: skip
        for n, value in enumerate(values)
    ]
    found.sort(key=resolution.claim_order)
    expected = outcome(reference, field, found, sources, policy)
    assert same(outcome(native, field, found, sources, policy), expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fields(), min_size=1, max_size=5), sources(), st.sampled_from(POLICIES))
def test_whole_incidents_come_out_byte_identical(field_list, sources, policy):
    found = {c.id: c._replace(field=name) for name, claims in field_list for c in claims}
    claims = list(found.values())
    from chronology import bestview

    with_c = incident_view("a-b", claims, sources, policy=policy).content_json()
    bestview.resolve_distinct = reference
    try:
        in_python = incident_view("a-b", claims, sources, policy=policy).content_json()
    finally:
        bestview.resolve_distinct = native
    assert with_c == in_python


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fields(), min_size=1, max_size=5), sources(), st.sampled_from(POLICIES))
def test_stored_fields_read_back_in_c_exactly_as_in_python(field_list, sources, policy):
    found = {c.id: c._replace(field=name) for name, claims in field_list for c in claims}
    view = incident_view("a-b", list(found.values()), sources, policy=policy)
    stored = orjson.loads(view.content_json())
    memo = UuidMemo()
    claims, cited = tuple(map(memo.__getitem__, stored["claims"])), tuple(map(memo.__getitem__, stored["sources"]))
    read = resolution.field_views_from_stored(stored["fields"], claims, cited)
    expected = resolution.python_field_views_from_stored(stored["fields"], claims, cited)
    assert same(read, expected)
    assert read == view.fields  # nothing lost in the stored form
    assert all(type(f) is resolution.FieldView for f in read)
    assert all(type(a) is resolution.Alternative for f in read for a in f.alternatives)
    assert all(x is claims[claims.index(x)] for f in read for x in f.supporting)  # the view's own UUIDs
    assert IncidentView.from_stored(stored).as_dict() == view.as_dict()


CLAIMS = (UUID("2f0c4c1e-6c2a-5f3e-9d1a-2f6e0c8b7a41"), UUID("9b1d0f5e-3c2a-5e4f-8a7b-6c5d4e3f2a1b"))
CITED = (UUID("0a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d"),)
STORED_FIELD = ["killed", 18, "disputed", [0], [1], 2, 0.5, [[18, [0], [0]], [20, [1], [0]]], 18, 20, "about", None, []]


def test_a_stored_field_leaves_out_what_it_does_not_set():
    view = resolution.field_view_from_stored(STORED_FIELD, CLAIMS, CITED)
    claim_at, source_at = {c: n for n, c in enumerate(CLAIMS)}, {s: n for n, s in enumerate(CITED)}
    assert resolution.stored_field(view, claim_at, source_at) == STORED_FIELD[:11]  # no hedge, none retracted
    text = view._replace(low=None, high=None, qualifier="exact")
    assert resolution.stored_field(text, claim_at, source_at) == STORED_FIELD[:8]
    assert resolution.field_view_from_stored(STORED_FIELD[:8], CLAIMS, CITED) == text
    retracted = text._replace(retracted=(CLAIMS[1],))
    assert resolution.stored_field(retracted, claim_at, source_at) == [
        *STORED_FIELD[:8],
        None,
        None,
        "exact",
        None,
        [1],
    ]


@pytest.mark.parametrize(
    "fields",
    [
        [STORED_FIELD],  # as stored
        [STORED_FIELD[:8], STORED_FIELD[:10]],  # as stored, defaults left out
        [STORED_FIELD[:7]],  # too short
        [[*STORED_FIELD, None]],  # too long
        [[*STORED_FIELD[:3], "0", *STORED_FIELD[4:]]],  # places not a list
        [[*STORED_FIELD[:3], [2], *STORED_FIELD[4:]]],  # no such claim
        [[*STORED_FIELD[:4], [-1], *STORED_FIELD[5:]]],
        [[*STORED_FIELD[:4], [True], *STORED_FIELD[5:]]],
        [[*STORED_FIELD[:12], [2**70]]],
        [[*STORED_FIELD[:7], [[18, [0]]], *STORED_FIELD[8:]]],  # an alternative without sources
        [[*STORED_FIELD[:7], [[18, [0], [1]]], *STORED_FIELD[8:]]],  # no such source
        [[*STORED_FIELD[:7], {"value": 1}, *STORED_FIELD[8:]]],
        [{"field": "killed"}],  # not a list
        (STORED_FIELD,),  # a tuple of fields
        "fields",
        None,
    ],
)
def test_stored_fields_not_as_stored_read_back_alike(fields):
    def outcome(function, claims=CLAIMS):
        try:
            return "ok", function(fields, claims, CITED)
        except Exception as error:  # noqa: BLE001 - the error itself is what is compared
            return type(error), str(error)

    in_python = outcome(resolution.python_field_views_from_stored)
    assert outcome(resolution.field_views_from_stored) == in_python
    assert same(outcome(resolution.field_views_from_stored), in_python)
    assert outcome(resolution.field_views_from_stored, list(CLAIMS)) == outcome(  # not a tuple: Python reads it
        resolution.python_field_views_from_stored, list(CLAIMS)
    )


def sources_under_other_ids(sources, others):
    """The same sources keyed by equal ids that are other objects than the claims' own, among
    `others` more: a mapping the C code cannot take its sources from by identity."""
    copied = {UUID(str(source_id)): source for source_id, source in sources.items()}
    unrelated = next(iter(sources.values()))
    return {**copied, **{UUID(int=2**100 + n): unrelated for n in range(others)}}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields(), sources(), st.sampled_from(POLICIES), st.sampled_from([0, 10, 11, 40]))
def test_sources_keyed_by_equal_ids_or_in_other_mappings_resolve_alike(field, sources, policy, others):
    """C takes a claim's source from a small dict by identity first (`source_by_id`); sources
    under equal ids of other objects, in a dict too large to scan (past 16) or in another kind
    of mapping resolve as Python resolves them."""
    name, found = field
    expected = reference(name, found, sources, policy)
    by_value = sources_under_other_ids(sources, others)
    assert same(native(name, found, by_value, policy), expected)
    assert same(native(name, found, types.MappingProxyType(sources), policy), expected)


def test_a_claim_citing_an_unknown_source_fails_alike():
    name = "killed"
    claims = [
        Claim(UUID(int=n), "a-b", name, n, "exact", SOURCE_IDS[n], {}, dt.datetime(2026, 1, 1), "t", n) for n in (1, 2)
    ]
    with pytest.raises(KeyError):
        reference(name, claims, {}, resolution.balanced)
    with pytest.raises(KeyError):
        native(name, claims, {}, resolution.balanced)


def test_an_unknown_field_fails_alike():
    claim = Claim(UUID(int=1), "a-b", "nonsense", 1, "exact", SOURCE_IDS[0], {}, dt.datetime(2026, 1, 1), "t", 1)
    with pytest.raises(ValueError) as in_python:
        reference("nonsense", [claim], {}, resolution.balanced)
    with pytest.raises(ValueError) as in_c:
        native("nonsense", [claim], {}, resolution.balanced)
    assert str(in_c.value) == str(in_python.value)


def test_chron_pure_python_replays_the_bundled_chronology_to_the_same_bytes(tmp_path):
    store = tmp_path / "chron.db"

    def chron(*args, **env):
        return subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "--store", str(store), *args],
            env={**os.environ, **env},
            capture_output=True,
            check=True,
            cwd=ROOT,
        ).stdout

    chron("ingest", str(ROOT / "events"))
    for policy in ("balanced", "informative"):
        # --rebuild: the stored view is derived again by the process printing it
        in_python = chron("replay", "--rebuild", "--json", "--policy", policy, CHRON_PURE_PYTHON="1")
        in_c = chron("replay", "--rebuild", "--json", "--policy", policy, CHRON_PURE_PYTHON="0")
        assert in_c == in_python and b'"disputed"' in in_c
    probe = "from chronology import resolution; print(resolution.NATIVE)"
    flags = [
        subprocess.run(
            [sys.executable, "-c", probe], env={**os.environ, "CHRON_PURE_PYTHON": pure}, capture_output=True, text=True
        ).stdout.strip()
        for pure in ("0", "1")
    ]
    assert flags == ["True", "False"]


@pytest.mark.parametrize(
    ("texts", "memo"),
    [
        ([str(CLAIMS[0]), str(CLAIMS[1]), str(CLAIMS[0])], UuidMemo()),  # a miss, then hits
        ([CLAIMS[0].hex], UuidMemo({str(CLAIMS[1]): CLAIMS[1]})),  # 32 digits, no hyphens
        ([str(CLAIMS[0])], {}),  # a plain dict makes nothing: KeyError
        ([str(CLAIMS[0])], {str(CLAIMS[0]): "kept as given"}),
        (["not an id"], UuidMemo()),
        ([7], UuidMemo()),
        ((str(CLAIMS[0]),), UuidMemo()),  # a tuple of texts
        ([], UuidMemo()),
    ],
)
def test_ids_of_texts_read_alike(texts, memo):
    def outcome(function, memo):
        try:
            ids = function(texts, memo)
            return "ok", ids, dict(memo)
        except Exception as error:  # noqa: BLE001 - the error itself is what is compared
            return type(error), str(error)

    in_python = outcome(resolution.python_ids_of_texts, type(memo)(memo))
    in_c = outcome(resolution.ids_of_texts, memo)
    assert in_c == in_python
    if in_c[0] == "ok":
        assert all(type(i) is type(j) for i, j in zip(in_c[1], in_python[1], strict=True))
        again = resolution.ids_of_texts(texts, memo)  # the memo's own UUIDs the second time
        assert all(i is j for i, j in zip(in_c[1], again, strict=True))
