"""The log's rows folded in C (`chronology._fold`) leave the projection exactly as the Python
fold leaves it (`projection.fold` over the decoded rows): the same tables after a rebuild, the
same held state and transaction ends, and the same errors for rows it hands to Python."""

from __future__ import annotations

import os
from contextlib import contextmanager
from uuid import UUID

import orjson
import pytest
from click.testing import CliRunner

from chronology import projection
from chronology.archive import Archive
from chronology.projection import ClaimHome, Database, Projection, TableState, fold_rows
from cli import cli
from tests.conftest import EVENTS
from tests.test_parallel import (
    all_rows,
    corrected_archive,
    small_batches,  # noqa: F401 (a fixture the rebuilds use)
)

if projection._folding is None:
    if os.environ.get("CI"):
        pytest.fail("chronology._fold was not built (is a C compiler installed?)", pytrace=False)
    pytest.skip("chronology._fold was not built here (no C compiler at install)", allow_module_level=True)


@contextmanager
def in_python():
    """The block runs the Python fold (the reference), every other patch left in place."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(projection, "_folding", None)
        patch.setattr(projection, "view_inputs", projection.python_view_inputs)
        yield


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("hold_at_most", [projection.HOLD_AT_MOST, 0])
@pytest.mark.parametrize("parallel_from", [None, 0])
def test_a_rebuild_folded_in_c_leaves_every_table_as_the_python_fold_does(
    chron, monkeypatch, hold_at_most, parallel_from
):
    """Retractions, rankings, merges, links, grades and amendments among the claims, written
    out once or after every transaction (the held state's bookkeeping across write-outs),
    with or without the helper process."""
    archive = corrected_archive(chron)
    archive.amend("consultancy-2020-03-12-al-taji-strike-brief", {"publisher": "Reuters"}, "same newsroom")
    monkeypatch.setattr(projection, "HOLD_AT_MOST", hold_at_most)
    with in_python():
        reference = Projection(archive, parallel_from=parallel_from).rebuild()
        expected = all_rows(reference)
        reference.close()
    folded = Projection(archive, parallel_from=parallel_from).rebuild()
    assert all_rows(folded) == expected
    folded.close()
    assert len(expected["chron_incidents"]) >= 10 and expected["chron_aliases"]


class Noted:
    """A fold's transaction ends as its callbacks saw them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def refresh(self, state, views, slugs, at, policy) -> None:
        self.calls.append(("refresh", sorted(slugs), at, state.position, state._held))

    def after_transaction(self, position, at) -> None:
        self.calls.append(("after", position, at))


class _RolledBack(Exception):
    pass


def folded(store: str, rows: list[tuple]) -> tuple:
    """`fold_rows` of `rows` into the store's (empty) table state, rolled back after: the
    result, what the state holds, and each transaction end."""
    archive = Archive(store)
    db = Database.for_archive(archive)
    try:
        with db.transaction() as tx:
            state = TableState(tx, lambda claim_id: ClaimHome(archive.incident_of_claim(claim_id)), empty=True)
            noted = Noted()
            result = fold_rows(
                state, None, rows, archive, after_transaction=noted.after_transaction, refresh_views=noted.refresh
            )
            claims = {
                slug: {key: (tuple(c), [type(v) for v in c], c.id.is_safe) for key, c in held.items()}
                for slug, held in state._incidents.items()
            }
            outcome = (
                (result.last_position, result.last_changed, result.recomputed),
                (claims, dict(state._home), set(state._citations), set(state._changed), state._held, state.position),
                noted.calls,
            )
            raise _RolledBack  # a merge writes its alias at once: leave the store as it was
    except _RolledBack:
        return outcome
    finally:
        db.close()


def log_rows(store: str) -> list[tuple]:
    archive = Archive(store)
    db = Database.for_archive(archive)
    with db.transaction(write=False) as tx:
        rows = [tuple(row) for row in tx.rows(*archive.log_select(0))]
    db.close()
    return rows


def test_claims_folded_in_c_are_held_as_the_python_fold_holds_them(chron):
    """Every field of every claim (same values, same types, same UUIDs), the citations and
    held counts, and each transaction end with the state as the callbacks saw it."""
    corrected_archive(chron)
    rows = log_rows(chron.store)
    with in_python():
        expected = folded(chron.store, rows)
    assert folded(chron.store, rows) == expected
    assert len(expected[2]) > 5 and expected[1][4] > 100


def test_ids_in_any_form_sqlite_may_hold_are_read_as_python_reads_them(sqlite_store):
    """Upper-case hex is parsed in C; an id with hyphens goes to the Python function."""
    result = CliRunner().invoke(cli, ["--store", sqlite_store, "ingest", str(EVENTS)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = log_rows(sqlite_store)
    varied = [
        (p, str(UUID(i)) if n % 3 == 1 else i.upper() if n % 3 == 2 else i, v, t, s)
        for n, (p, i, v, t, s) in enumerate(rows)
    ]
    with in_python():
        expected = folded(sqlite_store, varied)
    assert folded(sqlite_store, varied) == expected == folded(sqlite_store, rows)


def test_a_claim_row_the_c_fold_cannot_take_fails_as_in_python(bundled):
    """A recorded claim without its evidence: handed to the Python decoding and fold, which
    raise what they raise on their own."""
    rows = log_rows(bundled.store)
    at = next(n for n, row in enumerate(rows) if row[3] == "chronology:Claim.Recorded")
    state = orjson.loads(rows[at][4])
    del state["content"]["evidence"]
    rows[at] = (*rows[at][:4], orjson.dumps(state))
    with in_python(), pytest.raises(KeyError) as in_python_error:
        folded(bundled.store, rows)
    with pytest.raises(KeyError) as in_c_error:
        folded(bundled.store, rows)
    assert str(in_c_error.value) == str(in_python_error.value) == "'evidence'"


def test_what_each_view_is_built_from_is_taken_in_c_as_in_python(chron, monkeypatch):
    """At the end of every transaction of a rebuild, for each incident it touched: the same
    claims in the same order, links, merged slugs, cited sources (in the same order) and
    stored claims, whether C took it (claims held, no merges or links yet: the bundled
    chronology's ingests) or handed it to the Python reference (after the merge)."""
    archive = corrected_archive(chron)
    taken = {"in C": 0, "in Python": 0}
    refresh = projection.refresh_stored

    def comparing(state, views, slugs, at, policy):
        for slug in slugs:
            held = not state.aliases and not state.links and state._incidents.get(slug)
            taken["in C" if held else "in Python"] += 1
            for with_encoded in (False, True):
                native = projection._folding.view_inputs(state, slug, with_encoded)
                reference = projection.python_view_inputs(state, slug, with_encoded)
                assert native == reference
                if native is not None:
                    assert list(native[3]) == list(reference[3])  # sources in the same order
        refresh(state, views, slugs, at, policy)

    monkeypatch.setattr(projection, "refresh_stored", comparing)
    Projection(archive, parallel_from=None).rebuild()
    assert taken["in C"] >= 10 and taken["in Python"] >= 3


def _rewritten(state: bytes, form: str) -> bytes:
    """A recorded claim's state as the archive writes it (`form` "as written"), or the same
    fields written another way, each of which the C fold's reading of the written form must
    leave to the full decoding."""
    fields = orjson.loads(state)
    if form == "as written":
        return state
    if form == "indented":
        return orjson.dumps(fields, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if form == "keys unsorted":
        return orjson.dumps(dict(reversed(fields.items())))
    if form == "an extra key":
        return orjson.dumps({**fields, "zz_note": "added"}, option=orjson.OPT_SORT_KEYS)
    if form == "a key between the content and the rest":
        return orjson.dumps({**fields, "note": {"said": "}"}}, option=orjson.OPT_SORT_KEYS)
    if form == "recorded by a quoted name":
        return orjson.dumps({**fields, "recorded_by": 'the "desk"'}, option=orjson.OPT_SORT_KEYS)
    if form == "recorded by a non-ASCII name":
        return orjson.dumps({**fields, "recorded_by": "Éloïse"}, option=orjson.OPT_SORT_KEYS)
    if form == "a tagged value in the content":
        content = {**fields["content"], "note": {"_type_": "uuid_hex", "_data_": "0" * 32}}
        return orjson.dumps({**fields, "content": content}, option=orjson.OPT_SORT_KEYS)
    if form == "a time without microseconds":
        timestamp = {**fields["timestamp"], "_data_": fields["timestamp"]["_data_"][:19] + "+00:00"}
        return orjson.dumps({**fields, "timestamp": timestamp}, option=orjson.OPT_SORT_KEYS)
    if form == "braces and escapes in the content":
        content = {**fields["content"], "note": 'a "}" and a \\ {['}
        return orjson.dumps({**fields, "content": content}, option=orjson.OPT_SORT_KEYS)
    raise AssertionError(form)


@pytest.mark.parametrize(
    "form",
    [
        "as written",
        "indented",
        "keys unsorted",
        "an extra key",
        "a key between the content and the rest",
        "recorded by a quoted name",
        "recorded by a non-ASCII name",
        "a tagged value in the content",
        "a time without microseconds",
        "braces and escapes in the content",
    ],
)
def test_a_claim_state_in_any_form_is_held_as_the_python_fold_holds_it(bundled, form, monkeypatch):
    """The C fold reads a state written as the archive writes it without decoding all of it;
    every other form of the same fields is decoded whole. Either way, the same claims."""
    rows = log_rows(bundled.store)
    varied = [
        (p, i, v, t, _rewritten(s, form) if t == "chronology:Claim.Recorded" and n % 2 == 0 else s)
        for n, (p, i, v, t, s) in enumerate(rows)
    ]
    with in_python():
        expected = folded(bundled.store, varied)
    decoded_whole = []
    decode_state = projection.state_decoder()

    def counted(data: bytes):
        decoded_whole.append(data)
        return decode_state(data)

    monkeypatch.setattr(projection, "state_decoder", lambda: counted)
    assert folded(bundled.store, varied) == expected
    other_forms = {s for (*_, s), (*_, was) in zip(varied, rows, strict=True) if s != was}
    written_form = form in ("as written", "a time without microseconds", "braces and escapes in the content")
    assert set(decoded_whole) == (set() if written_form else other_forms)
    assert written_form or len(other_forms) > 10


@pytest.mark.parametrize(
    "broken",
    [
        (b'"value":', b'"value":,'),  # content that is not JSON
        (b'"_data_":"20', b'"_data_":"not a time 20'),  # a time that does not parse
        (b'"_data_":"', b'"_data_":"zz'),  # a source id that is not hex
    ],
)
def test_a_claim_state_written_wrongly_fails_as_in_python(bundled, broken):
    """A state in the written form whose parts do not decode: the C fold leaves it to the full
    decoding, which raises what the Python fold raises."""
    rows = log_rows(bundled.store)
    at = next(n for n, row in enumerate(rows) if row[3] == "chronology:Claim.Recorded")
    old, new = broken
    assert old in rows[at][4]
    rows[at] = (*rows[at][:4], rows[at][4].replace(old, new, 1))
    with in_python(), pytest.raises(Exception) as in_python_error:
        folded(bundled.store, rows)
    with pytest.raises(Exception) as in_c_error:
        folded(bundled.store, rows)
    assert type(in_c_error.value) is type(in_python_error.value)
    assert str(in_c_error.value) == str(in_python_error.value)
