"""Error types. Raised where bad input enters; the CLI turns each into one line and exit 1."""

from __future__ import annotations


class ChronologyError(Exception):
    """Base class of every error the product reports to a user."""


class FactFileError(ChronologyError):
    """A fact file is malformed: names the file, line, field, what was expected and found."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        found: object = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.expected = expected
        self.found = found
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        parts = [where]
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        text = ": ".join(parts)
        if self.expected is not None:
            text += f" (expected {self.expected}, found {_show(self.found)})"
        return text


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class UnknownReference(ChronologyError):
    """A command names a claim, source or incident the archive does not hold."""


class InvalidCorrection(ChronologyError):
    """A correction that would make the archive inconsistent (self-merge, merge cycle, ...)."""


class StoreError(ChronologyError):
    """The store cannot be opened or does not hold what was expected."""


class DamagedView(StoreError):
    """A row of the stored view (the `chron_*` tables, derived from the log) cannot be read:
    names the table and row; `chron replay --rebuild` derives the view from the log again."""

    def __init__(self, table: str, key: str, error: BaseException) -> None:
        super().__init__(
            f"the stored view cannot be read: {table} row {key!r} is damaged"
            f" ({type(error).__name__}: {error}). It is derived from the log, which is not affected:"
            " run `chron replay --rebuild` to derive it again"
        )


class PluginError(ChronologyError):
    """A plugin failed to load or raised; names the plugin."""


class BadExportOption(ChronologyError):
    """An exporter option has a value the exporter cannot use (raised by exporters)."""


class OutputError(ChronologyError):
    """A command's output could not be written (a full disk, a missing folder, no permission)."""


class ServeError(ChronologyError):
    """`chron serve` cannot listen where it was asked to (the port is in use, the address is
    not this machine's)."""


class LogImportError(ChronologyError):
    """A `chron log export` file that cannot be imported; names the line."""


class LogIntegrityError(ChronologyError):
    """The log's digest chain does not match; names the first bad position."""


def store_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from) says the store could not be used just now,
    rather than that something is wrong with the request: a PostgreSQL connection dropped or
    refused (psycopg's and eventsourcing's operational and interface errors, which also wrap
    SQLite's), or a SQLite store another process kept locked for longer than the wait. The
    feed server connects again on such an error; the CLI says so in one line."""
    import sqlite3
    import sys

    from eventsourcing.persistence import InterfaceError, OperationalError

    kinds: tuple[type, ...] = (OperationalError, InterfaceError)
    psycopg = sys.modules.get("psycopg")  # not imported: not a PostgreSQL store (it costs ~30 MB)
    if psycopg is not None:
        kinds += (psycopg.OperationalError, psycopg.InterfaceError)
    while error is not None:
        if isinstance(error, kinds) or isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            return True
        error = error.__cause__
    return False
