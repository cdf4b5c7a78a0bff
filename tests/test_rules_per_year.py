"""Rules per year: the scheme in force for each wave, the result cache keyed on it, and 记零
counted in calendar years and applied to score, rank and listing."""

from __future__ import annotations

import dataclasses
import shutil

import polars as pl
import pytest

from pipelines.core.waves import in_force, wave_year
from pipelines.ranking.listing import PublishedWave, run_listing
from pipelines.scheme.definitions import SURVEYS_DIR, DefinitionError, load_definitions
from pipelines.store.warehouse import Warehouse

CULTIVATION_2024 = {"990308", "990702", "990708"}   # the sample's scripted finds of 2024


# -- validity periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(("wave", "first", "last", "expected"), [
    ("2024", "2024", None, True), ("2023", "2024", None, False),
    ("2024H1", "2024", None, True), ("2023H2", "2024", None, False),
    ("2024H2", None, "2024", True), ("2025H1", None, "2024", False),
    ("2024Q3", "2024H2", "2024H2", True), ("2024Q2", "2024H2", None, False),
])
def test_a_rule_is_in_force_from_its_wave_on(wave, first, last, expected):
    assert in_force(wave, first, last) is expected


def test_half_year_waves_share_their_year():
    assert wave_year("2025H1") == wave_year("2025H2") == wave_year("2025") == 2025


def _edited(tmp_path, old: str, new: str):
    folder = tmp_path / "surveys"
    shutil.copytree(SURVEYS_DIR, folder, ignore=shutil.ignore_patterns("sample"))
    scheme = folder / "scheme.toml"
    text = scheme.read_text(encoding="utf-8")
    assert old in text
    scheme.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_the_sample_cultivation_veto_applies_from_2024(defs):
    veto = next(v for v in defs.scheme.vetoes if v.subject == "cultivation_found")
    assert veto.from_wave == "2024"
    assert veto in defs.scheme.in_force("2024").vetoes
    assert veto not in defs.scheme.in_force("2023H2").vetoes


@pytest.mark.parametrize(("old", "new", "message"), [
    ('from_wave = "2024"', 'from_wave = "24年"', "期次“24年”格式不对"),
    ('from_wave = "2024"', 'from_wave = "2024"\nuntil_wave = "2023"', "晚于 until_wave"),
    ('weight = 30', 'weight = 30\nuntil_wave = "2023"', "自 2024 起各分项权重之和应为 100"),
])
def test_bad_validity_periods_are_refused_when_the_toml_loads(tmp_path, old, new, message):
    with pytest.raises(DefinitionError) as caught:
        load_definitions(_edited(tmp_path, old, new))
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_a_component_replaced_from_a_year_keeps_weights_per_period(tmp_path):
    """Satisfaction weighted 30 until 2023, then split into 20 + a 10-point safety-style item."""
    folder = _edited(tmp_path, 'items = ["satisfaction"]\nweight = 30',
                     'items = ["satisfaction"]\nweight = 30\nuntil_wave = "2023"\n\n'
                     '[[components]]\nid = "satisfaction_new"\nlabel = "群众满意度"\n'
                     'source = "survey"\nitems = ["satisfaction"]\nweight = 20\nfrom_wave = "2024"\n\n'
                     '[[components]]\nid = "report_new"\nlabel = "举报知晓"\nsource = "survey"\n'
                     'items = ["knows_report"]\nweight = 10\nfrom_wave = "2024"')
    defs = load_definitions(folder)
    ids_2023 = [c.id for c in defs.scheme.in_force("2023").components]
    ids_2024 = [c.id for c in defs.scheme.in_force("2024H1").components]
    assert "satisfaction" in ids_2023 and "satisfaction_new" not in ids_2023
    assert "satisfaction" not in ids_2024 and {"satisfaction_new", "report_new"} <= set(ids_2024)
    for wave in ("2023", "2024H1"):
        assert sum(c.weight for c in defs.scheme.in_force(wave).components) == pytest.approx(100)


def test_a_veto_adopted_this_year_does_not_rescore_earlier_waves(built_db, defs):
    """Move 今年起非法种植一票否决 to 2025: the 2024 finds no longer zero those counties' 2024
    scores; with the sample's 2024 they do."""
    from pipelines.results.wave import score_wave

    later = dataclasses.replace(defs.scheme, vetoes=tuple(
        dataclasses.replace(v, from_wave="2025") if v.subject == "cultivation_found" else v
        for v in defs.scheme.vetoes))
    wh = Warehouse.open(built_db, read_only=True)
    try:
        as_adopted = score_wave(wh, defs, "2024").composite
        moved = score_wave(wh, dataclasses.replace(defs, scheme=later), "2024").composite
    finally:
        wh.close()
    vetoed = set(as_adopted.filter(pl.col("veto_reason").str.contains("非法种植"))["county_code"])
    assert vetoed == CULTIVATION_2024
    rows = moved.filter(pl.col("county_code").is_in(list(CULTIVATION_2024)))
    assert rows["veto_reason"].null_count() == 3 and (rows["score"] > 50).all()


# -- the cache keyed on the scheme in force -------------------------------------------------------


def test_scheme_key_changes_with_a_rule_in_force_not_with_a_later_one(defs):
    from pipelines.results.cache import scheme_key

    base = scheme_key(defs, "2025")
    veto = dataclasses.replace(defs.scheme.vetoes[0], value=2.0)
    edited = dataclasses.replace(defs, scheme=dataclasses.replace(
        defs.scheme, vetoes=(veto, *defs.scheme.vetoes[1:])))
    assert scheme_key(edited, "2025") != base
    future = dataclasses.replace(defs.scheme.vetoes[0], from_wave="2027")
    later = dataclasses.replace(defs, scheme=dataclasses.replace(
        defs.scheme, vetoes=(*defs.scheme.vetoes, future)))
    assert scheme_key(later, "2025") == base
    assert scheme_key(later, "2026") != scheme_key(defs, "2026")   # the forecast of 2027 sees it
    from pipelines.scheme.definitions import Tier, Trigger

    tier = Tier("watch", "重点关注", "省", "any", (Trigger(rank_bottom=5),), from_wave="2027")
    tiered = dataclasses.replace(defs, scheme=dataclasses.replace(defs.scheme, tiers=(tier,)))
    assert scheme_key(tiered, "2025") == base
    assert scheme_key(tiered, "2026") != scheme_key(defs, "2026")


def test_a_scheme_edit_outside_surveys_never_serves_a_stale_history(tmp_path, defs, monkeypatch):
    """The code fingerprint reads surveys/ only; an edited scheme from elsewhere must still miss."""
    from pipelines.results import cache as result_cache

    calls = []

    def fake_history(wh, used, wave):
        calls.append(used)
        return [f"scored with {len(used.scheme.in_force(wave).vetoes)} vetoes"]

    monkeypatch.setattr(result_cache, "scored_history", fake_history)
    db = tmp_path / "w.duckdb"
    first = result_cache.history(db, None, defs, "v1", "2025")
    assert result_cache.history(db, None, defs, "v1", "2025") == first and len(calls) == 1
    fewer = dataclasses.replace(defs, scheme=dataclasses.replace(
        defs.scheme, vetoes=defs.scheme.vetoes[1:]))
    second = result_cache.history(db, None, fewer, "v1", "2025")
    assert len(calls) == 2 and second != first


# -- 记零: counted in years, applied to score and rank ---------------------------------------------


COUNTIES = pl.DataFrame({"county_code": [f"C{i:02d}" for i in range(20)],
                         "city_code": ["A"] * 10 + ["B"] * 10})
NO_INSPECTIONS = pl.DataFrame(schema={"county_code": pl.String, "wave": pl.String,
                                      "passed": pl.Boolean})


def _wave(label: str, low: list[str]) -> PublishedWave:
    scores = {c: 110.0 - i for i, c in enumerate(COUNTIES["county_code"])}
    for rank, code in enumerate(low):
        scores[code] = 50.0 + rank
    frame = pl.DataFrame({"county_code": list(scores), "score": list(scores.values()),
                          "veto_reason": [None] * len(scores)},
                         schema={"county_code": pl.String, "score": pl.Float64,
                                 "veto_reason": pl.String})
    return PublishedWave(label, frame, pl.DataFrame(schema={
        "county_code": pl.String, "indicator_id": pl.String, "value": pl.Float64}))


def _zeroed(result) -> set[tuple[str, str]]:
    events = result.events.filter(pl.col("action") == "考核得分记零")
    return set(zip(events["county_code"], events["wave"], strict=True))


def test_two_half_year_waves_of_one_year_are_one_year(defs):
    low = ["C00", "C01", "C02"]
    result = run_listing(defs.scheme, defs.indicators, [_wave("2021H1", low), _wave("2021H2", low)],
                         COUNTIES, NO_INSPECTIONS)
    assert result.events.filter(pl.col("action") == "通报批评").height == 6
    assert _zeroed(result) == set()
    assert not result.scores["zeroed"].any()


def test_criticism_in_two_calendar_years_zeroes_the_year_and_stays_for_its_second_half(defs):
    low = ["C00", "C01", "C02"]
    waves = [_wave("2021H2", low), _wave("2022H1", low), _wave("2022H2", ["C05", "C06", "C07"])]
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS)
    assert _zeroed(result) == {("C00", "2022H1"), ("C01", "2022H1"), ("C02", "2022H1")}
    second_half = result.scores.filter(pl.col("wave") == "2022H2")
    kept = second_half.filter(pl.col("county_code").is_in(low))
    assert kept["zeroed"].all() and (kept["score"] == 0).all() and (kept["published"] > 0).all()


def test_zeroing_moves_the_rank_and_the_listing(defs):
    """Province lists its bottom 1 only. Year 2: C05 is lowest as published, but C01 and C02,
    criticised a second year, are zeroed below it — they are listed, C05 is not."""
    scheme = dataclasses.replace(defs.scheme, listing=dataclasses.replace(
        defs.scheme.listing, province_bottom=1))
    waves = [_wave("2021", ["C00", "C01", "C02"]), _wave("2022", ["C05", "C01", "C02"])]
    result = run_listing(scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS)
    assert _zeroed(result) == {("C01", "2022"), ("C02", "2022")}
    year2 = result.scores.filter(pl.col("wave") == "2022")
    rank = dict(zip(year2["county_code"], year2["rank"], strict=True))
    assert rank["C01"] == rank["C02"] == 19 and rank["C05"] == 18
    listed = result.events.filter((pl.col("wave") == "2022") & (pl.col("action") == "挂牌整治"))
    assert set(listed["county_code"]) == {"C01", "C02"}
    assert listed["reason"].str.contains("考核得分记零").all()


def test_zeroing_reaches_the_published_scores_and_their_simulation(built_db, defs):
    """A county zeroed by the engine scores 0 with no uncertainty in the history every page and
    export reads, ranks last, lands in the bottom 3 in every draw, and the engine run again on
    that history (from the score before 记零) decides the same."""
    from pipelines.ranking.listing import published_rank
    from pipelines.ranking.risk import risk_table
    from pipelines.results.wave import apply_zeroing, listing_result, score_wave

    wh = Warehouse.open(built_db, read_only=True)
    try:
        raw = [score_wave(wh, defs, w) for w in ("2024", "2025")]
        listing = listing_result(wh, defs, raw)
        chosen = raw[-1].composite.sort("score", descending=True)["county_code"][0]   # the best
        forced = dataclasses.replace(listing, scores=listing.scores.with_columns(
            ((pl.col("county_code") == chosen) & (pl.col("wave") == "2025")).alias("zeroed")))
        history = apply_zeroing(raw, forced)
        again = listing_result(wh, defs, history)
    finally:
        wh.close()
    row = history[-1].composite.filter(pl.col("county_code") == chosen).row(0, named=True)
    assert (row["score"], row["se"], row["veto"]) == (0.0, 0.0, True)
    assert row["score_before_zero"] > 80 and "考核得分记零" in row["veto_reason"]
    assert published_rank(history[-1].composite)[chosen] == history[-1].composite.height
    risk = risk_table(history, defs, draws=500)
    assert risk.filter(pl.col("county_code") == chosen)["p_bottom3"][0] == 1.0
    assert again.events.equals(listing.events)
