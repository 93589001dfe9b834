"""The iCalendar exporter (RFC 5545, RFC 7986): one VEVENT per dated incident (an incident
no source has dated yet cannot be placed on a calendar and is left out).

Calendar clients update an event they already hold only when its SEQUENCE rises, so SEQUENCE is
the incident's revision count from the log, and DTSTAMP/LAST-MODIFIED are the transaction time
of the change, never the time of export: the same log always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import icalendar
from icalendar.caselessdict import canonsort_keys
from icalendar.parser_tools import to_unicode
from icalendar.timezone import tzp

from chronology.bestview import IncidentView
from chronology.hookspecs import hookimpl
from chronology.render import describe, incident_description
from chronology.timeline import Exporter, Timeline

REFRESH = dt.timedelta(hours=1)
END = b"END:VCALENDAR\r\n"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""RFC 5545 TEXT may not hold control characters (line breaks are escaped by icalendar)."""


def _text(value: str) -> str:
    return CONTROL.sub("", value)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def render(timeline: Timeline, options: Mapping[str, str]) -> bytes:
    return b"".join(render_pages([timeline], options))


def render_pages(pages: Iterable[Timeline], options: Mapping[str, str]) -> Iterator[bytes]:
    """The calendar's properties, then its events a page at a time, then its end: the bytes
    icalendar writes for the whole calendar, which writes a calendar as exactly that."""
    pages = iter(pages)
    first = next(pages)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Chronology//chron//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", first.title)
    calendar.add("x-wr-calname", first.title)
    calendar.add("description", f"{first.incident_count} incidents, resolved with the {first.policy} policy")
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    properties = calendar.to_ical()
    if not properties.endswith(END):
        raise ValueError(f"icalendar {icalendar.__version__} ends a calendar otherwise than {END!r}")
    yield properties.removesuffix(END)
    base_url = options.get("base_url", "").rstrip("/")
    for page in itertools.chain([first], pages):
        yield b"".join(_event_ical(incident, page, base_url) for incident in page.incidents if incident.date)
    yield END


def _ical(component: icalendar.cal.Component) -> bytes:
    """`component.to_ical()`, byte for byte, with its lines folded by `fold_line`."""
    return b"".join(fold_line(line) + b"\r\n" for line in component.content_lines() if line)


LINE_OCTETS = 75
"""RFC 5545 §3.1: a content line is folded to at most 75 octets, not counting its CRLF."""


def fold_line(line: str) -> bytes:
    """The content line folded as icalendar folds it: each part the longest run of whole
    characters under 75 octets, a fold never just after a backslash or caret (it would split
    an escape), continuations indented by one space. icalendar does this a character at a
    time in Python (its `to_ical` of 1,000 synthetic events: 215 ms, 114 ms with this); this
    cuts at octet offsets instead (tests/test_exporters.py checks it against icalendar's own)."""
    data = line.encode()
    room = LINE_OCTETS - 1
    if len(data) <= room:
        return data
    parts = []
    start = 0
    while len(data) - start > room:
        end = start + room
        while data[end] & 0xC0 == 0x80:  # inside a UTF-8 character: fold before it
            end -= 1
        if data[end - 1] in b"\\^":
            end -= 1
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts)


def _properties(incident: IncidentView, timeline: Timeline, base_url: str) -> list[tuple[str, Any]]:
    """An incident's event as (property, value) pairs, in the order `_event` adds them."""
    changed = (incident.changed_at or timeline.last_changed or EPOCH).astimezone(dt.UTC)
    earliest = dt.date.fromisoformat(incident.date["earliest"])
    latest = dt.date.fromisoformat(incident.date["latest"])
    if incident.retracted:
        status = "CANCELLED"
    elif incident.date["precision"] != "day" or incident.grade in ("weak", "contested"):
        status = "TENTATIVE"
    else:
        status = "CONFIRMED"
    properties: list[tuple[str, Any]] = [
        ("uid", f"{incident.id}@chronology"),
        ("dtstamp", changed),
        ("last-modified", changed),
        ("sequence", max(incident.revision - 1, 0)),
        ("summary", _text(incident.title)),
        ("dtstart", earliest),
        ("dtend", latest + dt.timedelta(days=1)),  # DATE values: DTEND is exclusive
        ("status", status),
        ("transp", "TRANSPARENT"),
        ("description", _text(incident_description(incident, timeline.claims, timeline.sources))),
    ]
    if incident.location:
        properties.append(("location", _text(describe("location", incident.location))))
        if "lat" in incident.location:
            properties.append(("geo", (incident.location["lat"], incident.location["lon"])))
    categories = []
    kind = incident.field("kind")
    if kind and kind.best:
        categories.append(kind.best)
    tags = incident.field("tags")
    if tags and tags.best:
        categories += [t for t in tags.best if t not in categories]
    if categories:
        properties.append(("categories", [_text(c) for c in categories]))
    if base_url:
        properties.append(("url", f"{base_url}/incidents/{incident.slug}"))
    return properties


def _event(incident: IncidentView, timeline: Timeline, base_url: str) -> icalendar.Event:
    """The incident as an icalendar `Event`: the reference `_event_ical` is held to."""
    event = icalendar.Event()
    for name, value in _properties(incident, timeline, base_url):
        event.add(name, value)
    return event


def _event_ical(incident: IncidentView, timeline: Timeline, base_url: str) -> bytes:
    """`_ical(_event(...))`, byte for byte, in about two thirds of its time: each value is encoded by
    icalendar as `Event.add` encodes it (`Event._encode`: its type, and the parameters it
    implies, such as VALUE=DATE), and written as `Component.content_lines` writes it, in the
    order `sorted_keys` gives, without filling and walking an `Event` (tests/test_exporters.py
    compares the two on every incident of two chronologies)."""
    encoded = {}
    for name, value in _properties(incident, timeline, base_url):
        if name in _IN_UTC:
            value = tzp.localize_utc(value)
        encoded[name.upper()] = icalendar.Event._encode(name, value)
    lines = [b"BEGIN:VEVENT\r\n"]
    for name in canonsort_keys(encoded, EVENT_ORDER):
        value = encoded[name]
        text = to_unicode(value.to_ical())
        params = to_unicode(value.params.to_ical(sorted=True)) if getattr(value, "params", None) else ""
        lines.append(fold_line(f"{name};{params}:{text}" if params else f"{name}:{text}") + b"\r\n")
    lines.append(b"END:VEVENT\r\n")
    return b"".join(lines)


_IN_UTC = ("dtstamp", "last-modified")
"""The properties `Event.add` turns to UTC (RFC 5545 asks it of DTSTAMP and LAST-MODIFIED)."""
EVENT_ORDER = icalendar.Event.canonical_order


@hookimpl
def chronology_exporters() -> list[Exporter]:
    return [
        Exporter(
            name="ical",
            description="iCalendar feed: one all-day event per incident (RFC 5545/7986)",
            media_type="text/calendar; charset=utf-8",
            file_extension="ics",
            render=render,
            render_pages=render_pages,
            options={"base_url": "URL of the published chronology; each event links to its incident"},
        )
    ]
