"""The best view of the bundled chronology: what the sources agree on, and where they do not."""

from __future__ import annotations

import json

import orjson
import pytest

from tests.conftest import overwrite_stored, tamper

TAJI = "2020-03-11-camp-taji-rocket-attack"


@pytest.fixture
def taji(bundled):
    shown = json.loads(bundled("show", TAJI, "--json").stdout)
    fields = {f["field"]: f for f in shown["incident"]["fields"]}
    claims = {c["id"]: c for c in shown["claims"]}
    sources = {s["id"]: s for s in shown["sources"]}
    return fields, claims, sources, shown


def publishers(field, claims, sources, ids):
    return {sources[claims[i]["source_id"]]["publisher"] for i in ids}


def test_camp_taji_deaths_are_confirmed_two_us_one_uk(taji):
    fields, claims, sources, _ = taji
    assert fields["killed"]["best"] == 3 and fields["killed"]["status"] == "confirmed"
    assert fields["killed.us_military"]["best"] == 2
    assert fields["killed.uk_military"]["best"] == 1
    assert publishers(fields["killed"], claims, sources, fields["killed"]["supporting"]) == {
        "Al-Monitor",
        "Reuters",
        "U.S. Department of Defense",
        "Unnamed security-risk consultancy",
    }


def test_camp_taji_wounded_is_fourteen(taji):
    fields, *_ = taji
    assert fields["wounded"]["best"] == 14
    assert fields["wounded"]["status"] == "confirmed"
    assert fields["wounded"]["low"] == 12  # "at least a dozen" is consistent with 14


def test_camp_taji_rockets_launched_are_disputed_between_about_30_and_18(taji):
    fields, claims, sources, _ = taji
    launched = fields["munitions_launched"]
    assert launched["status"] == "disputed"
    assert (launched["low"], launched["high"]) == (18, 30)
    stated = {
        (claims[c]["value"], claims[c]["qualifier"], sources[claims[c]["source_id"]]["publisher"])
        for alternative in launched["alternatives"]
        for c in alternative["claims"]
    }
    assert stated == {(18, "exact", "Reuters"), (30, "about", "U.S. Department of Defense")}
    assert launched["disagreement"] > 0


def test_camp_taji_rockets_that_hit_range_from_ten_to_eighteen(taji):
    fields, claims, *_ = taji
    hit = fields["munitions_hit"]
    assert (hit["low"], hit["high"]) == (10, 18)
    assert hit["status"] == "disputed"
    qualifiers = {(claims[c]["qualifier"], claims[c]["value"]) for a in hit["alternatives"] for c in a["claims"]}
    assert qualifiers == {("exact", 10), ("at_least", 12), ("about", 18), ("at_most", 18)}


def test_camp_taji_distance_from_baghdad_is_disputed_27_vs_35_km(taji):
    fields, claims, *_ = taji
    distance = fields["distance"]
    assert distance["status"] == "disputed"
    assert (distance["low"], distance["high"]) == (27, 35)
    assert {claims[c]["value"]["km"] for a in distance["alternatives"] for c in a["claims"]} == {27, 35}


def test_camp_taji_perpetrator_is_kataib_hezbollah_as_a_likely_attribution(taji):
    fields, claims, *_ = taji
    perpetrator = fields["perpetrator"]
    assert perpetrator["best"] == "Kataib Hezbollah"
    assert perpetrator["hedge"] == "likely"
    assert perpetrator["status"] != "confirmed"  # only ever stated as likely
    said_by = {claims[c]["said_by"] for c in perpetrator["supporting"]}
    assert "Gen. Kenneth McKenzie, US Central Command" in said_by


def test_show_traces_each_value_to_its_claims_and_sources(bundled):
    text = bundled("show", TAJI).stdout
    assert "18 -- Reuters (2020-03-12, reliability B)" in text
    assert "about 30 -- Gen. Mark Milley" in text and "in U.S. Department of Defense" in text
    assert '"the group launched about thirty 107 mm rockets against the Iraqi training base"' in text
    disputed_at = text.index("munitions_launched:")
    assert disputed_at < text.index("killed:")  # disputed fields first


def test_incident_grades(bundled):
    views = {v["slug"]: v for v in json.loads(bundled("replay", "--json").stdout)}
    assert views[TAJI]["grade"] == "confirmed"
    assert views["2020-03-albukamal-airstrikes"]["grade"] == "weak"
    assert set(v["grade"] for v in views.values()) <= {"confirmed", "fair", "weak", "contested"}


def test_a_day_precise_date_beats_a_month_that_agrees_with_it(bundled):
    views = {v["slug"]: v for v in json.loads(bundled("replay", "--json").stdout)}
    kirkuk = views["2019-12-27-kirkuk-rocket-attack-kills-us-contractor"]
    assert kirkuk["date"] == {"earliest": "2019-12-27", "latest": "2019-12-27", "precision": "day"}


@pytest.mark.parametrize(
    "policy,expected",
    [
        ("balanced", 18),
        ("conservative", 18),
        ("informative", 30),
        ("representative", 18),
    ],
)
def test_policies_choose_the_best_figure_differently(bundled, policy, expected):
    views = {v["slug"]: v for v in json.loads(bundled("replay", "--json", "--policy", policy).stdout)}
    launched = next(f for f in views[TAJI]["fields"] if f["field"] == "munitions_launched")
    assert launched["best"] == expected
    assert (launched["low"], launched["high"]) == (18, 30)


def test_conservative_policy_takes_the_lowest_count_of_rockets_that_hit(bundled):
    views = {v["slug"]: v for v in json.loads(bundled("replay", "--json", "--policy", "conservative").stdout)}
    hit = next(f for f in views[TAJI]["fields"] if f["field"] == "munitions_hit")
    assert hit["best"] == 10


def test_unknown_policy_is_a_clear_error(bundled):
    result = bundled("replay", "--policy", "loudest", expect=1)
    assert "unknown resolution policy 'loudest'" in result.stderr


def test_replay_verify_confirms_the_stored_view_matches_a_full_replay(bundled):
    result = bundled("replay", "--verify")
    assert "byte-identical" in result.stderr


@pytest.mark.parametrize(
    ("tampering", "said"),
    [
        ("UPDATE chron_views SET revision = revision + 1 WHERE slug = ?", "its revision differs"),
        ("UPDATE chron_views SET changed_at = NULL WHERE slug = ?", "its date of change differs"),
        ("UPDATE chron_views SET body = {replaced} WHERE slug = ?", "its content differs"),
        ("DELETE FROM chron_views WHERE slug = ?", "of a full replay is not where the stored view has it"),
    ],
)
def test_replay_verify_names_the_first_incident_whose_stored_view_differs(bundled, tampering, said):
    from chronology.archive import Archive
    from chronology.projection import Database

    db = Database.for_archive(Archive(bundled.store))
    with db.transaction() as tx:
        text = "convert_from(body, 'UTF8')" if db.is_postgres else "CAST(body AS TEXT)"
        replaced = f"replace({text}, 'Camp Taji', 'Camp Tajj')"
        replaced = f"convert_to({replaced}, 'UTF8')" if db.is_postgres else f"CAST({replaced} AS BLOB)"
        tx.execute(tampering.format(replaced=replaced), (TAJI,))
    db.close()
    result = bundled("replay", "--verify", expect=1)
    assert f"the stored view differs from a full replay of the log: incident '{TAJI}'" in result.stderr
    assert said in result.stderr


def test_replay_rebuild_derives_a_tampered_view_again_from_the_log(bundled):
    printed = bundled("replay").stdout
    tamper(bundled.store, "UPDATE chron_views SET revision = revision + 1 WHERE slug = ?", (TAJI,))
    assert "its revision differs" in bundled("replay", "--verify", expect=1).stderr
    result = bundled("replay", "--rebuild", "--verify")
    assert "rebuilt the stored view from the log, up to position" in result.stderr
    assert "byte-identical" in result.stderr
    assert result.stdout == printed


@pytest.mark.parametrize(
    ("table", "column", "key_column", "text"),
    [
        ("chron_views", "body", "slug", "not json"),
        ("chron_views", "body", "slug", "{}"),
        ("chron_incidents", "claims", "slug", "[[1, 2]]"),
    ],
)
def test_a_damaged_stored_view_is_one_clear_error_naming_its_row_and_the_way_back(
    bundled, table, column, key_column, text
):
    printed = bundled("replay").stdout
    overwrite_stored(bundled.store, table, column, key_column, TAJI, text)
    for command in (("replay",), ("show", TAJI), ("export", "csv")):
        result = bundled(*command, expect=1)
        assert f"the stored view cannot be read: {table} row '{TAJI}' is damaged" in result.stderr
        assert "run `chron replay --rebuild`" in result.stderr
        assert "Traceback" not in result.stderr
    assert bundled("replay", "--rebuild").stdout == printed
    bundled("show", TAJI)


@pytest.mark.parametrize("place", [999, -1, "0"])
def test_a_stored_field_naming_a_claim_it_does_not_have_is_damage_not_a_wrong_claim(bundled, place):
    """A stored field names its claims by place in the view's own list: a place that is not
    one is reported as damage, never read as some other claim."""
    from chronology.archive import Archive
    from chronology.projection import Database

    db = Database.for_archive(Archive(bundled.store))
    with db.transaction(write=False) as tx:
        content = orjson.loads(bytes(tx.one("SELECT body FROM chron_views WHERE slug = ?", (TAJI,))[0]))
    db.close()
    content["fields"][0][3] = [place]  # the first field's supporting claims
    overwrite_stored(bundled.store, "chron_views", "body", "slug", TAJI, orjson.dumps(content).decode())
    result = bundled("show", TAJI, expect=1)
    assert f"the stored view cannot be read: chron_views row '{TAJI}' is damaged" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_stored_source_is_one_clear_error_naming_it(bundled):
    from chronology.archive import Archive
    from chronology.projection import Database

    db = Database.for_archive(Archive(bundled.store))
    with db.transaction() as tx:
        source_id = tx.one("SELECT id FROM chron_sources ORDER BY id")[0]
    db.close()
    overwrite_stored(bundled.store, "chron_sources", "body", "id", source_id, '{"id": 1}')
    result = bundled("replay", expect=1)
    assert f"the stored view cannot be read: chron_sources row '{source_id}' is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    bundled("replay", "--rebuild")
