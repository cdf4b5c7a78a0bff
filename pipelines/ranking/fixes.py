"""What one county must fix: for each component, the raw change that on its own takes the county
out of the bottom 3 / bottom 10, and how many composite points the component can still give.

Levers per standard deviation (`component_levers`) depend on weights and spreads, not on the county,
so they read alike for every county. This answers the county's own question ("进位摘帽: which item,
by how much?") by recomputing the whole ranking with the one component moved, relative
normalisations included, exactly as the what-if does.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.ranking.ranks import in_bottom
from pipelines.stats.model import ScoreModel
from pipelines.stats.wave_scores import WaveScores

BISECTIONS = 40


def _ceiling(comp, raw: np.ndarray, c: int) -> float:
    """The most the component can move in its good direction: to the scale's end for survey
    points (0–100) and goalposts, else to the best value any county already has."""
    higher = comp.direction == "higher"
    if comp.source == "survey" and comp.normalisation is None:
        best = 100.0 if higher else 0.0
    elif comp.normalisation == "goalposts":
        best = comp.hi if higher else comp.lo
    else:
        known = raw[np.isfinite(raw)]
        best = float(known.max() if higher else known.min()) if known.size else raw[c]
    return max(0.0, (best - raw[c]) if higher else (raw[c] - best))


def _moved(model: ScoreModel, c: int, comp_id: str, step: float, sign: float) -> np.ndarray:
    """Every county's composite with county c's component moved by `step` in its good direction."""
    survey, indicators = model.survey_mean.copy(), model.indicator_raw.copy()
    if comp_id in model.survey_ids:
        survey[c, model.survey_ids.index(comp_id)] += sign * step
    else:
        indicators[c, model.indicator_ids.index(comp_id)] += sign * step
    return np.where(model.vetoed, 0.0, model.points(survey, indicators).sum(axis=1))


def _needed(model: ScoreModel, c: int, comp, sign: float, ceiling: float, k: int) -> float | None:
    """The smallest raw change (≥ 0) that leaves the bottom k, None when even the ceiling does not.
    The county's score only rises with the change and the others' only fall (a relative yardstick
    moves against them), so membership is monotone and bisection finds the edge."""
    def outside(step: float) -> bool:
        return not in_bottom(_moved(model, c, comp.id, step, sign), k)[c]

    if outside(0.0):
        return 0.0
    if ceiling <= 0 or not outside(ceiling):
        return None
    low, high = 0.0, ceiling
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        low, high = (low, mid) if outside(mid) else (mid, high)
    return high


def county_fixes(scores: WaveScores, county_code: str, bottoms: tuple[int, ...] = (3, 10)
                 ) -> pl.DataFrame:
    """One row per component of `county_code`: raw value, its 0–100 points, `headroom` (composite
    points gained by moving it to its ceiling alone), `ceiling_change` (raw change to get there),
    `need_<k>` (raw change in the good direction that alone leaves the bottom k; 0 when already
    outside, null when it cannot), and `largest` marking the component with the most headroom.
    A vetoed county gets nulls: no component change lifts a veto."""
    model = scores.model
    c = model.counties.index(county_code)
    base = np.where(model.vetoed, 0.0, model.fixed_points().sum(axis=1))
    points = model.fixed_points()[c]
    rows = []
    s = i = 0
    for k_comp, comp in enumerate(model.components):
        if comp.source == "survey":
            raw, s = model.survey_mean[:, s], s + 1
        else:
            raw, i = model.indicator_raw[:, i], i + 1
        sign = 1.0 if comp.direction == "higher" else -1.0
        ceiling = _ceiling(comp, raw, c) if np.isfinite(raw[c]) else 0.0
        vetoed = bool(model.vetoed[c])
        headroom = 0.0 if vetoed or ceiling == 0 else \
            float(_moved(model, c, comp.id, ceiling, sign)[c] - base[c])
        needs = {f"need_{k}": None if vetoed or not np.isfinite(raw[c])
                 else _needed(model, c, comp, sign, ceiling, k) for k in bottoms}
        rows.append({"component_id": comp.id, "label": comp.label, "direction": comp.direction,
                     "raw": float(raw[c]), "points": float(points[k_comp] * 100 / comp.weight)
                     if comp.weight else float("nan"),
                     "ceiling_change": ceiling, "headroom": headroom, **needs})
    schema = {"component_id": pl.String, "label": pl.String, "direction": pl.String,
              "raw": pl.Float64, "points": pl.Float64, "ceiling_change": pl.Float64,
              "headroom": pl.Float64, **{f"need_{k}": pl.Float64 for k in bottoms}}
    out = pl.DataFrame(rows, schema=schema)
    top = out["headroom"].max()
    return out.with_columns(((pl.col("headroom") == top) & (pl.col("headroom") > 0))
                            .fill_null(False).alias("largest"))


def listed_flags(score: np.ndarray, c: int, bottoms: tuple[int, ...]) -> dict[int, bool]:
    """Whether county c is in each bottom k under the listing rule (ties at the line are in)."""
    return {k: bool(in_bottom(score, k)[c]) for k in bottoms}
