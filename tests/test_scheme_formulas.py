"""Formula options of a scheme: share-of-answers items, step points, bonus and deduction
components on a declared base, grade bands; and the shipped second scheme, written differently,
loading and scoring the sample with no code change."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import polars as pl
import pytest

from pipelines.scheme.definitions import (
    SURVEYS_DIR,
    Component,
    DefinitionError,
    load_definitions,
)
from pipelines.stats.normalise import normalise
from pipelines.store.warehouse import Warehouse

EXAMPLE = SURVEYS_DIR / "schemes" / "example_share_satisfied.toml"


@pytest.fixture(scope="module")
def example():
    return load_definitions(scheme_file=EXAMPLE)


@pytest.fixture(scope="module")
def example_2025(built_db, example):
    from pipelines.results.wave import score_wave

    wh = Warehouse.open(built_db, read_only=True)
    try:
        return score_wave(wh, example, "2025"), wh.responses("2025")
    finally:
        wh.close()


def _indicator(**fields) -> Component:
    return Component(id="x", label="x", source="indicator", indicator="x", **fields)


def test_step_points_by_threshold_higher_and_lower():
    comp = _indicator(weight=10, normalisation="steps", steps=((95, 6), (98, 10)))
    got = normalise(np.array([94.9, 95.0, 97.9, 98.0, np.nan]), comp)
    assert np.allclose(got[:4], [0, 60, 60, 100]) and np.isnan(got[4])
    lower = dataclasses.replace(comp, direction="lower", steps=((1.0, 10), (2.0, 6)))
    assert np.allclose(normalise(np.array([0.5, 1.5, 3.0]), lower), [100, 60, 0])


def test_per_unit_points_are_capped_and_a_deduction_takes_them_off():
    bonus = _indicator(weight=5, normalisation="per_unit", per_unit=0.5, role="bonus")
    assert np.allclose(normalise(np.array([0, 4, 30]), bonus) * 5 / 100, [0, 2, 5])
    deduction = dataclasses.replace(bonus, role="deduction", per_unit=1.0)
    assert np.allclose(normalise(np.array([0, 3, 9]), deduction) * 5 / 100, [0, -3, -5])


def test_the_example_scheme_loads_with_its_formula_options(example):
    scheme = example.scheme
    assert scheme.base == 100 and len(scheme.grades) == 4
    roles = {c.id: c.role for c in scheme.components}
    assert roles["cases_bonus"] == "bonus" and roles["incidents_deduction"] == "deduction"
    assert sum(c.weight for c in scheme.components) == 110      # 100 base + 5 bonus + 5 off
    assert scheme.items["satisfaction"].points == {1: 100, 2: 100, 3: 0, 4: 0, 5: 0}
    assert [scheme.grade(s) for s in (95, 90, 85, 60, 59.9)] == \
        ["先进", "先进", "合格", "基本合格", "不合格"]


def test_a_share_item_is_the_weighted_share_answering_satisfied(example_2025):
    scores, responses = example_2025
    answered = responses.filter(pl.col("q_satisfaction").is_in([1, 2, 3, 4, 5]))
    direct = answered.group_by("county_code").agg(
        ((pl.col("q_satisfaction") <= 2).cast(pl.Float64) * pl.col("weight")).sum()
        .truediv(pl.col("weight").sum()).mul(100).alias("direct"))
    item = scores.items.filter(pl.col("item_id") == "satisfaction").join(direct, on="county_code")
    assert item.height == 88
    assert np.allclose(item["mean"], item["direct"], atol=1e-9)
    # a design-based interval of a 0/100 share: positive se, inside 0–100
    assert (item["se"] > 0).all() and (item["ci_low"] >= 0).all() and (item["ci_high"] <= 100).all()


def test_the_example_scores_the_sample_as_base_plus_bonus_minus_deduction(example_2025, example):
    scores, _ = example_2025
    comps = scores.components
    points = comps.pivot("component_id", index="county_code", values="points")
    total = points.select(pl.col("county_code"),
                          pl.sum_horizontal(pl.exclude("county_code")).alias("total"))
    joined = scores.composite.join(total, on="county_code").filter(~pl.col("veto"))
    assert np.allclose(joined["score"], joined["total"], atol=1e-9)
    deduction = points["incidents_deduction"]
    assert (deduction <= 0).all() and (deduction < 0).any() and (deduction >= -5).all()
    bonus = points["cases_bonus"]
    assert (bonus >= 0).all() and (bonus <= 5).all() and bonus.n_unique() > 3
    steps = set(points["control_steps"].round(9).to_list())
    assert steps <= {0.0, 6.0, 10.0} and len(steps) >= 2
    grades = scores.composite.select("score", "grade").drop_nulls()
    assert all(example.scheme.grade(s) == g for s, g in grades.iter_rows())
    assert (scores.composite["se"].drop_nulls() > 0).any()


def _edited(tmp_path, old: str, new: str):
    folder = tmp_path / "surveys"
    shutil.copytree(SURVEYS_DIR, folder, ignore=shutil.ignore_patterns("sample"))
    path = folder / "schemes" / EXAMPLE.name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("weight = 40", "weight = 45", "各分项权重之和应为 100，实际为 105（加分、扣分项不计）"),
    ("steps = [[95, 6], [98, 10]]", "steps = [[95, 6], [98, 12]]", "不超过该分项权重 10"),
    ("share = [1, 2]            # 满意率：满意 + 比较满意", "share = [1, 9]", "应为该题有效答案代码的列表"),
    ("at_least = 80", "at_least = 95", "等级应从高到低排列"),
    ("per_unit = 1\n", "", "须且只须与 per_unit 一起给出"),
    ('role = "bonus"', 'role = "extra"', "role 应为 base / bonus / deduction 之一"),
])
def test_bad_formula_options_are_refused_when_the_toml_loads(tmp_path, old, new, message):
    with pytest.raises(DefinitionError) as caught:
        load_definitions(scheme_file=_edited(tmp_path, old, new))
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_cli_scores_by_another_scheme_file(built_db, capsys):
    import io

    from pipelines.cli import main

    assert main(["score", "--wave", "2025", "--db", str(built_db), "--format", "csv",
                 "--scheme", str(EXAMPLE)]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"grade", "satisfied_share", "cases_bonus", "incidents_deduction"} <= set(table.columns)
    assert table.height == 88


def test_the_example_runs_through_listing_risk_and_register(built_db, example):
    """No code change: every wave scored by the example, its risk table, its tiers."""
    from pipelines.ranking.consequences import consequences
    from pipelines.ranking.risk import risk_table
    from pipelines.results.wave import listing_result, scored_history

    wh = Warehouse.open(built_db, read_only=True)
    try:
        history = scored_history(wh, example, "2025")
        listing = listing_result(wh, example, history)
    finally:
        wh.close()
    risk = risk_table(history, example, draws=500)
    assert risk.height == 88 and risk["p_bottom3"].sum() == pytest.approx(3, abs=0.5)
    register = consequences(listing, "2025")
    tiers = register.filter(pl.col("status") == "本期列入")
    assert {"重点整治", "预警通告"} <= set(tiers["tier"])
    # the rectify tier (bottom 3 or a veto) holds at least the province's bottom 3 every wave
    assert tiers.filter(pl.col("tier") == "重点整治").group_by("wave").len()["len"].min() >= 3
