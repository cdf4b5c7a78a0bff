"""What a leader reads first: the raw change a county needs to leave the bottom 3 / bottom 10 (a
five-county case small enough to work out by hand), the what-if verdict in words, the at-risk
list and the deck's ranking table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from pipelines.present.leader import (
    at_risk,
    deck_ranking_rows,
    delta_args,
    fixes_table,
    veto_condition,
    what_if_words,
)
from pipelines.ranking.fixes import county_fixes
from pipelines.ranking.risk import WhatIf
from pipelines.scheme.definitions import Component
from pipelines.stats.model import ScoreModel

SAT = Component(id="sat", label="满意度", source="survey", weight=60)
RATE = Component(id="rate", label="千人比", source="indicator", weight=40, indicator="rate",
                 direction="lower", normalisation="goalposts", lo=0.0, hi=10.0)


def five_counties(vetoed: tuple[bool, ...] = (False,) * 5) -> SimpleNamespace:
    """Satisfaction 50/60/70/85/90 (×0.6) plus a rate of 5 on a 0–10 goalpost scale, lower
    better (4 points per unit below 10): composites A 50, B 56, C 62, D 71, E 74."""
    n = 5
    model = ScoreModel(
        counties=list("ABCDE"), components=(SAT, RATE),
        survey_mean=np.array([[50.0], [60.0], [70.0], [85.0], [90.0]]),
        survey_cov=np.full((n, 1, 1), 1.0), indicator_raw=np.full((n, 1), 5.0),
        indicator_count=np.full((n, 1), np.nan), exposure=np.ones(n),
        vetoed=np.array(vetoed), survey_ids=["sat"], indicator_ids=["rate"])
    return SimpleNamespace(model=model)


def row(frame: pl.DataFrame, comp: str) -> dict:
    return frame.filter(pl.col("component_id") == comp).row(0, named=True)


def test_needed_change_leaves_the_line_worked_out_by_hand():
    # to leave the bottom k a county must score above the k-th lowest of the OTHER counties:
    # for A (others B 56, C 62, D 71, E 74) that is C's 62 for the bottom 2, D's 71 for the bottom 3
    fixes = county_fixes(five_counties(), "A", (2, 3))
    sat, rate = row(fixes, "sat"), row(fixes, "rate")
    # 0.6·sat + 20 > 62 → +20 points of satisfaction; 30 + 4·(10 − r) > 62 → rate below 2 (3 lower)
    assert sat["need_2"] == pytest.approx(20, abs=1e-6)
    assert rate["need_2"] == pytest.approx(3, abs=1e-6)
    # past 71: +35 satisfaction; the rate alone gives at most 20 points (A 70): cannot
    assert sat["need_3"] == pytest.approx(35, abs=1e-6)
    assert rate["need_3"] is None
    # headroom: satisfaction to 100 is 0.6·50 = 30 points, the rate to 0 is 4·5 = 20
    assert sat["headroom"] == pytest.approx(30) and rate["headroom"] == pytest.approx(20)
    assert sat["largest"] and not rate["largest"]
    assert sat["raw"] == 50 and rate["raw"] == 5 and rate["points"] == pytest.approx(50)


def test_the_line_is_the_next_county_up_not_the_current_cut():
    # C holds the 3rd-lowest score (62); passing B is not enough, it must pass D's 71
    fixes = county_fixes(five_counties(), "C", (3,))
    assert row(fixes, "sat")["need_3"] == pytest.approx(15, abs=1e-6)
    assert row(county_fixes(five_counties(), "E", (3,)), "sat")["need_3"] == 0


def test_a_vetoed_county_cannot_fix_its_way_out_and_the_table_says_so():
    fixes = county_fixes(five_counties((True, False, False, False, False)), "A", (2, 3))
    assert fixes["need_3"].is_null().all() and (fixes["headroom"] == 0).all()
    table = fixes_table(county_fixes(five_counties(), "A", (2, 3)), (2, 3)).frame
    assert table["分项"].to_list() == ["满意度", "千人比"]
    assert table["单独离开后2名需"].to_list() == ["提高 20.00", "降低 3.00"]
    assert table["单独离开后3名需"].to_list() == ["提高 35.00", "无法单独达到"]
    assert table["提示"].to_list() == ["提分空间最大", ""]


def test_what_if_says_in_words_whether_the_line_is_crossed():
    crossed = WhatIf(63.0, 3, 0.2, 0.9, 50.0, 5, {3: True, 10: True}, {3: False, 10: True})
    assert what_if_words(crossed) == ("可以跨过后3名分界线，离开后3名；"
                                      "仍在后10名之内，这一调整不足以离开后10名。")
    assert "本来就不在后3名" in what_if_words(
        WhatIf(80.0, 1, 0, 0, 79.0, 1, {3: False}, {3: False}))


def history_of(scores: dict[str, list[float]]) -> list[SimpleNamespace]:
    waves = []
    for k, wave in enumerate(sorted(scores)):
        waves.append(SimpleNamespace(wave=wave, composite=pl.DataFrame({
            "county_code": list("ABC"), "score": scores[wave], "ci_low": [0.0] * 3,
            "ci_high": [0.0] * 3, "veto_reason": [None] * 3})))
        del k
    return waves


def test_at_risk_list_has_red_then_amber_with_change_since_last_wave():
    history = history_of({"2024": [95.0, 70.0, 90.0], "2025": [75.0, 72.0, 91.0]})
    risk = pl.DataFrame({"county_code": list("ABC"), "county_name": ["甲县", "乙县", "丙县"],
                         "city_name": ["一市"] * 3, "score": [75.0, 72.0, 91.0], "rank": [2, 3, 1],
                         "band": ["预警", "高危", "安全"], "p_bottom3": [0.3, 0.8, 0.0],
                         "p_bottom10": [0.6, 1.0, 0.1]})
    table = at_risk(risk, history)
    assert table["county_name"].to_list() == ["乙县", "甲县"]
    assert table["score_change"].to_list() == pytest.approx([2.0, -20.0])
    assert table["rank_move"].to_list() == ["持平", "↓1"]


def test_deck_rows_mark_vetoes_and_rank_moves():
    history = history_of({"2024": [80.0, 70.0, 90.0], "2025": [75.0, 0.0, 91.0]})
    ranking = pl.DataFrame({"county_code": list("ABC"), "county_name": ["甲县", "乙县", "丙县"],
                            "city_name": ["一市"] * 3, "score": [75.0, 0.0, 91.0],
                            "ci_low": [73.0, 0.0, 90.0], "ci_high": [77.0, 0.0, 92.0],
                            "rank": [2, 3, 1], "veto": [False, True, False]})
    rows = deck_ranking_rows(ranking, history)
    assert rows.columns == ["名次", "区县", "市州", "得分", "95%区间", "较上期名次"]
    assert rows["区县"].to_list() == ["丙县", "甲县", "乙县"]
    assert rows["得分"].to_list() == ["91.00", "75.00", "0（一票否决）"]
    assert rows["95%区间"].to_list()[1] == "73.00～77.00"
    assert rows["较上期名次"].to_list() == ["持平", "持平", "持平"]



def test_veto_rules_read_as_the_official_document_words_them(defs):
    conditions = [veto_condition(v, defs) for v in defs.scheme.vetoes]
    assert conditions == ["工作指标表中“发现非法种植毒品原植物”填报为“是”",
                          "国家工作人员涉毒人数达到或超过2人", "在校学生涉毒人数达到或超过2人"]
    assert not any("_" in c or ">=" in c for c in conditions)


def test_a_change_that_rounds_to_zero_has_no_arrow():
    assert delta_args(0.004) == {"delta": "持平（较上期）", "delta_color": "off", "delta_arrow": "off"}
    assert delta_args(-0.3) == {"delta": "-0.30 较上期"}
    assert delta_args(None) == {"delta": None}


# -- on the pages (AppTest) ----------------------------------------------------------------------

from tests.test_app import navigation_not_pages_directory, run_app  # noqa: E402, F401  (fixture)


def test_overview_opens_with_the_red_and_amber_counties(monkeypatch, db_copy):
    at = run_app(monkeypatch, db_copy)
    assert not at.exception
    first = at.dataframe[0].value           # the first table of the page
    assert list(first.columns[:5]) == ["风险等级", "区县", "市州", "得分", "名次"]
    bands = first["风险等级"].tolist()
    assert bands == sorted(bands, key=["高危", "预警"].index) and set(bands) == {"高危", "预警"}
    heading = next(m.value for m in at.markdown if "高危" in m.value and "预警" in m.value)
    assert f"高危 {bands.count('高危')} 个" in heading and f"预警 {bands.count('预警')} 个" in heading
    assert at.metric[1].value == f"{bands.count('高危')} / {bands.count('预警')} 个"
    assert (first["名次"] >= 80).all() and first["名次较上期"].str.match(r"^(↑|↓|持平|—)").all()


def test_county_page_says_what_to_fix_and_the_what_if_crosses_the_line(monkeypatch, db_copy):
    at = run_app(monkeypatch, db_copy)
    second_worst = at.dataframe[0].value.sort_values("名次", ascending=False).iloc[1]["区县"]
    at.switch_page("pages/county.py").run()
    select = next(s for s in at.selectbox if s.label == "区县")
    code = next(o for o in select.options if o.startswith(second_worst))
    select.select(select.options[select.options.index(code)]).run()
    assert not at.exception, at.exception
    needs = next(d.value for d in at.dataframe if "单独离开后3名需" in d.value.columns)
    assert needs["提示"].tolist()[0] == "提分空间最大"
    reachable = needs[needs["单独离开后3名需"].str.match(r"^(提高|降低) ")].iloc[0]
    verb, amount = reachable["单独离开后3名需"].split(" ")
    comp = next(c for c in at.number_input if c.label == reachable["分项"])
    step = float(amount) + 0.05
    comp.set_value(step if verb == "提高" else -step)
    next(b for b in at.button if b.label == "计算").click()
    at.run()
    message = " ".join(s.value for s in at.success)
    assert "可以跨过后3名分界线，离开后3名" in message, [e.value for e in at.info]


# -- charts carry their numbers ------------------------------------------------------------------

def eleven_counties(veto_first: bool = True) -> pl.DataFrame:
    scores = [0.0 if veto_first else 70.0] + [80.0 + k for k in range(10)]
    return pl.DataFrame({
        "county_name": [f"县{k}" for k in range(11)], "score": scores,
        "ci_low": [s - 2 for s in scores], "ci_high": [s + 2 for s in scores],
        "rank": list(range(11, 0, -1)), "crosses_line": ["不跨越"] * 11,
        "veto": [veto_first] + [False] * 10})


def rows_of(spec: dict, column: str) -> list[dict]:
    """The inline data rows (anywhere in the spec) that have `column`."""
    found = []
    for data in [spec.get("data") or {}] + [d for layer in spec.get("layer", [])
                                            for d in [layer.get("data") or {}]]:
        found += [row for row in data.get("values", []) if column in row]
    for layer in spec.get("layer", []):
        if "layer" in layer:
            found += rows_of(layer, column)
    return found


def marks_of(spec: dict) -> list[dict]:
    out = []
    for layer in spec.get("layer", [spec]):
        out += marks_of(layer) if "layer" in layer else [layer]
    return out


def test_ranking_chart_gives_each_county_a_row_prints_score_and_rank_and_sets_vetoes_apart():
    from pipelines.present import charts

    lines = pl.DataFrame({"line": ["后3名分界线"], "k": [3], "score": [82.5]})
    table = eleven_counties()
    spec = charts.ranking_chart(table, lines).to_dict()
    assert spec["height"] >= 10 * charts.ROW_PX + charts.CHROME_PX      # 10 measured counties
    texts = [m for m in marks_of(spec) if (m.get("mark") or {}).get("type") == "text"]
    assert texts and texts[0]["encoding"]["text"]["field"] == "label"
    values = rows_of(spec, "label")
    assert "89.00（第1名）" in [row["label"] for row in values]
    assert "县0" not in [row["county_name"] for row in values]          # vetoed: not plotted
    assert spec["layer"][0]["layer"][0]["encoding"]["x"]["scale"]["domain"][0] > 70
    y = spec["layer"][0]["layer"][0]["encoding"]["y"]["sort"]
    assert y[0] == "县1"                                                 # lowest measured on top
    assert charts.vetoed_names(table) == ["县0"]


def test_risk_and_component_bars_carry_their_values():
    from pipelines.present import charts

    risk = pl.DataFrame({"county_name": ["甲县"], "p_bottom3": [0.456], "p_bottom10": [1.0],
                         "p_bottom3_next": [0.0], "p_bottom10_next": [0.2]})
    spec = charts.risk_chart(risk).to_dict()
    values = rows_of(spec, "text")
    assert sorted(row["text"] for row in values) == ["0%", "100%", "20.0%", "45.6%"]
    assert any((m.get("mark") or {}).get("type") == "text" for m in marks_of(spec))
    comparison = pl.DataFrame({"label": ["满意度"] * 3, "who": ["本县", "本市平均", "全省平均"],
                               "score": [71.26, 80.0, 82.0]})
    spec = charts.comparison_chart(comparison).to_dict()
    text = next(m for m in marks_of(spec) if (m.get("mark") or {}).get("type") == "text")
    assert text["encoding"]["text"]["field"] == "text"


def test_fixed_decimals_print_as_python_would_without_a_python_callback():
    from pipelines.present.tables import fixed_decimals

    values = [91.0, -0.4, 0.004, -0.004, 68.125001, 100.0, 5.05]
    frame = pl.DataFrame({"v": values})
    assert frame.select(fixed_decimals(pl.col("v"), 2).alias("v"))["v"].to_list() == \
        ["91.00", "-0.40", "0.00", "0.00", "68.13", "100.00", "5.05"]
    assert frame.select(fixed_decimals(pl.col("v"), 0).alias("v"))["v"].to_list() == \
        ["91", "0", "0", "0", "68", "100", "5"]
