"""Load benchmark for `chron serve`: requests/s and p50/p99 latency on 127.0.0.1 only.

Scenarios, each bounded by a request count and a time limit:
  - the full iCal feed and a 304 revalidation of it, for the bundled chronology and for a
    10,000-incident synthetic chronology (bench/synthetic.py);
  - after a new claim, every client asking for the full iCal feed at once (what calendar
    subscribers do after each change): the time until the last has its answer, against one
    render alone, and how many renders the server made (its log's "rendered" lines; one is
    what a server that renders a feed once for all its waiting subscribers makes);
  - the baseline, measured in the same run against the same server: the cheapest answer it
    gives (a 404 for an unknown path). Ratios are printed against it.
Fails (exit 1) if any request errs. Not part of the test suite.

    python bench/serve_load.py [--incidents 10000] [--requests 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.synthetic import write_corpus  # noqa: E402


def chron(store: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli", "--store", store, *args],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def server(store: str, workers: int, log_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "--store",
            store,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/nowhere")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def load(
    port: int, path: str, headers: dict[str, str], expect: int, requests: int, seconds: float, clients: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [requests]
    stop_at = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < stop_at:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == expect
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += not ok
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall if wall else 0.0,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0.0,
    }


def etag_of(port: int, path: str) -> tuple[str, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    return response.getheader("etag"), len(body)


def renders_logged(log_path: Path) -> int:
    return log_path.read_text().count(" rendered ical ")


NEW_CLAIM = {
    "bundled": ("reuters-2020-03-12-us-retaliatory-strikes", "2020-03-11-camp-taji-rocket-attack"),
    "synthetic": ("synthetic-source-00000", "synthetic-0000000"),
}
"""A source and an incident of each chronology, for the new claims."""


def everyone_after_a_new_claim(
    store: str, chronology: str, port: int, log_path: Path, clients: int, folder: Path
) -> str:
    """One new claim, then `clients` subscribers ask for the full feed at the same moment; then
    another new claim and one subscriber alone, for comparison."""

    source, incident = NEW_CLAIM[chronology]

    def new_claim(number: int) -> None:
        fact_file = folder / f"new-claim-{port}-{number}.jsonl"
        fact_file.write_text(
            f'{{"source": "{source}", "incident": "{incident}", "field": "wounded",'
            f' "value": {number}, "evidence": "one more report"}}\n'
        )
        chron(store, "ingest", str(fact_file))

    def ask(start: threading.Event, took: list[float]) -> None:
        start.wait()
        began = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        connection.request("GET", "/feeds/ical.ics")
        response = connection.getresponse()
        response.read()
        took.append(time.perf_counter() - began if response.status == 200 else float("nan"))
        connection.close()

    new_claim(1)
    before = renders_logged(log_path)
    start, took = threading.Event(), []
    threads = [threading.Thread(target=ask, args=(start, took)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join()
    time.sleep(0.2)  # the log line is written as the render ends
    renders = renders_logged(log_path) - before
    new_claim(2)
    alone: list[float] = []
    start = threading.Event()
    start.set()
    ask(start, alone)
    return (
        f"{clients} subscribers at once after a new claim: the last answered in {max(took):.2f} s"
        f" ({max(took) / alone[0]:.2f} x one subscriber alone, {alone[0]:.2f} s); {renders} render(s)"
    )


def run(label: str, store: str, args: argparse.Namespace, folder: Path) -> list[tuple[str, dict[str, float]]]:
    rows = []
    log_path = folder / f"server-{Path(store).stem}.log"
    with server(store, args.workers, log_path) as port:
        started = time.perf_counter()
        etag, size = etag_of(port, "/feeds/ical.ics")  # first render, then cached per log position
        first = time.perf_counter() - started
        print(f"{label}: first render of the iCal feed {first:.2f} s, {size / 1e6:.2f} MB", flush=True)
        baseline = load(port, "/nowhere", {}, 404, args.requests, args.seconds, args.clients)
        rows.append((f"{label}: baseline (404)", baseline))
        rows.append(
            (
                f"{label}: 304 revalidation",
                load(
                    port,
                    "/feeds/ical.ics",
                    {"If-None-Match": etag},
                    304,
                    args.requests,
                    args.seconds,
                    args.clients,
                ),
            )
        )
        rows.append(
            (
                f"{label}: full iCal feed",
                load(port, "/feeds/ical.ics", {}, 200, max(args.requests // 10, 50), args.seconds, args.clients),
            )
        )
        rows.append(
            (
                f"{label}: full iCal feed, gzip",
                load(
                    port,
                    "/feeds/ical.ics",
                    {"Accept-Encoding": "gzip"},
                    200,
                    max(args.requests // 10, 50),
                    args.seconds,
                    args.clients,
                ),
            )
        )
        print(
            f"{label}: {everyone_after_a_new_claim(store, label.split()[0], port, log_path, args.clients, folder)}",
            flush=True,
        )
        for _, row in rows[1:]:
            row["ratio"] = row["rps"] / baseline["rps"] if baseline["rps"] else 0.0
        baseline["ratio"] = 1.0
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="per scenario, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario, at most")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["CHRON_PLUGINS"] = "ical,jsonld,csv"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        bundled = str(Path(folder) / "bundled.db")
        chron(bundled, "ingest", str(ROOT / "events"))
        rows += run("bundled", bundled, args, Path(folder))
        synthetic = str(Path(folder) / "synthetic.db")
        files, claims = write_corpus(Path(folder) / "synthetic", args.incidents)
        started = time.perf_counter()
        chron(synthetic, "ingest", *map(str, files))
        print(
            f"synthetic: {args.incidents} incidents, {claims} claims ingested in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        rows += run(f"synthetic {args.incidents}", synthetic, args, Path(folder))
    print(f"\n{'scenario':<42} {'requests':>8} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x base':>7}")
    for label, row in rows:
        print(
            f"{label:<42} {row['requests']:>8} {row['errors']:>6} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['ratio']:>7.3f}"
        )
    return 1 if any(row["errors"] for _, row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
