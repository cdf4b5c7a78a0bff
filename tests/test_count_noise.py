"""Count-based indicators carry their Poisson noise everywhere (issue 21, fault 3): declared in the
catalogue, in the composite's standard error (a change of two counts by the delta method's variance)
and redrawn, with the changes recomputed, by the simulation that checks coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.scheme.definitions import SURVEYS_DIR, DefinitionError, load_definitions
from pipelines.stats.wave_scores import change_counts, score_frames
from pipelines.synth.sample import WAVES, sample_counties, simulate_wave, true_indicator_expectations


@pytest.fixture(scope="module")
def wave_2025():
    return simulate_wave("2025", seed=4)


def test_every_count_based_component_is_declared_noisy(defs):
    catalogue = defs.indicators
    for comp in defs.scheme.components:
        if comp.source != "indicator":
            continue
        kind = catalogue.get(comp.indicator).kind
        if kind in ("count", "change_pct"):
            assert comp.poisson, comp.id
    change = next(c for c in defs.scheme.components if c.id == "new_users_change")
    assert change.change_of == "new_users"
    assert catalogue.get("new_users").noise == "poisson"
    assert {i.id for i in catalogue.indicators if i.noise == "poisson"} >= {
        "new_users", "outflow_traffickers", "cadres_involved", "students_involved"}


def test_previous_count_is_recovered_from_the_count_and_its_change():
    count, previous = change_counts(np.array([900.0, 0.0, 50.0, np.nan]),
                                    np.array([-10.0, -100.0, 25.0, 5.0]))
    assert np.allclose(previous[[0, 2]], [1000.0, 40.0])
    assert np.isnan(previous[[1, 3]]).all()
    assert np.array_equal(count, np.array([900.0, 0.0, 50.0, np.nan]), equal_nan=True)


def test_composite_se_includes_the_delta_method_variance_of_a_change(wave_2025, defs):
    """One county reports 900 new users, −10% on the year before (so 1,000 then). The change
    100·(N₁/N₀ − 1) has delta-method variance 100²·(N₁/N₀)²·(1/N₁ + 1/N₀); on goalposts −40…40
    with weight 4 (lower is better) a point of change is 4/80 composite points. The composite's
    variance must hold the survey part, the outflow count's part and this one."""
    counties = sample_counties()
    code = counties["county_code"][10]
    indicators = wave_2025.indicators.with_columns(
        pl.when((pl.col("county_code") == code) & (pl.col("indicator_id") == "new_users"))
        .then(900.0)
        .when((pl.col("county_code") == code) & (pl.col("indicator_id") == "new_users_change"))
        .then(-10.0).otherwise(pl.col("value")).alias("value"))
    scores = score_frames(wave_2025.responses, indicators, counties, defs, replicates=20_000,
                          seed=3)
    change = next(c for c in defs.scheme.components if c.id == "new_users_change")
    per_point = change.weight / 100 * 100 / (change.hi - change.lo)
    analytic = (per_point * 100 * 0.9) ** 2 * (1 / 900 + 1 / 1000)

    parts = scores.components.filter(pl.col("county_code") == code)
    points_se = dict(zip(parts["component_id"], parts["points_se"], strict=True))
    assert points_se["new_users_change"] ** 2 == pytest.approx(analytic, rel=0.04)

    row = scores.composite.filter(pl.col("county_code") == code)
    survey_var = scores.model.survey_part_variance()[10]
    rest = row["se"][0] ** 2 - survey_var - points_se["outflow_traffickers"] ** 2
    assert rest == pytest.approx(analytic, rel=0.04)


def test_bundled_changes_carry_noise_of_the_size_the_audit_found(wave_2025, defs):
    scores = score_frames(wave_2025.responses, wave_2025.indicators, sample_counties(), defs)
    change = scores.components.filter(pl.col("component_id") == "new_users_change")
    assert 0.4 < change["points_se"].median() < 1.2
    assert (change["ci_high"] > change["ci_low"]).mean() > 0.9


def test_simulated_waves_redraw_every_count_and_recompute_the_change():
    a, b = simulate_wave("2024", seed=1), simulate_wave("2024", seed=2)
    joined = a.indicators.join(b.indicators, on=["county_code", "indicator_id"], suffix="_b")
    defs = load_definitions()
    for ind in defs.indicators.indicators:
        if ind.noise == "none":
            continue
        rows = joined.filter(pl.col("indicator_id") == ind.id)
        differ = (rows["value"] != rows["value_b"]).mean()
        # cadres/students counts are mostly 0 in both draws
        assert differ > (0.1 if ind.id in ("cadres_involved", "students_involved",
                                           "violent_incidents") else 0.5), ind.id
    # the change is the one the redrawn count implies: a previous count that is a whole number
    wide = a.indicators.pivot("indicator_id", index="county_code", values="value")
    _, previous = change_counts(wide["new_users"].to_numpy(), wide["new_users_change"].to_numpy())
    known = ~np.isnan(previous) & (previous > 20)
    assert np.median(np.abs(previous[known] - np.round(previous[known]))) < 0.1


def test_simulated_changes_centre_on_the_true_change():
    truth = true_indicator_expectations("2023").filter(pl.col("indicator_id") == "new_users_change") \
        .sort("county_code")["expected_value"].to_numpy()
    draws = np.stack([simulate_wave("2023", seed=s).indicators
                      .filter(pl.col("indicator_id") == "new_users_change")
                      .sort("county_code")["value"].to_numpy() for s in range(6)])
    error = draws.mean(axis=0) - truth
    # each draw's sd is ~15 points of change; the mean of 6 × 88 is within a point of the truth
    assert abs(error.mean()) < 1.5
    assert WAVES.index("2023") == 2


def _copied(tmp_path: Path, old: str, new: str) -> Path:
    for name in ("questionnaire.toml", "indicators.toml", "scheme.toml"):
        shutil.copy(SURVEYS_DIR / name, tmp_path / name)
    path = tmp_path / "indicators.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("old, new, expected", [
    ('noise = "poisson_change"\ncount = "new_users"\n', 'noise = "poisson_change"\n',
     "须用 count 指明其计数指标"),
    ('count = "new_users"', 'count = "social_control_rate"', "须用 count 指明其计数指标"),
    ('kind = "rate"\n', 'kind = "rate"\nnoise = "poisson"\n', "只适用于 kind = \"count\""),
    ('noise = "poisson_change"', 'noise = "gaussian"', "noise 应为 none / poisson / poisson_change"),
])
def test_inconsistent_noise_declarations_are_refused(tmp_path, old, new, expected):
    with pytest.raises(DefinitionError) as caught:
        load_definitions(_copied(tmp_path, old, new))
    assert expected in str(caught.value)
