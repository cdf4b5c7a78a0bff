"""The composite's standard error and interval (t interval when linear in the survey means,
percentiles of replicates otherwise) and the per-component score frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.stats.model import ScoreModel
from pipelines.stats.replicates import block_quantiles, column_quantiles
from pipelines.stats.tquantiles import t_interval, t_quantiles


def composite_se(model: ScoreModel, replicate_var: dict[object, np.ndarray]) -> np.ndarray:
    """Survey part (b'Σb, or its replicates) plus the independent random indicator parts."""
    if "survey" in replicate_var:
        variance = replicate_var["survey"]
    else:
        variance = model.survey_part_variance()
    for key, var in replicate_var.items():
        if key != "survey" and model.components[key].source == "indicator":
            variance = variance + var
    return np.sqrt(variance)


def composite_interval(model: ScoreModel, points: np.ndarray,
                        replicate_points: dict[object, np.ndarray], score: np.ndarray,
                        se: np.ndarray, df: np.ndarray,
                        level: float) -> tuple[np.ndarray, np.ndarray]:
    """A t interval when the composite is linear in the survey means; otherwise the percentile
    interval of replicates: the survey part at t quantiles (or its own replicates), plus the random
    components' replicates, plus the fixed points (summed block by block of counties)."""
    if not replicate_points:
        return t_interval(score, se, df, level)
    fixed = [k for k, c in enumerate(model.components)
             if c.source != "survey" and k not in replicate_points]
    shift = points[:, fixed].sum(axis=1)
    random = [draws for k, draws in replicate_points.items()
              if k == "survey" or model.components[k].source != "survey"]
    n_draws = random[0].shape[0]
    grid = None
    if "survey" not in replicate_points:
        # The survey part's t distribution is sampled at n evenly spaced quantiles (stratified
        # sampling: its empirical distribution is exact, with no Monte Carlo noise), each paired
        # with one replicate of the random components, which are independent draws: the sum's
        # percentiles estimate those of the convolution without t draws.
        survey_part, survey_variance = model.survey_part()
        shift = shift + survey_part
        survey_se = np.sqrt(survey_variance)
        distinct_df, county_df = np.unique(np.where(df >= 1, df, 1), return_inverse=True)
        grid = t_quantiles(distinct_df[:, None], (np.arange(n_draws)[None, :] + 0.5) / n_draws)

    def rows_of(columns: slice) -> np.ndarray:
        rows = np.ascontiguousarray(random[0][:, columns].T)
        for draws in random[1:]:
            rows += draws[:, columns].T
        rows += shift[columns, None]
        if grid is not None:
            rows += survey_se[columns, None] * grid[county_df[columns]]
        return rows

    tail = (1 - level) / 2
    low, high = block_quantiles(rows_of, shift.size, (tail, 1 - tail), n_draws * shift.size)
    return low, high


def component_scores_frame(model: ScoreModel, points: np.ndarray,
                      replicate_points: dict[object, np.ndarray],
                      replicate_var: dict[object, np.ndarray], df: np.ndarray,
                      level: float) -> pl.DataFrame:
    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "raw", "score", "se", "ci_low", "ci_high", "points", "points_se")}
    s = i = 0
    for k, comp in enumerate(model.components):
        weight = comp.weight / 100
        score = points[:, k] / weight
        if k in replicate_points:
            se = np.sqrt(replicate_var[k]) / weight
        elif comp.source == "survey":
            se = np.sqrt(model.survey_cov[:, s, s])
        else:
            se = np.zeros_like(score)
        if comp.source == "survey":
            raw = model.survey_mean[:, s]
            low, high = t_interval(score, se, df, level)
            s += 1
        else:
            raw = model.indicator_raw[:, i]
            if k in replicate_points:
                tail = (1 - level) / 2
                low, high = column_quantiles(replicate_points[k], (tail, 1 - tail)) / weight
            else:
                low, high = score, score
            i += 1
        values_of = (raw, score, se, low, high, points[:, k], se * weight)
        for name, values in zip(columns, values_of, strict=False):
            columns[name].append(np.asarray(values, dtype=np.float64))
    n_counties, comps = len(model.counties), model.components
    county = np.tile(np.arange(n_counties), len(comps))
    component = np.repeat(np.arange(len(comps)), n_counties)
    return pl.DataFrame([
        pl.Series("county_code", model.counties, dtype=pl.String).gather(county),
        *(pl.Series(name, [getattr(c, name.removeprefix("component_")) for c in comps],
                    dtype=pl.String).gather(component)
          for name in ("component_id", "label", "source")),
        pl.Series("weight", np.array([c.weight for c in comps])).gather(component),
        *(pl.Series(name, np.concatenate(parts), nan_to_null=True)
          for name, parts in columns.items()),
    ])
