"""Resolution policies: pure functions from one field's claims to that field's best view.

No I/O here. Given the claims about one field of one incident and the sources they cite, a
policy decides which stated value is `best`; the rest (range, status, who agrees and who
dissents, how far apart they are) is computed the same way under every policy. Rules in
DESIGN.md §4; plugins may add policies through the `chronology_resolution_policies` hook.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from chronology import accelerated, transcoder
from chronology.fields import (
    ACTOR,
    DATE,
    EXTENSION,
    PLACE,
    PLACE_PRECISIONS,
    RELATION,
    TAGS,
    TEXT,
    TIME,
    field_type,
)
from chronology.records import Claim, Source
from chronology.transcoder import UuidMemo

RELIABILITY_SCORE = {"A": 6, "B": 5, "C": 4, "F": 3, "D": 2, "E": 1}
"""Admiralty grades, best first. F ("cannot be judged") ranks below C and above D."""

PRECISION_SCORE = {"exact": 4, "about": 3, "at_least": 2, "at_most": 2, "range": 1}
ABOUT_TOLERANCE = 0.10
"""How far "about N" may be from N and still agree with another figure."""

STATUSES = ("confirmed", "reported", "disputed", "retracted")


class Alternative(NamedTuple):
    """One distinct value that sources stated, with the claims stating it."""

    value: Any
    claims: tuple[UUID, ...]
    sources: tuple[UUID, ...]


class FieldView(NamedTuple):
    """The best view of one field of one incident. (Named tuples, like `Claim`: a replay makes
    one per field of every incident, and tuples are built several times faster than frozen
    dataclasses.)"""

    field: str
    best: Any
    status: str
    supporting: tuple[UUID, ...]
    dissenting: tuple[UUID, ...]
    number_of_sources: int
    disagreement: float
    alternatives: tuple[Alternative, ...]
    low: Any = None
    high: Any = None
    qualifier: str = "exact"
    """How precisely the best figure was stated by the claims stating it (numbers only)."""
    hedge: str | None = None
    retracted: tuple[UUID, ...] = ()

    def as_dict(self, text_ids: bool = True) -> dict[str, Any]:
        """The field view as plain data; ids as text, or left as UUIDs for orjson to write."""
        ids = id_texts if text_ids else list
        return {
            "field": self.field,
            "best": self.best,
            "low": self.low,
            "high": self.high,
            "qualifier": self.qualifier,
            "hedge": self.hedge,
            "status": self.status,
            "number_of_sources": self.number_of_sources,
            "disagreement": self.disagreement,
            "supporting": ids(self.supporting),
            "dissenting": ids(self.dissenting),
            "retracted": ids(self.retracted),
            "alternatives": [
                {
                    "value": a.value,
                    "claims": ids(a.claims),
                    "sources": ids(a.sources),
                }
                for a in self.alternatives
            ],
        }


def id_texts(ids: Sequence[UUID]) -> list[str]:
    return [str(i) for i in ids]


STORED_DEFAULTS = (None, None, "exact", None)
"""`low`, `high`, `qualifier` and `hedge` when a field view does not set them: a stored field
leaves them out at its end (as it leaves out an empty `retracted`)."""


def stored_field(view: FieldView, claim_at: Mapping[UUID, int], source_at: Mapping[UUID, int]) -> list[Any]:
    """A field view as the projection stores it (in its incident's view): a list in `FieldView`
    order, each claim and source id given by its place in the view's `claims` and `sources`
    (`claim_at`, `source_at`), each alternative as `[value, claims, sources]`, and the fields
    at the end that hold their defaults left out. About 40% of the size of `as_dict`'s JSON, and
    read back without parsing an id (`field_views_from_stored`)."""
    stored = [
        view.field,
        view.best,
        view.status,
        [claim_at[i] for i in view.supporting],
        [claim_at[i] for i in view.dissenting],
        view.number_of_sources,
        view.disagreement,
        [[a.value, [claim_at[i] for i in a.claims], [source_at[i] for i in a.sources]] for a in view.alternatives],
    ]
    if view.retracted:
        stored += [view.low, view.high, view.qualifier, view.hedge, [claim_at[i] for i in view.retracted]]
    else:
        rest = [view.low, view.high, view.qualifier, view.hedge]
        while rest and _is_default(rest[-1], STORED_DEFAULTS[len(rest) - 1]):
            rest.pop()
        stored += rest
    return stored


def _is_default(value: Any, default: Any) -> bool:
    return value is default or (type(value) is str and value == default)


def field_view_from_stored(stored: list[Any], claims: Sequence[UUID], sources: Sequence[UUID]) -> FieldView:
    """Inverse of `stored_field`, given the view's claim and source ids."""
    if not isinstance(stored, list) or not 8 <= len(stored) <= 13:
        raise ValueError(f"a stored field is a list of 8 to 13 items, not {stored!r:.80}")
    field, best, status, supporting, dissenting, number_of_sources, disagreement, alternatives, *rest = stored
    if len(rest) == 5:
        rest[4] = _ids_at(claims, rest[4])
    return FieldView(
        field,
        best,
        status,
        _ids_at(claims, supporting),
        _ids_at(claims, dissenting),
        number_of_sources,
        disagreement,
        tuple(Alternative(value, _ids_at(claims, cs), _ids_at(sources, ss)) for value, cs, ss in alternatives),
        *rest,
    )


def _ids_at(ids: Sequence[UUID], places: list[int]) -> tuple[UUID, ...]:
    if not isinstance(places, list):
        raise ValueError(f"a stored field lists ids by place, not {places!r:.80}")
    for place in places:
        if type(place) is not int or not 0 <= place < len(ids):
            raise ValueError(f"a stored field names id {place!r:.40} of {len(ids)}")
    return tuple([ids[place] for place in places])


def ids_of_texts(texts: list[str], memo: UuidMemo) -> tuple[UUID, ...]:
    """`memo[text]` of each id text, as a tuple: a stored view's `claims` and `sources` (in C
    where `chronology._resolution` was built, which makes the UUIDs the memo lacks itself)."""
    return tuple(map(memo.__getitem__, texts))


def field_views_from_stored(
    fields: list[list[Any]], claims: Sequence[UUID], sources: Sequence[UUID]
) -> tuple[FieldView, ...]:
    """`field_view_from_stored` of each field of a stored view: what reading a timeline out
    spends much of its time on (in C where `chronology._resolution` was built)."""
    return tuple([field_view_from_stored(stored, claims, sources) for stored in fields])


# --- the numbers a claim states ----------------------------------------------------------------


def _number(claim: Claim) -> Any:
    value = claim.value
    return value["km"] if isinstance(value, dict) else value


def point(claim: Claim) -> float | int:
    """The single figure a numeric claim stands for (a range's midpoint)."""
    number = _number(claim)
    if claim.qualifier == "range":
        low, high = number
        middle = (low + high) / 2
        return int(middle) if isinstance(low, int) and isinstance(high, int) else middle
    return number


def bounds(claim: Claim) -> tuple[float | None, float | None]:
    """What the claim says the true figure lies within, for agreement between claims."""
    number = _number(claim)
    qualifier = claim.qualifier
    if qualifier == "exact":
        return number, number
    if qualifier == "about":
        slack = max(abs(number) * ABOUT_TOLERANCE, 1)
        return number - slack, number + slack
    if qualifier == "at_least":
        return number, None
    if qualifier == "at_most":
        return None, number
    return number[0], number[1]


def stated_range(claim: Claim) -> tuple[Any, Any]:
    """The lowest and highest figure the claim states (UCDP low/high take these)."""
    number = _number(claim)
    if claim.qualifier == "range":
        return number[0], number[1]
    return number, number


def _contains(claim: Claim, figure: float) -> bool:
    low, high = bounds(claim)
    return (low is None or low <= figure) and (high is None or figure <= high)


def _days(span: dict[str, str]) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(span["earliest"]), dt.date.fromisoformat(span["latest"])


def _overlap(span: dict[str, str], other: dict[str, str]) -> bool:
    """Whether two date spans share a day. Spans hold ISO days (YYYY-MM-DD, normalised by
    `chronology.fields`), which order as text exactly as they do as dates."""
    return span["earliest"] <= other["latest"] and other["earliest"] <= span["latest"]


# --- agreement -----------------------------------------------------------------------------------


def _key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def agrees(kind: Any, claim: Claim, candidate: Any, candidate_claim: Claim) -> bool:
    """Whether `claim` is consistent with `candidate` (a value stated by `candidate_claim`)."""
    if kind.numeric:
        return _contains(claim, candidate)
    if kind is DATE:
        return _overlap(claim.value, candidate)
    if kind is ACTOR:
        return claim.generic or candidate_claim.generic or claim.value == candidate
    if kind is PLACE:
        return claim.value["name"] == candidate["name"]
    return _key(claim.value) == _key(candidate)


NEVER_DISPUTED = {TEXT, TAGS, RELATION, EXTENSION, TIME}
"""Fields whose differing values are alternatives rather than contradictions (two headlines,
two descriptions of a weapon) or that accumulate (tags, relations)."""


# --- policies ------------------------------------------------------------------------------------

Candidate = tuple[Any, list[Claim]]  # a stated value and the claims stating it
Policy = Callable[[str, Sequence[Candidate], Sequence[Claim], Mapping[UUID, Source]], Candidate]


def _balanced_key(kind: Any, candidate: Candidate, active: Sequence[Claim], sources: Mapping[UUID, Source]) -> tuple:
    value, stating = candidate
    first = stating[0]
    stating_sources = [sources[c.source_id] for c in stating]
    return (
        any(c.rank == "preferred" for c in stating),
        not any(c.generic for c in stating),
        max(RELIABILITY_SCORE[s.reliability] for s in stating_sources),
        max(7 - (c.credibility or 6) for c in stating),
        len({c.source_id.int for c in active if agrees(kind, c, value, first)}),
        _precision(kind, value, stating),
        max(s.published_day for s in stating_sources),
    )


def _precision(kind: Any, value: Any, stating: Sequence[Claim]) -> float:
    """Higher is more precise: exact beats about beats at_least; a day beats a month."""
    if kind is DATE:
        return -_span_days(value)
    if kind is PLACE:
        return -PLACE_PRECISIONS.index(value["precision"])
    return max(PRECISION_SCORE[c.qualifier] for c in stating)


def _ranked(
    field_name: str, candidates: Sequence[Candidate], active: Sequence[Claim], sources: Mapping[UUID, Source]
) -> list[Candidate]:
    """Candidates in balanced order, best first; ties broken by the smallest claim id."""
    kind = field_type(field_name)
    keyed = [(_balanced_key(kind, c, active, sources), min(x.id.int for x in c[1]), c) for c in candidates]
    keyed.sort(key=lambda k: k[1])
    keyed.sort(key=lambda k: k[0], reverse=True)
    return [c for _, _, c in keyed]


def balanced(field_name, candidates, active, sources) -> Candidate:
    """Preferred rank, then reliability and credibility, then independent sources agreeing,
    then precision, then the latest publication; ties by claim id."""
    return _ranked(field_name, candidates, active, sources)[0]


def conservative(field_name, candidates, active, sources) -> Candidate:
    """The lowest figure, the least precise place, the widest date."""
    kind = field_type(field_name)
    ranked = _ranked(field_name, candidates, active, sources)
    if kind.numeric:
        return min(ranked, key=lambda c: point(c[1][0]))
    if kind is DATE:
        return max(ranked, key=lambda c: _span_days(c[0]))
    if kind is PLACE:
        return max(ranked, key=lambda c: PLACE_PRECISIONS.index(c[0]["precision"]))
    return ranked[0]


def informative(field_name, candidates, active, sources) -> Candidate:
    """The highest figure, the most precise place and date."""
    kind = field_type(field_name)
    ranked = _ranked(field_name, candidates, active, sources)
    if kind.numeric:
        return max(ranked, key=lambda c: point(c[1][0]))
    if kind is DATE:
        return min(ranked, key=lambda c: _span_days(c[0]))
    if kind is PLACE:
        return min(ranked, key=lambda c: PLACE_PRECISIONS.index(c[0]["precision"]))
    return ranked[0]


def representative(field_name, candidates, active, sources) -> Candidate:
    """The value the most sources state (the mode); ties in balanced order."""
    ranked = _ranked(field_name, candidates, active, sources)
    return max(ranked, key=lambda c: len({x.source_id for x in c[1]}))


def _span_days(span: dict[str, str]) -> int:
    earliest, latest = _days(span)
    return (latest - earliest).days


BUILT_IN_POLICIES: dict[str, Policy] = {
    "balanced": balanced,
    "conservative": conservative,
    "informative": informative,
    "representative": representative,
}


# --- the field view ------------------------------------------------------------------------------


def resolve_field(
    field_name: str,
    claims: Sequence[Claim],
    sources: Mapping[UUID, Source],
    policy: Policy = balanced,
) -> FieldView:
    """The best view of one field from every claim about it (retracted ones included)."""
    claims = sorted({c.id.int: c for c in claims}.values(), key=claim_order)  # a claim counts once
    return resolve_distinct(field_name, claims, sources, policy)


def resolve_distinct(
    field_name: str,
    claims: Sequence[Claim],
    sources: Mapping[UUID, Source],
    policy: Policy = balanced,
) -> FieldView:
    """`resolve_field` for claims already distinct and in `claim_order` (as `incident_view`
    passes them)."""
    kind = field_type(field_name)
    active = [c for c in claims if c.counts]
    withdrawn = () if len(active) == len(claims) else tuple(c.id for c in claims if not c.counts)
    if not active:
        return FieldView(field_name, None, "retracted", (), (), 0, 0.0, (), retracted=withdrawn)

    candidates = _candidates(kind, active)
    support_claims: list[Claim] = []
    dissenting: list[UUID] = []
    if kind in (TAGS, RELATION):
        best_value = _accumulate(kind, active)
        support_claims = active
    else:
        # One distinct value leaves nothing to choose: policies are asked only when there is.
        best_value, stating = candidates[0] if len(candidates) == 1 else policy(field_name, candidates, active, sources)
        for claim in active:
            if agrees(kind, claim, best_value, stating[0]):
                support_claims.append(claim)
            else:
                dissenting.append(claim.id)

    low = high = None
    qualifier = "exact"
    if kind.numeric:
        ranges = [stated_range(c) for c in active]
        low = min(r[0] for r in ranges)
        high = max(r[1] for r in ranges)
        best_number = best_value
        stated = sorted(
            {c.qualifier for c in active if point(c) == best_number}, key=lambda q: (-PRECISION_SCORE[q], q)
        )
        qualifier = stated[0] if stated and stated[0] != "range" else "exact"
        if isinstance(active[0].value, dict):  # distance: the stated value with the best km
            stating_claim = next(c for c in active if point(c) == best_value)
            best_value = {**stating_claim.value, "km": best_number}
        disagreement = round((high - low) / best_number, 4) if best_number else float(high - low)
    else:
        disagreement = round(len(dissenting) / len(active), 4)

    hedges = {c.hedge for c in support_claims if not c.generic}
    hedge = None if None in hedges or not hedges else sorted(hedges)[0]
    independent = len({sources[c.source_id].publisher for c in support_claims})
    status = _status(kind, active, support_claims, dissenting, independent, hedge)
    alternatives = tuple(
        Alternative(value, tuple(c.id for c in stating), distinct_sources(stating)) for value, stating in candidates
    )
    return FieldView(
        field_name,
        best_value,
        status,
        tuple(c.id for c in support_claims),
        tuple(dissenting),
        len({c.source_id.int for c in active}),
        disagreement,
        alternatives,
        low,
        high,
        qualifier,
        hedge,
        withdrawn,
    )


def claim_order(claim: Claim) -> int:
    """Claims in the order of their ids (a UUID's int orders as the UUID does, without a
    Python-level comparison per pair)."""
    return claim.id.int


def distinct_sources(claims: Sequence[Claim]) -> tuple[UUID, ...]:
    """The sources of `claims`, each once, in id order."""
    if len(claims) == 1:
        return (claims[0].source_id,)
    return tuple(sorted({c.source_id.int: c.source_id for c in claims}.values(), key=_uuid_int))


_uuid_int = operator.attrgetter("int")


def _candidates(kind: Any, active: Sequence[Claim]) -> list[Candidate]:
    """Distinct stated values (numbers by their point) with their claims, in a stable order."""
    if len(active) == 1:
        claim = active[0]
        return [(point(claim) if kind.numeric else claim.value, [claim])]
    groups: dict[bytes, Candidate] = {}
    for claim in active:
        value = point(claim) if kind.numeric else claim.value
        groups.setdefault(_key(value), (value, []))[1].append(claim)
    return [groups[k] for k in sorted(groups)]


def _accumulate(kind: Any, active: Sequence[Claim]) -> list[str]:
    values: set[str] = set()
    for claim in active:
        values.update(claim.value if isinstance(claim.value, list) else [claim.value])
    return sorted(values)


def _status(kind, active, support_claims, dissenting, independent, hedge) -> str:
    if any(c.rank == "preferred" for c in support_claims):
        return "confirmed"
    if dissenting and kind not in NEVER_DISPUTED:
        return "disputed"
    if independent >= 2 and hedge is None:
        return "confirmed"
    return "reported"


# --- the same rules in C ----------------------------------------------------------------------------

python_resolve_distinct, python_field_views_from_stored, python_ids_of_texts = (
    resolve_distinct,
    field_views_from_stored,
    ids_of_texts,
)
"""The references: `chronology._resolution` (C) does exactly these steps, faster."""


_accelerated = accelerated.load(
    "_resolution",
    {
        "FieldView": FieldView,
        "Alternative": Alternative,
        "field_type": field_type,
        "balanced": balanced,
        "dumps": orjson.dumps,
        "dumps_options": {"option": orjson.OPT_SORT_KEYS},
        "round": round,
        "span_days": _span_days,
        "DATE": DATE,
        "ACTOR": ACTOR,
        "PLACE": PLACE,
        "TAGS": TAGS,
        "RELATION": RELATION,
        "NEVER_DISPUTED": NEVER_DISPUTED,
        "RELIABILITY_SCORE": RELIABILITY_SCORE,
        "PRECISION_SCORE": PRECISION_SCORE,
        "PLACE_PRECISIONS": PLACE_PRECISIONS,
        "ABOUT_TOLERANCE": ABOUT_TOLERANCE,
        "claim_fields": Claim._fields,
        "date": dt.date,
        "field_view_from_stored": field_view_from_stored,
        "UuidMemo": UuidMemo,
        "UUID": UUID,
        "unknown_safety": transcoder._UNKNOWN_SAFETY,
        "uuid_from_text": transcoder.uuid_from_text,
    },
)
NATIVE = _accelerated is not None
"""Whether fields are resolved in C."""
if _accelerated is not None:
    resolve_distinct = _accelerated.resolve_distinct  # noqa: F811
    field_views_from_stored = _accelerated.field_views_from_stored  # noqa: F811
    ids_of_texts = _accelerated.ids_of_texts  # noqa: F811
