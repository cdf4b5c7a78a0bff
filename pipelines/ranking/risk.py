"""The risk table of a wave: published rank, rank uncertainty, P(bottom 3/10) this wave and at the
next wave, τ-worst sets, band, gaps to the cut lines and the strongest lever — one row per county.

It assembles pipelines/ranking.py, forecast.py and listing.py on the scored history; pages and the
CLI read from here and compute nothing themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipelines.ranking.fixes import listed_flags
from pipelines.ranking.forecast import history_of, next_wave_probabilities, veto_risk
from pipelines.ranking.listing import ListingResult
from pipelines.ranking.ranks import (
    DRAWS,
    component_levers,
    cut_line_gaps,
    rank_column,
    rank_confidence_sets,
    rank_scores,
    risk_band,
    simulate_ranks,
    tau_worst_sets,
)
from pipelines.scheme.definitions import Definitions
from pipelines.stats.wave_scores import WaveScores

RISK_COLUMNS = ["county_code", "county_name", "city_name", "score", "rank", "rank_low", "rank_high",
                "p_bottom3", "p_bottom10", "p_bottom3_next", "p_bottom10_next", "in_worst3_set",
                "in_worst10_set", "band"]


def risk_table(history: list[WaveScores], defs: Definitions, *, draws: int = DRAWS,
               seed: int | None = None, rank_cs_replications: int = 1000) -> pl.DataFrame:
    """One row per county of the newest wave in `history` (see RISK_COLUMNS and more)."""
    scheme = defs.scheme
    current = history[-1]
    seed = scheme.estimation.seed if seed is None else seed
    composite = current.composite
    score = composite["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    k3, k10 = scheme.listing.province_bottom, scheme.listing.city_bottom

    simulation = simulate_ranks(current.model.draw(draws, seed), (k3, k10))
    past = history_of(history)
    vetoes = veto_risk(past)
    next_wave = next_wave_probabilities(past, draws=draws, seed=seed + 1, bottoms=(k3, k10),
                                        vetoes=vetoes)
    se = composite["se"].cast(pl.Float64).fill_null(0.0).to_numpy()
    sigma = np.diag(np.maximum(se, 1e-9) ** 2)   # counties are independent samples
    cs_low, cs_high = rank_confidence_sets(score, sigma, replications=rank_cs_replications,
                                           seed=seed)
    worst = tau_worst_sets(score, sigma, (k3, k10), replications=rank_cs_replications, seed=seed)
    worst3, worst10 = worst[k3], worst[k10]
    levers = component_levers(current).sort("points_per_sd", descending=True) \
        .group_by("county_code", maintain_order=True).first()
    table = composite.select("county_code", "county_name", "city_name", "score", "se", "ci_low",
                             "ci_high", "veto", "veto_reason").with_columns(
        rank_column("rank", rank_scores(score, scheme.ties)),
        rank_column("rank_low", np.where(np.isnan(score), np.nan, simulation.rank_low)),
        rank_column("rank_high", np.where(np.isnan(score), np.nan, simulation.rank_high)),
        pl.Series("rank_cs_low", cs_low), pl.Series("rank_cs_high", cs_high),
        pl.Series("p_bottom3", simulation.p_bottom[k3]),
        pl.Series("p_bottom10", simulation.p_bottom[k10]),
        pl.Series("p_bottom3_next", next_wave[k3]),
        pl.Series("p_bottom10_next", next_wave[k10]),
        pl.Series("p_veto_next", vetoes),
        pl.Series("in_worst3_set", worst3), pl.Series("in_worst10_set", worst10),
        pl.Series("band", risk_band(scheme, simulation.p_bottom[k3], simulation.p_bottom[k10])),
        pl.Series("gap_bottom3", cut_line_gaps(score, k3)),
        pl.Series("gap_bottom10", cut_line_gaps(score, k10)),
    ).join(levers.select("county_code", pl.col("label").alias("top_lever"),
                         pl.col("points_per_sd").alias("top_lever_points")),
           on="county_code", how="left", maintain_order="left")
    return table.select(*RISK_COLUMNS, *[c for c in table.columns if c not in RISK_COLUMNS])


@dataclass(frozen=True)
class WhatIf:
    score: float
    rank: int
    p_bottom3: float
    p_bottom10: float
    score_before: float
    rank_before: int
    listed_before: dict[int, bool] = field(default_factory=dict)   # k → in the bottom k now
    listed_after: dict[int, bool] = field(default_factory=dict)    # k → after the change


def what_if(scores: WaveScores, defs: Definitions, county_code: str, changes: dict[str, float],
            *, draws: int = 4000, seed: int = 0) -> WhatIf:
    """Move the county's components (raw units: survey points, indicator units) and see the new
    score, published rank and P(bottom 3/10); relative normalisations are recomputed with the
    change, and the sampling noise stays that of the current survey."""
    model = scores.model
    c = model.counties.index(county_code)
    survey, indicators = model.survey_mean.copy(), model.indicator_raw.copy()
    for comp_id, delta in changes.items():
        if comp_id in model.survey_ids:
            survey[c, model.survey_ids.index(comp_id)] += delta
        elif comp_id in model.indicator_ids:
            indicators[c, model.indicator_ids.index(comp_id)] += delta
        else:
            raise KeyError(comp_id)
    before = model.fixed_points().sum(axis=1)
    after = model.points(survey, indicators).sum(axis=1)
    vetoed = model.vetoed
    before, after = np.where(vetoed, 0.0, before), np.where(vetoed, 0.0, after)
    shifted = model.draw(draws, seed) + (after - before)[None, :]
    k3, k10 = defs.scheme.listing.province_bottom, defs.scheme.listing.city_bottom
    simulation = simulate_ranks(shifted, (k3, k10))
    ties = defs.scheme.ties
    return WhatIf(float(after[c]), int(rank_scores(after, ties)[c]),
                  float(simulation.p_bottom[k3][c]), float(simulation.p_bottom[k10][c]),
                  float(before[c]), int(rank_scores(before, ties)[c]),
                  listed_flags(before, c, (k3, k10)), listed_flags(after, c, (k3, k10)))


def delisting_progress(result: ListingResult, risk: pl.DataFrame, wave: str) -> pl.DataFrame:
    """Every county listed after `wave`: conditions met, what is still missing, and the expected exit:
    the next wave when every indicator target already holds and the county is more likely than not
    to leave the bottom 10 at the next wave (inspection then follows); later otherwise."""
    from pipelines.core.waves import next_wave, wave_display

    listed = result.status
    latest = result.conditions.filter(pl.col("wave") == wave)
    rows = []
    for record in listed.iter_rows(named=True):
        code = record["county_code"]
        mine = latest.filter(pl.col("county_code") == code)
        targets = mine.filter(~pl.col("condition").str.starts_with("退出")
                              & (pl.col("condition") != "验收"))
        missing = mine.filter(~pl.col("met"))["condition"].to_list()
        p_next = risk.filter(pl.col("county_code") == code)["p_bottom10_next"]
        p_next = float(p_next[0]) if p_next.len() else float("nan")
        if record["listed_in"] == wave:
            expected = f"新挂牌：最早{wave_display(next_wave(wave))}"
        elif targets.height and targets["met"].all() and p_next < 0.5:
            expected = wave_display(next_wave(wave))
        else:
            expected = "两期以后（尚有条件未满足）"
        rows.append((code, record["listed_in"], record["waves_listed"], record["overdue"],
                     int(mine["met"].sum()), mine.height, "、".join(missing), p_next, expected))
    return pl.DataFrame(rows, schema=["county_code", "listed_in", "waves_listed", "overdue",
                                      "conditions_met", "conditions", "missing",
                                      "p_bottom10_next", "expected_exit"], orient="row")
