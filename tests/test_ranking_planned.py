"""The next-wave model at a planned sample size, against simulation from the generator's truth:
surveys of the planned size are drawn afresh, scored, and their errors against the true composite
give the sampling variance the model must predict (only its survey part shrinks with n; the
Poisson noise of counts does not)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.ranking.forecast import history_of, next_sampling_variance
from pipelines.scheme.definitions import load_definitions
from pipelines.stats.wave_scores import score_frames
from pipelines.synth.sample import sample_counties, simulate_wave
from tests.simulation import true_composite, true_item_means


@pytest.mark.slow
def test_planned_sample_size_shrinks_only_the_survey_part_of_the_next_variance():
    defs = load_definitions()
    counties = sample_counties()
    wave, planned, reps = "2025", 900, 16
    items = true_item_means(defs, wave)
    current = simulate_wave(wave, seed=7)
    now = score_frames(current.responses, current.indicators, counties, defs, wave=wave)
    predicted = next_sampling_variance(history_of([now]), planned)
    sizes = dict.fromkeys(counties["county_code"].to_list(), planned)
    errors, fired = [], np.zeros(counties.height, dtype=bool)
    for r in range(reps):
        sim = simulate_wave(wave, seed=500 + r, sizes=sizes)
        scored = score_frames(sim.responses, sim.indicators, counties, defs, wave=wave, seed=r)
        assert (scored.composite["n"] == planned).all()
        truth = true_composite(defs, wave, items, sim.indicators, counties)
        errors.append(scored.composite["score"].to_numpy() - truth)
        fired |= scored.composite["veto"].to_numpy()
    keep = ~fired & ~now.composite["veto"].to_numpy()
    empirical = np.var(np.array(errors)[:, keep], axis=0, ddof=0).mean()   # truth known: ddof 0
    model = predicted[keep].mean()
    today = (now.composite["se"].to_numpy()[keep] ** 2).mean()
    print(f"sampling variance at n={planned}: simulated {empirical:.3f} "
          f"(± {empirical * np.sqrt(2 / reps / keep.sum()):.3f}), model {model:.3f}, "
          f"today's (n≈300) {today:.3f}")
    assert 0.85 < model / empirical < 1.18
    assert pl.Series(predicted).is_finite().all()
