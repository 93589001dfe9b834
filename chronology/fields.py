"""The field catalog: which fields a claim may speak about, and the type of each field's value.

Every value is normalised here into one canonical, JSON-compatible form, so that the same
statement always has the same bytes (claim ids are derived from them) and every later stage
(best view, exporters) can rely on the shape.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

QUALIFIERS = ("exact", "about", "at_least", "at_most", "range")
"""How precisely a number was stated: "at least a dozen" is at_least 12, "about thirty" about 30."""

DATE_PRECISIONS = ("day", "days", "week", "month", "year")
"""UCDP's date_prec, in words: how tightly a date is known."""

PLACE_PRECISIONS = ("site", "town", "district", "region", "country")
"""UCDP's where_prec, in words: how tightly a place is known."""

HEDGES = ("likely", "possibly", "reportedly", "alleged")
"""How a source hedged its statement ("likely the work of ..."). Absent means stated flatly."""

RELIABILITY_GRADES = ("A", "B", "C", "D", "E", "F")
"""Admiralty source reliability: A completely reliable ... E unreliable, F cannot be judged."""

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
GROUP = re.compile(r"^[a-z0-9_]+$")


class FieldProblem(ValueError):
    """A value does not fit its field; the fact-file reader adds file and line."""

    def __init__(self, message: str, expected: str | None = None, found: object = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.found = found


@dataclass(frozen=True, eq=False)
class FieldType:
    """A kind of field. There is one of each (the constants below), compared by identity:
    resolution tests a field's kind several times for every field of every incident, and the
    equality and hash a dataclass would write are Python calls each time."""

    name: str
    numeric: bool = False


COUNT = FieldType("count", numeric=True)
DISTANCE = FieldType("distance", numeric=True)
TEXT = FieldType("text")
ACTOR = FieldType("actor")
PLACE = FieldType("place")
DATE = FieldType("date")
TIME = FieldType("time")
RELATION = FieldType("relation")
TAGS = FieldType("tags")
EXTENSION = FieldType("extension")

CATALOG: dict[str, FieldType] = {
    "title": TEXT,
    "kind": TEXT,
    "date": DATE,
    "time": TIME,
    "location": PLACE,
    "distance": DISTANCE,
    "perpetrator": ACTOR,
    "claimed_by": ACTOR,
    "target": ACTOR,
    "weapon": TEXT,
    "munitions_launched": COUNT,
    "munitions_hit": COUNT,
    "killed": COUNT,
    "wounded": COUNT,
    "summary": TEXT,
    "responds_to": RELATION,
    "part_of": RELATION,
    "follows": RELATION,
    "tags": TAGS,
}
"""Every field a claim may name. Counts may be broken down by group: `killed.us_military`."""


@lru_cache(maxsize=4096)
def field_type(field: str) -> FieldType:
    """The type of a field name, or FieldProblem if the catalog does not know it. Remembered:
    resolution asks for the same few names once per field of every incident (a name that is
    refused raises each time, and is not remembered)."""
    if field.startswith("x-") and len(field) > 2:
        return EXTENSION
    base, dot, group = field.partition(".")
    kind = CATALOG.get(base)
    if kind is None:
        raise FieldProblem(
            "unknown field (extension fields start with 'x-')",
            expected="one of " + ", ".join(sorted(CATALOG)),
            found=field,
        )
    if dot:
        if kind is not COUNT:
            raise FieldProblem("only counts can be broken down by group", "a count field", field)
        if not GROUP.match(group):
            raise FieldProblem("bad group name", "lowercase letters, digits and _", group)
    return kind


def normalise_value(field: str, raw: Any, qualifier: str) -> Any:
    """The canonical form of a claimed value for `field`, checked against the catalog."""
    kind = field_type(field)
    if qualifier not in QUALIFIERS:
        raise FieldProblem("unknown qualifier", "one of " + ", ".join(QUALIFIERS), qualifier)
    if qualifier != "exact" and not kind.numeric:
        raise FieldProblem(f"qualifier '{qualifier}' applies only to numbers", "exact", qualifier)
    if kind is COUNT:
        return _number_or_range(raw, qualifier, integer=True)
    if kind is DISTANCE:
        return _distance(raw, qualifier)
    if kind in (TEXT, ACTOR):
        return _text(raw)
    if kind is TIME:
        text = _text(raw)
        if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", text):
            raise FieldProblem("bad time of day", "HH:MM (24-hour, local)", raw)
        return text
    if kind is RELATION:
        text = _text(raw)
        if not SLUG.match(text):
            raise FieldProblem("bad incident slug", "lowercase-words-with-hyphens", raw)
        return text
    if kind is TAGS:
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t for t in raw):
            raise FieldProblem("bad tags", "a non-empty list of strings", raw)
        return sorted(set(raw))
    if kind is PLACE:
        return _place(raw)
    if kind is DATE:
        return parse_date_span(raw)
    return _json_value(raw)


MAX_TEXT_CHARS = 2_000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters other than tab and line breaks: no format we emit can carry them."""


def check_no_control(text: str) -> None:
    found = CONTROL.search(text)
    if found:
        raise FieldProblem("control character in text", "printable text", f"U+{ord(found[0]):04X}")


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise FieldProblem("wrong type", "a non-empty string", raw)
    check_no_control(raw)
    if len(raw) > MAX_TEXT_CHARS:
        raise FieldProblem("text too long", f"at most {MAX_TEXT_CHARS} characters", f"{len(raw)} characters")
    return " ".join(raw.split())


def _number(raw: Any, integer: bool) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise FieldProblem("wrong type", "an integer" if integer else "a number", raw)
    if integer and not isinstance(raw, int):
        raise FieldProblem("wrong type", "an integer", raw)
    if raw < 0:
        raise FieldProblem("negative number", "a number >= 0", raw)
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def _number_or_range(raw: Any, qualifier: str, integer: bool) -> Any:
    if qualifier == "range":
        if not isinstance(raw, list) or len(raw) != 2:
            raise FieldProblem("a range needs two numbers", "[low, high]", raw)
        low, high = (_number(v, integer) for v in raw)
        if low > high:
            raise FieldProblem("range low is above high", "low <= high", raw)
        return [low, high]
    return _number(raw, integer)


def _distance(raw: Any, qualifier: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or "km" not in raw or "from" not in raw:
        raise FieldProblem("bad distance", '{km = N, from = "place"[, direction = ...]}', raw)
    unknown = set(raw) - {"km", "from", "direction"}
    if unknown:
        raise FieldProblem("unknown key in distance", "km, from, direction", sorted(unknown))
    value = {"km": _number_or_range(raw["km"], qualifier, integer=False), "from": _text(raw["from"])}
    if raw.get("direction") is not None:
        value["direction"] = _text(raw["direction"])
    return value


def _place(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise FieldProblem("bad location", "a place name or {name = ..., country = ...}", raw)
    allowed = {"name", "admin", "country", "lat", "lon", "precision"}
    unknown = set(raw) - allowed
    if unknown:
        raise FieldProblem("unknown key in location", ", ".join(sorted(allowed)), sorted(unknown))
    place: dict[str, Any] = {"name": _text(raw["name"])}
    for key in ("admin", "country"):
        if raw.get(key) is not None:
            place[key] = _text(raw[key])
    if ("lat" in raw) != ("lon" in raw):
        raise FieldProblem("lat and lon come together", "both or neither", raw)
    if "lat" in raw:
        lat, lon = raw["lat"], raw["lon"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
            raise FieldProblem("bad coordinates", "decimal degrees", [lat, lon])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise FieldProblem("coordinates out of range", "lat -90..90, lon -180..180", [lat, lon])
        place["lat"], place["lon"] = float(lat), float(lon)
    precision = raw.get("precision", "site")
    if precision not in PLACE_PRECISIONS:
        raise FieldProblem("bad place precision", "one of " + ", ".join(PLACE_PRECISIONS), precision)
    place["precision"] = precision
    return place


def _json_value(raw: Any) -> Any:
    if isinstance(raw, (dt.date, dt.time)):
        return raw.isoformat()
    if isinstance(raw, str):
        check_no_control(raw)
        if len(raw) > MAX_TEXT_CHARS:
            raise FieldProblem("text too long", f"at most {MAX_TEXT_CHARS} characters", f"{len(raw)} characters")
    if isinstance(raw, list):
        return [_json_value(v) for v in raw]
    if isinstance(raw, dict):
        return {str(k): _json_value(v) for k, v in raw.items()}
    return raw


# --- dates ---------------------------------------------------------------------------------


def parse_date_span(raw: Any) -> dict[str, str]:
    """A valid-time span {earliest, latest, precision} from a date, "YYYY-MM", "YYYY" or table."""
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        return {"earliest": raw.isoformat(), "latest": raw.isoformat(), "precision": "day"}
    if isinstance(raw, str):
        return _date_span_from_text(raw)
    if isinstance(raw, dict):
        unknown = set(raw) - {"earliest", "latest", "precision"}
        if unknown:
            raise FieldProblem("unknown key in date", "earliest, latest, precision", sorted(unknown))
        if "earliest" not in raw or "latest" not in raw:
            raise FieldProblem("a date span needs earliest and latest", "{earliest, latest}", raw)
        earliest, latest = _one_day(raw["earliest"]), _one_day(raw["latest"])
        if earliest > latest:
            raise FieldProblem("earliest is after latest", "earliest <= latest", raw)
        precision = raw.get("precision") or _precision_of(earliest, latest)
        if precision not in DATE_PRECISIONS:
            raise FieldProblem("bad date precision", "one of " + ", ".join(DATE_PRECISIONS), precision)
        if precision == "day" and earliest != latest:
            raise FieldProblem("day precision needs earliest == latest", "one day", raw)
        return {"earliest": earliest.isoformat(), "latest": latest.isoformat(), "precision": precision}
    raise FieldProblem("wrong type", "a date (YYYY-MM-DD, YYYY-MM, YYYY) or a span", raw)


def _one_day(raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise FieldProblem("date does not parse", "YYYY-MM-DD", raw)


def _date_span_from_text(text: str) -> dict[str, str]:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = _one_day(text)
        return {"earliest": day.isoformat(), "latest": day.isoformat(), "precision": "day"}
    month = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if month:
        year, number = int(month[1]), int(month[2])
        if not 1 <= number <= 12:
            raise FieldProblem("date does not parse", "YYYY-MM with month 01..12", text)
        first = dt.date(year, number, 1)
        following = dt.date(year + number // 12, number % 12 + 1, 1)
        last = following - dt.timedelta(days=1)
        return {"earliest": first.isoformat(), "latest": last.isoformat(), "precision": "month"}
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return {"earliest": f"{year:04d}-01-01", "latest": f"{year:04d}-12-31", "precision": "year"}
    raise FieldProblem("date does not parse", "YYYY-MM-DD, YYYY-MM or YYYY", text)


def _precision_of(earliest: dt.date, latest: dt.date) -> str:
    days = (latest - earliest).days
    if days == 0:
        return "day"
    if days <= 6:
        return "days"
    if days <= 13:
        return "week"
    if days <= 62:
        return "month"
    return "year"
