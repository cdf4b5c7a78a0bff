"""Next-wave veto risk per county (issue 21, fault 4): the count rules' counts (events below the
threshold included) and the county's size, shrunk toward the flat provincial rate, checked by
rolling-origin backtests (Brier and log score) on the sample province and on simulated provinces
whose veto risk is known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import poisson

from pipelines.ranking.forecast import (
    History,
    history_of,
    next_wave_probabilities,
    veto_rate,
    veto_risk,
)
from pipelines.ranking.risk import risk_table
from pipelines.ranking.veto_risk import (
    VetoRules,
    backtest_veto_risk,
    blend_weight,
    fit_counts,
    flat_veto_rate,
    rule_probability,
    veto_probabilities,
)
from pipelines.results.wave import scored_history
from pipelines.store.warehouse import Warehouse

RULES = (("cultivation_found", ">=", 1.0), ("cadres_involved", ">=", 2.0),
         ("students_involved", ">=", 2.0))


@pytest.fixture(scope="module")
def sample_history(built_db, defs):
    warehouse = Warehouse.open(built_db, read_only=True)
    try:
        return scored_history(warehouse, defs, "2025")
    finally:
        warehouse.close()


def _province(rng: np.random.Generator, counties: int, waves: int, *, heterogeneous: bool,
              ) -> tuple[np.ndarray, VetoRules, np.ndarray]:
    """Counts of the three sample rules from a known truth: (vetoed C × T, rules, true P(veto))."""
    population = np.exp(rng.normal(np.log(400_000), 0.5, counties))
    size = population / population.mean()
    if heterogeneous:   # events scale with the county's size, and some counties are far worse
        frailty = rng.gamma(0.7, 1 / 0.7, (3, counties))
        rates = np.array([0.01, 0.15, 0.10])[:, None] * size[None, :] * frailty
    else:
        rates = np.tile(np.array([0.006, 0.12, 0.08])[:, None], (1, counties))
    counts = rng.poisson(rates[:, :, None], (3, counties, waves)).astype(float)
    counts[0] = np.minimum(counts[0], 1)                                # cultivation is a flag
    thresholds = np.array([1.0, 2.0, 2.0])[:, None, None]
    vetoed = (counts >= thresholds).any(axis=0)
    true = 1 - np.prod(poisson.cdf(thresholds[:, :, 0] - 1, rates), axis=0)
    rules = VetoRules(tuple(r[0] for r in RULES), tuple(r[1] for r in RULES),
                      tuple(r[2] for r in RULES), counts, population)
    return vetoed, rules, true


def test_rule_probability_is_the_poisson_tail_without_spread():
    counts = np.zeros((50, 4))
    counts[::5, 1] = 1.0
    fit = fit_counts(counts, np.full(50, 1e5))
    assert fit.dispersion == 0.0
    mu = fit.mean
    assert mu == pytest.approx(np.full(50, (10 + 0.5) / 200), rel=1e-6)
    assert rule_probability(">=", 2, fit) == pytest.approx(1 - np.exp(-mu) * (1 + mu), rel=1e-9)
    assert rule_probability(">", 1, fit) == pytest.approx(1 - np.exp(-mu) * (1 + mu), rel=1e-9)
    assert rule_probability("==", 0, fit) == pytest.approx(np.exp(-mu), rel=1e-9)


def test_a_county_with_repeated_events_is_riskier_when_counties_differ():
    rng = np.random.default_rng(11)
    vetoed, rules, true = _province(rng, 200, 8, heterogeneous=True)
    p = veto_probabilities(vetoed, rules)
    assert blend_weight(vetoed, rules) >= 0.5
    assert np.corrcoef(p, true)[0, 1] > 0.5
    assert p.mean() == pytest.approx(flat_veto_rate(vetoed), rel=1e-9)


def test_county_model_beats_the_flat_rate_where_risk_differs_between_counties():
    """Rolling-origin backtest on 20 simulated provinces whose counties' veto risks differ."""
    totals = []
    for seed in range(20):
        vetoed, rules, _ = _province(np.random.default_rng(seed), 120, 6, heterogeneous=True)
        totals.append(backtest_veto_risk(vetoed, rules, [str(w) for w in range(6)])
                      .select(pl.exclude("wave")).sum())
    total = pl.concat(totals).sum()
    print(total)
    assert total["brier_model"][0] < total["brier_flat"][0]
    assert total["log_model"][0] < 0.97 * total["log_flat"][0]


def test_county_model_keeps_the_flat_rate_where_risk_is_flat():
    """The sample generator's own truth: every county has the same rates."""
    totals, weights = [], []
    for seed in range(20):
        vetoed, rules, _ = _province(np.random.default_rng(100 + seed), 88, 5, heterogeneous=False)
        totals.append(backtest_veto_risk(vetoed, rules, [str(w) for w in range(5)])
                      .select(pl.exclude("wave")).sum())
        weights.append(blend_weight(vetoed, rules))
    total = pl.concat(totals).sum()
    print(total, weights)
    assert np.mean(np.array(weights) == 0) >= 0.8
    assert total["log_model"][0] <= 1.01 * total["log_flat"][0]
    assert total["brier_model"][0] <= 1.01 * total["brier_flat"][0]


def test_sample_backtest_is_no_worse_than_the_flat_rate(sample_history):
    history = history_of(sample_history)
    assert history.veto_rules is not None
    assert history.veto_rules.subjects == tuple(r[0] for r in RULES)
    result = backtest_veto_risk(history.vetoed, history.veto_rules, history.waves)
    total = result.select(pl.exclude("wave")).sum()
    print(result, total)
    assert total["brier_model"][0] <= total["brier_flat"][0] + 1e-12
    assert total["log_model"][0] <= total["log_flat"][0] + 1e-12


def test_next_wave_listing_uses_each_countys_own_veto_risk():
    """Two counties far above the others reach the bottom 3 only through a veto: each at its own
    chance, not at the province's."""
    counties, waves = 30, 6
    rng = np.random.default_rng(5)
    deviation = np.linspace(-3, 3, counties)[:, None] + rng.normal(0, 0.3, (counties, waves))
    deviation[:2] += 100.0
    vetoed = np.zeros((counties, waves), dtype=bool)
    vetoed[5, 2] = True
    past = History([f"c{i}" for i in range(counties)], [str(w) for w in range(waves)], deviation,
                   np.full((counties, waves), 0.09), np.full((counties, waves), 300),
                   deviation + 80, vetoed)
    chances = np.full(counties, 0.01)
    chances[0], chances[1] = 0.20, 0.002
    draws = 40_000
    p = next_wave_probabilities(past, draws=draws, seed=3, bottoms=(3,), vetoes=chances)[3]
    for c in (0, 1):
        assert abs(p[c] - chances[c]) < 4 * np.sqrt(chances[c] * (1 - chances[c]) / draws), c
    # without recorded rules the history keeps the flat rate for everyone
    flat = next_wave_probabilities(past, draws=draws, seed=3, bottoms=(3,))[3]
    rate = veto_rate(past)
    assert abs(flat[0] - rate) < 4 * np.sqrt(rate * (1 - rate) / draws)


def test_risk_table_shows_each_countys_next_wave_veto_risk(sample_history, defs):
    table = risk_table(sample_history, defs, draws=1000, rank_cs_replications=200)
    expected = veto_risk(history_of(sample_history))
    assert np.allclose(table["p_veto_next"].to_numpy(), expected)
    # a county can only be listed next time by its survey score or a veto
    assert (table["p_bottom3_next"].to_numpy() >= expected - 0.02).all()
