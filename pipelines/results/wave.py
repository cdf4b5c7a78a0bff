"""Score and list waves as the warehouse holds them: the one place where stored data meets the
statistics (stats and ranking take frames; they never open the warehouse)."""

from __future__ import annotations

import polars as pl

from pipelines.core.waves import wave_display
from pipelines.ranking.listing import ListingResult, PublishedWave, run_listing
from pipelines.scheme.definitions import Definitions
from pipelines.stats.townships import survey_score_by
from pipelines.stats.wave_scores import WaveScores, score_frames
from pipelines.store.warehouse import Warehouse, WarehouseError


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
    """Every wave up to and including `wave` that has survey data, oldest first."""
    waves = [w for w in wh.waves().filter(pl.col("survey_load_id").is_not_null())["wave"]
             if w <= wave]
    if wave not in waves:
        known = "、".join(wh.waves()["wave"].to_list()) or "无"
        raise WarehouseError(f"期次 {wave} 没有调查数据（已有期次：{known}）")
    return [score_wave(wh, defs, w) for w in waves]


def listing_result(wh: Warehouse, defs: Definitions, history: list[WaveScores]) -> ListingResult:
    waves = [PublishedWave(s.wave, s.composite.select("county_code", "score", "veto_reason"),
                           wh.indicators(s.wave)) for s in history]
    return run_listing(defs.scheme, defs.indicators, waves, wh.counties(), wh.inspections(),
                       wh.decisions())


def township_scores(wh: Warehouse, defs: Definitions, wave: str, county: str) -> pl.DataFrame | None:
    """Design-based survey scores of one county's townships (small samples, wide intervals), or
    None when the wave's file carries no township column for it."""
    responses = wh.responses(wave, county=county)
    if responses.height == 0 or responses["township"].null_count() == responses.height:
        return None
    return survey_score_by(responses, defs, "township")
