"""The survey part of the composite for domains inside a county (e.g. townships), estimated as
domains of the county's design.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.scheme.definitions import Definitions
from pipelines.stats.contrast import contrast
from pipelines.stats.county_design import county_design_columns, stage_columns
from pipelines.stats.design import domain_codes, make_design
from pipelines.stats.means import domain_sizes, mean_covariance
from pipelines.stats.points import item_point_matrix, scored_items
from pipelines.stats.tquantiles import t_interval


def survey_score_by(responses: pl.DataFrame, defs: Definitions, by: str,
                    level: float | None = None) -> pl.DataFrame:
    """The survey part of the composite, rescaled to 0–100, for each `by` domain (e.g. the
    townships of one county) as domains of the county's design; small domains get wide intervals.
    Survey components are taken as they are (relative normalisations need all counties)."""
    scheme = defs.scheme
    level = level or scheme.confidence_level
    frame, psu = county_design_columns(responses.filter(pl.col(by).is_not_null()))
    design = make_design(frame, weight="weight", strata="__stratum", psu=psu,
                         lonely_psu=scheme.estimation.lonely_psu, **stage_columns(frame))
    domain, keys = domain_codes(frame, [by])
    item_ids = scored_items(scheme)
    y = item_point_matrix(frame, defs, item_ids)
    est = mean_covariance(design, y, domain, keys.height, pairs=True)
    coefficients = np.zeros(len(item_ids))
    survey = [c for c in scheme.components if c.source == "survey"]
    total_weight = sum(c.weight for c in survey)
    for comp in survey:
        shares = np.array(comp.item_weights) / sum(comp.item_weights)
        for item_id, wt in zip(comp.items, shares, strict=False):
            coefficients[item_ids.index(item_id)] += comp.weight / total_weight * wt
    score, variance = contrast(est.mean, est.cov, coefficients)
    score, se = score[:, 0], np.sqrt(variance[:, 0, 0])
    everyone = domain_sizes(design, domain, keys.height)
    low, high = t_interval(score, se, everyone.df, level)
    return keys.with_columns(pl.Series("score", score), pl.Series("se", se),
                             pl.Series("ci_low", low), pl.Series("ci_high", high),
                             pl.Series("n", everyone.n).cast(pl.Int64)) \
        .with_columns(pl.col(pl.Float64).fill_nan(None)).sort("score", nulls_last=True)
