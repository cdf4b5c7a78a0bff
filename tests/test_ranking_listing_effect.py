"""The listing (整治) effect, by simulation from a known truth: provinces whose true deviations
follow θ[w] = ρ·θ[w−1] + η, plus a true effect δ in the wave after a county is listed on its
survey score, observed with survey noise; vetoes (score 0) list counties whatever their score.
The estimate must find δ (0 and +2 points) with an honest se, not the rebound of a noisy low
score (regression to the mean), and the forecast for the counties listed now must be calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.ranking.forecast import History, predict_next
from pipelines.ranking.ranks import in_bottom

COUNTIES, WAVES, RHO, SD, SE, VETO = 88, 6, 0.75, 2.5, 1.1, 0.012


def _province(rng: np.random.Generator, delta: float) -> tuple[History, np.ndarray]:
    """A history of WAVES waves and the next wave's observed deviation (the outcome)."""
    eta = SD * np.sqrt(1 - RHO**2)
    theta = rng.normal(0, SD, COUNTIES)
    observed, published, vetoed = [], [], []
    listed = np.zeros(COUNTIES, dtype=bool)
    for _ in range(WAVES + 1):
        theta = RHO * theta + rng.normal(0, eta, COUNTIES) + delta * listed
        d = theta + rng.normal(0, SE, COUNTIES)
        veto = rng.random(COUNTIES) < VETO
        score = np.where(veto, 0.0, 85 + d)
        listed = in_bottom(score, 3) & ~veto             # rectified: listed on the survey score
        observed.append(d)
        published.append(score)
        vetoed.append(veto)
    d = np.column_stack(observed)
    d -= d.mean(axis=0, keepdims=True)
    history = History([f"c{i}" for i in range(COUNTIES)], [str(w) for w in range(WAVES)],
                      d[:, :WAVES], np.full((COUNTIES, WAVES), SE**2),
                      np.full((COUNTIES, WAVES), 300.0), np.column_stack(published)[:, :WAVES],
                      np.column_stack(vetoed)[:, :WAVES])
    return history, d[:, WAVES]


@pytest.mark.parametrize("delta", [0.0, 2.0])
def test_listing_effect_is_found_with_its_se_and_the_listed_forecast_is_calibrated(delta):
    rng = np.random.default_rng(31 + int(delta))
    estimates, ses, raw, z, cells = [], [], [], [], []
    for _ in range(150):
        history, outcome = _province(rng, delta)
        forecast = predict_next(history)
        estimates.append(forecast.listing_effect)
        raw.append(forecast.listing_effect_raw)
        ses.append(forecast.listing_effect_se)
        cells.append(forecast.listing_cells)
        now = in_bottom(history.published[:, -1], 3) & ~history.vetoed[:, -1]
        z.extend((outcome[now] - forecast.mean[now]) / np.sqrt(forecast.variance[now]))
    estimates, ses, z = np.array(estimates), np.array(ses), np.array(z)
    covered = np.mean(np.abs(estimates - delta) <= 1.96 * ses)
    print(f"δ={delta}: estimate {estimates.mean():+.2f} (raw {np.mean(raw):+.2f}, sd over "
          f"provinces {estimates.std():.2f}, mean se {ses.mean():.2f}, {np.mean(cells):.1f} "
          f"cells), interval covers δ {covered:.3f}; listed-now forecast z mean {z.mean():+.2f}, "
          f"sd {z.std():.2f}, 95% coverage {np.mean(np.abs(z) <= 1.96):.3f}")
    assert abs(estimates.mean() - delta) < 0.35
    assert covered >= 0.9
    assert abs(z.mean()) < 0.25 and np.mean(np.abs(z) <= 1.96) >= 0.9
