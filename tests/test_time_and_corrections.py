"""Corrections are new events; the three clocks show the archive at any point in its history."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.conftest import EVENTS

TAJI = "2020-03-11-camp-taji-rocket-attack"


def views(chron, *args):
    return {v["slug"]: v for v in json.loads(chron("replay", "--json", *args).stdout)}


def field(view, name):
    return next((f for f in view["fields"] if f["field"] == name), None)


def claim_stating(chron, slug, name, value):
    shown = json.loads(chron("show", slug, "--json").stdout)
    return next(c["id"] for c in shown["claims"] if c["field"] == name and c["value"] == value)


# --- publication time ------------------------------------------------------------------------


def test_known_at_the_day_of_the_attack_shows_nothing_published_later(bundled):
    assert views(bundled, "--known-at", "2020-03-11") == {}
    assert "0 incidents" in bundled("replay", "--known-at", "2020-03-11").stdout


def test_february_2021_incidents_appear_only_once_their_source_is_published(bundled):
    before = views(bundled, "--known-at", "2021-02-25")
    after = views(bundled, "--known-at", "2021-02-26")
    assert TAJI in before and "2021-02-15-irbil-airport-rocket-attack" not in before
    assert "2021-02-15-irbil-airport-rocket-attack" in after
    assert "2021-02-us-airstrikes-in-eastern-syria" in after


def test_known_at_uses_only_claims_public_by_then(bundled):
    kirkuk = views(bundled, "--known-at", "2020-03-12")["2019-12-27-kirkuk-rocket-attack-kills-us-contractor"]
    assert field(kirkuk, "location") is None  # only the 2021 report names Kirkuk
    assert field(kirkuk, "perpetrator")["best"] == "Kataib Hezbollah"


def test_known_at_rebuilds_only_the_views_of_incidents_citing_a_later_source(bundled, monkeypatch):
    """Every other view already is what was public on the day: it is kept, not rebuilt."""
    from chronology import scratch
    from chronology.archive import Archive
    from chronology.replay import load_timeline

    day = dt.date(2021, 2, 25)
    now = load_timeline(Archive(bundled.store))
    later = {
        view.slug
        for view in now.incidents
        if any(now.sources[now.claims[c].source_id].published_day > day for c in view.claims)
    }
    assert later and len(later) < len(now.incidents)
    rebuilt = []
    view_known_at = scratch.view_known_at

    def noting(state, slug, *args):
        rebuilt.append(slug)
        return view_known_at(state, slug, *args)

    monkeypatch.setattr(scratch, "view_known_at", noting)
    then = views(bundled, "--known-at", day.isoformat())
    assert sorted(rebuilt) == sorted(later)
    assert TAJI in then and TAJI not in later  # kept as it is: every one of its claims was public


# --- retraction, ranking and transaction time -------------------------------------------------


def test_retraction_changes_the_best_view_and_history_shows_when(bundled):
    before = field(views(bundled)[TAJI], "munitions_launched")
    assert before["best"] == 18 and before["status"] == "disputed"
    time.sleep(0.01)
    cut = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(0.01)
    reuters_18 = claim_stating(bundled, TAJI, "munitions_launched", 18)
    bundled("retract", reuters_18, "--reason", "mis-coded: 18 is the number that hit")
    after = field(views(bundled)[TAJI], "munitions_launched")
    assert after["best"] == 30 and after["status"] == "reported"
    assert after["retracted"] == [reuters_18]

    history = json.loads(bundled("history", TAJI, "munitions_launched", "--json").stdout)
    assert [h["best"] for h in history] == [18, 18, 30]
    assert history[-1]["recorded_at"] > cut

    old = field(views(bundled, "--as-of", cut)[TAJI], "munitions_launched")
    assert old["best"] == 18 and old["status"] == "disputed"

    shown = json.loads(bundled("show", TAJI, "--as-of", cut, "--json").stdout)
    assert shown["incident"] == views(bundled, "--as-of", cut)[TAJI]
    assert reuters_18 in {c["id"] for c in shown["claims"]} and not any(c["retracted"] for c in shown["claims"])


def test_show_as_known_on_a_day_is_that_days_view_with_only_the_claims_public_then(bundled):
    kirkuk = "2019-12-27-kirkuk-rocket-attack-kills-us-contractor"
    shown = json.loads(bundled("show", kirkuk, "--known-at", "2020-03-12", "--json").stdout)
    assert shown["incident"] == views(bundled, "--known-at", "2020-03-12")[kirkuk]
    published = {s["id"]: s["published"] for s in shown["sources"]}
    assert shown["claims"] and all(published[c["source_id"]] <= "2020-03-12" for c in shown["claims"])
    later = bundled("show", TAJI, "--known-at", "2020-03-11", expect=1)
    assert f"unknown incident '{TAJI}' as known on 2020-03-11" in later.stderr


def test_a_retracted_claim_stays_in_the_log(bundled):
    count = len(json.loads(bundled("log", "--json").stdout))
    claim = claim_stating(bundled, TAJI, "munitions_launched", 18)
    bundled("retract", claim, "--reason", "test")
    log = json.loads(bundled("log", "--json").stdout)
    assert len(log) == count + 1 and log[-1]["type"] == "chronology:Claim.Retracted"
    assert claim in {e["originator_id"] for e in log[:-1]}


def test_retracting_then_recording_again_keeps_the_retraction(bundled):
    claim = claim_stating(bundled, TAJI, "munitions_launched", 18)
    bundled("retract", claim, "--reason", "mis-coded")
    retracted_view = views(bundled)[TAJI]
    assert "0 event(s) appended" in bundled("ingest", EVENTS).stdout
    assert views(bundled)[TAJI] == retracted_view
    bundled("retract", claim, "--reason", "again", expect=1)


def test_deprecating_a_claim_removes_it_and_preferring_one_confirms_it(bundled):
    dod_30 = claim_stating(bundled, TAJI, "munitions_launched", 30)
    bundled("rank", dod_30, "preferred", "--reason", "CENTCOM later confirmed about thirty")
    launched = field(views(bundled)[TAJI], "munitions_launched")
    assert launched["best"] == 30 and launched["status"] == "confirmed"
    bundled("rank", dod_30, "deprecated", "--reason", "superseded")
    launched = field(views(bundled)[TAJI], "munitions_launched")
    assert launched["best"] == 18 and launched["status"] == "reported"
    history = json.loads(bundled("history", TAJI, "munitions_launched", "--json").stdout)
    assert [h["best"] for h in history][-2:] == [30, 18]


def test_history_by_publication_orders_changes_by_source_date(bundled):
    history = json.loads(
        bundled(
            "history",
            "2019-12-27-kirkuk-rocket-attack-kills-us-contractor",
            "location",
            "--by",
            "publication",
            "--json",
        ).stdout
    )
    assert [h["published"] for h in history] == ["2021-02-26"]
    whole = json.loads(bundled("history", TAJI, "--json", "--by", "publication").stdout)
    assert {h["published"] for h in whole} == {"2020-03-12"}


def test_grading_a_source_changes_which_figure_is_best(bundled):
    assert field(views(bundled)[TAJI], "distance")["best"]["km"] == 27
    bundled("grade", "consultancy-2020-03-12-al-taji-strike-brief", "A", "--reason", "vetted")
    bundled(
        "grade",
        "al-monitor-2020-03-12-iran-backed-groups-likely-behind-attack",
        "C",
        "--reason",
        "secondary reporting",
    )
    assert field(views(bundled)[TAJI], "distance")["best"]["km"] == 35


def test_merge_makes_the_old_slug_an_alias_and_counts_its_claims(bundled, tmp_path):
    (tmp_path / "dup.toml").write_text(
        '[source]\nid = "wire"\npublisher = "Wire"\ntitle = "T"\npublished = 2020-03-13\n'
        'reliability = "C"\n\n[[claim]]\nincident = "2020-03-11-taji-attack"\nfield = "killed"\n'
        'value = 3\nevidence = "three killed"\n',
        encoding="utf-8",
    )
    bundled("ingest", tmp_path / "dup.toml")
    assert "2020-03-11-taji-attack" in views(bundled)
    bundled("merge", "2020-03-11-taji-attack", TAJI, "--reason", "same attack")
    merged = views(bundled)
    assert "2020-03-11-taji-attack" not in merged
    assert merged[TAJI]["aliases"] == ["2020-03-11-taji-attack"]
    assert field(merged[TAJI], "killed")["number_of_sources"] == 5
    assert json.loads(bundled("show", "2020-03-11-taji-attack", "--json").stdout)["incident"]["slug"] == TAJI


def test_link_relates_incidents(bundled):
    bundled(
        "link",
        "2020-03-albukamal-airstrikes",
        "part_of",
        "2020-03-12-us-retaliatory-strikes-in-iraq",
        "--reason",
        "same operation",
    )
    albukamal = views(bundled)["2020-03-albukamal-airstrikes"]
    assert ["part_of", "2020-03-12-us-retaliatory-strikes-in-iraq"] in albukamal["links"]


def test_replay_after_corrections_is_byte_identical_to_a_full_replay(bundled):
    bundled("retract", claim_stating(bundled, TAJI, "munitions_hit", 10), "--reason", "caption")
    bundled(
        "merge",
        "2020-03-12-us-retaliatory-strikes-in-iraq",
        "2020-03-albukamal-airstrikes",
        "--reason",
        "test",
    )
    assert "byte-identical" in bundled("replay", "--verify").stderr


# --- bad references append nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (("retract", "6f1f1f1f-0000-5000-8000-000000000000", "--reason", "x"), "unknown claim"),
        (("retract", "not-a-uuid", "--reason", "x"), "is not a claim id"),
        (("rank", "6f1f1f1f-0000-5000-8000-000000000000", "preferred", "--reason", "x"), "unknown claim"),
        (("grade", "no-such-source", "A", "--reason", "x"), "unknown source 'no-such-source'"),
        (("merge", "no-such-incident", TAJI, "--reason", "x"), "unknown incident 'no-such-incident'"),
        (("merge", TAJI, TAJI, "--reason", "x"), "into itself"),
        (("link", TAJI, "follows", "no-such-incident"), "unknown incident 'no-such-incident'"),
        (("retract", "{claim}", "--reason", "   "), "needs a reason"),
    ],
)
def test_bad_references_are_clear_errors_and_append_nothing(bundled, args, message):
    count = len(json.loads(bundled("log", "--json").stdout))
    claim = claim_stating(bundled, TAJI, "killed", 3)
    result = bundled(*[a.replace("{claim}", claim) for a in args], expect=1)
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert len(json.loads(bundled("log", "--json").stdout)) == count


def test_a_cycle_of_merges_is_refused(bundled):
    a, b = "2020-03-albukamal-airstrikes", "2020-03-12-us-retaliatory-strikes-in-iraq"
    bundled("merge", a, b, "--reason", "same")
    assert "already merged" in bundled("merge", a, TAJI, "--reason", "x", expect=1).stderr
    result = bundled("merge", b, a, "--reason", "back", expect=1)
    assert "cycle" in result.stderr


def test_a_states_index_of_merges_and_links_answers_as_scanning_them_does(tmp_path):
    """`aliases_of` and `links_of` come from an index by surviving slug (a rebuild asks for
    every incident); it must follow chains of merges and every merge or link made after it."""
    from chronology.projection import Database, TableState
    from chronology.records import Link
    from chronology.state import MemoryState, follow_aliases

    def scanned(state, slug):
        canonical = lambda name: follow_aliases(state.aliases, name)  # noqa: E731
        aliases = sorted(old for old in state.aliases if old != slug and canonical(old) == slug)
        links = [
            Link(slug, x.relation, canonical(x.other), x.position) for x in state.links if canonical(x.incident) == slug
        ]
        return aliases, links

    database = Database.scratch(tmp_path / "scratch.db")
    database.create_tables()
    with database.transaction() as tx:
        for state in (MemoryState(), TableState(tx)):
            slugs = ["a", "b", "c", "d", "e"]
            steps = [
                ("link", Link("a", "responds_to", "d", 1)),
                ("merge", ("a", "b")),
                ("link", Link("b", "follows", "a", 2)),
                ("merge", ("b", "c")),
                ("link", Link("e", "part_of", "a", 3)),
                ("merge", ("d", "e")),
            ]
            for kind, step in steps:
                state.add_link(step) if kind == "link" else state.add_alias(*step)
                for slug in slugs:  # asked after every change: the index must not be stale
                    assert (state.aliases_of(slug), state.links_of(slug)) == scanned(state, slug)
            assert state.aliases_of("c") == ["a", "b"]
            assert [(x.relation, x.other) for x in state.links_of("c")] == [("responds_to", "e"), ("follows", "c")]
            assert [(x.relation, x.other) for x in state.links_of("e")] == [("part_of", "c")]
    database.close()
