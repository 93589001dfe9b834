"""Real processes on a real store: killed ingesters, concurrent writers, readers during writes."""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLAIMS_PER_FILE = 400


def write_files(folder: Path, count: int, prefix: str = "wire") -> list[Path]:
    """`count` fact files, each one source with CLAIMS_PER_FILE distinct claims."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        source = f"{prefix}-{number:03d}"
        lines = [
            json.dumps(
                {"source": {"id": source, "publisher": f"Wire {number}", "title": "t", "published": "2020-03-12"}}
            )
        ]
        for claim in range(CLAIMS_PER_FILE):
            lines.append(
                json.dumps(
                    {
                        "source": source,
                        "incident": f"incident-{claim % 37}",
                        "field": "killed",
                        "value": claim,
                        "evidence": f"{claim} killed",
                    }
                )
            )
        path = folder / f"{source}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def chron_command(store: str, *args) -> list[str]:
    return [sys.executable, "-m", "cli", "--store", store, *map(str, args)]


def run(store: str, *args) -> subprocess.CompletedProcess:
    result = subprocess.run(chron_command(store, *args), capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def claims_per_source(store: str) -> collections.Counter:
    from chronology.archive import Archive
    from chronology.domain import Claim, Source

    archive = Archive(store)
    try:
        keys, counts = {}, collections.Counter()
        for logged in archive.read():
            if isinstance(logged.event, Source.Registered):
                keys[logged.originator_id] = logged.event.key
            elif isinstance(logged.event, Claim.Recorded):
                counts[logged.event.source_id] += 1
        by_key = collections.Counter({keys[source]: n for source, n in counts.items()})
        for key in keys.values():
            by_key.setdefault(key, 0)
        return by_key, sum(1 for _ in archive.read_raw())
    finally:
        archive.close()


def assert_whole_files_only(store: str, sources: set[str]) -> int:
    counts, events = claims_per_source(store)
    for source in sources:
        assert counts.get(source, 0) in (0, CLAIMS_PER_FILE), (source, counts.get(source))
    assert set(counts) <= sources  # a source is registered only with its claims
    return events


def events_in(store: str) -> int | None:
    """How many events a SQLite store holds, read as any other reader would, or None if the
    ingester has not made its table yet."""
    try:
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
    except sqlite3.OperationalError:
        return None
    try:
        return connection.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        connection.close()


def kill_after(process: subprocess.Popen, store: str, events: int, then: float) -> None:
    """SIGKILL `process` `then` seconds after its store first holds at least `events` events
    (0: after it has made the store's table), or at once if it has already ended."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        held = events_in(store)
        if held is not None and held >= events:
            break
        time.sleep(0.002)
    time.sleep(then)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_ingest_killed_at_twenty_points_leaves_whole_files_and_completes_without_duplicates(tmp_path):
    """Each kill is placed by what the ingester has written so far (the files go in within tens
    of milliseconds, too short a window to hit by guessing a delay from its start), then a few
    milliseconds more, so that most land while a file's transaction is open."""
    files = write_files(tmp_path / "files", 8)
    sources = {p.stem for p in files}
    per_file = CLAIMS_PER_FILE + 1
    expected = len(files) * per_file
    rng = random.Random(20)
    partial_states = set()
    for number in range(20):
        store = str(tmp_path / f"killed-{number}.db")
        process = subprocess.Popen(
            chron_command(store, "ingest", *files), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if number < 2:  # while it starts up and reads the files: nothing may be written
            time.sleep(rng.uniform(0.02, 0.15))
            process.send_signal(signal.SIGKILL)
            process.wait()
        else:
            kill_after(process, store, rng.randrange(len(files) - 1) * per_file, rng.uniform(0, 0.008))
        events = assert_whole_files_only(store, sources)
        partial_states.add(events)
        run(store, "ingest", *files)
        assert assert_whole_files_only(store, sources) == expected
        assert run(store, "log", "verify").stdout.startswith(f"verified {expected} events")
        assert "byte-identical" in run(store, "replay", "--verify").stderr
    assert len(partial_states - {expected}) >= 3, f"the kills should land at different points: {sorted(partial_states)}"


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store, tmp_path):
    shared = write_files(tmp_path / "shared", 3, prefix="shared")
    own = [write_files(tmp_path / f"own-{n}", 2, prefix=f"own{n}") for n in range(3)]
    sources = {p.stem for p in shared} | {p.stem for group in own for p in group}
    processes = [
        subprocess.Popen(
            chron_command(store, "ingest", *group, *shared),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for group in own
    ]
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    counts, events = claims_per_source(store)
    assert set(counts) == sources
    assert all(n == CLAIMS_PER_FILE for n in counts.values())
    assert events == len(sources) * (CLAIMS_PER_FILE + 1)
    assert "byte-identical" in run(store, "replay", "--verify").stderr
    assert run(store, "log", "verify").stdout.startswith(f"verified {events} events")


def test_a_reader_during_writes_never_sees_half_a_file(store, tmp_path):
    files = write_files(tmp_path / "files", 6)
    writer = subprocess.Popen(
        chron_command(store, "ingest", *files), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seen = set()
    env = {**os.environ}
    try:
        while writer.poll() is None or not seen:
            result = subprocess.run(
                chron_command(store, "export", "csv", "--option", "table=claims"),
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
            )
            assert result.returncode == 0, result.stderr
            per_source = collections.Counter(row["source"] for row in csv.DictReader(io.StringIO(result.stdout)))
            assert all(n == CLAIMS_PER_FILE for n in per_source.values()), per_source
            seen.add(sum(per_source.values()))
            if writer.poll() is not None:
                break
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr.read()
    assert max(seen) <= len(files) * CLAIMS_PER_FILE


def writing(store: str) -> bool:
    """Whether a process holds the store's log open for writing (an import's transaction)."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as connection:
            row = connection.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = 'chronology_events' AND l.mode = 'ExclusiveLock' AND l.granted"
            ).fetchone()
            return row is not None
    probe = sqlite3.connect(store, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # "database is locked": a writer holds it
        return True
    finally:
        probe.close()


@pytest.mark.slow
def test_import_killed_while_writing_leaves_the_store_empty_and_runs_again(store, tmp_path):
    """`chron log import` writes in one transaction: killed while its events go in (seen from
    outside by the write lock it holds), the store holds none of them, and the same command
    then imports them all."""
    from chronology.archive import Archive
    from chronology.factfile import read_fact_file

    source = str(tmp_path / "source.db")
    archive = Archive(source)
    for path in write_files(tmp_path / "files", 30):
        archive.ingest(read_fact_file(path), recorded_by="test")
    archive.close()
    expected = 30 * (CLAIMS_PER_FILE + 1)
    export = tmp_path / "log.jsonl"
    run(source, "log", "export", "-o", export)
    rng = random.Random(6)
    killed_while_writing = 0
    for attempt in range(3):
        process = subprocess.Popen(
            chron_command(store, "log", "import", export), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and not writing(store):
            time.sleep(0.002)
        if process.poll() is None:
            time.sleep(rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            process.wait()
        _counts, held = claims_per_source(store)
        assert held in (0, expected), f"a killed import left {held} of {expected} events"
        if held == 0:
            killed_while_writing += 1
        else:  # the kill came after the commit (while the view was built): start afresh
            store = _empty_again(store, tmp_path, attempt)
    assert killed_while_writing, "no kill landed while the import was writing"
    assert run(store, "log", "import", export).stdout == f"imported {expected} events\n"
    assert run(store, "log", "verify").stdout.startswith(f"verified {expected} events")
    assert run(store, "replay", "--json").stdout == run(source, "replay", "--json").stdout


def _empty_again(store: str, tmp_path: Path, attempt: int) -> str:
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as connection:
            for (table,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall():
                connection.execute(f'DROP TABLE "{table}" CASCADE')
        return store
    return str(tmp_path / f"again-{attempt}.db")


def _hold_write_lock(store: str, seconds: float) -> threading.Thread:
    """Another process's long write (a rebuild of a large archive holds the lock for as long as
    it takes): a connection that holds the SQLite store's write lock for `seconds`."""
    holder = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_command_waits_for_another_process_s_long_write_then_goes_on(sqlite_store, tmp_path):
    files = write_files(tmp_path / "files", 1)
    run(sqlite_store, "log")  # makes the store
    holder = _hold_write_lock(sqlite_store, 6.5)  # longer than eventsourcing's own 5 s wait
    started = time.monotonic()
    result = run(sqlite_store, "ingest", *files)
    holder.join()
    assert time.monotonic() - started >= 6
    assert result.stdout.endswith(f"1 file(s), {CLAIMS_PER_FILE + 1} event(s) appended\n")


def test_a_lock_held_past_the_wait_is_one_line_of_error_and_nothing_is_written(sqlite_store, tmp_path):
    files = write_files(tmp_path / "files", 1)
    run(sqlite_store, "log")
    holder = _hold_write_lock(sqlite_store, 4)
    result = subprocess.run(
        chron_command(sqlite_store, "ingest", *files),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CHRON_LOCK_WAIT": "1"},
    )
    holder.join()
    assert result.returncode == 1
    assert result.stderr.startswith("error: the store failed: database is locked.")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert events_in(sqlite_store) == 0
    bad = subprocess.run(
        chron_command(sqlite_store, "log"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CHRON_LOCK_WAIT": "soon"},
    )
    assert bad.returncode == 1
    assert bad.stderr == "error: CHRON_LOCK_WAIT must be a whole number of seconds, at least 1; found 'soon'\n"


def test_only_the_projection_s_commits_leave_the_sync_and_the_checkpoint_for_later(sqlite_store):
    """The projection's tables are derived from the log, so its commits need not wait for the
    disk (a power cut undoes them with their tracking position, and they are folded again),
    nor copy the write-ahead log back into the database (`Database.checkpoint_later` does);
    the log's commits and the archived documents' still do both as SQLite does by default."""
    from chronology.archive import Archive
    from chronology.projection import Database, Projection

    archive = Archive(sqlite_store)
    projection = Projection(archive)
    normal, full = 1, 2
    assert projection.db.connection.execute("PRAGMA synchronous").fetchone()[0] == normal
    assert projection.db.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    documents = Database.for_archive(archive).connection
    assert documents.execute("PRAGMA synchronous").fetchone()[0] == full
    assert documents.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    with archive.recorder.datastore.transaction(commit=False) as cursor:  # the log's writer
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == full
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 1000
    projection.close()


def test_a_rebuild_s_writes_are_copied_into_the_database_file_after_its_commit(sqlite_store, tmp_path, monkeypatch):
    """The projection's commits leave the write-ahead log alone; once it holds enough pages, a
    thread of its own copies it back into the database file while every connection is still
    open (SQLite would otherwise do it only when the last one closes, or at a later commit of
    the log's writer): the database file alone, without its log, then holds the rebuilt view."""
    from chronology import projection as projection_module
    from chronology.archive import Archive
    from chronology.factfile import read_fact_file

    monkeypatch.setattr(projection_module, "CHECKPOINT_PAGES", 1)  # the bundled chronology is small
    monkeypatch.setattr(projection_module, "CHECKPOINT_FROM", 1)
    archive = Archive(sqlite_store)
    for path in sorted((ROOT / "events").iterdir()):
        if path.suffix in (".toml", ".jsonl"):
            archive.ingest(read_fact_file(path), recorded_by="test")
    projection = projection_module.Projection(archive).catch_up()
    projection.db.checkpointed()
    database_alone = tmp_path / "alone.db"

    def views_in_the_file_alone() -> int:
        database_alone.write_bytes(Path(sqlite_store).read_bytes())  # without its -wal
        with sqlite3.connect(database_alone) as alone:
            return alone.execute("SELECT count(*) FROM chron_views").fetchone()[0]

    views = views_in_the_file_alone()
    assert views > 0
    projection.db.connection.execute("DELETE FROM chron_views")  # the file itself without views
    projection.db.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert views_in_the_file_alone() == 0
    projection.rebuild()
    assert projection.db.checkpointed() >= 0
    assert views_in_the_file_alone() == views
    projection.close()
    archive.close()
