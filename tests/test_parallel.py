"""Views built in a helper process are the views the projection builds itself: same content,
same revisions and dates, through corrections, merges and many transactions; a helper that
fails or stalls is done without, and a rebuild that fails with it running leaves the projection
as it was."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
import warnings

import pytest

from chronology import parallel, projection
from chronology.archive import Archive
from chronology.projection import Projection, TableViews
from chronology.records import decode_claims
from chronology.resolution import balanced
from tests.conftest import EVENTS

TAJI = "2020-03-11-camp-taji-rocket-attack"
STRIKES = "2020-03-12-us-retaliatory-strikes-in-iraq"
ALBUKAMAL = "2020-03-albukamal-airstrikes"


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of two incidents, few in flight: every path (sent, built here, handed back in
    order, backpressure) runs on the bundled chronology's dozen incidents."""
    monkeypatch.setattr(parallel, "BATCH", 2)
    monkeypatch.setattr(parallel, "IN_FLIGHT", 2)
    monkeypatch.setattr(parallel, "WAITING_AT_MOST", 1)
    monkeypatch.setenv("CHRON_PARALLEL", "1")


def view_rows(projection: Projection) -> list[tuple]:
    with projection.db.transaction(write=False) as tx:
        rows = tx.rows("SELECT slug, sort_key, digest, revision, changed_at, body FROM chron_views ORDER BY slug")
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def incident_rows(projection: Projection) -> list[tuple[str, bytes]]:
    """Each incident's claims as stored (encoded once for the helper and the table)."""
    with projection.db.transaction(write=False) as tx:
        return [
            (slug, bytes(claims)) for slug, claims in tx.rows("SELECT slug, claims FROM chron_incidents ORDER BY slug")
        ]


CORRECTIONS = [
    ("grade", "consultancy-2020-03-12-al-taji-strike-brief", "A", "--reason", "vetted"),
    ("merge", STRIKES, ALBUKAMAL, "--reason", "same operation"),
    ("link", ALBUKAMAL, "follows", TAJI, "--reason", "retaliation"),
]


def corrected_archive(chron) -> Archive:
    """The bundled chronology, then corrections, each its own transaction."""
    chron("ingest", EVENTS)
    claims = json.loads(chron("show", TAJI, "--json").stdout)["claims"]
    chron("retract", next(c["id"] for c in claims if c["field"] == "munitions_hit"), "--reason", "caption")
    chron("rank", next(c["id"] for c in claims if c["field"] == "killed"), "preferred", "--reason", "primary")
    for correction in CORRECTIONS:
        chron(*correction)
    return Archive(chron.store)


def test_a_rebuild_with_the_helper_is_identical_to_one_without(chron, small_batches):
    archive = corrected_archive(chron)
    alone = Projection(archive, parallel_from=None).rebuild()
    expected, claims = view_rows(alone), incident_rows(alone)
    alone.close()
    helped = Projection(archive, parallel_from=0).rebuild()
    assert view_rows(helped) == expected
    assert incident_rows(helped) == claims
    assert len(expected) >= 10 and any(row[3] > 1 for row in expected)  # revisions were counted
    helped.close()


def test_catch_ups_with_the_helper_match_a_rebuild_without(chron, small_batches):
    chron("ingest", EVENTS)
    archive = Archive(chron.store)
    helped = Projection(archive, parallel_from=0).catch_up()
    for correction in CORRECTIONS:
        chron(*correction)
        helped.catch_up()
    incremental, claims = view_rows(helped), incident_rows(helped)
    helped.close()
    alone = Projection(archive, parallel_from=None).rebuild()
    assert view_rows(alone) == incremental
    assert incident_rows(alone) == claims
    alone.close()


def test_a_helper_that_exits_changes_nothing_in_a_rebuild(chron, small_batches, monkeypatch):
    """The caller builds what the helper has not returned, so whether or not it notices in
    time that the helper is gone (then it warns), the views are the same."""
    archive = corrected_archive(chron)
    alone = Projection(archive, parallel_from=None).rebuild()
    expected, claims = view_rows(alone), incident_rows(alone)
    alone.close()
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the helper exits at once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        helped = Projection(archive, parallel_from=0).rebuild()
    assert view_rows(helped) == expected and incident_rows(helped) == claims
    helped.close()
    for warning in caught:
        assert "helper process failed; this process builds the views instead" in str(warning.message)


def test_a_helper_found_gone_is_warned_about_and_its_batches_built_here(small_batches, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    builder = parallel.ViewBuilder(balanced)
    for slug in ("a", "b", "c"):  # merged away: nothing to resolve, the order still kept
        builder.add((slug, None, (), (), ()), {})
    builder._reader.join(timeout=30)  # the helper has exited and the reader has said so
    with pytest.warns(RuntimeWarning, match="helper process failed; this process builds the views instead"):
        built = list(builder.ready(wait=True))
    assert built == [("a", None), ("b", None), ("c", None)]
    builder.close()


def test_a_rebuild_failing_with_the_helper_running_leaves_the_projection_as_it_was(chron, small_batches, monkeypatch):
    chron("ingest", EVENTS)
    archive = Archive(chron.store)
    projection = Projection(archive, parallel_from=None).catch_up()
    before, position = view_rows(projection), projection.position()
    put_row = TableViews.put_row
    calls = []

    def fail_at_the_fifth(views, *row):
        calls.append(row[0])
        if len(calls) == 5:
            raise OSError("disk full")
        put_row(views, *row)

    monkeypatch.setattr(TableViews, "put_row", fail_at_the_fifth)
    started = time.monotonic()
    with pytest.raises(OSError, match="disk full"):
        Projection(archive, parallel_from=0).rebuild()
    assert time.monotonic() - started < 10  # the helper was not waited for
    monkeypatch.undo()
    assert view_rows(projection) == before and projection.position() == position
    assert view_rows(Projection(archive, parallel_from=None).rebuild()) == before


def test_a_stalled_helper_is_neither_waited_for_nor_needed(chron, small_batches, monkeypatch):
    """The helper stopped as it starts: the rebuild builds every view itself, the sent
    batches included, and stops the helper rather than waiting for what it no longer needs."""
    archive = corrected_archive(chron)
    alone = Projection(archive, parallel_from=None).rebuild()
    expected, claims = view_rows(alone), incident_rows(alone)
    alone.close()
    start_helper = parallel.ViewBuilder.__init__
    stopped = []

    def start_and_stop(builder, policy):
        start_helper(builder, policy)
        os.kill(builder._process.pid, signal.SIGSTOP)
        stopped.append(builder._process)

    monkeypatch.setattr(parallel.ViewBuilder, "__init__", start_and_stop)
    started = time.monotonic()
    helped = Projection(archive, parallel_from=0).rebuild()
    assert time.monotonic() - started < 10  # not the 30 s a close() waits for a live helper
    assert view_rows(helped) == expected and incident_rows(helped) == claims
    assert stopped and stopped[0].returncode == -signal.SIGKILL
    helped.close()


def bundled_incidents(chron) -> tuple[list[parallel.Incident], dict]:
    """Every incident of the bundled chronology as a fold hands it to the builder, fifty
    times over (a batch the helper takes a while to build), and the sources they cite."""
    chron("ingest", EVENTS)
    incidents, sources = [], {}
    with Projection(Archive(chron.store), parallel_from=None).catch_up().state() as state:
        for slug in state.incident_slugs():
            claims = state.claims_of(slug)
            incidents.append((slug, claims, (state.encoded_claims(slug),), (), ()))
            sources.update(projection.cited_sources(state, claims))
    return incidents * 50, sources


def helper_started_a_batch(builder: parallel.ViewBuilder) -> None:
    """Wait until the helper has said it started on the batch sent to it."""
    deadline = time.monotonic() + 30
    while builder._inbox.empty():
        assert time.monotonic() < deadline, "the helper never started"
        time.sleep(0.01)


def test_the_batch_the_helper_is_building_is_left_to_it(chron, monkeypatch):
    """The caller, out of batches of its own, waits for the one the helper has started
    rather than building it too."""
    monkeypatch.setattr(parallel, "BATCH", 1000)  # all of them: one batch
    monkeypatch.setattr(parallel, "WAIT_AT_LEAST", 30)
    incidents, sources = bundled_incidents(chron)
    expected = parallel.build_batch(incidents, sources, balanced)
    built_here = []
    build_batch = parallel.build_batch
    monkeypatch.setattr(parallel, "build_batch", lambda *args: built_here.append(args) or build_batch(*args))
    builder = parallel.ViewBuilder(balanced)
    for incident in incidents:
        builder.add(incident, sources)
    builder._close_batch()  # sent
    helper_started_a_batch(builder)
    assert list(builder.ready(wait=True)) == expected
    assert built_here == []
    builder.close()


def test_a_batch_the_helper_started_and_stalled_on_is_built_here(chron, monkeypatch):
    monkeypatch.setattr(parallel, "BATCH", 1000)
    incidents, sources = bundled_incidents(chron)
    expected = parallel.build_batch(incidents, sources, balanced)
    builder = parallel.ViewBuilder(balanced)
    for incident in incidents:
        builder.add(incident, sources)
    builder._close_batch()
    helper_started_a_batch(builder)
    os.kill(builder._process.pid, signal.SIGSTOP)
    started = time.monotonic()
    assert list(builder.ready(wait=True)) == expected
    assert time.monotonic() - started < 5  # waited a little, then built it here
    builder.close()  # nothing it owes is wanted: stopped, not waited for
    assert builder._process.returncode == -signal.SIGKILL


def all_rows(projection: Projection) -> dict[str, list[tuple]]:
    from tests.test_reading import SCRATCH_TABLES

    with projection.db.transaction(write=False) as tx:
        return {
            table: [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
            for table, key in SCRATCH_TABLES.items()
            for rows in [tx.rows(f"SELECT * FROM {table} ORDER BY {key}")]
        }


@pytest.mark.parametrize("parallel_from", [None, 0])
def test_writing_out_after_every_transaction_leaves_the_tables_writing_once_does(
    chron, small_batches, monkeypatch, parallel_from
):
    """A fold holds at most `HOLD_AT_MOST` rows before writing them out; what it keeps across
    writes (the sources it has read) must not change what is written: a source graded or
    amended after a write is written, with the views citing it."""
    archive = corrected_archive(chron)
    archive.amend("consultancy-2020-03-12-al-taji-strike-brief", {"publisher": "Reuters"}, "same newsroom")
    once = Projection(archive, parallel_from=None).rebuild()
    expected = all_rows(once)
    once.close()
    monkeypatch.setattr("chronology.projection.HOLD_AT_MOST", 0)
    often = Projection(archive, parallel_from=parallel_from).rebuild()
    assert all_rows(often) == expected
    often.close()
    assert any(b"Reuters" in body for _id, body in expected["chron_sources"])


@pytest.mark.parametrize("slug_read", ["as written", "not the event's"])
def test_corrections_to_claims_written_out_find_their_incidents_in_one_query(chron, monkeypatch, slug_read):
    """A correction (retraction, rank) to a claim no longer held finds its incident in the
    store: one query reads the slug from the claim's row and the incident's stored claims with
    it (`claim_home`). When the slug read from the row's bytes is not the event's own, only the
    slug is taken and the incident is read on its own. Either way the tables come out as a fold
    holding everything makes them."""
    archive = corrected_archive(chron)
    once = Projection(archive, parallel_from=None).rebuild()
    expected = all_rows(once)
    once.close()
    select = Archive.claim_select
    if slug_read != "as written":
        misread = lambda self, claim_id: (  # noqa: E731
            select(self, claim_id)[0].replace(" AS slug FROM", " || '-misread' AS slug FROM"),
            select(self, claim_id)[1],
        )
        monkeypatch.setattr(Archive, "claim_select", misread)
    homes = []
    home = projection.claim_home
    monkeypatch.setattr(projection, "claim_home", lambda *args: homes.append(home(*args)) or homes[-1])
    monkeypatch.setattr(projection, "HOLD_AT_MOST", 0)  # every claim written out before its correction
    often = Projection(archive, parallel_from=None).rebuild()
    assert all_rows(often) == expected
    assert len(homes) >= 2 and all(found.slug for found in homes)
    if slug_read == "as written":  # the incident's claims as written out before the correction
        assert all(found.read and {c.incident for c in decode_claims(found.stored)} == {found.slug} for found in homes)
    else:
        assert not any(found.read for found in homes)
    with often.db.transaction(write=False) as tx:
        source = next(e.originator_id for e in archive.read() if e.topic == "chronology:Source.Registered")
        assert home(archive, tx, source) == projection.ClaimHome(None)  # not a claim
        assert home(archive, tx, uuid.uuid4()) == projection.ClaimHome(None)  # not in the log
    often.close()


def test_incidents_citing_two_versions_of_a_source_are_each_built_with_their_own(chron, monkeypatch):
    """One batch holds one version of each source: with every incident of the corrected
    chronology in one batch, the views before a source's amendment use the old version."""
    monkeypatch.setattr(parallel, "BATCH", 1000)
    monkeypatch.setenv("CHRON_PARALLEL", "1")
    archive = corrected_archive(chron)
    archive.amend("consultancy-2020-03-12-al-taji-strike-brief", {"publisher": "Reuters"}, "same newsroom")
    alone = Projection(archive, parallel_from=None).rebuild()
    expected = view_rows(alone)
    alone.close()
    helped = Projection(archive, parallel_from=0).rebuild()
    assert view_rows(helped) == expected
    helped.close()


def test_the_helper_starts_with_only_what_building_views_takes():
    """Started as a rebuild starts it for a built-in policy (without `site`, on this process's
    import path): it imports neither eventsourcing nor the caller's threads and pipes."""
    import subprocess

    command, env = parallel.helper_command(balanced)
    assert command[1:] == ["-S", "-m", "chronology.helper"]
    probe = "import sys, chronology.helper; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([command[0], "-S", "-c", probe], env=env, capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert {"chronology.bestview", "chronology.records", "orjson"} <= loaded
    assert not loaded & {"eventsourcing", "chronology.parallel", "chronology.projection", "subprocess", "threading"}


def test_a_policy_from_a_plugin_gets_a_helper_started_as_this_process_was():
    """A plugin's policy may be importable only through what `site` sets up (a `.pth` hook)."""

    def plugin_policy(field, candidates, active, sources):
        return balanced(field, candidates, active, sources)

    command, _ = parallel.helper_command(plugin_policy)
    assert command[1:] == ["-m", "chronology.helper"]
