"""Funnel-plot data (Spiegelhalter 2005, "Funnel plots for comparing institutional performance").

Each county's composite is plotted against its effective sample size. Around the provincial target
(the mean of the counties' scores) the control limits are target ± z·√(σ²/n_eff + τ²):
- σ² is the pooled per-respondent variance, mean of se²·n_eff over the counties;
- τ² is the additive between-county variance estimated from the Winsorised z-scores: with
  φ = mean(z_w²) over I counties and w = 1/s², τ² = (Iφ − (I − 1)) / (Σw − Σw²/Σw), or 0 when
  Iφ ≤ I − 1 (no overdispersion). Without it nearly every county would fall outside the 99.8% limits
  of a survey this size: counties really differ, and the funnel should flag only unusual ones.
Vetoed counties (score set to 0) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.wave_scores import WaveScores

LEVELS = (0.95, 0.998)


@dataclass(frozen=True)
class Funnel:
    points: pl.DataFrame   # county_code, county_name, score, n_eff, z, outside_95, outside_998
    limits: pl.DataFrame   # n_eff, lo_95, hi_95, lo_998, hi_998
    target: float
    sigma2: float
    phi: float
    tau2: float


def funnel(scores: WaveScores, *, winsor: float = 0.1, grid: int = 120) -> Funnel:
    rows = scores.composite.filter(~pl.col("veto") & pl.col("score").is_not_null()
                                   & pl.col("se").is_not_null() & (pl.col("n_eff") > 0))
    y = rows["score"].to_numpy()
    n_eff = rows["n_eff"].to_numpy()
    se = rows["se"].to_numpy()
    target = float(np.mean(y))
    sigma2 = float(np.mean(se**2 * n_eff))
    s2 = sigma2 / n_eff
    z = (y - target) / np.sqrt(s2)
    lo, hi = np.quantile(z, [winsor, 1 - winsor])
    phi = float(np.mean(np.clip(z, lo, hi) ** 2))
    count = y.size
    w = 1 / s2
    tau2 = max(0.0, (count * phi - (count - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    spread = np.sqrt(s2 + tau2)
    z_adjusted = (y - target) / spread
    points = rows.select("county_code", "county_name", "score", "n_eff").with_columns(
        pl.Series("z", z_adjusted),
        *[pl.Series(f"outside_{_tag(level)}", np.select(
            [z_adjusted > special.ndtri(0.5 + level / 2),
             z_adjusted < -special.ndtri(0.5 + level / 2)], ["高于", "低于"], default=""))
          for level in LEVELS])
    sizes = np.linspace(max(1.0, n_eff.min() * 0.8), n_eff.max() * 1.2, grid)
    limit_columns: dict[str, np.ndarray] = {"n_eff": sizes}
    for level in LEVELS:
        half = special.ndtri(0.5 + level / 2) * np.sqrt(sigma2 / sizes + tau2)
        limit_columns[f"lo_{_tag(level)}"] = target - half
        limit_columns[f"hi_{_tag(level)}"] = target + half
    return Funnel(points, pl.DataFrame(limit_columns), target, sigma2, phi, tau2)


def _tag(level: float) -> str:
    return f"{level * 100:g}".replace(".", "")
