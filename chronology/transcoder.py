"""How event state becomes bytes in the log: orjson, with tagged values for exact round trips.

orjson writes UUIDs, dates and datetimes as plain strings, which would come back as strings.
Values of those types (and Decimals) are therefore wrapped as {"_type_": name, "_data_": text}
before encoding and unwrapped after decoding, the same envelope eventsourcing's JSON
transcoder uses, so a log stays readable by either. Format: docs/log-format.md.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID

import orjson

_new_object = object.__new__


def uuid_from_text(text: str) -> UUID:
    """`UUID(text)`, in under half its time for the forms a store holds (32 hex digits, or 36
    with hyphens): the same digits through the same `int(digits, 16)`, without the rest of
    `UUID.__init__`'s general parsing. Anything else goes through `UUID(text)` and its errors."""
    digits = text.replace("-", "")
    if len(digits) == 32:
        try:
            return uuid_from_int(int(digits, 16))
        except ValueError:
            pass
    return UUID(text)


def uuid_from_int(number: int) -> UUID:
    """`UUID(int=number)` for a number known to fit in 128 bits, without `UUID.__init__`."""
    value = _new_object(UUID)
    _set_int(value, number)
    _set_is_safe(value, _UNKNOWN_SAFETY)
    return value


_set_int, _set_is_safe = UUID.__dict__["int"].__set__, UUID.__dict__["is_safe"].__set__
"""A UUID's two slots, set directly (the class's own `__setattr__` refuses: UUIDs are immutable)."""
_UNKNOWN_SAFETY = SafeUUID.unknown  # an Enum member's lookup is a Python-level call each time


_ENCODERS: dict[type, tuple[str, Any]] = {
    UUID: ("uuid_hex", lambda v: v.hex),
    dt.datetime: ("datetime_iso", lambda v: v.isoformat()),
    dt.date: ("date_iso", lambda v: v.isoformat()),
    Decimal: ("decimal_str", str),
}
_DECODERS: dict[str, Any] = {
    "uuid_hex": uuid_from_text,
    "datetime_iso": dt.datetime.fromisoformat,
    "date_iso": dt.date.fromisoformat,
    "decimal_str": Decimal,
}
_PLAIN = (str, int, float, bool, type(None))


def tag(value: Any) -> Any:
    """Wrap the values orjson would flatten, recursively."""
    if isinstance(value, _PLAIN):
        return value
    kind = type(value)
    if kind is dict:
        return {k: tag(v) for k, v in value.items()}
    if kind in (list, tuple):
        return [tag(v) for v in value]
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise TypeError(f"cannot store a value of type {kind.__name__}: {value!r}")
    name, encode = encoder
    return {"_type_": name, "_data_": encode(value)}


def untag(value: Any) -> Any:
    """Undo `tag`, recursively."""
    if type(value) is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            decode = _DECODERS.get(value["_type_"])
            if decode is not None:
                return decode(value["_data_"])
        return {k: untag(v) for k, v in value.items()}
    if type(value) is list:
        return [untag(v) for v in value]
    return value


_RECENT: dict[str, dict[str, Any]] = {}
"""Recently decoded values, by kind and text. Events in one log repeat the same few: every
claim of a fact file has its transaction's timestamp and one of a few source ids. Only
immutable values (ids, dates, timestamps, decimals) are kept, so one can be shared."""
_RECENT_AT_MOST = 4096


def shared(kind: str, text: str, decode: Any) -> Any:
    """`decode(text)`, or the value decoded from the same text recently (same `kind`: the tag
    names, so that the log's events and the projection's stored claims share one cache)."""
    recent = _RECENT.get(kind)
    if recent is None:
        recent = _RECENT[kind] = {}
    value = recent.get(text)
    if value is None:
        if len(recent) >= _RECENT_AT_MOST:
            recent.clear()
        value = recent[text] = decode(text)
    return value


class UuidMemo(dict):
    """Id text -> `UUID`, each made once while the memo lives: `memo[text]`. A timeline names
    each claim id in several places (the claim, its field's supporters or dissenters, its
    alternative); a text seen before costs one dict lookup in C, so `map(memo.__getitem__,
    texts)` reads a list of ids without a Python call per id."""

    def __missing__(self, text: str) -> UUID:
        value = self[text] = uuid_from_text(text)
        return value


def decode_state(data: bytes) -> Any:
    """`untag(orjson.loads(data))`, faster for the usual event: one whose tagged values (ids,
    timestamps) are all at the top level. The bytes say how many tags there are; when the
    top level holds fewer, the general walk runs instead, so the result is always the same."""
    value = orjson.loads(data)
    expected = data.count(b'"_type_"')
    if not expected:
        return value
    if type(value) is dict:
        found = 0
        for key, item in value.items():
            if type(item) is dict and len(item) == 2 and "_type_" in item and "_data_" in item:
                name = item["_type_"]
                decode = _DECODERS.get(name)
                if decode is not None:
                    value[key] = shared(name, item["_data_"], decode)
                    found += 1
        if found == expected:
            return value
    return untag(orjson.loads(data))
