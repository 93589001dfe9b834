"""`chron serve`: live, read-only feeds of every exporter over HTTP (an ASGI app under uvicorn).

Routes: `/` (index with subscribe links), `/feeds/<exporter>` and `/feeds/<exporter>.<ext>`
(query: tag, incident, since, until, policy, and the exporter's own options), and
`/incidents/<slug>` (one incident as text). With a token, everything lives under `/<token>/`
and any other path is 404. Each request first lets the projection catch up from its tracking
position, so events written by other processes appear without a restart; rendered feeds are
cached per log position, so a revalidation costs one position lookup, and a feed asked for by
many subscribers at once (after each new claim, at archive scale a render of seconds to a
minute) is rendered once while the others wait for it. On PostgreSQL, a request
that finds its connections dropped (a restart, a failover) connects again and is answered;
one that cannot reach the database gets 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import html
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from chronology.archive import Archive, is_postgres_store, store_location
from chronology.errors import (
    ChronologyError,
    DamagedView,
    PluginError,
    StoreError,
    UnknownReference,
    store_unavailable,
)
from chronology.plugins import Plugins, load_plugins
from chronology.projection import Projection, collector_paused
from chronology.replay import DEFAULT_POLICY, Filters, current_view, timeline_pages

log = logging.getLogger("chronology.server")

MAX_QUERY_BYTES = 4096
MAX_PATH_BYTES = 1024
RENDER_TIMEOUT_SECONDS = 60
COMPRESS_FROM_BYTES = 1024
CACHE_ENTRIES = 64
CACHE_CONTROL = "max-age=300, must-revalidate"
FILTER_PARAMETERS = {"tag", "incident", "since", "until", "policy"}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


@dataclass(frozen=True)
class Rendered:
    """A rendered feed, cached per log position: compressed once, served many times."""

    body: bytes
    etag: str
    media_type: str
    last_modified: dt.datetime | None
    gzipped: bytes | None


class FeedApp:
    """The ASGI application. One per worker process; safe for concurrent requests."""

    def __init__(
        self,
        store: str | None = None,
        token: str | None = None,
        title: str = "Chronology",
        plugins: Plugins | None = None,
    ) -> None:
        self.store = store
        self.token = token or None
        self.title = title
        self.plugins = plugins or load_plugins()
        self._postgres = is_postgres_store(store_location(store))
        self._local = threading.local()
        self._cache: OrderedDict[tuple, Rendered] = OrderedDict()
        self._rendering: dict[tuple, Future[Rendered]] = {}
        """Feeds being rendered, by cache key: a request for one waits for its result."""
        self._cache_lock = threading.Lock()

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        try:
            if method not in ("GET", "HEAD"):
                raise HTTPError(405, "read-only: only GET and HEAD", [(b"allow", b"GET, HEAD")])
            path = scope.get("raw_path") or scope["path"].encode()
            if len(path) > MAX_PATH_BYTES:
                raise HTTPError(414, "path too long")
            if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
                raise HTTPError(414, "query string too long")
            request_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if int(request_headers.get("content-length", "0") or 0) > 0:
                raise HTTPError(413, "a read-only feed takes no request body")
            status, headers, body = await asyncio.wait_for(
                asyncio.to_thread(self.handle, scope["path"], scope.get("query_string", b""), request_headers, scope),
                RENDER_TIMEOUT_SECONDS,
            )
        except HTTPError as error:
            status, headers, body = error.status, error.headers, (error.message + "\n").encode()
            headers = [*headers, (b"content-type", b"text/plain; charset=utf-8")]
        except TimeoutError:  # the render goes on, and its feed is cached for the retry
            status, body = 503, b"the feed is still being rendered; try again shortly\n"
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"30")]
        except Exception:  # never a traceback to the client
            log.exception("internal error on %s", self._loggable(scope["path"]))
            status, headers, body = (
                500,
                [(b"content-type", b"text/plain; charset=utf-8")],
                b"internal error\n",
            )
        headers = [
            *headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        log.info("%s %s %s", method, self._loggable(scope["path"]), status)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _loggable(self, path: str) -> str:
        """The path as it may be logged: the secret token never appears in logs."""
        if self.token and self.token in path:
            return path.replace(self.token, "<token>")
        return path

    # --- routing (runs in a worker thread) --------------------------------------------------

    def handle(self, path: str, query: bytes, request_headers: dict[str, str], scope: dict[str, Any]):
        """Route the request. If the PostgreSQL store dropped this thread's connections (a
        restart, a failover), connect again and answer it once more rather than fail; if it
        cannot be reached at all, 503 with Retry-After (calendar clients try again later)."""
        for attempt in (1, 2):
            try:
                return self._route(path, query, request_headers)
            except HTTPError:
                raise
            except DamagedView as error:  # no retry or reconnection mends it; `chron replay --rebuild` does
                log.error("%s", error)
                raise HTTPError(500, "internal error: the stored view is damaged (see the server's log)") from None
            except Exception as error:
                if not (store_unavailable(error) or self._postgres and isinstance(error, StoreError)):
                    raise
                self._forget_store()
                reason = " ".join(str(error).split())
                if attempt == 1 and self._postgres:
                    log.warning("lost the connection to the store (%s); connecting again", reason)
                    continue
                log.error("the store is unavailable: %s", reason)
                raise HTTPError(503, "the store is unavailable; try again later", [(b"retry-after", b"30")]) from None

    def _route(self, path: str, query: bytes, request_headers: dict[str, str]):
        parts = [p for p in path.split("/") if p]
        if self.token:
            if not parts or parts[0] != self.token:
                raise HTTPError(404, "not found")
            parts = parts[1:]
        prefix = f"/{self.token}" if self.token else ""
        if not parts:
            return (
                200,
                [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"cache-control", self._cache_control().encode()),
                ],
                self.index(request_headers, prefix),
            )
        if parts[0] == "feeds" and len(parts) == 2:
            return self.feed(parts[1], query, request_headers, prefix)
        if parts[0] == "incidents" and len(parts) == 2:
            return self.incident(parts[1])
        raise HTTPError(404, "not found")

    def _archive(self) -> Archive:
        archive = getattr(self._local, "archive", None)
        if archive is None:
            archive = self._local.archive = Archive(self.store)
        return archive

    def _forget_store(self) -> None:
        """Close this thread's archive and projection (their connections may be dead)."""
        for name in ("projection", "archive"):
            held = self._local.__dict__.pop(name, None)
            if held is not None:
                try:
                    held.close()
                except Exception:  # closing a dead connection may fail too
                    pass

    def _projection(self) -> Projection:
        """This thread's projection, caught up with the log (new events from any process)."""
        projection = getattr(self._local, "projection", None)
        if projection is None:
            projection = self._local.projection = Projection(self._archive())
        return projection.catch_up()

    def _cache_control(self) -> str:
        return ("private, " if self.token else "public, ") + CACHE_CONTROL

    def feed(self, name: str, query: bytes, request_headers: dict[str, str], prefix: str):
        exporters = self.plugins.exporters()
        base, _, extension = name.partition(".")
        exporter = exporters.get(base)
        if exporter is None or (extension and extension != exporter.file_extension):
            raise HTTPError(404, f"no feed '{name}': feeds are {', '.join(sorted(exporters))}")
        filters, policy, options = self._parse_query(query, exporter)
        archive = self._archive()
        projection = self._projection()
        position, last_modified = projection.position(), projection.last_changed()
        if exporter.name == "ical" and "base_url" not in options:
            options["base_url"] = self._public_base(request_headers) + prefix
        key = (exporter.name, filters, policy, tuple(sorted(options.items())), position)

        def render() -> Rendered:
            started = time.perf_counter()
            try:
                if filters.incidents:  # a mistyped subscription: 404, as /incidents/<slug> answers it
                    try:
                        archive.known_incidents(*filters.incidents, projection=projection)
                    except UnknownReference as error:
                        raise HTTPError(404, str(error)) from None
                pages = timeline_pages(
                    archive,
                    policy=policy,
                    policy_function=self._policy(policy),
                    filters=filters,
                    title=self.title,
                    projection=projection,
                )
                with collector_paused():
                    body = b"".join(self.plugins.export_pages(exporter.name, pages, options))
            except PluginError as error:  # the exporter itself failed: not the client's fault
                raise HTTPError(502, str(error)) from None
            except StoreError:  # the store's fault, not the request's: `handle` answers it
                raise
            except ChronologyError as error:
                raise HTTPError(400, str(error)) from None
            log.info(
                "rendered %s at log position %d: %d bytes in %.2f s",
                exporter.name,
                position,
                len(body),
                time.perf_counter() - started,
            )
            return Rendered(
                body,
                '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                exporter.media_type,
                last_modified,
                gzip.compress(body, mtime=0) if len(body) >= COMPRESS_FROM_BYTES else None,
            )

        return self._respond(self._rendered_once(key, render), request_headers)

    def _respond(self, rendered: Rendered, request_headers: dict[str, str]):
        body, etag = rendered.body, rendered.etag
        gzipped = "gzip" in request_headers.get("accept-encoding", "") and rendered.gzipped is not None
        if gzipped:
            etag = etag[:-1] + '-gzip"'
        headers = [
            (b"content-type", rendered.media_type.encode()),
            (b"etag", etag.encode()),
            (b"cache-control", self._cache_control().encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        if rendered.last_modified:
            headers.append(
                (
                    b"last-modified",
                    format_datetime(rendered.last_modified.astimezone(dt.UTC), usegmt=True).encode(),
                )
            )
        if _not_modified(request_headers, etag, rendered.last_modified):
            return 304, headers, b""
        if gzipped:
            body = rendered.gzipped
            headers.append((b"content-encoding", b"gzip"))
        return 200, headers, body

    def _parse_query(self, query: bytes, exporter: Any):
        try:
            pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(query))
        except (UnicodeDecodeError, ValueError):
            raise HTTPError(400, "malformed query string") from None
        tags, incidents, options = [], [], {}
        since = until = None
        policy = DEFAULT_POLICY
        for name, value in pairs:
            if name == "tag":
                tags.append(value)
            elif name == "incident":
                incidents.append(value)
            elif name in ("since", "until"):
                try:
                    day = dt.date.fromisoformat(value)
                except ValueError:
                    raise HTTPError(400, f"bad date for '{name}': expected YYYY-MM-DD, found {value!r}") from None
                since, until = (day, until) if name == "since" else (since, day)
            elif name == "policy":
                policy = value
            elif name in exporter.options:
                options[name] = value
            else:
                allowed = sorted(FILTER_PARAMETERS | set(exporter.options))
                raise HTTPError(400, f"unknown parameter '{name}': expected one of {', '.join(allowed)}")
        self._policy(policy)
        return Filters(tuple(tags), tuple(incidents), since, until), policy, options

    def _policy(self, name: str):
        try:
            return self.plugins.policy(name)
        except PluginError as error:
            raise HTTPError(400, str(error)) from None

    def _rendered_once(self, key: tuple, render: Any) -> Rendered:
        """The feed `key` names: from the cache, or from `render()`, run by one request while
        any others asking for the same feed meanwhile wait for its result (or its error)."""
        with self._cache_lock:
            rendered = self._cache.get(key)
            if rendered is not None:
                self._cache.move_to_end(key)
                return rendered
            pending = self._rendering.get(key)
            rendering_here = pending is None
            if rendering_here:
                pending = self._rendering[key] = Future()
        if not rendering_here:
            return pending.result()
        try:
            rendered = render()
        except BaseException as error:
            with self._cache_lock:
                del self._rendering[key]
            pending.set_exception(error)
            raise
        with self._cache_lock:
            del self._rendering[key]
            self._cache[key] = rendered
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        pending.set_result(rendered)
        return rendered

    @staticmethod
    def _public_base(request_headers: dict[str, str]) -> str:
        host = request_headers.get("host", "localhost")
        scheme = request_headers.get("x-forwarded-proto", "http")
        return f"{scheme}://{host}"

    # --- pages ------------------------------------------------------------------------------

    def index(self, request_headers: dict[str, str], prefix: str) -> bytes:
        with self._projection().state() as state:
            count, first, last = state.dated_span()
        host = request_headers.get("host", "localhost")
        base = self._public_base(request_headers)
        span = f"from {first} to {last}" if first else "no dated incidents yet"
        rows = []
        for exporter in sorted(self.plugins.exporters().values(), key=lambda e: e.name):
            path = f"{prefix}/feeds/{quote(exporter.name)}.{quote(exporter.file_extension)}"
            links = [f'<a href="{html.escape(base + path)}">{html.escape(base + path)}</a>']
            if exporter.name == "ical":
                webcal = f"webcal://{host}{path}"
                links.insert(0, f'<a href="{html.escape(webcal)}">subscribe in your calendar</a>')
            rows.append(
                f"<li><strong>{html.escape(exporter.name)}</strong>: "
                f"{html.escape(exporter.description)}<br>{' | '.join(links)}</li>"
            )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title></head>
<body>
<h1>{html.escape(self.title)}</h1>
<p>{count} incidents, {html.escape(span)}, each rebuilt from the claims of its sources:
the best value of every field, whether sources agree, and who said what.</p>
<h2>Feeds</h2>
<ul>
{chr(10).join(rows)}
</ul>
<p>Filters: <code>?tag=</code>, <code>?incident=</code>, <code>?since=YYYY-MM-DD</code>,
<code>?until=YYYY-MM-DD</code>, <code>?policy=</code>.</p>
</body></html>
"""
        return page.encode("utf-8")

    def incident(self, slug: str):
        from chronology.render import incident_text

        try:
            view, timeline = current_view(self._archive(), slug)
        except UnknownReference:
            raise HTTPError(404, f"unknown incident '{slug}'") from None
        text = incident_text(view, timeline.claims, timeline.sources)
        return (
            200,
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"cache-control", self._cache_control().encode()),
            ],
            text.encode(),
        )


def _not_modified(request_headers: dict[str, str], etag: str, last_modified: dt.datetime | None) -> bool:
    if "if-none-match" in request_headers:
        candidates = [tag.strip().removeprefix("W/") for tag in request_headers["if-none-match"].split(",")]
        return "*" in candidates or etag in candidates
    since = request_headers.get("if-modified-since")
    if since and last_modified is not None:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def app_factory() -> FeedApp:
    """For `uvicorn --factory`: configuration comes from the environment `chron serve` sets."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return FeedApp(
        store=os.environ.get("CHRON_STORE"),
        token=os.environ.get("CHRON_FEED_TOKEN"),
        title=os.environ.get("CHRON_FEED_TITLE", "Chronology"),
    )
