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

from tests.simulation import simulated_histories


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
    # Wald-type intervals under-cover a little for shares near 100% (seen_nearby ≈ 96%)
    assert per_item["hit"].min() >= 0.915, per_item


def test_composite_intervals_cover_the_true_composite_about_95_percent(simulated):
    hits, errors = [], []
    for wave in simulated:
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
