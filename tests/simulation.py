"""Simulated survey histories from the sample generator's ground truth, shared by the coverage and
calibration tests. History h is a whole province generated from base seed SEED + h (history 0 is
the bundled province): independent truths, each surveyed afresh in 2021–2025."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.scheme.definitions import Definitions, load_definitions
from pipelines.stats.normalise import normalise
from pipelines.stats.wave_scores import WaveScores, score_frames
from pipelines.synth.sample import (
    SEED,
    WAVES,
    sample_counties,
    simulate_wave,
    true_answer_shares,
    true_indicator_expectations,
)

HISTORIES = 12


@dataclass(frozen=True)
class SimulatedWaveResult:
    scores: WaveScores
    item_truth: pl.DataFrame        # county_code, item_id, truth
    composite_truth: pl.DataFrame   # county_code, truth (0 where the wave's veto fired)


def true_item_means(defs: Definitions, wave: str, base_seed: int = SEED) -> pl.DataFrame:
    """county × item: Σ points·share over the answers that count, divided by their share."""
    shares = true_answer_shares(wave, base_seed)
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


def true_composite(defs: Definitions, wave: str, items: pl.DataFrame, indicators: pl.DataFrame,
                   counties: pl.DataFrame, base_seed: int = SEED) -> np.ndarray:
    """The composite at the true item means and the expected Poisson counts (other indicators are
    administrative figures: their values are the truth), in county order."""
    expected = true_indicator_expectations(wave, base_seed)
    population = counties["population"].cast(pl.Float64).to_numpy()
    total = np.zeros(counties.height)
    for comp in defs.scheme.components:
        if comp.source == "survey":
            weights = np.array(comp.item_weights) / sum(comp.item_weights)
            raw = sum(wt * items.filter(pl.col("item_id") == i).sort("county_code")["truth"]
                      .to_numpy() for i, wt in zip(comp.items, weights, strict=False))
        else:
            source = expected if comp.poisson else indicators
            column = "expected_value" if comp.poisson else "value"
            values = source.filter(pl.col("indicator_id") == comp.indicator) \
                .sort("county_code")[column].to_numpy()
            raw = values / (population / 100_000) if comp.per_100k_population else values
        total += normalise(raw, comp) * comp.weight / 100
    return total


@functools.lru_cache(maxsize=1)
def simulated_histories() -> list[list[SimulatedWaveResult]]:
    defs = load_definitions()
    histories = []
    for h in range(HISTORIES):
        base_seed = SEED + h
        counties = sample_counties(base_seed)
        history = []
        for w, wave in enumerate(WAVES):
            sim = simulate_wave(wave, seed=10_000 + 100 * h + w, base_seed=base_seed)
            scores = score_frames(sim.responses, sim.indicators, counties, defs, wave=wave,
                                  seed=h * 10 + w)
            items = true_item_means(defs, wave, base_seed)
            truth = true_composite(defs, wave, items, sim.indicators, counties, base_seed)
            vetoed = scores.composite["veto"].to_numpy()
            history.append(SimulatedWaveResult(
                scores, items, pl.DataFrame({"county_code": counties["county_code"],
                                             "truth": np.where(vetoed, 0.0, truth)})))
        histories.append(history)
    return histories
