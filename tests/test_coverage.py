"""Interval coverage by simulation against the sample generator's ground truth.

Many fresh surveys of the 2025 wave are drawn from the generator (same counties, latent quality,
margins and design; new respondents and new Poisson counts), scored, and every 95% interval is checked
against the true value: items from the exact answer shares in truth/answer_shares.csv.gz, the
composite from those and the expected counts in truth/indicator_expectations.csv.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.definitions import Definitions
from pipelines.sample_province import SAMPLE_DIR, simulate_wave
from pipelines.scoring import normalise, score_frames

WAVE = "2025"
SIMULATIONS = 40


def true_item_means(defs: Definitions) -> pl.DataFrame:
    """county × item: Σ points·share over the answers that count, divided by their share."""
    shares = pl.read_csv(SAMPLE_DIR / "truth" / "answer_shares.csv.gz",
                         schema_overrides={"county_code": pl.String, "wave": pl.String}) \
        .filter(pl.col("wave") == WAVE)
    rows = []
    for item in defs.questionnaire.items:
        scoring = defs.scheme.items[item.id]
        points = {code: float(p) for code, p in scoring.points.items()}
        if scoring.dont_know == "score":
            points |= {a.code: float(scoring.dont_know_points or 0) for a in item.answers
                       if a.dont_know}
        part = shares.filter(pl.col("item_id") == item.id).with_columns(
            pl.col("answer_code").replace_strict(points, default=None, return_dtype=pl.Float64)
            .alias("points"))
        rows.append(part.filter(pl.col("points").is_not_null()).group_by("county_code").agg(
            ((pl.col("points") * pl.col("share")).sum() / pl.col("share").sum()).alias("truth"))
            .with_columns(pl.lit(item.id).alias("item_id")))
    return pl.concat(rows)


def true_composite(defs: Definitions, items: pl.DataFrame, indicators: pl.DataFrame,
                   counties: pl.DataFrame) -> pl.DataFrame:
    """The composite at the true item means and the expected Poisson counts (other indicators are
    administrative figures: their observed values are the truth)."""
    expected = pl.read_csv(SAMPLE_DIR / "truth" / "indicator_expectations.csv",
                           schema_overrides={"county_code": pl.String, "wave": pl.String}) \
        .filter(pl.col("wave") == WAVE)
    order = counties["county_code"].to_list()
    population = counties["population"].cast(pl.Float64).to_numpy()
    total = np.zeros(len(order))
    for comp in defs.scheme.components:
        if comp.source == "survey":
            weights = np.array(comp.item_weights) / sum(comp.item_weights)
            raw = sum(wt * items.filter(pl.col("item_id") == i).sort("county_code")["truth"]
                      .to_numpy() for i, wt in zip(comp.items, weights))
        else:
            source = expected if comp.poisson else indicators
            column = "expected_value" if comp.poisson else "value"
            values = source.filter(pl.col("indicator_id") == comp.indicator) \
                .sort("county_code")[column].to_numpy()
            raw = values / (population / 100_000) if comp.per_100k_population else values
        total += normalise(raw, comp) * comp.weight / 100
    return pl.DataFrame({"county_code": order, "truth": total})


@pytest.fixture(scope="module")
def simulated(defs, built_db):
    from pipelines.warehouse import Warehouse

    wh = Warehouse.open(built_db, read_only=True)
    counties = wh.counties()
    wh.close()
    item_truth = true_item_means(defs)
    item_hits, composite_hits, composite_errors = [], [], []
    composite_truth = None
    for seed in range(SIMULATIONS):
        wave = simulate_wave(WAVE, seed=1000 + seed)
        scores = score_frames(wave.responses, wave.indicators, counties, defs, wave=WAVE,
                              seed=seed)
        if composite_truth is None:
            composite_truth = true_composite(defs, item_truth, wave.indicators, counties)
        items = scores.items.join(item_truth, on=["county_code", "item_id"])
        item_hits.append(items.select(
            ((pl.col("ci_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high")))
            .alias("hit"), "item_id"))
        # a veto is a rule's outcome, not an estimate: redrawn cadre/student counts can fire one
        comp = scores.composite.filter(~pl.col("veto")).join(composite_truth, on="county_code")
        composite_hits.append(((comp["ci_low"] <= comp["truth"]) & (comp["truth"] <= comp["ci_high"]))
                              .to_numpy())
        composite_errors.append((comp["score"] - comp["truth"]).to_numpy())
    return pl.concat(item_hits), np.concatenate(composite_hits), np.concatenate(composite_errors)


def test_item_intervals_cover_the_true_means_about_95_percent(simulated):
    items, _, _ = simulated
    coverage = items["hit"].mean()
    print(f"item coverage {coverage:.4f} over {items.height} intervals")
    assert 0.93 <= coverage <= 0.97
    per_item = items.group_by("item_id").agg(pl.col("hit").mean())
    # Wald-type intervals under-cover a little for shares near 100% (seen_nearby ≈ 96%)
    assert per_item["hit"].min() >= 0.915, per_item


def test_composite_intervals_cover_the_true_composite_about_95_percent(simulated):
    _, hits, errors = simulated
    coverage = hits.mean()
    print(f"composite coverage {coverage:.4f} over {hits.size} intervals; "
          f"mean error {errors.mean():+.3f}")
    assert 0.93 <= coverage <= 0.97
