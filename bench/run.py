"""The performance benchmark: ingest, analysts' retractions, the first catch-up after them (as
every `chron` command runs after appending: it also extends the log's digest chain over every
event appended), full replay, incremental catch-up,
export and peak memory, each printed as a rate and, for ingest and replay, as a ratio to a
baseline measured in the same run on the same rows; then reading: one incident (`chron show`),
and `chron replay` printing the whole chronology, `chron export ical`, `chron replay --as-of`
the time before the catch-up claims (from the stored view, the incidents touched since folded
again) and `chron replay --policy conservative` (another policy: the whole log folded again)
(seconds and peak memory, each in its own process).

Baselines (no Chronology code on the hot path):
  - insert: the same stored rows (id, version, topic, state bytes) inserted into an empty table
    of the same shape with one executemany (SQLite) / executemany (PostgreSQL).
  - read: a raw SELECT of the stored rows with orjson decoding of every state.

    python bench/run.py                       # 10k and 100k claims, SQLite and PostgreSQL
    python bench/run.py --sizes 10000,100000,1000000 --stores sqlite

Not part of the test suite: numbers, not pass/fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CHRON_PLUGINS", "ical,jsonld,csv")

from bench.synthetic import retractions, write_corpus  # noqa: E402
from chronology import domain, records, resolution  # noqa: E402
from chronology.archive import NATIVE as NATIVE_DECODING  # noqa: E402
from chronology.archive import Archive  # noqa: E402
from chronology.bestview import NATIVE as NATIVE_VIEWS  # noqa: E402
from chronology.factfile import read_fact_file  # noqa: E402
from chronology.plugins import load_plugins  # noqa: E402
from chronology.projection import NATIVE as NATIVE_FOLDING  # noqa: E402
from chronology.projection import Projection, collector_paused  # noqa: E402
from chronology.replay import Filters, load_timeline, timeline_pages  # noqa: E402

REPEATS, REPEAT_BELOW = 3, 200_000
"""Ingest of fewer claims than REPEAT_BELOW is measured REPEATS times, into a new store each
time, and the run with the median ratio is reported: a run of a fraction of a second moves by a
third from one to the next on this machine."""
REPLAYS, REPLAYS_FROM_REPEAT_BELOW = 7, 3
"""How many full replays are measured below REPEAT_BELOW claims and from there up, each against
a baseline read right after it (the run with the median ratio is reported): on this machine one
100k replay's ratio moved from 0.16 to 0.27 within minutes, so three were too few to settle it."""
CATCH_UP_ROUNDS = 5
"""How many times one claim is added and caught up (and its incident read back)."""
POSTGRES = os.environ.get("CHRON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    print(
        f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True
    )
    if done >= total:
        print(file=sys.stderr)


def fresh_store(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return str(folder / f"bench-{uuid.uuid4().hex[:8]}.db")
    import psycopg

    name = f"chron_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


def drop_store(store: str) -> None:
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{store.rsplit("/", 1)[1]}" WITH (FORCE)')


def baseline_insert(kind: str, store: str, rows: list[tuple]) -> float:
    """Seconds to insert the same rows into an empty table of the same shape, one executemany."""
    if kind == "sqlite":
        path = store + ".baseline"
        existing = sqlite3.connect(store)  # the baseline file gets the store's page size
        (page_size,) = existing.execute("PRAGMA page_size").fetchone()
        existing.close()
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute(f"PRAGMA page_size={page_size}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE baseline (originator_id TEXT, originator_version INTEGER, topic TEXT,"
            " state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO baseline VALUES (?, ?, ?, ?)", [(i.hex, v, t, s) for i, v, t, s in rows])
        connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return elapsed
    import psycopg

    with psycopg.connect(store) as connection:
        connection.execute(
            "CREATE TABLE baseline (originator_id uuid, originator_version bigint, topic text,"
            " state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO baseline (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)", rows
            )
        connection.commit()
        elapsed = time.perf_counter() - started
        connection.execute("DROP TABLE baseline")
        connection.commit()
    return elapsed


def baseline_read(kind: str, store: str) -> tuple[float, int]:
    """Seconds for a raw SELECT of every stored row with orjson decoding of each state."""
    started = time.perf_counter()
    count = 0
    if kind == "sqlite":
        connection = sqlite3.connect(store)
        for _rowid, _id, _version, _topic, state in connection.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        ):
            orjson.loads(state)
            count += 1
        connection.close()
    else:
        import psycopg

        with psycopg.connect(store) as connection, connection.cursor(name="baseline") as cursor:
            cursor.itersize = 5000
            cursor.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM chronology_events ORDER BY notification_id"
            )
            for _nid, _id, _version, _topic, state in cursor:
                orjson.loads(state)
                count += 1
    return time.perf_counter() - started, count


def peak_memory_of_full_replay(store: str) -> tuple[float, float]:
    """MB of peak resident memory of a separate process that rebuilds the best view from 0,
    and of the helper process it starts (`chronology.parallel`), if any.

    The rebuild's own peak is VmHWM in /proc/self/status, which starts afresh at exec
    (ru_maxrss would carry over this much larger benchmark process's peak through fork); the
    helper's is the rebuild process's RUSAGE_CHILDREN maximum, read once the helper has exited
    (an upper bound: importing psycopg runs a short-lived library probe of about 30 MB)."""
    code = (
        "import resource\n"
        "from chronology.archive import Archive\nfrom chronology.projection import Projection\n"
        f"Projection(Archive({store!r})).rebuild()\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
    )
    own, helper = _in_own_process(code)
    return own, int(helper) / 1024


def running_chron(store: str, *arguments: str) -> tuple[float, float]:
    """Seconds and MB of peak resident memory of one `chron` command on `store` (its output to
    /dev/null), in a separate process, as a user runs it."""
    code = (
        "import time\nfrom cli import cli\nstarted = time.perf_counter()\n"
        f"cli.main(['--store', {store!r}, *{list(arguments)!r}], standalone_mode=False)\n"
        "print(time.perf_counter() - started, file=sys.stderr)"
    )
    peak, seconds = _in_own_process(code)
    return float(seconds), peak


def _in_own_process(code: str) -> tuple[float, str]:
    """Run `code` in a new Python process (stdout to /dev/null): its peak resident memory in
    MB (VmHWM, which starts afresh at exec) and the last line it wrote to stderr."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{code}\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
    )
    said, peak_kb = result.stderr.strip().split("\n")[-2:]
    return int(peak_kb) / 1024, said


def timed_ingest(kind: str, store: str, archive: Archive, fact_files: list) -> tuple[dict, list[tuple]]:
    """Ingest every fact file into the empty `store`, then insert the same stored rows into a
    table of their own (the baseline): the rates, their ratio, and the rows."""
    started = time.perf_counter()
    for number, fact_file in enumerate(fact_files, 1):
        archive.ingest(fact_file, recorded_by="bench")
        progress(f"{kind} ingest", number, len(fact_files))
    ingest_seconds = time.perf_counter() - started
    ingested = archive.max_position()
    rows = [(e.originator_id, e.version, e.topic, e.state) for e in archive.read_raw()]
    insert_seconds = baseline_insert(kind, store, rows)
    measured = {
        "events_per_s": ingested / ingest_seconds,
        "baseline_rows_per_s": len(rows) / insert_seconds,
        "ratio": insert_seconds / ingest_seconds,
    }
    return measured, rows


def median_run(runs: list[dict]) -> dict:
    """The run with the median ratio (each run against the baseline measured with it), and
    every run's ratio."""
    ordered = sorted(runs, key=lambda run: run["ratio"])
    return {**ordered[(len(ordered) - 1) // 2], "ratios": [run["ratio"] for run in runs], "runs": runs}


def bench(kind: str, claims_wanted: int, folder: Path) -> dict:
    incidents = max(1, claims_wanted // 13)  # the generator makes about 13 claims an incident
    files, claims = write_corpus(folder / f"corpus-{claims_wanted}", incidents, sources=max(50, incidents // 50))
    fact_files = [read_fact_file(path) for path in files]
    repeats = REPEATS if claims < REPEAT_BELOW else 1
    result = {"store": kind, "claims": claims, "incidents": incidents}
    ingests = []
    for _ in range(repeats - 1):  # extra ingests into stores of their own, for the median
        store = fresh_store(kind, folder)
        try:
            archive = Archive(store)
            ingests.append(timed_ingest(kind, store, archive, fact_files)[0])
            archive.close()
        finally:
            drop_store(store)
    store = fresh_store(kind, folder)
    try:
        archive = Archive(store)
        measured, rows = timed_ingest(kind, store, archive, fact_files)
        result["ingest"] = median_run([*ingests, measured])

        # Analysts' corrections: each retraction is its own transaction, as `chron retract` makes it.
        recorded = [row[0] for row in rows if row[2] == domain.Claim.Recorded.TOPIC]
        corrections = retractions(recorded)
        source = fact_files[0].sources[0].key
        # Let go of the corpus (millions of objects at 1M claims): every later phase should
        # run in a process the size of a `chron` command's, not pay for collecting these.
        del rows, recorded, fact_files
        gc.collect()
        started = time.perf_counter()
        for number, (claim_id, reason) in enumerate(corrections, 1):
            archive.retract(claim_id, reason, recorded_by="bench")
            if number % 100 == 0 or number == len(corrections):
                progress(f"{kind} retractions", number, len(corrections))
        result["retractions"] = {"count": len(corrections), "per_s": len(corrections) / (time.perf_counter() - started)}
        events = archive.max_position()
        result["events"] = events

        # What `chron ingest` and `chron retract` run after appending: the projection caught up,
        # which also extends the log's digest chain over every event appended (hashing each
        # one: `chronology.integrity`). A full replay folds the log again from position 0 into
        # the best view but never recomputes the chain, so it is measured after this, not
        # charged with it (until the eleventh session the first replay was).
        projection = Projection(archive)
        started = time.perf_counter()
        projection.catch_up()
        result["first_catch_up_s"] = time.perf_counter() - started
        replays = []
        replay_count = REPLAYS if claims < REPEAT_BELOW else REPLAYS_FROM_REPEAT_BELOW
        for number in range(1, replay_count + 1):
            started = time.perf_counter()
            projection.rebuild()
            replay_seconds = time.perf_counter() - started
            # The write-ahead log's copy into the database goes on in the background after a
            # SQLite rebuild returns (`Database.checkpoint_later`): waited for here, before the
            # baseline read, so that the two never share the machine; reported on its own.
            checkpoint_seconds = projection.db.checkpointed()
            read_seconds, read_count = baseline_read(kind, store)
            replays.append(
                {
                    "events_per_s": events / replay_seconds,
                    "baseline_rows_per_s": read_count / read_seconds,
                    "ratio": read_seconds / replay_seconds,
                    "checkpoint_s": checkpoint_seconds,
                    "ratio_with_checkpoint": read_seconds / (replay_seconds + checkpoint_seconds),
                }
            )
            progress(f"{kind} replay", number, replay_count)
        result["full_replay"] = median_run(replays)

        # One new claim at a time, to incidents spread over the store: the first catch-up
        # comes straight after the rebuild and the baseline read (caches cold for the
        # projection's tables), the others as an ingester's would.
        catch_ups, shows, recomputed = [], [], []
        before_catch_ups = dt.datetime.now(dt.UTC)
        for round_number in range(CATCH_UP_ROUNDS):
            slug = f"synthetic-{(round_number * incidents // CATCH_UP_ROUNDS):07d}"
            extra = folder / f"extra-{uuid.uuid4().hex[:6]}.jsonl"
            claim = {"source": source, "incident": slug, "field": "wounded", "value": 4, "evidence": "one more"}
            extra.write_text(json.dumps(claim) + "\n")
            archive.ingest(read_fact_file(extra), recorded_by="bench")
            started = time.perf_counter()
            projection.catch_up()
            catch_ups.append((time.perf_counter() - started) * 1000)
            recomputed += sorted(projection.recomputed)
            started = time.perf_counter()
            load_timeline(archive, filters=Filters(incidents=(slug,)))
            shows.append((time.perf_counter() - started) * 1000)
        projection.close()
        result["catch_up_one_claim_ms"] = {"first": catch_ups[0], "median": statistics.median(catch_ups)}
        result["catch_up_recomputed"] = recomputed
        result["show_one_ms"] = {"first": shows[0], "median": statistics.median(shows)}

        # The whole timeline at once (what an exporter without `render_pages` is given), then
        # each built-in export as `chron export` runs it: read and rendered a page at a time.
        started = time.perf_counter()
        timeline = load_timeline(archive)
        result["load_timeline_s"] = time.perf_counter() - started
        del timeline
        plugins = load_plugins()
        result["export_s"] = {}
        for name in ("ical", "jsonld", "csv"):
            started = time.perf_counter()
            with collector_paused():
                size = sum(len(piece) for piece in plugins.export_pages(name, timeline_pages(archive), {}))
            result["export_s"][name] = {"seconds": time.perf_counter() - started, "mb": size / 1e6}
        progress(f"{kind} export", 1, 1)
        archive.close()
        result["peak_memory_full_replay_mb"], result["peak_memory_helper_mb"] = peak_memory_of_full_replay(store)
        result["print_s"], result["print_peak_mb"] = running_chron(store, "replay")
        result["export_ical_s"], result["export_ical_peak_mb"] = running_chron(store, "export", "ical")
        # As of the time before the catch-up claims: the stored view, those incidents folded again.
        result["as_of_s"], result["as_of_peak_mb"] = running_chron(
            store, "replay", "--as-of", before_catch_ups.isoformat()
        )
        # Another policy: the whole log folded again into a scratch projection, then printed.
        result["policy_s"], result["policy_peak_mb"] = running_chron(store, "replay", "--policy", "conservative")
    finally:
        drop_store(store)
    return result


def _ratios(measured: dict) -> str:
    return " ".join(f"{ratio:.3f}" for ratio in measured["ratios"])


def _first_median(times: dict[str, float]) -> str:
    return f"{times['first']:.1f} / {times['median']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="claims, comma-separated")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    built = {
        "field resolution": resolution.NATIVE,
        "log decoding": NATIVE_DECODING,
        "folding": NATIVE_FOLDING,
        "stored views": NATIVE_VIEWS,
        "stored claims": records.NATIVE,
    }
    print("in C: " + ", ".join(f"{step} {'yes' if on else 'no'}" for step, on in built.items()), file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            for kind in args.stores.split(","):
                print(f"{kind}, {size} claims", file=sys.stderr)
                results.append(bench(kind, size, Path(folder)))
    print(
        f"\n{'store':<9}{'claims':>9} {'ingest ev/s':>12} {'x insert':>9} {'retract/s':>10}"
        f" {'1st catch-up s':>15} {'replay ev/s':>12}"
        f" {'x read':>8}"
        f" {'catch-up ms':>14} {'timeline s':>11} {'ical s':>7} {'jsonld s':>9} {'csv s':>6} {'peak MB':>8}"
        f" {'helper MB':>10} {'show ms':>14} {'print s':>8} {'print MB':>9} {'ical MB':>8}"
        f" {'as-of s':>8} {'as-of MB':>9} {'policy s':>9} {'policy MB':>10}"
    )
    for r in results:
        print(
            f"{r['store']:<9}{r['claims']:>9} {r['ingest']['events_per_s']:>12.0f} {r['ingest']['ratio']:>9.3f}"
            f" {r['retractions']['per_s']:>10.0f} {r['first_catch_up_s']:>15.2f}"
            f" {r['full_replay']['events_per_s']:>12.0f}"
            f" {r['full_replay']['ratio']:>8.3f}"
            f" {_first_median(r['catch_up_one_claim_ms']):>14} {r['load_timeline_s']:>11.2f}"
            f" {r['export_s']['ical']['seconds']:>7.2f} {r['export_s']['jsonld']['seconds']:>9.2f}"
            f" {r['export_s']['csv']['seconds']:>6.2f} {r['peak_memory_full_replay_mb']:>8.0f}"
            f" {r['peak_memory_helper_mb']:>10.0f} {_first_median(r['show_one_ms']):>14} {r['print_s']:>8.2f}"
            f" {r['print_peak_mb']:>9.0f} {r['export_ical_peak_mb']:>8.0f}"
            f" {r['as_of_s']:>8.2f} {r['as_of_peak_mb']:>9.0f} {r['policy_s']:>9.2f} {r['policy_peak_mb']:>10.0f}"
        )
    print(
        "\nbaselines (rows/s): "
        + "; ".join(
            f"{r['store']} {r['claims']}: insert {r['ingest']['baseline_rows_per_s']:.0f},"
            f" read+decode {r['full_replay']['baseline_rows_per_s']:.0f}"
            for r in results
        )
    )
    print(
        "each replay's wait for its background checkpoint (s) and ratio had it been counted: "
        + "; ".join(
            f"{r['store']} {r['claims']}: "
            + " ".join(f"{x['checkpoint_s']:.2f}/{x['ratio_with_checkpoint']:.3f}" for x in r["full_replay"]["runs"])
            for r in results
        )
    )
    print(
        "each run's ratio (ingest; replay): "
        + "; ".join(f"{r['store']} {r['claims']}: {_ratios(r['ingest'])}; {_ratios(r['full_replay'])}" for r in results)
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
