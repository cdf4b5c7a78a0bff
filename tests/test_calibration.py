"""Calibration of the bottom-3/bottom-10 probabilities by simulation against known truth.

This wave: P(true standing in the bottom k) against the bottom k of the TRUE composites.
Next wave: P(published bottom k next time), predicted from the earlier simulated waves, against the
next simulated published ranking. Reliability: in every probability band holding at least 100
predictions, the mean prediction and the observed frequency differ by at most 0.05. The τ-worst set
must contain the true bottom 3 in at least 95% of the simulated waves.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.ranking.forecast import history_of, next_wave_probabilities
from pipelines.ranking.ranks import simulate_ranks, tau_worst_set
from tests.simulation import simulated_histories

pytestmark = pytest.mark.slow

BANDS = (0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0000001)
MIN_MASS = 100


@pytest.fixture(scope="module")
def histories():
    return simulated_histories()


def bottom(values: np.ndarray, k: int) -> np.ndarray:
    kth = np.sort(values)[k - 1]
    return values <= kth


def reliability(predicted: np.ndarray, observed: np.ndarray) -> pl.DataFrame:
    band = np.digitize(predicted, BANDS) - 1
    return pl.DataFrame({"band": band, "p": predicted, "y": observed.astype(float)}).group_by(
        "band").agg(pl.len().alias("n"), pl.col("p").mean(), pl.col("y").mean()).sort("band") \
        .with_columns((pl.col("p") - pl.col("y")).abs().alias("gap"))


def check(table: pl.DataFrame, what: str) -> None:
    print(f"{what}\n{table}")
    enough = table.filter(pl.col("n") >= MIN_MASS)
    assert enough.height >= 2, what
    assert (enough["gap"] <= 0.05).all(), f"{what}: miscalibrated\n{enough}"


@pytest.mark.parametrize("k", [3, 10])
def test_this_wave_probabilities_are_calibrated_against_the_true_bottom(histories, k):
    predicted, observed = [], []
    for history in histories:
        for wave in history:
            draws = wave.scores.model.draw(4000, seed=k)
            predicted.append(simulate_ranks(draws, (k,)).p_bottom[k])
            observed.append(bottom(wave.composite_truth["truth"].to_numpy(), k))
    check(reliability(np.concatenate(predicted), np.concatenate(observed)), f"this wave, k={k}")


@pytest.mark.parametrize("k", [3, 10])
def test_next_wave_probabilities_are_calibrated_against_the_next_published_ranking(histories, k):
    predicted, observed = [], []
    for history in histories:
        scores = [w.scores for w in history]
        for t in range(2, len(scores)):
            p = next_wave_probabilities(history_of(scores[:t]), draws=4000, seed=t, bottoms=(k,))
            predicted.append(p[k])
            observed.append(bottom(scores[t].composite["score"].to_numpy(), k))
    check(reliability(np.concatenate(predicted), np.concatenate(observed)), f"next wave, k={k}")


def test_tau_worst_set_contains_the_true_bottom_three(histories):
    contained, sizes = [], []
    for history in histories:
        for wave in history:
            composite = wave.scores.composite
            score = composite["score"].to_numpy()
            sigma = np.diag(np.maximum(composite["se"].to_numpy(), 1e-9) ** 2)
            in_set = tau_worst_set(score, sigma, 3, replications=1000, seed=0)
            truth = bottom(wave.composite_truth["truth"].to_numpy(), 3)
            contained.append(bool(np.all(in_set[truth])))
            sizes.append(int(in_set.sum()))
    print(f"τ-worst(3) contains the true bottom 3 in {np.mean(contained):.3f} of "
          f"{len(contained)} waves; median set size {np.median(sizes)}")
    assert np.mean(contained) >= 0.95
