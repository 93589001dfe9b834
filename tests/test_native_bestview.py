"""Stored views made in C (`chronology._bestview`) come out byte for byte as
chronology/bestview.py makes them (`view_body`: `incident_view`, then `content_json`): the
Python module is the reference, the C one its faster copy."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronology import bestview, helper, projection
from chronology.bestview import incident_view
from chronology.ids import NAMESPACE, incident_id
from chronology.projection import Projection
from chronology.records import Claim, Link, Source
from tests.test_native_resolution import POLICIES, SOURCE_IDS, fields, sources, sources_under_other_ids
from tests.test_parallel import all_rows, corrected_archive

if bestview._accelerated is None:
    if os.environ.get("CI"):
        pytest.fail("chronology._bestview was not built (is a C compiler installed?)", pytrace=False)
    pytest.skip("chronology._bestview was not built here (no C compiler at install)", allow_module_level=True)

native = bestview._accelerated.view_body
reference = bestview.python_view_body

SLUGS = ["a-b", "strike-a", "strike-b", "camp-taji-2020"]


@st.composite
def incidents(draw):
    """(slug, claims, links, aliases): fields of one incident, sometimes every claim retracted,
    sometimes one id stated twice (the last one given counts), with analysts' links."""
    found = [
        c._replace(field=name) for name, claims in draw(st.lists(fields(), min_size=1, max_size=5)) for c in claims
    ]
    if draw(st.integers(0, 4)) == 0:
        found = [c._replace(retracted=True) for c in found]
    if draw(st.booleans()):
        found.append(found[0]._replace(value=found[0].value, rank="deprecated"))
    found = draw(st.permutations(found))
    slug = draw(st.sampled_from(SLUGS))
    relations = st.sampled_from(["responds_to", "part_of", "follows", "same_as"])
    links = [Link(slug, draw(relations), draw(st.sampled_from(SLUGS)), n) for n in range(draw(st.integers(0, 3)))]
    aliases = draw(st.lists(st.sampled_from(["old-name", "a-c", "zz-top"]), unique=True))
    return slug, found, links, aliases


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(incidents(), sources(), st.sampled_from(POLICIES))
def test_every_incident_is_stored_by_c_exactly_as_python_stores_it(incident, sources, policy):
    slug, claims, links, aliases = incident
    expected = reference(slug, claims, sources, links, aliases, policy)
    assert native(slug, claims, sources, links, aliases, policy) == expected
    view = incident_view(slug, claims, sources, links, aliases, policy)
    assert expected == (view.sort_key[0], view.content_json())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(incidents(), sources(), st.sampled_from(POLICIES), st.sampled_from([0, 11, 40]))
def test_an_incident_whose_sources_are_keyed_by_equal_ids_is_stored_alike(incident, sources, policy, others):
    """The grade's and the fields' sources taken by identity first in C: under equal ids that
    are other objects, among more than C scans, the same bytes as Python's."""
    slug, claims, links, aliases = incident
    expected = reference(slug, claims, sources, links, aliases, policy)
    assert native(slug, claims, sources_under_other_ids(sources, others), links, aliases, policy) == expected


@pytest.mark.parametrize("count", [64, 65, 300])
def test_an_incident_of_many_claims_and_sources_is_stored_alike(count):
    """Past 64 claims or sources a stored field finds their places through a dict, not a scan;
    each claim cites its source through a UUID object of its own, so places are found by value
    as well as by identity."""
    source_ids = [UUID(int=n * 0x1000_0000_0000_0001 + 11) for n in range(count)]
    known = {i: _source(i) for i in source_ids}
    names = ["killed", "title", "perpetrator", "date"]
    values = {
        "killed": lambda n: n % 7,
        "title": lambda n: f"Strike {n % 3}",
        "perpetrator": lambda n: f"Group {n % 4}",
        "date": lambda n: {
            "earliest": f"2020-03-{1 + n % 5:02d}",
            "latest": f"2020-03-{1 + n % 5:02d}",
            "precision": "day",
        },
    }
    claims = [
        Claim(
            UUID(int=1000 + n),
            "a-b",
            names[n % 4],
            values[names[n % 4]](n),
            "exact",
            UUID(str(source_ids[n % count])),
            {},
            dt.datetime(2026, 1, 1),
            "t",
            n,
            retracted=n % 11 == 0,
        )
        for n in range(2 * count)
    ]
    expected = reference("a-b", claims, known)
    assert native("a-b", claims, known) == expected
    assert b'"disputed"' in expected[1]


def test_the_defaults_are_no_links_no_aliases_and_the_balanced_policy():
    claim = Claim(UUID(int=1), "a-b", "killed", 3, "exact", SOURCE_IDS[0], {}, dt.datetime(2026, 1, 1), "t", 1)
    known = {SOURCE_IDS[0]: _source(SOURCE_IDS[0])}
    assert native("a-b", [claim], known) == reference("a-b", [claim], known)
    sort_date, body = native("a-b", [claim], known)
    assert sort_date == bestview.UNDATED and b'"title":"a b"' in body


@pytest.mark.parametrize(
    "slug",
    ["a", "x" * 45, "x" * 46, "x" * 47, "x" * 110, "x" * 300, "café-attack", "火箭-袭击-2020", "a\U0001f680b"],
)
def test_the_incident_id_in_a_stored_view_is_its_uuid5(slug):
    """C writes the id itself (its own SHA-1): the same text as `ids.incident_id`, and as
    `uuid.uuid5`, for names filling a SHA-1 block to either side of its end, long ones and
    non-ASCII ones."""
    claim = Claim(UUID(int=1), slug, "killed", 3, "exact", SOURCE_IDS[0], {}, dt.datetime(2026, 1, 1), "t", 1)
    known = {SOURCE_IDS[0]: _source(SOURCE_IDS[0])}
    body = orjson.loads(native(slug, [claim], known)[1])
    assert body["id"] == str(incident_id(slug)) == str(uuid.uuid5(NAMESPACE, "incident:" + slug))
    assert native(slug, [claim], known) == reference(slug, [claim], known)


def test_a_claim_citing_an_unknown_source_fails_alike():
    claims = [
        Claim(UUID(int=n), "a-b", "killed", n, "exact", SOURCE_IDS[n], {}, dt.datetime(2026, 1, 1), "t", n)
        for n in (1, 2)
    ]
    with pytest.raises(KeyError):
        reference("a-b", claims, {})
    with pytest.raises(KeyError):
        native("a-b", claims, {})


def test_what_is_not_a_claim_is_refused():
    with pytest.raises(TypeError, match="Claim records"):
        native("a-b", [("not", "a", "claim")], {})
    with pytest.raises(TypeError, match="view_body"):
        native("a-b", [])


def test_a_rebuild_stores_the_views_python_would_store(chron, monkeypatch):
    """The materialized projection's every table, with views made by the reference instead."""
    archive = corrected_archive(chron)
    with monkeypatch.context() as patch:
        patch.setattr(projection, "view_body", reference)
        patch.setattr(helper, "view_body", reference)
        in_python = Projection(archive, parallel_from=None).rebuild()
        expected = all_rows(in_python)
        in_python.close()
    in_c = Projection(archive, parallel_from=None).rebuild()
    assert all_rows(in_c) == expected
    in_c.close()
    assert any(b'"contested"' in row[-1] for row in expected["chron_views"])


def _source(source_id: UUID) -> Source:
    return Source(id=source_id, key="s", publisher="P", title="s", published=dt.date(2020, 3, 1), reliability="C")
