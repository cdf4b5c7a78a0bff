"""对领导发布: freeze a complete wave's announced figures (scores, ranks, listings) as an official
publication record, and compare a later re-computation with them. Once announced, a ranking is
an official figure: a changed scheme, file or code must show up as a difference for analysts, not
silently replace what leaders were told."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from pipelines.core.waves import wave_display
from pipelines.ranking.ranks import rank_column, rank_scores
from pipelines.results.wave import listing_result, scored_history
from pipelines.scheme.definitions import Definitions
from pipelines.store.warehouse import Warehouse, WarehouseError

FROZEN_COLUMNS = ["county_code", "county_name", "city_name", "score", "ci_low", "ci_high", "rank",
                  "veto_reason", "listed"]
SCORE_TOLERANCE = 1e-6     # a score that moved less than this is the same announced figure


def scheme_fingerprint(defs: Definitions) -> str:
    """Digest of the questionnaire, indicator catalogue and scoring scheme the results used."""
    return hashlib.sha256(repr((defs.questionnaire, defs.indicators, defs.scheme)).encode()) \
        .hexdigest()[:16]


def frozen_results(wh: Warehouse, defs: Definitions, wave: str) -> pl.DataFrame:
    """What an announcement states for `wave`, per county: score, interval, published rank,
    veto and whether the county is listed after the wave."""
    history = scored_history(wh, defs, wave)
    composite = history[-1].composite
    score = composite["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    listed = set(listing_result(wh, defs, history).status["county_code"].to_list())
    return composite.select("county_code", "county_name", "city_name", "score", "ci_low",
                            "ci_high", "veto_reason").with_columns(
        rank_column("rank", rank_scores(score, defs.scheme.ties)),
        pl.col("county_code").is_in(sorted(listed)).alias("listed"),
    ).select(FROZEN_COLUMNS).sort("county_code")


def result_digest(frame: pl.DataFrame) -> str:
    """SHA-256 of the announced figures: county, score (to 1e-6), rank, listed."""
    rows = frame.sort("county_code").select(
        "county_code", pl.col("score").round(6), "rank", "listed").rows()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def is_complete(wh: Warehouse, wave: str) -> bool:
    """A wave may go to leaders only with both its survey data and its indicator sheet."""
    row = wh.waves().filter(pl.col("wave") == wave)
    return row.height == 1 and row["survey_load_id"][0] is not None \
        and row["indicators_load_id"][0] is not None


def release_wave(wh: Warehouse, defs: Definitions, wave: str, by: str) -> int:
    """Publish `wave` to leaders: freeze its results and record the release; returns its id."""
    if not is_complete(wh, wave):
        raise WarehouseError(f"{wave_display(wave)}的调查数据或工作指标表尚未导入，数据不完整，"
                             "不能对领导发布。")
    row = wh.waves().filter(pl.col("wave") == wave)
    loads = (int(row["survey_load_id"][0]), int(row["indicators_load_id"][0]))
    frozen = frozen_results(wh, defs, wave)
    return wh.record_release(wave, by, scheme_fingerprint=scheme_fingerprint(defs),
                             digest=result_digest(frozen), results=frozen, loads=loads)


def release_differences(wh: Warehouse, defs: Definitions, wave: str) -> pl.DataFrame | None:
    """Counties whose re-computed score, rank or listing differs from the released figures
    (empty: the release still reproduces exactly); None when no results were frozen."""
    announced = wh.released_result(wave)
    if announced is None:
        return None
    now = frozen_results(wh, defs, wave)
    joined = announced.join(now, on="county_code", how="full", coalesce=True, suffix="_now")
    moved = (pl.col("score") - pl.col("score_now")).abs() > SCORE_TOLERANCE
    changed = moved.fill_null(pl.col("score").is_null() != pl.col("score_now").is_null()) \
        | (pl.col("rank") != pl.col("rank_now")).fill_null(True) \
        | (pl.col("listed") != pl.col("listed_now")).fill_null(True)
    return joined.filter(changed).select(
        "county_code", pl.coalesce("county_name", "county_name_now").alias("county_name"),
        pl.col("score").alias("score_released"), "score_now",
        pl.col("rank").alias("rank_released"), "rank_now",
        pl.col("listed").alias("listed_released"), "listed_now").sort("county_code")
