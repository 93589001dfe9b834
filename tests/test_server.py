"""`chron serve` as a subscriber sees it: the real server on 127.0.0.1, in its own process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chronology.hookspecs import hookimpl
from chronology.plugins import load_plugins
from chronology.server import FeedApp, HTTPError
from chronology.timeline import Exporter
from tests.conftest import EVENTS, ROOT, overwrite_stored
from tests.test_exporters import vevents

TAJI = "2020-03-11-camp-taji-rocket-attack"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chron_process(store: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--store", store, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        **kwargs,
    )
    assert result.returncode == 0, result.stderr
    return result


@contextlib.contextmanager
def running_server(store: str, tmp_path: Path, *args: str):
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--store", store, "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.1)
        yield base, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def served(store, tmp_path):
    chron_process(store, "ingest", EVENTS)
    with running_server(store, tmp_path) as (base, log_path):
        yield base, store, log_path


def test_a_port_in_use_is_one_clear_error_before_anything_is_announced(store):
    chron_process(store, "ingest", EVENTS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cli", "--store", store, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1 port {port}: Address already in use\n"


def test_port_0_serves_on_the_free_port_it_announces(store, tmp_path):
    chron_process(store, "ingest", EVENTS)
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--store", store, "serve", "--port", "0"],
            stderr=log,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 30
        while "serving" not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        announced = log_path.read_text().split("http://", 1)[1].split()[0]
        port = int(announced.rstrip("/").rsplit(":", 1)[1])
        assert port != 0
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/feeds/csv", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def claim_stating(store, slug, field, value):
    shown = json.loads(chron_process(store, "show", slug, "--json").stdout)
    return next(c["id"] for c in shown["claims"] if c["field"] == field and c["value"] == value)


def test_a_subscriber_sees_a_correction_arrive(served):
    base, store, _ = served
    first = httpx.get(base + "/feeds/ical.ics")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/calendar; charset=utf-8"
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert httpx.get(base + "/feeds/ical.ics", headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(base + "/feeds/ical.ics", headers={"If-Modified-Since": last_modified}).status_code == 304

    time.sleep(1.1)  # DTSTAMP and Last-Modified have one-second resolution
    chron_process(store, "retract", claim_stating(store, TAJI, "munitions_launched", 18), "--reason", "mis-coded")

    second = httpx.get(base + "/feeds/ical.ics", headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    assert second.headers["last-modified"] != last_modified
    before = {e["UID"]: e for e in vevents(first.content)}
    after = {e["UID"]: e for e in vevents(second.content)}
    taji = next(uid for uid, e in after.items() if e["SUMMARY"] == "Rocket attack on Camp Taji")
    assert int(after[taji]["SEQUENCE"]) == int(before[taji]["SEQUENCE"]) + 1

    import icalendar
    import vobject
    from ical.calendar_stream import IcsCalendarStream

    text = second.content.decode()
    assert len(icalendar.Calendar.from_ical(second.content).walk("VEVENT")) == 12
    assert len(list(vobject.readOne(text).vevent_list)) == 12
    assert len(IcsCalendarStream.calendar_from_ics(text).events) == 12


@contextlib.contextmanager
def serving_in_this_process(app):
    """The ASGI app under uvicorn on 127.0.0.1, in a thread of this process (for an app whose
    plugins a test registers)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class SlowExporter:
    """A test exporter that takes half a second and counts its renders."""

    def __init__(self):
        self.renders = []

    @hookimpl
    def chronology_exporters(self):
        def render(timeline, options):
            self.renders.append(timeline.position)
            time.sleep(0.5)
            return f"{len(timeline.incidents)} incidents at {timeline.position}\n".encode()

        return [Exporter("slow", "counts its renders", "text/plain; charset=utf-8", "txt", render)]


def test_a_feed_many_subscribers_ask_for_at_once_is_rendered_once(bundled):
    plugins = load_plugins()
    slow = SlowExporter()
    plugins.pm.register(slow, name="slow-exporter")
    with serving_in_this_process(FeedApp(store=bundled.store, plugins=plugins)) as base:

        def everyone_asks():
            with ThreadPoolExecutor(5) as pool:
                return list(pool.map(lambda _: httpx.get(base + "/feeds/slow", timeout=30), range(5)))

        first = everyone_asks()
        assert {(r.status_code, r.text) for r in first} == {(200, f"12 incidents at {slow.renders[0]}\n")}
        assert len(slow.renders) == 1
        assert httpx.get(base + "/feeds/slow").text == first[0].text and len(slow.renders) == 1  # cached

        bundled("retract", claim_stating(bundled.store, TAJI, "munitions_launched", 18), "--reason", "mis-coded")
        second = everyone_asks()
        assert len(slow.renders) == 2 and slow.renders[1] > slow.renders[0]
        assert {r.text for r in second} == {f"12 incidents at {slow.renders[1]}\n"}


class FailingOnceExporter:
    """A test exporter whose first render waits to be let go, then fails; later ones succeed."""

    def __init__(self):
        self.renders = 0
        self.started, self.go_on = threading.Event(), threading.Event()

    @hookimpl
    def chronology_exporters(self):
        def render(timeline, options):
            self.renders += 1
            if self.renders == 1:
                self.started.set()
                self.go_on.wait(10)
                raise RuntimeError("the exporter broke")
            return b"fine\n"

        return [Exporter("flaky", "fails once", "text/plain; charset=utf-8", "txt", render)]


def test_a_failed_render_fails_every_request_waiting_for_it_and_the_next_request_renders_again(bundled):
    plugins = load_plugins()
    flaky = FailingOnceExporter()
    plugins.pm.register(flaky, name="flaky-exporter")
    app = FeedApp(store=bundled.store, plugins=plugins)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(app.handle, "/feeds/flaky", b"", {}, {})
        assert flaky.started.wait(10)
        waiting = [pool.submit(app.handle, "/feeds/flaky", b"", {}, {}) for _ in range(2)]
        time.sleep(0.3)  # both are waiting for the first one's render
        flaky.go_on.set()
        for request in (first, *waiting):
            with pytest.raises(HTTPError) as failed:
                request.result(timeout=30)
            assert failed.value.status == 502 and "the exporter broke" in failed.value.message
    assert flaky.renders == 1
    status, _headers, body = app.handle("/feeds/flaky", b"", {}, {})
    assert (status, body, flaky.renders) == (200, b"fine\n", 2)


def test_a_damaged_stored_view_is_a_500_for_the_client_and_a_clear_line_for_the_operator(served):
    base, store, log_path = served
    overwrite_stored(store, "chron_views", "body", "slug", TAJI, "{}")
    response = httpx.get(base + f"/feeds/ical.ics?incident={TAJI}")
    assert response.status_code == 500
    assert response.text == "internal error: the stored view is damaged (see the server's log)\n"
    logged = log_path.read_text()
    assert f"the stored view cannot be read: chron_views row '{TAJI}' is damaged" in logged
    assert "run `chron replay --rebuild`" in logged and "Traceback" not in logged

    chron_process(store, "replay", "--rebuild")
    mended = httpx.get(base + f"/feeds/ical.ics?incident={TAJI}")
    assert mended.status_code == 200
    assert [e["SUMMARY"] for e in vevents(mended.content)] == ["Rocket attack on Camp Taji"]


def test_filters_return_only_matching_incidents(served):
    base, *_ = served
    syria = vevents(httpx.get(base + "/feeds/ical", params={"tag": "syria"}).content)
    assert {e["SUMMARY"] for e in syria} == {
        "Airstrikes on Albukamal",
        "US air strikes on Iran-backed militia facilities in eastern Syria",
    }
    one = vevents(httpx.get(base + "/feeds/ical", params={"incident": TAJI}).content)
    assert [e["SUMMARY"] for e in one] == ["Rocket attack on Camp Taji"]
    in_2021 = vevents(httpx.get(base + "/feeds/ical", params={"since": "2021-01-01"}).content)
    assert len(in_2021) == 4
    claims = httpx.get(base + "/feeds/csv.csv", params={"table": "claims", "incident": TAJI})
    assert claims.status_code == 200 and claims.headers["content-type"] == "text/csv; charset=utf-8"
    assert all(TAJI in line for line in claims.text.splitlines()[1:])


def test_bad_requests_get_clear_4xx_never_a_traceback(served):
    base, *_ = served
    cases = [
        ("GET", "/feeds/pdf", 404, "no feed 'pdf'"),
        ("GET", "/feeds/ical.pdf", 404, "no feed"),
        ("GET", "/feeds/ical?since=11-03-2020", 400, "bad date for 'since'"),
        ("GET", "/feeds/ical?colour=red", 400, "unknown parameter 'colour'"),
        ("GET", "/feeds/ical?policy=loudest", 400, "unknown resolution policy"),
        ("GET", "/feeds/csv?table=sources", 400, "unknown table"),
        ("GET", "/nowhere", 404, "not found"),
        ("POST", "/feeds/ical", 405, "read-only"),
        ("DELETE", "/", 405, "read-only"),
        ("GET", "/feeds/ical?" + "tag=x&" * 800, 414, "too long"),
        ("GET", "/incidents/no-such-incident", 404, "unknown incident"),
        ("GET", f"/feeds/ical?incident={TAJI}&incident=no-such-incident", 404, "unknown incident 'no-such-incident'"),
        ("GET", "/feeds/csv?incident=no-such-incident", 404, "unknown incident 'no-such-incident'"),
    ]
    for method, path, status, message in cases:
        response = httpx.request(method, base + path)
        assert response.status_code == status, (path, response.text)
        assert message in response.text and "Traceback" not in response.text


def test_head_and_compression(served):
    base, *_ = served
    plain = {"Accept-Encoding": "identity"}
    head = httpx.head(base + "/feeds/jsonld", headers=plain)
    full = httpx.get(base + "/feeds/jsonld", headers=plain)
    assert "content-encoding" not in full.headers
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["content-type"] == "application/ld+json"
    zipped = httpx.get(base + "/feeds/jsonld", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(full.content) / 3
    assert zipped.content == full.content  # httpx decodes it
    assert zipped.headers["etag"] != full.headers["etag"]
    assert "max-age" in full.headers["cache-control"]


def test_index_page_lists_feeds_with_subscribe_links(served):
    base, *_ = served
    page = httpx.get(base + "/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    port = base.rsplit(":", 1)[1]
    assert f'href="webcal://127.0.0.1:{port}/feeds/ical.ics"' in page.text
    assert f'href="{base}/feeds/jsonld.jsonld"' in page.text
    views = json.loads(chron_process(served[1], "replay", "--json").stdout)
    dated = sorted(v["date"]["earliest"] for v in views if v["date"])
    assert f"12 incidents, from {dated[0]} to {dated[-1]}," in page.text
    incident = httpx.get(base + f"/incidents/{TAJI}")
    assert incident.status_code == 200 and "munitions_launched" in incident.text


def test_private_feeds_need_the_token_which_never_reaches_the_log(store, tmp_path):
    chron_process(store, "ingest", EVENTS)
    token = "s3cret-token-0123456789"
    with running_server(store, tmp_path, "--token", token) as (base, log_path):
        assert httpx.get(base + "/feeds/ical").status_code == 404
        assert httpx.get(base + "/wrong-token-0123456789/feeds/ical").status_code == 404
        assert httpx.get(base + "/").status_code == 404
        private = httpx.get(base + f"/{token}/feeds/ical")
        assert private.status_code == 200 and private.headers["cache-control"].startswith("private")
        index = httpx.get(base + f"/{token}/")
        assert f"/{token}/feeds/ical.ics" in index.text
        time.sleep(0.2)
    log = log_path.read_text()
    assert "/<token>/feeds/ical" in log
    assert token not in log


def test_several_workers_on_one_store_serve_new_events(store, tmp_path):
    chron_process(store, "ingest", EVENTS / "2020-03-12-reuters.toml")
    with running_server(store, tmp_path, "--workers", "2") as (base, _):
        counts = {
            len(vevents(httpx.get(base + "/feeds/ical", headers={"Connection": "close"}).content)) for _ in range(6)
        }
        assert counts == {4}  # Reuters dates four of the five incidents it mentions
        chron_process(store, "ingest", EVENTS)
        seen = {
            len(vevents(httpx.get(base + "/feeds/ical", headers={"Connection": "close"}).content)) for _ in range(8)
        }
        assert seen == {12}


def test_a_postgres_server_reconnects_when_its_connections_are_dropped_and_says_503_while_the_store_is_gone(
    postgres_store, tmp_path
):
    """PostgreSQL ends connections on a restart, a failover or an administrator's word: the
    feed reconnects (the request that finds out is answered all the same) and shows what was
    written since; a database that cannot be reached gets 503 with Retry-After, not a 500."""
    import psycopg

    from tests.conftest import POSTGRES

    store = postgres_store
    name = store.rsplit("/", 1)[1]
    chron_process(store, "ingest", EVENTS)
    with running_server(store, tmp_path) as (base, log_path):
        assert httpx.get(base + "/feeds/csv").status_code == 200
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()[0]
        assert ended >= 1  # the server's own connections
        (tmp_path / "later.toml").write_text(
            'source = "reuters-2020-03-12-us-retaliatory-strikes"\n\n[[claim]]\n'
            f'incident = "{TAJI}"\nfield = "x-note"\nvalue = "written while the server was cut off"\n'
            'evidence = "x"\n',
            encoding="utf-8",
        )
        chron_process(store, "ingest", tmp_path / "later.toml")
        after = httpx.get(base + "/feeds/csv")
        assert after.status_code == 200
        assert "written while the server was cut off" in httpx.get(base + "/incidents/" + TAJI).text
        assert "lost the connection to the store" in log_path.read_text()

        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        gone = httpx.get(base + "/feeds/csv")
        assert gone.status_code == 503, gone.text
        assert gone.headers["retry-after"] == "30"
        assert gone.text == "the store is unavailable; try again later\n"
        assert "internal error" not in log_path.read_text()
