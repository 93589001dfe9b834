"""The floor under a SQLite rebuild: what writing the projection's rows costs when nothing else
does. The rows a rebuild wrote are read back from the store, then written again into the
emptied tables with one `executemany` each and committed, on a connection set up as the
projection's is (WAL, `secure_delete=OFF`), several times; each time against the baseline read
of `bench/run.py` (a raw SELECT of the log with orjson decoding every state). What a rebuild may
spend on everything else at × 0.25 is then 4 × the read, less the read, less these writes.

    python bench/floor.py STORE [--runs N]     # STORE: a SQLite store with its view built

Not part of the test suite. It rewrites the view's rows with the same rows: the store's view
is unchanged after it.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import baseline_read  # noqa: E402

TABLES = ("chron_incidents", "chron_views", "chron_citations", "chron_transactions")
"""The tables a rebuild fills with rows it makes (sources, aliases and links are few)."""


def rewrite_seconds(store: str, tables: dict[str, list[tuple]]) -> float:
    connection = sqlite3.connect(store, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA secure_delete=OFF")
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for name, rows in tables.items():
            connection.execute(f"DELETE FROM {name}")
            if rows:
                marks = ", ".join("?" for _ in rows[0])
                connection.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a SQLite store whose view is built (`chron replay` builds it)")
    parser.add_argument("--runs", type=int, default=9)
    arguments = parser.parse_args()
    with sqlite3.connect(arguments.store) as connection:
        tables = {name: connection.execute(f"SELECT * FROM {name}").fetchall() for name in TABLES}
    if not tables["chron_views"]:
        parser.error(f"{arguments.store} holds no built view: run `chron --store {arguments.store} replay` first")
    writes, reads = [], []
    for _ in range(arguments.runs):
        writes.append(rewrite_seconds(arguments.store, tables))
        reads.append(baseline_read("sqlite", arguments.store)[0])
    write, read = statistics.median(writes), statistics.median(reads)
    budget = 4 * read
    print(f"rows: {', '.join(f'{name} {len(rows):,}' for name, rows in tables.items())}")
    print(f"baseline read {1000 * read:.1f} ms; writing and committing the rows {1000 * write:.1f} ms")
    print(
        f"a rebuild at x 0.25 may take {1000 * budget:.1f} ms: {1000 * (budget - read - write):.1f} ms"
        " are left for folding, encoding the claims and building the views"
    )


if __name__ == "__main__":
    main()
