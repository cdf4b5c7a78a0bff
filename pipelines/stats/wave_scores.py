"""County scores from the scheme: answer codes → item points → components → 100-point composite.

Uncertainty, in the order a reader would check it:
- item and survey-component means are design-based (pipelines/stats/means.py); a share item
  (answers scored 0 or 100) gets an interval that stays inside 0–100 (logit by default, or
  Korn–Graubard: `[estimation] share_interval`; pipelines/stats/ciprop.py);
- the survey part of the composite is linear in the item means, so its variance is b'Σb with Σ the
  covariance of the county's item means from one per-respondent linearisation (items answered by the
  same respondent are correlated, and each item has its own denominator) — R: `svycontrast`;
- work indicators are administrative figures without sampling error, except those the scheme marks
  the catalogue declares noisy (indicators.toml `noise`): a count whose true rate is uncertain;
  replicates draw the county's expected count from its Jeffreys posterior Gamma(count + ½, 1) (not
  centred on the count: 0 found is not a rate of 0); a change in % of such a count draws both
  periods' counts (the previous one recovered from the count and its change), 100·(λ₁/λ₀ − 1);
- a relative normalisation (min–max or z-score across counties) makes a county's points depend on the
  others' values, so every replicate re-normalises all counties (`ScoreModel.draw`). The composite's
  variance is b'Σb for the survey components used as they are, plus the replicate variance of the
  components that are random or relative (independent of the survey: different data); when a survey
  component is itself normalised, the whole composite is taken from the replicates;
- intervals are t intervals on the county's design degrees of freedom (PSUs − strata) while the
  composite is linear in the survey means; with random components they are percentile intervals
  of replicates (survey part at evenly spaced t quantiles), which keeps the skew of a small count
  (simulated coverage of the sample composite: tests/test_coverage.py);
- a veto (一票否决) sets the score to 0 with no uncertainty and records why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.scheme.definitions import Definitions
from pipelines.stats.composite import component_scores_frame, composite_interval, composite_se
from pipelines.stats.contrast import contrast
from pipelines.stats.county_design import (
    category_codes,
    county_design_columns,
    dense_codes,
    stage_columns,
)
from pipelines.stats.design import make_design
from pipelines.stats.means import domain_sizes, estimates_frame, mean_covariance
from pipelines.stats.model import ScoreModel
from pipelines.stats.points import is_share_item, item_point_matrix, scored_items
from pipelines.stats.raking import rake_to_county_margins
from pipelines.stats.replicates import column_variances, draw_replicate_points
from pipelines.stats.vetoes import veto_inputs, vetoes


@dataclass
class WaveScores:
    """The scores of one wave; frames are one row per county (× item or component)."""

    wave: str
    items: pl.DataFrame
    components: pl.DataFrame
    composite: pl.DataFrame
    model: ScoreModel
    level: float
    veto_inputs: pl.DataFrame | None = None   # what each veto rule saw (`vetoes.veto_inputs`)


def grade_expr(grades) -> pl.Expr:
    """The 等级 band of each score (≥90 先进, 80–90 合格 …), as one Polars expression."""
    expr = None
    for grade in grades:
        condition = pl.lit(True) if grade.at_least is None else pl.col("score") >= grade.at_least
        expr = (pl.when(condition) if expr is None else expr.when(condition)).then(pl.lit(grade.label))
    return pl.when(pl.col("score").is_null()).then(pl.lit(None, pl.String)) \
        .otherwise(expr.otherwise(pl.lit(None, pl.String))).alias("grade")


def indicator_matrix(indicators: pl.DataFrame, county_codes: Sequence[str]) -> dict[str, np.ndarray]:
    """indicator id → values in county order (NaN where missing; the first row of a repeated
    county × indicator counts)."""
    if indicators.height == 0:
        return {}
    county = indicators["county_code"].cast(pl.Enum(list(county_codes)), strict=False) \
        .to_physical().fill_null(-1).to_numpy().astype(np.int64)
    names = indicators["indicator_id"].cast(pl.String).fill_null("")
    indicator, labels = dense_codes(names)
    value = indicators["value"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    known = county >= 0
    n = len(county_codes)
    key = indicator[known] * n + county[known]
    _, first = np.unique(key, return_index=True)
    wide = np.full((int(indicator.max()) + 1, n), np.nan)
    wide.reshape(-1)[key[first]] = value[known][first]
    return {label: wide[code] for code, label in enumerate(labels) if label}


def change_counts(count: np.ndarray, change_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(this period's count, the previous period's) behind a change in %: the sheet gives the count
    and its change, so the previous count is count / (1 + change/100). Unknown (NaN) where either is
    missing or the change is −100% (a count of 0 says nothing of the count before)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = count / (1 + change_pct / 100)
    usable = np.isfinite(previous) & (change_pct > -100) & (count >= 0)
    return count, np.where(usable, previous, np.nan)


def score_frames(responses: pl.DataFrame, indicators: pl.DataFrame, counties: pl.DataFrame,
                 defs: Definitions, *, wave: str = "", margins: pl.DataFrame | None = None,
                 replicates: int | None = None, seed: int | None = None) -> WaveScores:
    """Score one wave from its response rows, long indicator rows (county_code, indicator_id,
    value) and the county list (county_code, county_name, city_code, city_name, population).
    A labelled wave is scored by the scheme in force for it (from_wave/until_wave); without a
    label every rule applies."""
    if wave:
        defs = defs.for_wave(wave)
    scheme = defs.scheme
    settings = scheme.estimation
    level = scheme.confidence_level
    replicates = replicates or settings.replicates
    seed = settings.seed if seed is None else seed
    county_codes = counties["county_code"].to_list()
    n_counties = len(county_codes)

    domain_codes = category_codes(responses["county_code"], county_codes)
    if (domain_codes < 0).any():
        unknown = responses["county_code"].filter(pl.Series(domain_codes < 0)).unique().to_list()
        raise ValueError(f"调查数据中有不在区县名单中的代码：{'、'.join(map(str, unknown[:5]))}")
    frame, psu = county_design_columns(responses, domain_codes)
    if settings.rake_to_margins and margins is not None and margins.height:
        frame = rake_to_county_margins(frame, margins)
    design = make_design(frame, weight="weight", strata="__stratum", psu=psu,
                         lonely_psu=settings.lonely_psu, **stage_columns(frame))

    item_ids = scored_items(scheme)
    y = item_point_matrix(frame, defs, item_ids)
    est = mean_covariance(design, y, domain_codes, n_counties, pairs=True)
    everyone = domain_sizes(design, domain_codes, n_counties)

    items_frame = estimates_frame(est, pl.DataFrame({"county_code": county_codes}), item_ids,
                                  level, variable_column="item_id",
                                  shares=[is_share_item(defs, i) for i in item_ids],
                                  share_method=settings.share_interval)

    survey_comps = [c for c in scheme.components if c.source == "survey"]
    combine = np.zeros((len(survey_comps), len(item_ids)))
    for k, comp in enumerate(survey_comps):
        weights = np.array(comp.item_weights) / sum(comp.item_weights)
        for item_id, wt in zip(comp.items, weights, strict=False):
            combine[k, item_ids.index(item_id)] = wt
    survey_mean, survey_cov = contrast(est.mean, est.cov, combine)

    indicator_comps = [c for c in scheme.components if c.source == "indicator"]
    wide = indicator_matrix(indicators, county_codes)
    population = counties["population"].cast(pl.Float64).to_numpy()
    indicator_raw = np.full((n_counties, len(indicator_comps)), np.nan)
    indicator_count = np.full_like(indicator_raw, np.nan)
    indicator_baseline = np.full_like(indicator_raw, np.nan)
    exposure = np.ones_like(indicator_raw)
    for k, comp in enumerate(indicator_comps):
        values = wide.get(comp.indicator, np.full(n_counties, np.nan))
        if comp.per_100k_population:
            exposure[:, k] = population / 100_000
        indicator_raw[:, k] = values / exposure[:, k]
        if comp.change_of is not None:
            indicator_count[:, k], indicator_baseline[:, k] = change_counts(
                wide.get(comp.change_of, np.full(n_counties, np.nan)), values)
        elif comp.poisson:
            indicator_count[:, k] = values

    veto_reason = vetoes(scheme, wide, survey_comps, survey_mean, n_counties)
    vetoed = np.array([bool(r) for r in veto_reason])
    model = ScoreModel(county_codes, scheme.components, survey_mean, survey_cov, indicator_raw,
                       indicator_count, exposure, vetoed, [c.id for c in survey_comps],
                       [c.id for c in indicator_comps], indicator_baseline)

    points = model.fixed_points()                                   # C × K
    replicate_points = draw_replicate_points(model, replicates, seed)
    replicate_var = {key: column_variances(draws) for key, draws in replicate_points.items()}
    df = everyone.df
    components_frame = component_scores_frame(model, points, replicate_points, replicate_var, df,
                                         level)
    raw_score = points.sum(axis=1)
    score_se = composite_se(model, replicate_var)
    low, high = composite_interval(model, points, replicate_points, raw_score, score_se, df,
                                    level)
    score = np.where(vetoed, 0.0, raw_score)
    composite = counties.select("county_code", "county_name", "city_code", "city_name").with_columns(
        pl.Series("score", score), pl.Series("se", np.where(vetoed, 0.0, score_se)),
        pl.Series("ci_low", np.where(vetoed, 0.0, low)),
        pl.Series("ci_high", np.where(vetoed, 0.0, high)),
        pl.Series("n", everyone.n).cast(pl.Int64),
        pl.Series("n_eff", everyone.n_eff),
        pl.Series("df", df).cast(pl.Int64),
        pl.Series("veto", vetoed),
        pl.Series("veto_reason", veto_reason, dtype=pl.String),
        pl.Series("score_before_veto", raw_score),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
    if scheme.grades:
        composite = composite.with_columns(grade_expr(scheme.grades))
    wide_components = components_frame.pivot("component_id", index="county_code", values="score")
    composite = composite.join(wide_components, on="county_code", how="left",
                               maintain_order="left")
    return WaveScores(wave, items_frame, components_frame, composite, model, level,
                      veto_inputs(scheme, wide, county_codes, population))
