"""The consequences register: one row per consequence, with level, tier, status, deadline and the
official match; city listings with their own status and 摘帽; the sample still matches."""

from __future__ import annotations

import io

import polars as pl

from pipelines.cli import main
from pipelines.ranking.consequences import consequences
from pipelines.ranking.listing import PublishedWave, run_listing

COUNTIES = pl.DataFrame({"county_code": [f"C{i:02d}" for i in range(20)],
                         "city_code": ["A"] * 10 + ["B"] * 10})
NO_INSPECTIONS = pl.DataFrame(schema={"county_code": pl.String, "wave": pl.String,
                                      "passed": pl.Boolean})


def _wave(label: str, low: list[str], veto: dict[str, str] | None = None) -> PublishedWave:
    """Twenty counties, those in `low` lowest (worst first); the others 90–110."""
    scores = {c: 110.0 - i for i, c in enumerate(COUNTIES["county_code"])}
    for rank, code in enumerate(low):
        scores[code] = 0.0 if code in (veto or {}) else 50.0 + rank
    frame = pl.DataFrame({"county_code": list(scores), "score": list(scores.values()),
                          "veto_reason": [(veto or {}).get(c) for c in scores]},
                         schema={"county_code": pl.String, "score": pl.Float64,
                                 "veto_reason": pl.String})
    return PublishedWave(label, frame, pl.DataFrame(schema={
        "county_code": pl.String, "indicator_id": pl.String, "value": pl.Float64}))


def _row(register: pl.DataFrame, code: str, wave: str, action: str) -> dict:
    rows = register.filter((pl.col("county_code") == code) & (pl.col("wave") == wave)
                           & (pl.col("action") == action))
    assert rows.height == 1, register
    return rows.row(0, named=True)


def test_each_consequence_is_one_row_with_level_tier_status_and_deadline(defs):
    waves = [_wave("2021", ["C00", "C01", "C02", "C03"], veto={"C00": "发现非法种植毒品原植物"}),
             _wave("2022", ["C04", "C05", "C06"]), _wave("2023", ["C07", "C08", "C09"]),
             _wave("2024", ["C10", "C11", "C12"])]
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS)
    register = consequences(result, "2024")
    assert set(register.columns) >= {"level", "tier", "status", "deadline", "official"}
    listed = _row(register, "C01", "2021", "挂牌整治")
    assert (listed["level"], listed["tier"], listed["deadline"]) == ("省", "省挂牌整治", "2023")
    assert listed["status"] == "逾期未摘帽"              # never inspected, past 2023
    assert _row(register, "C00", "2021", "一票否决")["tier"] == "一票否决"
    criticism = _row(register, "C10", "2024", "通报批评")
    assert criticism["deadline"] == "2025" and criticism["status"].startswith("整改中")
    assert _row(register, "C01", "2021", "通报批评")["status"] == "整改期限已到"
    # C03 is 4th lowest in 2021: bottom 10, not bottom 3 → its city's own list, off it in 2022
    city = _row(register, "C03", "2021", "市挂牌重点整治")
    assert (city["level"], city["tier"], city["status"]) == ("市", "市挂牌重点整治", "已摘帽（2022）")
    assert _row(register, "C03", "2022", "市摘帽")["status"] == "已摘帽"
    # as of 2021 the same county is still on the city's list
    assert _row(consequences(result, "2021"), "C03", "2021", "市挂牌重点整治")["status"] == "挂牌中"


def test_city_decisions_are_compared_once_recorded(defs):
    waves = [_wave("2021", ["C00", "C01", "C02", "C03", "C04"])]
    official = pl.DataFrame({"county_code": ["C03", "C05"], "wave": ["2021", "2021"],
                             "level": ["市", "市"], "action": ["市挂牌重点整治"] * 2})
    result = run_listing(defs.scheme, defs.indicators, waves, COUNTIES, NO_INSPECTIONS, official)
    register = consequences(result, "2021")
    assert _row(register, "C03", "2021", "市挂牌重点整治")["official"] == "一致"
    assert "未见正式决定" in _row(register, "C04", "2021", "市挂牌重点整治")["official"]
    only = _row(register, "C05", "2021", "市挂牌重点整治")
    assert only["status"] == "仅有正式决定" and "规则不支持" in only["official"]
    # criticisms were never recorded officially: not compared, shown as —
    assert _row(register, "C00", "2021", "通报批评")["official"] == "—"


def test_cli_lists_every_consequence_and_the_sample_still_matches(built_db, capsys):
    assert main(["listing", "--wave", "2025", "--db", str(built_db), "--format", "csv"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out),
                        schema_overrides={"county_code": pl.String, "wave": pl.String,
                                          "deadline": pl.String})
    assert table.columns == ["county_code", "county_name", "city_name", "wave", "level", "action",
                             "tier", "status", "deadline", "reason", "official"]
    actions = set(table["action"])
    assert {"挂牌整治", "重新挂牌", "摘帽", "通报批评", "考核得分记零", "一票否决",
            "市挂牌重点整治", "市摘帽", "逾期未摘帽"} <= actions
    province = table.filter((pl.col("level") == "省")
                            & pl.col("action").is_in(["挂牌整治", "重新挂牌", "摘帽"]))
    assert province.height == 22 and (province["official"] == "一致").all()
    zeroed = table.filter(pl.col("action") == "考核得分记零")
    assert zeroed.height == 1 and zeroed["wave"][0] == "2023"   # criticised in 2022 and 2023


# -- configurable tiers and triggers ([[tiers]] in scheme.toml) -----------------------------------

TIERS_TOML = '''
[[tiers]]
id = "rectify"
label = "重点整治"
level = "省"
[[tiers.triggers]]
rank_bottom = 2
[[tiers.triggers]]
veto = true

[[tiers]]
id = "warning"
label = "预警通告"
level = "省"
match = "all"
[[tiers.triggers]]
score_below = 95
[[tiers.triggers]]
indicator = "outflow_traffickers"
op = ">="
value = 5

[[tiers]]
id = "watch"
label = "重点关注"
level = "市"
[[tiers.triggers]]
rank_bottom = 1
'''


def _scheme_with(tmp_path, extra: str):
    import shutil

    from pipelines.scheme.definitions import SURVEYS_DIR, load_definitions

    folder = tmp_path / "surveys"
    shutil.copytree(SURVEYS_DIR, folder, ignore=shutil.ignore_patterns("sample"))
    with (folder / "scheme.toml").open("a", encoding="utf-8") as handle:
        handle.write(extra)
    return load_definitions(folder)


def test_tiers_are_checked_when_the_toml_loads(tmp_path):
    import pytest

    from pipelines.scheme.definitions import DefinitionError

    bad = TIERS_TOML.replace("rank_bottom = 2", "rank_bottom = 2\nscore_below = 60") \
        .replace('"outflow_traffickers"', '"weather"').replace('level = "市"', 'level = "县"')
    with pytest.raises(DefinitionError) as caught:
        _scheme_with(tmp_path, bad)
    text = "\n".join(caught.value.problems)
    assert "tiers[1].triggers[1]：须且只须给出" in text
    assert "指标目录中没有指标 'weather'" in text
    assert "tiers[3].level：level 应为 省 / 市 之一" in text


def test_each_tier_fires_on_its_triggers_first_tier_wins_per_level(tmp_path):
    defs = _scheme_with(tmp_path, TIERS_TOML)
    assert [t.label for t in defs.scheme.tiers] == ["重点整治", "预警通告", "重点关注"]
    wave = _wave("2021", ["C00", "C01", "C02", "C12"], veto={"C12": "发现非法种植毒品原植物"})
    outflow = {"C02": 6.0, "C03": 9.0, "C04": 1.0}    # C03 scores 107: ≥ 95, not warned
    wave = PublishedWave(wave.wave, wave.scores, pl.DataFrame(
        {"county_code": list(outflow), "indicator_id": ["outflow_traffickers"] * 3,
         "value": list(outflow.values())}))
    result = run_listing(defs.scheme, defs.indicators, [wave], COUNTIES, NO_INSPECTIONS)
    register = consequences(result, "2021")
    tier_of = {(r["county_code"], r["level"]): r["action"]
               for r in register.filter(pl.col("status") == "本期列入").iter_rows(named=True)}
    # C12 (veto, 0) and C00 (50) are the bottom 2; C01 (51) would be 3rd but C12 takes a place
    assert tier_of[("C12", "省")] == tier_of[("C00", "省")] == "重点整治"
    assert tier_of[("C02", "省")] == "预警通告"                 # 52 < 95 and outflow 6 ≥ 5
    assert ("C01", "省") not in tier_of and ("C03", "省") not in tier_of
    # city level: the lowest of each city — C12 in B (vetoed, 0), C00 in A
    assert {k for k, v in tier_of.items() if v == "重点关注"} == {("C00", "市"), ("C12", "市")}
    row = _row(register, "C02", "2021", "预警通告")
    assert row["tier"] == "预警通告" and "得分 52.00 低于 95" in row["reason"]
