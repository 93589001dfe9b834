"""The CSV exporter (RFC 4180, UTF-8): incidents, claims, or the TimelineJS sheet layout.

Any text cell a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) is prefixed with an apostrophe, so a hostile claim stays text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from chronology.errors import BadExportOption
from chronology.hookspecs import hookimpl
from chronology.render import best_text, describe, incident_description
from chronology.timeline import Exporter, Timeline

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_FIELDS = ("killed", "wounded", "munitions_launched", "munitions_hit")
TIMELINEJS_COLUMNS = [
    "Year",
    "Month",
    "Day",
    "Time",
    "End Year",
    "End Month",
    "End Day",
    "End Time",
    "Display Date",
    "Headline",
    "Text",
    "Media",
    "Media Credit",
    "Media Caption",
    "Media Thumbnail",
    "Type",
    "Group",
    "Background",
]


def neutralise(value: Any) -> Any:
    """A cell value that cannot run as a spreadsheet formula. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write(rows: Iterable[list[Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


def render(timeline: Timeline, options: Mapping[str, str]) -> bytes:
    return b"".join(render_pages([timeline], options))


def render_pages(pages: Iterable[Timeline], options: Mapping[str, str]) -> Iterator[bytes]:
    """The header row, then each page's rows."""
    table = options.get("table", "incidents")
    if table not in TABLES:
        raise BadExportOption(f"unknown table '{table}': expected incidents, claims or timelinejs")
    header, rows_of = TABLES[table]
    yield _write([header])
    for page in pages:
        yield _write(rows_of(page))


INCIDENT_COLUMNS = [
    "slug",
    "title",
    "date_earliest",
    "date_latest",
    "date_precision",
    "location",
    "country",
    "latitude",
    "longitude",
    "grade",
    "retracted",
    *(f"{name}_{part}" for name in NUMBER_FIELDS for part in ("best", "low", "high", "status")),
    "perpetrator",
    "perpetrator_status",
    "kind",
    "disputed_fields",
    "sources",
    "number_of_claims",
    "revision",
    "changed_at",
]


def _incident_rows(timeline: Timeline) -> Iterator[list[Any]]:
    for incident in timeline.incidents:
        date = incident.date or {}
        place = incident.location or {}
        cells: list[Any] = [
            incident.slug,
            incident.title,
            date.get("earliest"),
            date.get("latest"),
            date.get("precision"),
            place.get("name"),
            place.get("country"),
            place.get("lat"),
            place.get("lon"),
            incident.grade,
            incident.retracted,
        ]
        for name in NUMBER_FIELDS:
            view = incident.field(name)
            cells += [view.best, view.low, view.high, view.status] if view else [None] * 4
        perpetrator = incident.field("perpetrator")
        kind = incident.field("kind")
        cells += [
            best_text(perpetrator) if perpetrator else None,
            perpetrator.status if perpetrator else None,
            kind.best if kind else None,
            ";".join(f.field for f in incident.fields if f.status == "disputed"),
            ";".join(s.publisher for s in timeline.sources_of(incident)),
            len(incident.claims),
            incident.revision,
            incident.changed_at.isoformat() if incident.changed_at else None,
        ]
        yield cells


CLAIM_COLUMNS = [
    "claim_id",
    "incident",
    "field",
    "value",
    "qualifier",
    "said_by",
    "hedge",
    "credibility",
    "status",
    "reason",
    "evidence",
    "note",
    "source",
    "publisher",
    "source_title",
    "published",
    "reliability",
    "recorded_at",
    "recorded_by",
]


def _claim_rows(timeline: Timeline) -> Iterator[list[Any]]:
    for incident in timeline.incidents:
        for claim in timeline.claims_of(incident):
            source = timeline.sources[claim.source_id]
            status = "retracted" if claim.retracted else claim.rank if claim.rank != "normal" else "active"
            reason = claim.retraction_reason if claim.retracted else claim.rank_reason
            yield [
                str(claim.id),
                incident.slug,
                claim.field,
                describe(claim.field, claim.value, claim.qualifier),
                claim.qualifier,
                claim.said_by,
                claim.hedge,
                claim.credibility,
                status,
                reason,
                claim.evidence["quote"],
                claim.note,
                source.key,
                source.publisher,
                source.title,
                source.published_day.isoformat(),
                source.reliability,
                claim.recorded_at.isoformat(),
                claim.recorded_by,
            ]


def _timelinejs_rows(timeline: Timeline) -> Iterator[list[Any]]:
    for incident in timeline.incidents:
        if incident.date is None:
            continue
        start, end = _timelinejs_dates(incident.date)
        kind = incident.field("kind")
        yield [
            *start,
            None,
            *end,
            None,
            describe("date", incident.date) if incident.date["precision"] != "day" else None,
            incident.title,
            incident_description(incident, timeline.claims, timeline.sources).replace("\n", "<br>"),
            None,
            None,
            None,
            None,
            None,
            kind.best if kind else None,
            None,
        ]


TABLES: dict[str, tuple[list[str], Callable[[Timeline], Iterable[list[Any]]]]] = {
    "incidents": (INCIDENT_COLUMNS, _incident_rows),
    "claims": (CLAIM_COLUMNS, _claim_rows),
    "timelinejs": (TIMELINEJS_COLUMNS, _timelinejs_rows),
}
"""Each table's header row and its rows for a (page of a) timeline."""


def _timelinejs_dates(span: Mapping[str, str]) -> tuple[list[Any], list[Any]]:
    """Start and end columns: a whole calendar month or year is given as such, any other span
    as its first and last day."""
    earliest = dt.date.fromisoformat(span["earliest"])
    latest = dt.date.fromisoformat(span["latest"])
    following = latest + dt.timedelta(days=1)
    if earliest == latest:
        return [earliest.year, earliest.month, earliest.day], [None, None, None]
    if earliest.day == 1 and following.day == 1:
        if earliest.month == 1 and following.month == 1 and following.year == earliest.year + 1:
            return [earliest.year, None, None], [None, None, None]
        if (following.year * 12 + following.month) - (earliest.year * 12 + earliest.month) == 1:
            return [earliest.year, earliest.month, None], [None, None, None]
    return [earliest.year, earliest.month, earliest.day], [latest.year, latest.month, latest.day]


@hookimpl
def chronology_exporters() -> list[Exporter]:
    return [
        Exporter(
            name="csv",
            description="CSV (RFC 4180): incidents, claims or a TimelineJS sheet",
            media_type="text/csv; charset=utf-8",
            file_extension="csv",
            render=render,
            render_pages=render_pages,
            options={"table": "incidents (default), claims, or timelinejs"},
        )
    ]
