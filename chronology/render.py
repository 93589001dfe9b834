"""How the chronology reads on a terminal: `chron replay`, `show`, `history` and `log`.

Text for people; the same commands' `--json` output comes from the records' own `as_dict`,
written as a list an item at a time (`json_list_pieces`, which the JSON-LD exporter uses too).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from uuid import UUID

import orjson

from chronology.bestview import IncidentView
from chronology.fields import field_type
from chronology.records import Claim, LoggedEvent, Source
from chronology.resolution import FieldView


def describe(field: str, value: Any, qualifier: str = "exact") -> str:
    """A value as an archivist would write it: "about 30", "27 km north of Baghdad"."""
    if value is None:
        return "-"
    kind = field_type(field)
    if kind.name == "distance":
        text = _number(value["km"], qualifier) + " km"
        direction = f" {value['direction']}" if value.get("direction") else ""
        return f"{text}{direction} of {value['from']}"
    if kind.numeric:
        return _number(value, qualifier)
    if kind.name == "date":
        return _date_span(value)
    if kind.name == "place":
        parts = [value["name"], value.get("admin"), value.get("country")]
        return ", ".join(p for p in parts if p)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _date_span(span: Mapping[str, str]) -> str:
    """ "2020-03-11", "January 2020", "2019", or "2020-03-08..2020-03-11 (days)"."""
    earliest, latest = dt.date.fromisoformat(span["earliest"]), dt.date.fromisoformat(span["latest"])
    if earliest == latest:
        return span["earliest"]
    following = latest + dt.timedelta(days=1)
    if earliest.day == 1 and following.day == 1:
        months = (following.year * 12 + following.month) - (earliest.year * 12 + earliest.month)
        if months == 1:
            return earliest.strftime("%B %Y")
        if months == 12 and earliest.month == 1:
            return str(earliest.year)
    return f"{span['earliest']}..{span['latest']} ({span['precision']})"


def _number(value: Any, qualifier: str) -> str:
    if qualifier == "range":
        return f"{value[0]}-{value[1]}"
    prefix = {"about": "about ", "at_least": "at least ", "at_most": "at most "}.get(qualifier, "")
    return f"{prefix}{value}"


def best_text(view: FieldView) -> str:
    text = describe(view.field, view.best, view.qualifier)
    if view.low is not None and view.low != view.high:
        text += f" (range {view.low}-{view.high})"
    if view.hedge:
        text += f" [{view.hedge}]"
    return text


def claimed_values(
    view: FieldView,
    claims: Mapping[UUID, Claim],
    sources: Mapping[UUID, Source],
) -> str:
    """Each distinct statement with the sources making it: `18 (Reuters); about 30 (DoD)`."""
    statements: dict[str, set[str]] = {}
    for alternative in view.alternatives:
        for claim_id in alternative.claims:
            claim = claims[claim_id]
            text = describe(claim.field, claim.value, claim.qualifier)
            if claim.hedge:
                text += f" [{claim.hedge}]"
            statements.setdefault(text, set()).add(sources[claim.source_id].publisher)
    return "; ".join(f"{text} ({', '.join(sorted(publishers))})" for text, publishers in statements.items())


NAME_WIDTH, VALUE_WIDTH = 22, 40
"""The field's and the best value's columns in `chron replay`: a longer value goes on over the
next lines, and a longer name has a line of its own, so that every field's status and sources
stay in their columns."""


def _value_lines(text: str) -> list[str]:
    """`text` in lines of at most `VALUE_WIDTH` characters, broken between words; a word
    longer than that (a slug) is broken after a hyphen, or else where the column ends."""
    if len(text) <= VALUE_WIDTH:
        return [text]
    lines = textwrap.wrap(text, VALUE_WIDTH, break_long_words=False, break_on_hyphens=False)
    if any(len(line) > VALUE_WIDTH for line in lines):
        lines = textwrap.wrap(text, VALUE_WIDTH)
    return lines or [text]  # nothing but spaces: wrap gives no line at all


def chronology_text(views: Iterable[IncidentView], claims: Mapping[UUID, Claim], sources: Mapping[UUID, Source]) -> str:
    """`chron replay`, a page at a time: each incident in date order, each field's best value
    and who said what; `incident_count` ends the listing."""
    lines: list[str] = []
    for view in views:
        date = describe("date", view.date) if view.date else "undated"
        flag = "  RETRACTED" if view.retracted else ""
        lines.append(f"{date}  {view.title}  [{view.grade}]{flag}")
        lines.append(f"    {view.slug}")
        for field in view.fields:
            if field.field in ("title", "date"):
                continue
            name = field.field
            if len(name) > NAME_WIDTH:  # an analyst's own x- field: its name has a line of its own
                lines.append(f"    {name}")
                name = ""
            first, *rest = _value_lines(best_text(field))
            lines.append(
                f"    {name:<{NAME_WIDTH}} {first:<{VALUE_WIDTH}} {field.status:<10}"
                f" {field.number_of_sources} source{'s' if field.number_of_sources != 1 else ''}"
            )
            lines.extend(f"    {'':<{NAME_WIDTH}} {more}" for more in rest)
            if len(field.alternatives) > 1 and field.status == "disputed":
                lines.append(f"    {'':<{NAME_WIDTH}} claimed: {claimed_values(field, claims, sources)}")
        lines.append("")
    return "".join(f"{line}\n" for line in lines)


def incident_count(count: int) -> str:
    """The last line of `chron replay`."""
    return f"{count} incident{'s' if count != 1 else ''}\n"


def incident_text(view: IncidentView, claims: Mapping[UUID, Claim], sources: Mapping[UUID, Source]) -> str:
    """`chron show`: the best view with every claim and its source, disputed fields first."""
    lines = [
        f"{view.title}",
        f"  slug {view.slug}   grade {view.grade}   revision {view.revision}"
        + ("   RETRACTED" if view.retracted else ""),
    ]
    if view.aliases:
        lines.append(f"  also known as {', '.join(view.aliases)}")
    for relation, other in view.links:
        lines.append(f"  {relation} {other}")
    ordered = sorted(view.fields, key=lambda f: (f.status != "disputed",))
    for field in ordered:
        lines.append("")
        lines.append(f"  {field.field}: {best_text(field)}   {field.status}   disagreement {field.disagreement}")
        shown = [c for a in field.alternatives for c in a.claims] + list(field.retracted)
        for claim_id in shown:
            claim = claims[claim_id]
            source = sources[claim.source_id]
            mark = "+" if claim_id in field.supporting else "-" if claim_id in field.dissenting else "x"
            state = ""
            if claim.retracted:
                state = f"  RETRACTED: {claim.retraction_reason}"
            elif claim.rank != "normal":
                state = f"  {claim.rank.upper()}: {claim.rank_reason}"
            hedge = f" [{claim.hedge}]" if claim.hedge else ""
            lines.append(
                f"    {mark} {describe(claim.field, claim.value, claim.qualifier)}{hedge}"
                f" -- {_speaker(claim, source)}"
                f" ({source.published_day.isoformat()}, reliability {source.reliability}){state}"
            )
            lines.append(f'        "{claim.evidence["quote"]}"   claim {claim.id}')
    return "\n".join(lines) + "\n"


def _speaker(claim: Claim, source: Source) -> str:
    """Who said it, and where: "Gen. Mark Milley, in U.S. Department of Defense", or just
    "Reuters" when the outlet speaks for itself."""
    if claim.said_by and claim.said_by != source.publisher:
        return f"{claim.said_by}, in {source.publisher}"
    return source.publisher


def log_text(events: Iterable[LoggedEvent]) -> str:
    """`chron log`: position, transaction time, event type and a one-line summary."""
    lines = []
    for logged in events:
        lines.append(
            f"{logged.position:>8}  {logged.recorded_at.isoformat(timespec='seconds')}  "
            f"{logged.topic.removeprefix('chronology:'):<18} {summary(logged.event)}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def summary(event: Any) -> str:
    """One line saying what an event recorded."""
    data = vars(event)
    if "content" in data:
        content = data["content"]
        return (
            f"{content['incident']} {content['field']} = "
            f"{describe(content['field'], content['value'], content.get('qualifier', 'exact'))}"
            f" ({content.get('said_by', '?')})"
        )
    if "metadata" in data:
        return f"{data['key']}: {data['metadata'].get('publisher')}, {data['published']}"
    if "into" in data:
        return f"{data['slug']} merged into {data['into']}: {data['reason']}"
    if "relation" in data:
        return f"{data['slug']} {data['relation']} {data['other']}"
    if "rank" in data:
        return f"{event.originator_id} ranked {data['rank']}: {data['reason']}"
    if "reliability" in data:
        return f"{event.originator_id} graded {data['reliability']}: {data['reason']}"
    if "changes" in data:
        return f"{event.originator_id} amended {sorted(data['changes'])}: {data['reason']}"
    if "reason" in data:
        return f"{event.originator_id}: {data['reason']}"
    return data.get("slug", str(event.originator_id))


def incident_description(view: IncidentView, claims: Mapping[UUID, Claim], sources: Mapping[UUID, Source]) -> str:
    """Plain text for exporters (iCal DESCRIPTION, JSON-LD description, TimelineJS text):
    the grade, each field's best value, the disputed ones with who said what, and the sources."""
    lines = [f"Grade: {view.grade}." + (" All claims retracted." if view.retracted else "")]
    disputed = []
    for field in view.fields:
        if field.field in ("title", "tags", "date") or field.status == "retracted":
            continue
        lines.append(
            f"{field.field}: {best_text(field)} ({field.status}, {field.number_of_sources} "
            f"source{'s' if field.number_of_sources != 1 else ''})"
        )
        if field.status == "disputed":
            disputed.append(f"- {field.field}: {claimed_values(field, claims, sources)}")
    if disputed:
        lines += ["", "Disputed:", *disputed]
    lines += ["", "Sources:"]
    ordered = sorted((sources[i] for i in view.sources), key=lambda s: (s.published_day, s.key))
    for source in ordered:
        url = f" {source.url}" if source.url else ""
        lines.append(
            f'- {source.publisher}, "{source.title}", {source.published_day.isoformat()}'
            f" (reliability {source.reliability}){url}"
        )
    return "\n".join(lines)


def json_list_pieces(items: Iterable[Any], depth: int = 0) -> Iterator[bytes]:
    """A JSON list of `items` as orjson writes it with two-space indents and sorted keys, when
    the list stands `depth` levels into a document, in pieces: an item at a time, so that a
    list of any length is written in the memory of one item."""
    inner = b"\n" + b"  " * (depth + 1)
    separator = b"[" + inner
    for item in items:
        yield separator + orjson.dumps(item, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).replace(b"\n", inner)
        separator = b"," + inner
    yield b"[]" if separator == b"[" + inner else b"\n" + b"  " * depth + b"]"
