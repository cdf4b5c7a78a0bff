"""The sample planner (抽样方案): the allocator's arithmetic and its sense on constructed provinces,
the CLI's three formats, the analysts' page, and (slow) the simulated gain against the generator's
truth."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import openpyxl
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.present.plan_views import floor_note, parse_fixed
from pipelines.ranking.plan import (
    Outlook,
    PlanError,
    PlanSettings,
    _Curves,
    allocate,
    assess,
    bounded_shares,
    plan_outlook,
    true_level_draws,
)
from pipelines.synth.sample import sample_counties
from tests.test_app import navigation_not_pages_directory, run_app, sign_in  # noqa: F401


def province(count: int = 40, *, survey: float = 300.0, counts: float = 0.2,
             spread: float = 0.05, seed: int = 1) -> Outlook:
    """Counties 1 point apart (deviations −20…+19), a forecast sd of `spread`, survey variance
    `survey` / n and a count part `counts`: a county's chance of a wrong side is known."""
    rng = np.random.default_rng(seed)
    mean = np.arange(count, dtype=float) - count // 2 + rng.normal(0, 0.01, count)
    return Outlook([f"99{i:04d}" for i in range(count)], mean, np.full(count, spread**2),
                   np.full(count, survey), np.full(count, counts), np.full(count, 300.0), 0.0)


def settings(view: Outlook, **options) -> PlanSettings:
    return PlanSettings(**({"total": 300 * len(view.counties), "min_per_county": 100,
                            "draws": 1000} | options))


def test_allocation_spends_the_total_within_the_bounds_and_keeps_fixed_counties():
    view = province()
    chosen = settings(view, max_per_county=900, fixed={"990002": 450, "990030": 120})
    n = allocate(view, chosen)
    assert n.dtype.kind == "i" and n.sum() == chosen.total
    assert n.min() >= 100 and n.max() <= 900
    assert n[2] == 450 and n[30] == 120
    shares = bounded_shares(np.arange(1, 41, dtype=float), view, chosen)
    assert shares.sum() == chosen.total and shares.min() >= 100 and shares.max() <= 900
    assert shares[2] == 450 and shares[30] == 120
    assert np.all(np.diff(np.delete(shares, [2, 30])) >= 0)   # in proportion, as far as bounds allow


@pytest.mark.parametrize(("options", "message"), [
    ({"total": 3000}, "不足以满足每县最少样本量"),
    ({"max_per_county": 200}, "超过每县最多样本量之和"),
    ({"fixed": {"000000": 300}}, "区县代码不存在"),
    ({"max_per_county": 50}, "不能小于最少样本量"),
])
def test_settings_that_admit_no_allocation_are_refused_in_chinese(options, message):
    view = province()
    with pytest.raises(PlanError, match=message):
        allocate(view, settings(view, **options))


def test_interviews_go_to_the_counties_at_the_lines():
    """Bottom-3 line between the 3rd and 4th lowest, bottom-10 between the 10th and 11th: the
    counties next to them get the most; the safest half gets the minimum."""
    view = province()
    n = allocate(view, settings(view))
    near = [2, 3, 9, 10]
    assert n[near].min() > np.median(n)
    assert (n[25:] == 100).all()
    only3 = allocate(view, settings(view, weights={3: 1.0, 10: 0.0}))
    assert only3[[2, 3]].min() > only3[[9, 10]].max()
    assert (only3[[9, 10]] == 100).all()


def test_more_interviews_never_raise_the_expected_error():
    view = province()
    theta = true_level_draws(view, 1000, 0)
    curves = _Curves(view, theta, {3: 1.0, 10: 1.0})
    values = [curves.values(allocate(view, settings(view, total=t), theta)).sum()
              for t in (6000, 9000, 12000, 18000)]
    assert np.all(np.diff(values) < 0)


def test_counties_whose_error_no_interview_reduces_get_the_minimum():
    view = province()
    per_interview = view.per_interview.copy()
    per_interview[[2, 3]] = 1e-9                 # their noise is all counts
    flat = Outlook(view.counties, view.mean, view.level_var, per_interview, view.fixed_var,
                   view.n_current, 0.0)
    n = allocate(flat, settings(flat))
    assert (n[[2, 3]] == 100).all() and n[[9, 10]].min() > 300


def test_the_plan_places_fewer_counties_wrongly_than_equal_allocation_when_survey_noise_rules():
    """Scored on the actual objective (published ranks from noisy draws, lines moving with
    everyone's noise), on fresh true levels: the plan beats equal allocation at the same total."""
    view = province(spread=0.3)
    chosen = settings(view, draws=2000)
    theta = true_level_draws(view, 2000, 5)
    planned = assess(view, allocate(view, chosen), theta, chosen.weights, 6)
    equal = assess(view, np.full(40, 300), theta, chosen.weights, 6)
    assert planned.expected < 0.8 * equal.expected
    assert planned.expected + 2 * planned.se < equal.expected - 2 * equal.se


def test_the_floor_is_what_unlimited_interviews_leave_and_count_noise_raises_it():
    """The floor (every county's survey exact, its count noise left) lies under every allocation;
    with little count noise it is far below them, with count noise ten times the survey's at 300
    interviews it is close to equal allocation and so is the plan: no allocation gains much."""
    quiet = province(spread=0.3, counts=0.05)
    plan = plan_outlook(quiet, settings(quiet, draws=2000))
    expected = dict(zip(plan.summary["allocation"], plan.summary["expected_wrong"], strict=True))
    assert plan.floor < 0.5 * expected["planned"] < expected["equal"]
    noisy = province(spread=0.3, counts=10.0)
    plan = plan_outlook(noisy, settings(noisy, draws=2000))
    expected = dict(zip(plan.summary["allocation"], plan.summary["expected_wrong"], strict=True))
    assert plan.floor < expected["planned"] <= expected["equal"]
    assert plan.floor > 0.8 * expected["equal"]
    assert "不设上限" in floor_note(plan) and f"{plan.floor:.2f}" in floor_note(plan)


def test_simulated_waves_of_different_sizes_can_share_their_counts():
    """Common random numbers for comparing plans: the same count_seed, the same Poisson counts."""
    from pipelines.synth.sample import simulate_wave

    sizes = dict.fromkeys(sample_counties()["county_code"].to_list(), 120)
    small = simulate_wave("2025", seed=3, sizes=sizes, count_seed=9)
    large = simulate_wave("2025", seed=3, sizes=dict.fromkeys(sizes, 240), count_seed=9)
    assert small.indicators.equals(large.indicators)
    assert small.responses.height * 2 == large.responses.height
    apart = simulate_wave("2025", seed=3, sizes=dict.fromkeys(sizes, 240))
    assert not apart.indicators.equals(large.indicators)


def test_fixed_sizes_are_read_from_text():
    assert parse_fixed(["990101=400", " 990102＝350 ", "", "990103：300"]) == {
        "990101": 400, "990102": 350, "990103": 300}
    for bad in (["990101"], ["990101=abc"], ["=300"], ["990101=0"]):
        with pytest.raises(ValueError):
            parse_fixed(bad)


@pytest.mark.slow
def test_cli_plan_in_three_formats(db_copy, capsys):
    args = ["plan", "--wave", "2025", "--total", "26400", "--min-per-county", "200",
            "--max-per-county", "900", "--fixed", "990101=400", "--db", str(db_copy)]
    assert main([*args, "--format", "csv"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out), schema_overrides={
        "county_code": pl.String})
    assert table.columns == ["county_code", "county_name", "city_name", "n_current", "n_planned",
                             "change", "wrong_current", "wrong_planned"]
    assert table.height == 88 and table["n_planned"].sum() == 26400
    assert table["n_planned"].min() >= 200 and table["n_planned"].max() <= 900
    assert table.filter(pl.col("county_code") == "990101")["n_planned"][0] == 400
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["counties"]) == 88
    assert [row["allocation"] for row in data["summary"]] == ["current", "equal", "proportional",
                                                             "planned"]
    assert main([*args, "--format", "table"]) == 0
    text = capsys.readouterr().out
    assert "建议样本量" in text and "平均分配" in text and "优化方案" in text
    assert re.search(r"调查部分约占 \d+%", text)
    assert re.search(r"不设上限（调查误差为零），预计错判区县数仍有 \d+\.\d\d", text)
    assert main(["plan", "--wave", "2025", "--total", "1000", "--db", str(db_copy)]) == 2
    assert "不足以满足每县最少样本量" in capsys.readouterr().err
    assert main(["plan", "--wave", "2025", "--total", "26400", "--line-weights", "1",
                 "--db", str(db_copy)]) == 2


def test_plan_page_for_analysts(monkeypatch, db_copy):
    from pipelines.present.access import hash_password
    from tests.test_app import PASSWORD

    at = sign_in(run_app(monkeypatch, db_copy, hash_password(PASSWORD, rounds=1000)))
    at.switch_page("pages/plan.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "抽样方案"
    table = at.dataframe[0].value
    assert len(table) == 88 and table["建议样本量"].sum() == at.number_input(key="plan_total").value
    assert [m.label for m in at.metric][-1] == "预计错判区县数·优化方案"
    assert any("调查部分只占约" in i.value and "不设上限" in i.value for i in at.info)
    at.number_input(key="plan_total").set_value(1000)
    next(b for b in at.button if b.label == "计算抽样方案").click().run()
    assert at.error and "不足以满足每县最少样本量" in at.error[0].value
    viewer = run_app(monkeypatch, db_copy)
    with pytest.raises(Exception):  # noqa: B017  (Streamlit raises its own API error type)
        viewer.switch_page("pages/plan.py").run()


def test_workbook_holds_the_plan_and_its_settings():
    from pipelines.exports.workbook import workbook_bytes
    from pipelines.present.plan_views import plan_table, settings_note, summary_table
    from pipelines.ranking.plan import SamplePlan

    view = pl.DataFrame({"county_code": ["990101"], "county_name": ["甲县"], "city_name": ["乙市"],
                         "n_current": [300], "n_planned": [420], "change": [120],
                         "wrong_current": [0.2], "wrong_planned": [0.15]})
    summary = pl.DataFrame({"allocation": ["current", "equal", "planned"],
                            "label": ["本期样本量", "平均分配", "优化方案"], "total": [300] * 3,
                            "expected_wrong": [0.2, 0.2, 0.15], "se": [0.01] * 3})
    plan = SamplePlan(view.select("county_code", "n_current", "n_planned", "wrong_current",
                                  "wrong_planned"), summary, PlanSettings(total=300),
                      floor=0.12)
    data = workbook_bytes([plan_table(view), summary_table(plan)],
                          note=settings_note(plan, "2025年度", (3, 10)))
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["抽样方案", "分配方式比较", "说明"]
    assert [c.value for c in book["抽样方案"][1]][:5] == ["区县代码", "区县", "市州", "本期样本量",
                                                       "建议样本量"]
    assert book["抽样方案"]["E2"].value == 420
    assert "总样本量 300" in book["说明"]["A2"].value
    assert any("预计错判区县数仍有 0.12" in (row[0].value or "") for row in book["说明"].iter_rows())


@pytest.mark.slow
def test_simulated_new_waves_place_fewer_counties_wrongly_than_equal_allocation():
    """New 2025 waves drawn from the generator's truth at equal and at planned allocation (same
    total 26,400, at least 200 a county), ranked on the survey components (`survey_only`, no
    count noise), 40 waves a province.

    How much the plan gains depends on where the true levels fall around the lines, so the test
    asks what the simulation can show with 40 waves: on the two independent truths the plan places
    significantly fewer counties wrongly than equal allocation (reduction above two simulation
    SEs; measured 24% ± 7% and 25% ± 8% on the merged tree's scheme, 36% ± 7% before the
    cultivation veto was dated from 2024); on the bundled truth, which has near-ties at both lines
    (2nd–5th lowest within 0.43 points, 8th–12th within 0.5, against a survey sd of 0.78 at 300
    interviews), it must not be significantly worse (measured 6.5% ± 3.9% over 200 waves). The
    issue's 25% is not met on the sample province (docs/methods/sample-plan.md)."""
    from pipelines.synth.sample import SEED
    from tests.plan_simulation import run

    for base_seed, better in ((SEED + 1, True), (SEED + 2, True), (SEED, False)):
        trial = run(waves=40, survey=True, base_seed=base_seed)
        cut, error = trial.reduction()
        print(f"province {base_seed - SEED}: reduction vs equal {cut:.1%} ± {error:.1%}: "
              + ", ".join(f"{name} {x.mean():.2f}" for name, x in trial.wrong.items()))
        assert (cut > 2 * error) if better else (cut > -2 * error), (base_seed - SEED, cut, error)


@pytest.mark.slow
def test_on_the_full_scheme_count_noise_sets_a_floor_no_allocation_moves():
    """The full sample scheme, new 2025 waves from the truth at equal and planned allocation
    (counts drawn alike at both): the true composite is at the expected counts, so the published
    score misses it by the survey's error and by the Poisson noise of `new_users_change` and
    `outflow_traffickers`, which no interview reduces.

    - The planner's split of each county's sampling variance is the simulation's: the survey part
      a/n at both allocations (sizes honoured, design effects kept) and the count part b.
    - The survey's own wrong placements (counts at their expectation), what an allocation
      changes, fall by at least 20% (measured 33% ± 5%, 200 waves).
    - With the counts as drawn, the plan is not worse than equal allocation, and infinitely many
      interviews would remove less than 25%: the issue's bar is out of reach of any allocation
      on this scheme (tests/plan_simulation.py; docs/methods/sample-plan.md)."""
    from tests.plan_simulation import run

    trial = run(waves=40)
    for name in trial.sizes:
        for found, expected in zip(trial.variance[name], trial.expected_variance[name],
                                   strict=True):
            assert 0.85 < np.median(found / expected) < 1.15, name
    cut, error = trial.reduction("survey_part")
    assert cut >= 0.20, (cut, error)
    cut, error = trial.reduction("wrong")
    assert cut > -2 * error, (cut, error)
    bound, error = trial.reduction("counts_only")
    assert bound + 2 * error < 0.25, (bound, error)
