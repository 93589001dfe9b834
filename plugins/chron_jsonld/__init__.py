"""The JSON-LD exporter: schema.org Events with their NewsArticles and claim-level provenance.

Each incident is a schema:Event; each source a schema:NewsArticle the event is `subjectOf`;
each claim a schema:Claim that `appearance`s in its article and `prov:wasDerivedFrom` it, with
the best view of each field under the chron: vocabulary. The context (context.jsonld, shipped
in this package) is embedded in the output, so the document expands with no network access.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import orjson

from chronology.bestview import IncidentView
from chronology.hookspecs import hookimpl
from chronology.records import Claim, Source
from chronology.render import best_text, describe, incident_description, json_list_pieces
from chronology.timeline import Exporter, Timeline


@cache
def context() -> dict[str, Any]:
    """The shipped JSON-LD context (the value of its "@context")."""
    return json.loads(files(__name__).joinpath("context.jsonld").read_text(encoding="utf-8"))["@context"]


def render(timeline: Timeline, options: Mapping[str, str]) -> bytes:
    return b"".join(render_pages([timeline], options))


GRAPH = "chron:graph-goes-here"
"""Stands for the graph in the document's frame: the graph is written into its place."""


def render_pages(pages: Iterable[Timeline], options: Mapping[str, str]) -> Iterator[bytes]:
    """The document as orjson writes it (two-space indent, sorted keys), with the graph
    written into its place an item at a time."""
    pages = iter(pages)
    first = next(pages)
    frame = {
        "@context": context() if options.get("context", "embed") == "embed" else options["context"],
        "@id": "urn:chronology:timeline",
        "@type": "ItemList",
        "name": first.title,
        "generatedAtTime": _time(first.last_changed),
        "@graph": GRAPH,
    }
    before, found, after = orjson.dumps(frame, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).partition(
        orjson.dumps(GRAPH)
    )
    if not found:
        raise ValueError("the document's frame has no place for its graph")
    yield before
    yield from json_list_pieces(_graph(itertools.chain([first], pages)), depth=1)
    yield after + b"\n"


def _graph(pages: Iterable[Timeline]) -> Iterator[dict[str, Any]]:
    """Each page's events, then the articles they cite, by publication."""
    cited: dict[Any, Source] = {}
    for page in pages:
        for incident in page.incidents:
            yield _event(incident, page)
            for source in page.sources_of(incident):
                cited[source.id] = source
    for source in sorted(cited.values(), key=lambda s: (s.published_day, s.key)):
        yield _article(source)


def _urn(identifier: Any) -> str:
    return f"urn:uuid:{identifier}"


def _time(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def _event(incident: IncidentView, timeline: Timeline) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@id": _urn(incident.id),
        "@type": "Event",
        "identifier": incident.slug,
        "name": incident.title,
        "description": incident_description(incident, timeline.claims, timeline.sources),
        "grade": incident.grade,
        "revision": incident.revision,
        "dateModified": _time(incident.changed_at),
        "eventStatus": "https://schema.org/EventCancelled"
        if incident.retracted
        else "https://schema.org/EventScheduled",
        "subjectOf": [_urn(s) for s in incident.sources],
        "bestView": [_field(f, incident) for f in incident.fields],
        "claims": [_claim(c, incident) for c in timeline.claims_of(incident)],
    }
    if incident.date:
        event["startDate"] = incident.date["earliest"]
        event["endDate"] = incident.date["latest"]
    if incident.location:
        event["location"] = _place(incident.location)
    tags = incident.field("tags")
    if tags and tags.best:
        event["keywords"] = ", ".join(tags.best)
    if incident.aliases:
        event["alternateName"] = list(incident.aliases)
    if incident.links:
        event["relatedIncident"] = [
            {"relation": relation, "@id": f"urn:chronology:incident:{other}"} for relation, other in incident.links
        ]
    return {k: v for k, v in event.items() if v is not None}


def _place(location: Mapping[str, Any]) -> dict[str, Any]:
    place: dict[str, Any] = {"@type": "Place", "name": location["name"]}
    address = {
        k: v for k, v in (("addressRegion", location.get("admin")), ("addressCountry", location.get("country"))) if v
    }
    if address:
        place["address"] = {"@type": "PostalAddress", **address}
    if "lat" in location:
        place["geo"] = {"@type": "GeoCoordinates", "latitude": location["lat"], "longitude": location["lon"]}
    return place


def _field(view: Any, incident: IncidentView) -> dict[str, Any]:
    field = {
        "@type": "chron:FieldView",
        "field": view.field,
        "best": best_text(view) if view.best is not None else None,
        "status": view.status,
        "numberOfSources": view.number_of_sources,
        "disagreement": view.disagreement,
        "supportedBy": [_urn(i) for i in view.supporting],
        "disputedBy": [_urn(i) for i in view.dissenting],
    }
    if view.low is not None:
        field["low"], field["high"] = view.low, view.high
    if view.hedge:
        field["hedge"] = view.hedge
    return {k: v for k, v in field.items() if v is not None}


def _claim(claim: Claim, incident: IncidentView) -> dict[str, Any]:
    if claim.retracted:
        status = "retracted"
    elif claim.rank != "normal":
        status = claim.rank
    else:
        status = "active"
    entry = {
        "@id": _urn(claim.id),
        "@type": ["Claim", "prov:Entity"],
        "claimField": claim.field,
        "text": describe(claim.field, claim.value, claim.qualifier),
        "qualifier": claim.qualifier,
        "claimStatus": status,
        "author": {"@type": "Thing", "name": claim.said_by} if claim.said_by else None,
        "appearance": _urn(claim.source_id),
        "wasDerivedFrom": _urn(claim.source_id),
        "evidence": claim.evidence["quote"],
        "hedge": claim.hedge,
        "dateCreated": _time(claim.recorded_at),
    }
    return {k: v for k, v in entry.items() if v is not None}


def _article(source: Source) -> dict[str, Any]:
    article = {
        "@id": _urn(source.id),
        "@type": "NewsArticle",
        "identifier": source.key,
        "headline": source.title,
        "publisher": {"@type": "Organization", "name": source.publisher},
        "datePublished": source.published_day.isoformat(),
        "inLanguage": source.language,
        "reliability": source.reliability,
        "url": source.url,
        "author": {"@type": "Person", "name": source.author} if source.author else None,
    }
    return {k: v for k, v in article.items() if v is not None}


@hookimpl
def chronology_exporters() -> list[Exporter]:
    return [
        Exporter(
            name="jsonld",
            description="JSON-LD: schema.org Events, their NewsArticles and claim provenance",
            media_type="application/ld+json",
            file_extension="jsonld",
            render=render,
            render_pages=render_pages,
            options={"context": "'embed' (default) or the URL under which you publish context.jsonld"},
        )
    ]
