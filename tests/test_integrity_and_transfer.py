"""A tamper-evident log that moves between stores without losing a byte."""

from __future__ import annotations

import json

from tests.conftest import EVENTS


def tamper(store: str, position: int) -> None:
    """Change one stored event's bytes directly in the database, behind Chronology's back."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as connection:
            changed = connection.execute(
                "UPDATE chronology_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
                " 'recorded_by', 'recorded_bY'), 'UTF8') WHERE notification_id = %s",
                (position,),
            ).rowcount
    else:
        import sqlite3

        with sqlite3.connect(store) as connection:
            changed = connection.execute(
                "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'recorded_by', 'recorded_bY')"
                " AS BLOB) WHERE rowid = ?",
                (position,),
            ).rowcount
    assert changed == 1


def test_an_untouched_log_verifies(bundled):
    result = bundled("log", "verify")
    assert result.stdout.startswith("verified 181 events; head 181:")


def test_editing_one_stored_event_makes_verify_fail_and_name_it(bundled):
    positions = [e["position"] for e in json.loads(bundled("log", "--json").stdout)]
    target = positions[57]
    tamper(bundled.store, target)
    result = bundled("log", "verify", expect=1)
    assert f"log verification failed at position {target} (event 58)" in result.stderr


def test_a_checkpoint_proves_the_log_still_extends_it(bundled, tmp_path):
    published = bundled("log", "checkpoint").stdout.strip()
    assert published.startswith("181:")
    (tmp_path / "later.toml").write_text(
        'source = "reuters-2020-03-12-us-retaliatory-strikes"\n\n[[claim]]\n'
        'incident = "2020-03-11-camp-taji-rocket-attack"\nfield = "x-note"\nvalue = "later"\nevidence = "x"\n',
        encoding="utf-8",
    )
    bundled("ingest", tmp_path / "later.toml")
    assert "extends checkpoint" in bundled("log", "verify", "--against", published).stdout
    assert bundled("log", "checkpoint").stdout.startswith("182:")
    forged = published[:-1] + ("0" if published[-1] != "0" else "1")
    assert "does not extend checkpoint" in bundled("log", "verify", "--against", forged, expect=1).stderr
    assert "not a checkpoint" in bundled("log", "verify", "--against", "nonsense", expect=1).stderr


def test_deleting_an_event_is_detected(bundled):
    import sqlite3

    if bundled.store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(bundled.store, autocommit=True) as connection:
            connection.execute("DELETE FROM chronology_events WHERE notification_id = 9")
    else:
        with sqlite3.connect(bundled.store) as connection:
            connection.execute("DELETE FROM stored_events WHERE rowid = 9")
    result = bundled("log", "verify", expect=1)
    assert "log verification failed at position" in result.stderr


def other_store(store: str, tmp_path, request) -> str:
    """A fresh store of the other kind than `store`."""
    if store.startswith("postgresql://"):
        return str(tmp_path / "other.db")
    from tests.conftest import _fresh_postgres_database

    return _fresh_postgres_database(request)


def chron_on(store: str, *args) -> str:
    """What `chron --store STORE ARGS...` prints, run in this process; it must succeed."""
    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["--store", store, *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def rechained(header: str, records: list[dict]) -> str:
    """An export file of `records`, their indexes and chain links made again in this order (as
    anyone can, from the format's documentation), with its header line and a matching end line."""
    from uuid import UUID

    from chronology.integrity import GENESIS, next_link

    link = GENESIS
    for index, record in enumerate(records, 1):
        link = next_link(
            link, UUID(record["originator_id"]), record["originator_version"], record["topic"], record["state"].encode()
        )
        record["index"], record["link"] = index, link
    end = {"end": {"events": len(records), "link": link}}
    return "\n".join([header, *map(json.dumps, records), json.dumps(end)]) + "\n"


def test_sqlite_postgres_sqlite_round_trip_keeps_replay_and_chain_identical(bundled, tmp_path, request):
    replay = chron_on(bundled.store, "replay", "--json")
    text = chron_on(bundled.store, "replay")
    head = chron_on(bundled.store, "log", "checkpoint")
    middle = other_store(bundled.store, tmp_path, request)
    chron_on(bundled.store, "log", "export", "-o", tmp_path / "one.jsonl")
    assert chron_on(middle, "log", "import", tmp_path / "one.jsonl") == "imported 181 events\n"
    assert chron_on(middle, "replay", "--json") == replay
    chron_on(middle, "log", "export", "-o", tmp_path / "two.jsonl")
    last = str(tmp_path / "last.db") if not middle.endswith(".db") else other_store(middle, tmp_path, request)
    chron_on(last, "log", "import", tmp_path / "two.jsonl")
    assert chron_on(last, "replay", "--json") == replay
    assert chron_on(last, "replay") == text
    assert chron_on(last, "log", "checkpoint") == chron_on(middle, "log", "checkpoint") == head
    assert "verified 181 events" in chron_on(last, "log", "verify")
    assert [e["topic"] if "topic" in e else None for e in map(json.loads, open(tmp_path / "one.jsonl"))][1:3] == [
        "chronology:Source.Registered",
        "chronology:Claim.Recorded",
    ]


def test_import_refuses_a_store_that_is_not_empty(bundled, tmp_path):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    result = bundled("log", "import", tmp_path / "log.jsonl", expect=1)
    assert "is not empty" in result.stderr


def test_a_changed_export_file_is_refused_and_nothing_is_written(bundled, tmp_path, request):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert "recorded_by" in lines[100]
    lines[100] = lines[100].replace("recorded_by", "recorded_bY")
    (tmp_path / "changed.jsonl").write_text("\n".join(lines) + "\n")
    target = other_store(bundled.store, tmp_path, request)
    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["--store", target, "log", "import", str(tmp_path / "changed.jsonl")])
    assert result.exit_code == 1
    assert "changed.jsonl:101: the chain breaks at event 100" in result.stderr
    empty = CliRunner().invoke(cli, ["--store", target, "log", "--json"])
    assert json.loads(empty.stdout) == []


def test_a_failed_import_leaves_no_store_it_made_and_keeps_one_that_was_there(bundled, tmp_path):
    from click.testing import CliRunner

    from cli import cli

    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:120]) + "\n")  # fails after the header is read
    (tmp_path / "stores").mkdir()
    made = tmp_path / "stores" / "new.db"
    result = CliRunner().invoke(cli, ["--store", str(made), "log", "import", str(tmp_path / "cut.jsonl")])
    assert result.exit_code == 1 and "it was cut short" in result.stderr
    assert list((tmp_path / "stores").iterdir()) == []  # no store, no -wal or -shm beside it

    there = tmp_path / "stores" / "there.db"
    assert CliRunner().invoke(cli, ["--store", str(there), "log", "--json"]).stdout.strip() == "[]"
    result = CliRunner().invoke(cli, ["--store", str(there), "log", "import", str(tmp_path / "cut.jsonl")])
    assert result.exit_code == 1 and there.exists()  # an empty store the user made stays
    assert CliRunner().invoke(cli, ["--store", str(there), "log", "import", str(tmp_path / "log.jsonl")]).exit_code == 0


def _import_into_other(bundled, tmp_path, request, path):
    from click.testing import CliRunner

    from cli import cli

    target = other_store(bundled.store, tmp_path, request)
    result = CliRunner().invoke(cli, ["--store", target, "log", "import", str(path)])
    events = json.loads(CliRunner().invoke(cli, ["--store", target, "log", "--json"]).stdout)
    return result, events


def test_an_export_cut_at_a_line_boundary_is_refused_and_nothing_is_written(bundled, tmp_path, request):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["end"]["events"] == 181 == len(lines) - 2
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:120]) + "\n")
    result, events = _import_into_other(bundled, tmp_path, request, tmp_path / "cut.jsonl")
    assert result.exit_code == 1
    assert "cut.jsonl: the file ends after event 119 without its end line: it was cut short" in result.stderr
    assert events == []


def test_an_end_line_that_disagrees_or_is_followed_is_refused(bundled, tmp_path, request):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join([*lines[:120], lines[-1]]) + "\n")
    result, events = _import_into_other(bundled, tmp_path, request, tmp_path / "short.jsonl")
    assert result.exit_code == 1
    assert "short.jsonl:121: the end line says 181 events with head" in result.stderr
    assert "the file holds 119 with head" in result.stderr
    (tmp_path / "more.jsonl").write_text("\n".join([*lines, lines[5]]) + "\n")
    result, events = _import_into_other(bundled, tmp_path, request, tmp_path / "more.jsonl")
    assert "more.jsonl:184: a line after the end line (line 183)" in result.stderr
    assert result.exit_code == 1 and events == []


def test_a_repeated_event_is_refused_by_its_version_even_with_a_consistent_chain(bundled, tmp_path, request):
    """A file whose chain was recomputed around a copied event: the chain holds, the versions
    do not (each originator's run 1, 2, 3, ...); nothing is written."""
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines[1:-1]]
    records.insert(150, dict(records[20]))
    (tmp_path / "forged.jsonl").write_text(rechained(lines[0], records))
    result, events = _import_into_other(bundled, tmp_path, request, tmp_path / "forged.jsonl")
    assert result.exit_code == 1
    expected_version = records[20]["originator_version"] + 1
    assert (
        f"forged.jsonl:152: event 151 is version {records[20]['originator_version']} of {records[20]['originator_id']},"
        f" expected version {expected_version}" in result.stderr
    )
    assert events == []


def test_a_version_1_export_without_an_end_line_still_imports(bundled, tmp_path, request):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "chronology-log", "version": 2}
    old = [json.dumps({"format": "chronology-log", "version": 1}), *lines[1:-1]]
    (tmp_path / "v1.jsonl").write_text("\n".join(old) + "\n")
    result, events = _import_into_other(bundled, tmp_path, request, tmp_path / "v1.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 181 events\n"
    assert len(events) == 181


def test_export_to_a_file_leaves_no_partial_file_behind(bundled, tmp_path):
    bundled("log", "export", "-o", tmp_path / "log.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("log")) == ["log.jsonl"]


def test_refusing_a_store_that_is_not_empty_never_prints_its_password(postgres_store, tmp_path):
    from click.testing import CliRunner

    from cli import cli

    store = postgres_store.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    runner = CliRunner()
    assert runner.invoke(cli, ["--store", store, "ingest", str(EVENTS)]).exit_code == 0
    assert runner.invoke(cli, ["--store", store, "log", "export", "-o", str(tmp_path / "log.jsonl")]).exit_code == 0
    result = runner.invoke(cli, ["--store", store, "log", "import", str(tmp_path / "log.jsonl")])
    assert result.exit_code == 1
    assert "postgres:***@" in result.stderr and "is not empty" in result.stderr
    assert "s3cret" not in result.stderr
