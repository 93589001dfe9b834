"""Shared fixtures. Every test that takes `store` runs twice: on a fresh SQLite file and on a
fresh PostgreSQL database ($CHRON_TEST_POSTGRES, default the local server), never on mocks."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

# Only the built-in plugins, whatever else is installed in this environment.
os.environ["CHRON_PLUGINS"] = "ical,jsonld,csv"
os.environ["CHRON_USER"] = "test-archivist"

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SEEDS = ROOT.parent / "shared" / "seeds"
POSTGRES = os.environ.get("CHRON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES, connect_timeout=3):
            return True
    except Exception:
        return False


POSTGRES_UP = _postgres_available()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> str:
    """A new, empty store: a SQLite file, or a PostgreSQL database created for this test."""
    if request.param == "sqlite":
        return str(tmp_path / "chron.db")
    return _fresh_postgres_database(request)


@pytest.fixture
def postgres_store(request) -> str:
    """A new, empty PostgreSQL database, for what only PostgreSQL has (connections to lose)."""
    return _fresh_postgres_database(request)


def _fresh_postgres_database(request) -> str:
    """A database made for this test and dropped after it; skipped when PostgreSQL is not
    reachable, except in CI, which must run both stores."""
    if not POSTGRES_UP:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES} (CI must run both stores)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES}")
    import psycopg

    name = f"chron_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from chronology.archive import Archive  # noqa: F401  (pools are closed by then)

        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    base = POSTGRES.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture
def sqlite_store(tmp_path) -> str:
    return str(tmp_path / "chron.db")


@pytest.fixture
def chron(store):
    """Run `chron --store <store> ...` in-process; returns click's Result."""
    from cli import cli

    runner = CliRunner()

    def run(*args: str, expect: int | None = 0):
        result = runner.invoke(cli, ["--store", store, *map(str, args)], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, result.output + result.stderr
        return result

    run.store = store
    return run


@pytest.fixture
def bundled(chron):
    """A store holding the bundled chronology."""
    chron("ingest", EVENTS)
    return chron


def needs_seeds():
    return pytest.mark.skipif(
        not SEEDS.is_dir(),
        reason="the seed documents live in ../shared/seeds, which a user's clone does not have",
    )


def tamper(store: str, sql: str, params: tuple) -> None:
    """Change one row of the stored view by `sql` (`{bytes}` in it: the bytes of a text
    parameter), as an edit of the database outside Chronology would."""
    from chronology.archive import Archive
    from chronology.projection import Database

    db = Database.for_archive(Archive(store))
    with db.transaction() as tx:
        as_bytes = "convert_to(?, 'UTF8')" if db.is_postgres else "CAST(? AS BLOB)"
        assert tx.execute(sql.format(bytes=as_bytes), params).rowcount == 1
    db.close()


def overwrite_stored(store: str, table: str, column: str, key_column: str, key: str, text: str) -> None:
    """Overwrite one column of one row of the stored view with the bytes of `text`."""
    tamper(store, f"UPDATE {table} SET {column} = {{bytes}} WHERE {key_column} = ?", (text, key))
