"""An incident's claims encoded and decoded in C (`chronology._records`) come out exactly as the
Python reference makes them (`records.encode_claims`, `records.decode_claims`): the same bytes
stored, the same `Claim`s read back, the same errors for rows that are not what was stored."""

from __future__ import annotations

import datetime as dt
import os
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronology import records, transcoder
from chronology.records import Claim
from chronology.transcoder import UuidMemo
from tests.test_native_resolution import FIELDS, claims

if records._accelerated is None:
    if os.environ.get("CI"):
        pytest.fail("chronology._records was not built (is a C compiler installed?)", pytrace=False)
    pytest.skip("chronology._records was not built here (no C compiler at install)", allow_module_level=True)

native_encode, native_decode = records._accelerated.encode_claims, records._accelerated.decode_claims
reference_encode, reference_decode = records.python_encode_claims, records.python_decode_claims


def same(left, right):
    """Equal, with the same types throughout (`repr` tells 12 from 12.0, and a UUID from its text)."""
    return left == right and repr(left) == repr(right)


def stored_claims():
    """Claims of any field, some with the optional parts set, recorded at various times."""
    return (
        st.sampled_from(FIELDS)
        .flatmap(claims)
        .flatmap(
            lambda claim: st.builds(
                lambda at, said_by, note, reason: claim._replace(
                    recorded_at=at, said_by=said_by, note=note, retraction_reason=reason if claim.retracted else None
                ),
                st.datetimes(timezones=st.just(dt.UTC)),
                st.none() | st.text(max_size=8),
                st.none() | st.text(max_size=8),
                st.text(min_size=1, max_size=8),
            )
        )
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored_claims(), max_size=6), st.booleans())
def test_claims_encode_and_decode_in_c_exactly_as_in_python(found, with_memo):
    stored = reference_encode(found)
    assert native_encode(found) == stored
    assert native_encode(iter(found)) == stored  # any iterable, as `dict.values()` is
    memos = (UuidMemo(), UuidMemo()) if with_memo else (None, None)
    expected = reference_decode(stored, memos[0])
    decoded = native_decode(stored, memos[1])
    assert type(decoded) is list and all(type(c) is Claim for c in decoded)
    assert all(same(tuple(a), tuple(b)) for a, b in zip(decoded, expected, strict=True))
    assert decoded == found
    if with_memo:
        assert memos[0] == memos[1]
        assert all(c.id is memos[1][str(c.id)] for c in decoded)  # one UUID per id text


def test_ids_in_every_form_a_store_keeps_them_decode_alike():
    claim = Claim(
        id=UUID(int=7), incident="a-b", field="killed", value=3, qualifier="exact", source_id=UUID(int=9),
        evidence={"quote": "q"}, recorded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), recorded_by="t", position=1,
    )  # fmt: skip
    row = list(orjson.loads(reference_encode([claim]))[0])
    for id_text in (
        UUID(int=7).hex,
        str(UUID(int=7)).upper(),
        "{" + str(UUID(int=7)) + "}",
        "urn:uuid:" + "0" * 31 + "7",
    ):
        row[0] = id_text
        stored = orjson.dumps([row])
        assert same(tuple(native_decode(stored)[0]), tuple(reference_decode(stored)[0]))


def failure(decode, *args):
    try:
        result = decode(*args)
    except Exception as error:  # noqa: BLE001 - the point is which one
        return type(error), str(error)
    return None, repr([(type(c), tuple(c)) for c in result])  # decoded: what came out


@pytest.mark.parametrize(
    "stored",
    [
        b"not json",
        b"{}",
        b'{"a": 1}',
        b"[]",
        b"[1]",
        b"[[1, 2]]",
        b"[" + b'"x",' * 18 + b'"x"]',
        orjson.dumps(
            [
                ["not an id", "a-b", "killed", 3, "exact", str(UUID(int=1)), {}, "2026-01-01T00:00:00+00:00"]
                + [None] * 11
            ]
        ),  # fmt: skip
        orjson.dumps(
            [
                [str(UUID(int=1)), "a-b", "killed", 3, "exact", "not a source", {}, "2026-01-01T00:00:00+00:00"]
                + [None] * 11
            ]
        ),  # fmt: skip
        orjson.dumps(
            [[str(UUID(int=1)), "a-b", "killed", 3, "exact", str(UUID(int=2)), {}, "not a time"] + [None] * 11]
        ),  # fmt: skip
        orjson.dumps(
            [[1, "a-b", "killed", 3, "exact", str(UUID(int=2)), {}, "2026-01-01T00:00:00+00:00"] + [None] * 11]
        ),  # fmt: skip
        orjson.dumps([[str(UUID(int=1)), "a-b", "killed", 3, "exact", str(UUID(int=2)), {}, 5] + [None] * 11]),
        orjson.dumps(
            [
                ["\u00e9" * 32, "a-b", "killed", 3, "exact", str(UUID(int=2)), {}, "2026-01-01T00:00:00+00:00"]
                + [None] * 11
            ]
        ),  # fmt: skip
        orjson.dumps([[str(UUID(int=1)), "a-b", "killed", 3, "exact", str(UUID(int=2)), {}, "2026-01-01T00:00:00"]]),
    ],
)
def test_rows_that_are_not_what_was_stored_fail_or_read_alike(stored):
    transcoder._RECENT.clear()  # no earlier test's decoded text answers for these
    expected = failure(reference_decode, stored)
    transcoder._RECENT.clear()
    assert failure(native_decode, stored) == expected
    assert failure(native_decode, stored, UuidMemo()) == failure(reference_decode, stored, UuidMemo())


def test_what_is_not_claims_fails_alike_to_encode():
    for given_value in (None, 3, [object()], [(UUID(int=1), object())]):
        assert failure(native_encode, given_value) == failure(reference_encode, given_value)


def test_the_projection_uses_the_c_copies():
    from chronology import helper, projection

    assert projection.decode_claims is native_decode and projection.encode_claims is native_encode
    assert helper.decode_claims is native_decode


def test_trailing_fields_at_their_defaults_are_not_stored_and_full_rows_still_read():
    """A claim's row stops at its last field that is not at its default; a row holding every
    field (as stores written before rows were trimmed hold them) reads as the same claim."""
    plain = Claim(
        id=UUID(int=7), incident="a-b", field="killed", value=3, qualifier="exact", source_id=UUID(int=9),
        evidence={"quote": "q"}, recorded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), recorded_by="t", position=1,
    )  # fmt: skip
    hedged = plain._replace(hedge="reportedly")
    ranked = plain._replace(rank="deprecated", rank_reason="a caption")
    for encode in (native_encode, reference_encode):
        rows = orjson.loads(encode([plain, hedged, ranked]))
        assert [len(row) for row in rows] == [10, 12, 19]
    full = orjson.dumps([tuple(claim) for claim in (plain, hedged, ranked)])
    for decode in (native_decode, reference_decode):
        assert decode(full) == [plain, hedged, ranked] == decode(native_encode([plain, hedged, ranked]))
