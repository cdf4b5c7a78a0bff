"""Interval coverage by simulation against the sample generator's ground truth.

Fresh surveys of every wave are drawn from the generator (same counties, latent quality, margins
and design; new respondents and new Poisson counts), scored, and every 95% interval is checked
against the true value: items from the exact answer shares in truth/answer_shares.csv.gz, the
composite from those and the expected counts in truth/indicator_expectations.csv.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.scheme.definitions import load_definitions
from pipelines.stats.normalise import normalise
from pipelines.synth.sample import SEED, sample_counties, true_indicator_expectations
from tests.simulation import HISTORIES, simulated_histories

pytestmark = pytest.mark.slow   # 40 simulated waves


@pytest.fixture(scope="module")
def simulated():
    return [wave for history in simulated_histories() for wave in history]


def test_item_intervals_cover_the_true_means_about_95_percent(simulated):
    items = pl.concat([w.scores.items.join(w.item_truth, on=["county_code", "item_id"])
                       for w in simulated]).with_columns(
        ((pl.col("ci_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high")))
        .alias("hit"))
    coverage = items["hit"].mean()
    per_item = items.group_by("item_id").agg(pl.col("hit").mean()).sort("item_id")
    print(f"item coverage {coverage:.4f} over {items.height} intervals\n{per_item}")
    assert 0.93 <= coverage <= 0.97
    # share items get boundary-respecting intervals (pipelines/stats/ciprop.py): the t interval
    # covered 92.5% on seen_nearby (true shares near 95%)
    assert per_item["hit"].min() >= 0.93, per_item


def test_composite_intervals_cover_the_true_composite_about_95_percent(simulated):
    hits, errors = [], []
    for wave in simulated:
        assert {c.id for c in wave.scores.model.components if c.poisson} >= {
            "outflow_traffickers", "new_users_change"}       # count noise is in the composite
        # a veto is a rule's outcome, not an estimate: redrawn cadre/student counts can fire one
        comp = wave.scores.composite.filter(~pl.col("veto")).join(wave.composite_truth,
                                                                  on="county_code")
        hits.append(((comp["ci_low"] <= comp["truth"]) & (comp["truth"] <= comp["ci_high"]))
                    .to_numpy())
        errors.append((comp["score"] - comp["truth"]).to_numpy())
    hits, errors = np.concatenate(hits), np.concatenate(errors)
    print(f"composite coverage {hits.mean():.4f} over {hits.size} intervals; "
          f"mean error {errors.mean():+.3f}")
    assert 0.93 <= hits.mean() <= 0.97


@pytest.mark.slow
def test_count_based_component_intervals_cover_their_true_values(simulated):
    """Each noisy indicator component (a count per 100k, a change of two counts) against the
    score of its true expected value (a change: 100·(λ/λ_previous − 1))."""
    defs = load_definitions()
    noisy = [c for c in defs.scheme.components if c.poisson]
    per_wave = len(simulated) // HISTORIES
    rates = {}
    for comp in noisy:
        hits = []
        for index, wave in enumerate(simulated):
            base_seed = SEED + index // per_wave
            counties = sample_counties(base_seed)
            truth = true_indicator_expectations(wave.scores.wave, base_seed) \
                .filter(pl.col("indicator_id") == comp.indicator).sort("county_code")
            raw = truth["expected_value"].to_numpy()
            if comp.per_100k_population:
                raw = raw / (counties.sort("county_code")["population"].to_numpy() / 100_000)
            scores = wave.scores.components.filter(pl.col("component_id") == comp.id) \
                .sort("county_code")
            true_score = normalise(raw, comp)
            hits.append(((scores["ci_low"].to_numpy() <= true_score + 1e-9)
                         & (true_score <= scores["ci_high"].to_numpy() + 1e-9)))
        rates[comp.id] = np.concatenate(hits).mean()
    print(f"count-based component coverage {rates}")
    for comp_id, rate in rates.items():
        assert 0.93 <= rate <= 0.975, (comp_id, rate)
