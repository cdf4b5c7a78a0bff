"""The listing rules engine: reproduces the sample's official decisions; each rule on small cases."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from pipelines.ranking.listing import PublishedWave, bottom_members, run_listing
from pipelines.results.wave import listing_result, scored_history
from pipelines.store.warehouse import Warehouse


@pytest.fixture(scope="module")
def sample_listing(built_db, defs):
    wh = Warehouse.open(built_db, read_only=True)
    result = listing_result(wh, defs, scored_history(wh, defs, "2025"))
    decisions = wh.decisions()
    wh.close()
    return result, decisions


def test_engine_reproduces_every_official_decision_of_the_sample(sample_listing):
    result, decisions = sample_listing
    comparison = result.comparison
    assert comparison.height == decisions.height == 22
    assert comparison["agree"].all(), comparison.filter(~pl.col("agree"))
    actions = set(comparison["action"])
    assert {"挂牌整治", "摘帽", "重新挂牌"} <= actions


def test_sample_history_has_a_relapse_a_veto_listing_a_failed_inspection_and_an_overdue(
        sample_listing):
    result, _ = sample_listing
    events = result.events
    assert events.filter(pl.col("action") == "重新挂牌").height >= 1
    assert events.filter(pl.col("reason").str.contains("一票否决")).height >= 1
    failed = result.conditions.filter((pl.col("condition") == "验收") & (pl.col("value") == "不合格"))
    assert failed.height >= 1
    assert events.filter(pl.col("action") == "逾期未摘帽").height >= 1
    assert result.status.filter(pl.col("overdue")).height >= 1
    still = set(result.status["county_code"])
    delisted_last = set(events.filter((pl.col("action") == "摘帽") & (pl.col("wave") == "2025"))
                        ["county_code"])
    assert not still & delisted_last


# -- small hand-made cases -----------------------------------------------------------------------


def _wave(label: str, scores: dict[str, float], indicators: dict[str, dict[str, float]] | None = None,
          veto: dict[str, str] | None = None) -> PublishedWave:
    frame = pl.DataFrame({"county_code": list(scores), "score": list(scores.values()),
                          "veto_reason": [(veto or {}).get(c) for c in scores]},
                         schema={"county_code": pl.String, "score": pl.Float64,
                                 "veto_reason": pl.String})
    rows = [(c, i, v) for c, values in (indicators or {}).items() for i, v in values.items()]
    long = pl.DataFrame(rows, schema=["county_code", "indicator_id", "value"], orient="row") \
        if rows else pl.DataFrame(schema={"county_code": pl.String, "indicator_id": pl.String,
                                          "value": pl.Float64})
    return PublishedWave(label, frame, long)


GOOD = {"community_treatment_rate": 90, "released_control_rate": 70, "job_placement_rate": 90,
        "reporting_rate": 95, "violent_incidents": 0, "users_per_1000": 1.0}
COUNTIES = pl.DataFrame({"county_code": [f"C{i:02d}" for i in range(20)],
                         "city_code": ["A"] * 10 + ["B"] * 10})
NO_INSPECTIONS = pl.DataFrame(schema={"county_code": pl.String, "wave": pl.String,
                                      "passed": pl.Boolean})


def _scores(low: list[str], base: float = 90.0) -> dict[str, float]:
    """Twenty counties; those in `low` get the lowest scores, in that order (worst first)."""
    scores = {c: base + 20 - i for i, c in enumerate(COUNTIES["county_code"])}
    for rank, code in enumerate(low):
        scores[code] = 50.0 + rank
    return scores


def _inspected(*pairs: tuple[str, str, bool]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema=["county_code", "wave", "passed"], orient="row")


def _all_good(wave_users: float = 1.0) -> dict[str, dict[str, float]]:
    return {c: GOOD | {"users_per_1000": wave_users} for c in COUNTIES["county_code"]}


def test_bottom_three_listed_then_delisted_when_every_condition_holds(defs):
    waves = [_wave("2021", _scores(["C00", "C01", "C02"]), _all_good(2.0)),
             _wave("2022", _scores([f"C{i:02d}" for i in range(3, 13)]), _all_good(1.5))]
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES,
                         _inspected(("C00", "2022", True), ("C01", "2022", True)))
    listed = result.events.filter(pl.col("action") == "挂牌整治")
    assert set(listed.filter(pl.col("wave") == "2021")["county_code"]) == {"C00", "C01", "C02"}
    delisted = set(result.events.filter(pl.col("action") == "摘帽")["county_code"])
    assert delisted == {"C00", "C01"}          # C02 was not inspected
    c02 = result.conditions.filter((pl.col("county_code") == "C02") & (pl.col("wave") == "2022"))
    assert c02.filter(pl.col("condition") == "验收")["met"].to_list() == [False]
    assert c02.filter(pl.col("condition") != "验收")["met"].all()


def test_relative_target_needs_the_drop_since_listing(defs):
    waves = [_wave("2021", _scores(["C00", "C01", "C02"]), _all_good(2.0)),
             _wave("2022", _scores(["C05", "C06", "C07"]), _all_good(1.9))]  # only −5%
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES,
                         _inspected(("C00", "2022", True)))
    assert result.events.filter(pl.col("action") == "摘帽").height == 0
    users = result.conditions.filter((pl.col("county_code") == "C00")
                                     & (pl.col("condition") == "现有吸毒人员千人比"))
    assert users["met"].to_list() == [False] and "挂牌时 2" in users["value"][0]


def test_relapse_is_relisted(defs):
    waves = [_wave("2021", _scores(["C00", "C01", "C02"]), _all_good(2.0)),
             _wave("2022", _scores(["C03", "C04", "C05"]), _all_good(1.0)),
             _wave("2023", _scores(["C00", "C06", "C07"]), _all_good(1.0))]
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES,
                         _inspected(("C00", "2022", True)))
    c00 = result.events.filter((pl.col("county_code") == "C00") & (pl.col("level") == "省")
                               & pl.col("action").is_in(["挂牌整治", "摘帽", "重新挂牌"]))
    assert c00["action"].to_list() == ["挂牌整治", "摘帽", "重新挂牌"]


def test_veto_puts_a_county_at_the_bottom_with_its_reason(defs):
    scores = _scores(["C00", "C01"])
    scores["C09"] = 0.0
    waves = [_wave("2021", scores, veto={"C09": "发现非法种植毒品原植物"})]
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS)
    c09 = result.events.filter((pl.col("county_code") == "C09") & (pl.col("action") == "挂牌整治"))
    assert "一票否决：发现非法种植毒品原植物" in c09["reason"][0]


def test_city_opt_in_and_criticism_and_zeroing(defs):
    scheme = dataclasses.replace(defs.scheme, listing=dataclasses.replace(
        defs.scheme.listing, city_bottom=5, city_opt_in=("B",)))
    low = ["C00", "C16", "C01", "C17", "C02"]          # bottom 5: A, B, A, B, A
    waves = [_wave("2021", _scores(low)), _wave("2022", _scores(low))]
    result = run_listing(scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS)
    city = result.events.filter(pl.col("action") == "市挂牌重点整治")
    assert set(city["county_code"]) == {"C17"}          # bottom 5, not bottom 3, city B only
    criticised = result.events.filter(pl.col("action") == "通报批评")
    assert set(criticised["county_code"]) == {"C00", "C16", "C01"}   # bottom 3 and under 80
    zeroed = result.events.filter(pl.col("action") == "考核得分记零")
    assert set(zeroed["county_code"]) == {"C00", "C16", "C01"}
    assert set(zeroed["wave"]) == {"2022"}


def test_ties_at_the_line_are_all_in():
    frame = pl.DataFrame({"county_code": ["a", "b", "c", "d"], "score": [60.0, 70.0, 70.0, 80.0]})
    assert bottom_members(frame, 2) == {"a", "b", "c"}


def test_deadline_and_disagreement_with_official_decisions(defs):
    waves = [_wave(str(2021 + i), _scores(["C00", "C01", "C02"] if i == 0 else
                                          ["C00", "C03", "C04"]), _all_good(2.0))
             for i in range(4)]
    official = pl.DataFrame({"county_code": ["C00", "C01", "C05"],
                             "wave": ["2021", "2021", "2022"],
                             "level": ["省"] * 3, "action": ["挂牌整治", "挂牌整治", "摘帽"]})
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS, official)
    overdue = result.events.filter(pl.col("action") == "逾期未摘帽")
    # listed in 2021, never inspected: past the 2-wave deadline in 2024
    assert set(overdue["county_code"]) == {"C00", "C01", "C02"}
    assert set(overdue["wave"]) == {"2024"}
    disagree = result.comparison.filter(~pl.col("agree"))
    notes = dict(zip(disagree["county_code"] + "/" + disagree["action"], disagree["note"], strict=False))
    assert "未见正式决定" in notes["C02/挂牌整治"]
    assert "规则不支持" in notes["C05/摘帽"]


def test_delisting_progress_gives_conditions_and_expected_exit(built_db, defs, sample_listing):
    from pipelines.ranking.risk import delisting_progress, risk_table

    result, _ = sample_listing
    wh = Warehouse.open(built_db, read_only=True)
    history = scored_history(wh, defs, "2025")
    wh.close()
    progress = delisting_progress(result, risk_table(history, defs, draws=2000), "2025")
    assert set(progress["county_code"]) == set(result.status["county_code"])
    new = progress.filter(pl.col("listed_in") == "2025")
    assert new["expected_exit"].str.contains("2026年度").all()
    overdue = progress.filter(pl.col("overdue"))
    assert overdue.height >= 1 and (overdue["conditions_met"] < overdue["conditions"]).all()
    assert (overdue["missing"].str.len_chars() > 0).all()
