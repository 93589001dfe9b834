"""Fact files: where sourced facts enter. Reads TOML (one file per source) and JSON Lines.

Everything is validated here, before anything touches the log: a file either yields a complete,
checked `FactFile` or raises `FactFileError` naming the file, line, field, expected and found.
The format is documented in docs/fact-files.md.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from chronology.errors import FactFileError
from chronology.fields import CONTROL, HEDGES, RELIABILITY_GRADES, SLUG, FieldProblem, normalise_value

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_CLAIMS_PER_FILE = 50_000
MAX_QUOTE_WORDS = 15
MAX_QUOTE_CHARS = 400
MAX_TEXT_CHARS = 2_000

SOURCE_KEYS = {
    "id": "a slug naming the source, e.g. reuters-2020-03-12-retaliatory-strikes",
    "publisher": "who published the document",
    "title": "the document's title",
    "url": "where it was published (optional)",
    "published": "publication date or datetime",
    "published_how": "how the publication date was established",
    "author": "optional",
    "language": "ISO 639-1 code, default en",
    "reliability": "Admiralty grade A-F, default F",
    "kind": "news report, government statement, analysis, ... (optional)",
    "sha256": "sha256 of the archived text (optional)",
}
CLAIM_KEYS = {
    "incident",
    "field",
    "value",
    "qualifier",
    "said_by",
    "hedge",
    "generic",
    "credibility",
    "evidence",
    "note",
    "source",
}
EVIDENCE_KEYS = {"quote", "prefix", "suffix", "start", "end"}


@dataclass(frozen=True)
class SourceSpec:
    """A [source] table, checked: what `SourceRegistered` will carry."""

    key: str
    metadata: dict[str, Any]
    published: dt.date | dt.datetime
    line: int | None


@dataclass(frozen=True)
class ClaimSpec:
    """A [[claim]] table (or JSON line), checked: what `ClaimRecorded` will carry."""

    content: dict[str, Any]
    source_key: str
    line: int | None


@dataclass
class FactFile:
    path: str
    sources: list[SourceSpec] = field(default_factory=list)
    claims: list[ClaimSpec] = field(default_factory=list)


def read_fact_file(path: str | Path) -> FactFile:
    """Read and check one fact file (.toml or .jsonl)."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise FactFileError(name, f"cannot read file: {error.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise FactFileError(name, "file too large", expected=f"at most {MAX_FILE_BYTES} bytes", found=size)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise FactFileError(
            name,
            "file is not UTF-8",
            line=line,
            expected="UTF-8 text",
            found=raw[error.start : error.start + 4],
        ) from None
    if not text.strip():
        raise FactFileError(name, "file is empty", expected="a [source] table and claims", found="")
    if path.suffix == ".jsonl":
        return _read_jsonl(name, text)
    if path.suffix == ".toml":
        return _read_toml(name, text)
    raise FactFileError(name, "unknown file type", expected=".toml or .jsonl", found=path.suffix)


def fact_file_paths(paths: list[str | Path]) -> list[Path]:
    """The fact files named by `paths`, folders expanded, in a stable order."""
    found: list[Path] = []
    for given in paths:
        given = Path(given)
        if given.is_dir():
            found.extend(sorted(p for p in given.rglob("*") if p.suffix in (".toml", ".jsonl")))
        elif given.exists():
            found.append(given)
        else:
            raise FactFileError(str(given), "no such file or folder")
    return found


# --- TOML --------------------------------------------------------------------------------------


def _read_toml(name: str, text: str) -> FactFile:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        raise FactFileError(name, f"not valid TOML: {error}", line=int(match[1]) if match else None) from None
    lines = _TomlLines(text)
    unknown = set(document) - {"source", "claim"}
    if unknown:
        key = sorted(unknown)[0]
        raise FactFileError(
            name,
            "unknown top-level key",
            line=lines.top_level(key),
            field=key,
            expected="[source] and [[claim]] tables",
            found=key,
        )
    fact_file = FactFile(name)
    source = document.get("source")
    if isinstance(source, str):
        source_key = source  # claims added to a source registered earlier
    elif isinstance(source, dict):
        spec = _source_spec(name, source, lines.source_line, lines.key_finder(lines.source_line))
        fact_file.sources.append(spec)
        source_key = spec.key
    else:
        raise FactFileError(
            name,
            "missing [source] table",
            line=1,
            field="source",
            expected='a [source] table, or source = "<id of a registered source>"',
            found=source,
        )
    claims = document.get("claim", [])
    if not isinstance(claims, list) or not claims:
        raise FactFileError(name, "no claims", field="claim", expected="one or more [[claim]] tables", found=claims)
    if len(claims) > MAX_CLAIMS_PER_FILE:
        raise FactFileError(name, "too many claims", expected=f"at most {MAX_CLAIMS_PER_FILE}", found=len(claims))
    publisher = fact_file.sources[0].metadata["publisher"] if fact_file.sources else None
    for index, table in enumerate(claims):
        line = lines.claim_line(index)
        fact_file.claims.append(_claim_spec(name, table, source_key, publisher, line, lines.key_finder(line)))
    return fact_file


class _TomlLines:
    """Finds the line of a table or key, since tomllib does not report positions."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.claim_starts = [
            number for number, line in enumerate(self.lines, 1) if re.match(r"^\s*\[\[\s*claim\s*\]\]", line)
        ]
        self.source_line = next(
            (n for n, line in enumerate(self.lines, 1) if re.match(r"^\s*\[\s*source\s*\]", line)),
            None,
        )

    def claim_line(self, index: int) -> int | None:
        return self.claim_starts[index] if index < len(self.claim_starts) else None

    def top_level(self, key: str) -> int | None:
        return self._find(key, 1)

    def key_finder(self, table_line: int | None):
        return lambda key: self._find(key, table_line) if table_line else None

    def _find(self, key: str, start: int) -> int | None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*[=.]")
        for number in range(start, len(self.lines) + 1):
            line = self.lines[number - 1]
            if number > start and re.match(r"^\s*\[", line):
                break
            if pattern.match(line):
                return number
        return start


# --- JSON Lines --------------------------------------------------------------------------------


def _read_jsonl(name: str, text: str) -> FactFile:
    """One object a line: {"source": {...}} registers a source, any other object is a claim
    whose "source" names a source registered in this file or earlier."""
    fact_file = FactFile(name)
    publishers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise FactFileError(name, f"not valid JSON: {error}", line=number) from None
        if not isinstance(record, dict):
            raise FactFileError(name, "wrong type", line=number, expected="a JSON object", found=record)
        if set(record) == {"source"} and isinstance(record["source"], dict):
            spec = _source_spec(name, record["source"], number, lambda _key, n=number: n)
            fact_file.sources.append(spec)
            publishers[spec.key] = spec.metadata["publisher"]
            continue
        source_key = record.get("source")
        if not isinstance(source_key, str):
            raise FactFileError(
                name,
                "claim names no source",
                line=number,
                field="source",
                expected="the id of a source",
                found=source_key,
            )
        if len(fact_file.claims) >= MAX_CLAIMS_PER_FILE:
            raise FactFileError(
                name,
                "too many claims",
                line=number,
                expected=f"at most {MAX_CLAIMS_PER_FILE}",
                found=len(fact_file.claims) + 1,
            )
        fact_file.claims.append(
            _claim_spec(
                name,
                record,
                source_key,
                publishers.get(source_key),
                number,
                lambda _key, n=number: n,
            )
        )
    if not fact_file.claims and not fact_file.sources:
        raise FactFileError(name, "file is empty", expected="sources and claims", found="")
    return fact_file


# --- checking one table ------------------------------------------------------------------------


def _source_spec(name: str, table: dict[str, Any], line: int | None, line_of) -> SourceSpec:
    def problem(key: str, message: str, expected: str, found: object) -> FactFileError:
        return FactFileError(
            name,
            message,
            line=line_of(key) or line,
            field=f"source.{key}",
            expected=expected,
            found=found,
        )

    unknown = set(table) - set(SOURCE_KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise problem(key, "unknown key", "one of " + ", ".join(SOURCE_KEYS), key)
    for key in ("id", "publisher", "title", "published"):
        if key not in table:
            raise problem(key, "missing key", SOURCE_KEYS[key], None)
    key = table["id"]
    if not isinstance(key, str) or not SLUG.match(key):
        raise problem("id", "bad source id", "lowercase-words-with-hyphens", key)
    published = table["published"]
    if isinstance(published, str):
        try:
            published = dt.date.fromisoformat(published)
        except ValueError:
            try:
                published = dt.datetime.fromisoformat(published)
            except ValueError:
                raise problem("published", "date does not parse", "YYYY-MM-DD", published) from None
    if not isinstance(published, (dt.date, dt.datetime)) or isinstance(published, dt.time):
        raise problem("published", "wrong type", "a date or datetime", published)
    if isinstance(published, dt.datetime) and published.tzinfo is None:
        raise problem("published", "datetime without a time zone", "e.g. 2020-03-12T14:00:00Z", published)
    metadata: dict[str, Any] = {}
    for text_key in ("publisher", "title", "url", "published_how", "author", "kind", "sha256"):
        if text_key in table:
            value = table[text_key]
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_CHARS:
                raise problem(text_key, "wrong type", "a non-empty string", value)
            found = CONTROL.search(value)
            if found:
                raise problem(text_key, "control character in text", "printable text", f"U+{ord(found[0]):04X}")
            metadata[text_key] = value.strip()
    if "sha256" in metadata and not re.fullmatch(r"[0-9a-f]{64}", metadata["sha256"]):
        raise problem("sha256", "bad digest", "64 lowercase hex digits", metadata["sha256"])
    language = table.get("language", "en")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language):
        raise problem("language", "bad language code", "ISO 639 code such as en", language)
    metadata["language"] = language
    reliability = table.get("reliability", "F")
    if reliability not in RELIABILITY_GRADES:
        raise problem("reliability", "bad reliability grade", "one of A B C D E F", reliability)
    metadata["reliability"] = reliability
    return SourceSpec(key=key, metadata=metadata, published=published, line=line)


def _claim_spec(name: str, table: Any, source_key: str, publisher: str | None, line: int | None, line_of) -> ClaimSpec:
    def problem(key: str, message: str, expected: str | None = None, found: object = None):
        return FactFileError(
            name,
            message,
            line=line_of(key.split(".")[0]) or line,
            field=key,
            expected=expected,
            found=found,
        )

    if not isinstance(table, dict):
        raise FactFileError(name, "wrong type", line=line, expected="a claim table", found=table)
    unknown = set(table) - CLAIM_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise problem(key, "unknown key in claim", "one of " + ", ".join(sorted(CLAIM_KEYS)), key)
    for key in ("incident", "field", "value", "evidence"):
        if key not in table:
            raise problem(key, "missing key", "a value", None)
    incident = table["incident"]
    if not isinstance(incident, str) or not SLUG.match(incident):
        raise problem("incident", "bad incident slug", "lowercase-words-with-hyphens", incident)
    field_name = table["field"]
    if not isinstance(field_name, str):
        raise problem("field", "wrong type", "a field name", field_name)
    qualifier = table.get("qualifier", "exact")
    try:
        value = normalise_value(field_name, table["value"], qualifier)
    except FieldProblem as error:
        where = "qualifier" if "qualifier" in error.message else "value"
        if "unknown field" in error.message or "group" in error.message:
            where = "field"
        raise problem(where, error.message, error.expected, error.found) from None
    content: dict[str, Any] = {
        "incident": incident,
        "field": field_name,
        "value": value,
        "qualifier": qualifier,
    }
    said_by = table.get("said_by", publisher)
    if said_by is not None:
        if not isinstance(said_by, str) or not said_by.strip() or len(said_by) > MAX_TEXT_CHARS:
            raise problem(
                "said_by", "wrong type", f"a non-empty string of at most {MAX_TEXT_CHARS} characters", said_by
            )
        _printable("said_by", said_by, problem)
        content["said_by"] = " ".join(said_by.split())
    hedge = table.get("hedge")
    if hedge is not None:
        if hedge not in HEDGES:
            raise problem("hedge", "unknown hedge", "one of " + ", ".join(HEDGES), hedge)
        content["hedge"] = hedge
    generic = table.get("generic", False)
    if not isinstance(generic, bool):
        raise problem("generic", "wrong type", "true or false", generic)
    if generic:
        content["generic"] = True
    credibility = table.get("credibility")
    if credibility is not None:
        if isinstance(credibility, bool) or credibility not in range(1, 7):
            raise problem("credibility", "bad credibility", "an integer 1-6", credibility)
        content["credibility"] = credibility
    content["evidence"] = _evidence(table["evidence"], problem)
    note = table.get("note")
    if note is not None:
        if not isinstance(note, str) or len(note) > MAX_TEXT_CHARS:
            raise problem("note", "wrong type", f"a string of at most {MAX_TEXT_CHARS} characters", note)
        _printable("note", note, problem)
        content["note"] = note.strip()
    return ClaimSpec(content=content, source_key=source_key, line=line)


def _printable(key: str, text: str, problem) -> None:
    found = CONTROL.search(text)
    if found:
        raise problem(key, "control character in text", "printable text", f"U+{ord(found[0]):04X}")


def _evidence(raw: Any, problem) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"quote": raw}
    if not isinstance(raw, dict) or "quote" not in raw:
        raise problem("evidence", "bad evidence", "a quote or {quote = ..., prefix, suffix, start, end}", raw)
    unknown = set(raw) - EVIDENCE_KEYS
    if unknown:
        raise problem("evidence", "unknown key in evidence", ", ".join(sorted(EVIDENCE_KEYS)), sorted(unknown))
    quote = raw["quote"]
    if not isinstance(quote, str) or not quote.strip():
        raise problem("evidence.quote", "wrong type", "a non-empty string", quote)
    _printable("evidence.quote", quote, problem)
    if len(quote) > MAX_QUOTE_CHARS:
        raise problem("evidence.quote", "quote too long", f"at most {MAX_QUOTE_CHARS} characters", len(quote))
    words = len(quote.split())
    if words > MAX_QUOTE_WORDS:
        raise problem("evidence.quote", "quote too long", f"at most {MAX_QUOTE_WORDS} words", f"{words} words")
    evidence: dict[str, Any] = {"quote": quote}
    for key in ("prefix", "suffix"):
        if key in raw:
            if not isinstance(raw[key], str) or len(raw[key]) > 200:
                raise problem(f"evidence.{key}", "wrong type", "a string of at most 200 characters", raw[key])
            _printable(f"evidence.{key}", raw[key], problem)
            evidence[key] = raw[key]
    for key in ("start", "end"):
        if key in raw:
            if isinstance(raw[key], bool) or not isinstance(raw[key], int) or raw[key] < 0:
                raise problem(f"evidence.{key}", "wrong type", "a character offset >= 0", raw[key])
            evidence[key] = raw[key]
    return evidence
