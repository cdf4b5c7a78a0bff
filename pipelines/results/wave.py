"""Score and list waves as the warehouse holds them: the one place where stored data meets the
statistics (stats and ranking take frames; they never open the warehouse)."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from pipelines.core.waves import wave_display
from pipelines.ranking.listing import ListingResult, PublishedWave, run_listing
from pipelines.scheme.definitions import Definitions
from pipelines.stats.townships import survey_score_by
from pipelines.stats.wave_scores import WaveScores, score_frames
from pipelines.store.warehouse import Warehouse, WarehouseError

ZERO_REASON = "考核得分记零（连续通报批评）"


def score_wave(wh: Warehouse, defs: Definitions, wave: str, **options) -> WaveScores:
    """Score a wave stored in the warehouse (its active survey and indicator loads)."""
    responses = wh.responses(wave)
    if responses.height == 0:
        known = "、".join(wh.waves()["wave"].to_list()) or "无"
        raise WarehouseError(f"期次 {wave} 没有调查数据（已有期次：{known}）")
    indicators = wh.indicators(wave)
    if indicators.height == 0 and any(c.source == "indicator" for c in defs.scheme.components):
        raise WarehouseError(f"{wave_display(wave)}尚未导入工作指标表，暂时无法计算综合得分。"
                             "请分析人员在“数据管理”页上传该期工作指标表。")
    margins = wh.margins() if defs.scheme.estimation.rake_to_margins else None
    return score_frames(responses, indicators, wh.counties(), defs, wave=wave,
                        margins=margins, **options)



def scored_history(wh: Warehouse, defs: Definitions, wave: str) -> list[WaveScores]:
    """Every wave up to and including `wave` that has survey data, oldest first, as published:
    each scored by its scheme in force, then 考核得分记零 applied (`apply_zeroing`)."""
    waves = [w for w in wh.waves().filter(pl.col("survey_load_id").is_not_null())["wave"]
             if w <= wave]
    if wave not in waves:
        known = "、".join(wh.waves()["wave"].to_list()) or "无"
        raise WarehouseError(f"期次 {wave} 没有调查数据（已有期次：{known}）")
    raw = [score_wave(wh, defs, w) for w in waves]
    return apply_zeroing(raw, listing_result(wh, defs, raw))


def apply_zeroing(history: list[WaveScores], listing: ListingResult) -> list[WaveScores]:
    """The scores with 记零 applied: a zeroed county scores 0 with no uncertainty, like a veto
    (连续两年……记零，一票否决), so every rank, chance of the bottom k and table shows it. The
    score before is kept in `score_before_zero` (null elsewhere), the reason in veto_reason."""
    zeroed = listing.scores.filter(pl.col("zeroed"))
    out = []
    for scores in history:
        codes = zeroed.filter(pl.col("wave") == scores.wave)["county_code"].to_list()
        hit = pl.col("county_code").is_in(codes)
        composite = scores.composite.with_columns(
            *[pl.when(hit).then(0.0).otherwise(pl.col(c)).alias(c)
              for c in ("score", "se", "ci_low", "ci_high")],
            (pl.col("veto") | hit).alias("veto"),
            pl.when(hit).then(pl.concat_str(pl.col("veto_reason"), pl.lit(ZERO_REASON),
                                            separator="；", ignore_nulls=True))
            .otherwise(pl.col("veto_reason")).alias("veto_reason"),
            pl.when(hit).then(pl.col("score")).otherwise(None).alias("score_before_zero"),
            pl.when(hit).then(pl.col("veto_reason")).otherwise(None)
            .alias("veto_reason_before_zero"))
        mask = np.isin(np.asarray(scores.model.counties), codes)
        model = dataclasses.replace(scores.model, vetoed=scores.model.vetoed | mask) \
            if mask.any() else scores.model
        out.append(dataclasses.replace(scores, composite=composite, model=model))
    return out


def listing_result(wh: Warehouse, defs: Definitions, history: list[WaveScores]) -> ListingResult:
    """The listing engine on the scores as published before 记零 (which the engine decides)."""
    waves = []
    for s in history:
        frame = s.composite
        if "score_before_zero" in frame.columns:
            zeroed = pl.col("score_before_zero").is_not_null()
            frame = frame.with_columns(
                pl.when(zeroed).then(pl.col("score_before_zero")).otherwise(pl.col("score"))
                .alias("score"),
                pl.when(zeroed).then(pl.col("veto_reason_before_zero"))
                .otherwise(pl.col("veto_reason")).alias("veto_reason"))
        waves.append(PublishedWave(s.wave, frame.select("county_code", "score", "veto_reason"),
                                   wh.indicators(s.wave)))
    return run_listing(defs.scheme, defs.indicators, waves, wh.counties(), wh.inspections(),
                       wh.decisions())


def township_scores(wh: Warehouse, defs: Definitions, wave: str, county: str) -> pl.DataFrame | None:
    """Design-based survey scores of one county's townships (small samples, wide intervals), or
    None when the wave's file carries no township column for it."""
    responses = wh.responses(wave, county=county)
    if responses.height == 0 or responses["township"].null_count() == responses.height:
        return None
    return survey_score_by(responses, defs, "township")
