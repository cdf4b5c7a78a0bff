"""Before publishing a wave: how the new file compares with the previous wave, so an analyst sees a
broken file (a county missing, answers shifted by a recoding error) before leaders do."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.scheme.definitions import Definitions
from pipelines.stats.points import POINTS_PREFIX, item_points, scored_items

COUNT_CHANGE_FLAG = 0.3      # respondents per county changed by more than 30%
SHIFT_FLAG = 10.0            # an item's county mean moved by more than 10 points
INDICATOR_CHANGE_FLAG = 0.5  # an indicator changed by more than 50%


@dataclass(frozen=True)
class SurveyPreview:
    counts: pl.DataFrame        # county_code, new, previous, change, flag
    shifts: pl.DataFrame        # county_code, item_id, new, previous, shift (flagged only)
    answers: pl.DataFrame       # item_id, answer_code, new_share, previous_share


def survey_preview(defs: Definitions, new: pl.DataFrame, previous: pl.DataFrame) -> SurveyPreview:
    counts = new.group_by("county_code").len("new").join(
        previous.group_by("county_code").len("previous"), on="county_code", how="full",
        coalesce=True).with_columns(pl.col("new", "previous").fill_null(0)).with_columns(
        ((pl.col("new") - pl.col("previous")) / pl.col("previous")).alias("change")).with_columns(
        pl.when(pl.col("new") == 0).then(pl.lit("本期缺少该县"))
        .when(pl.col("previous") == 0).then(pl.lit("上期没有该县"))
        .when(pl.col("change").abs() > COUNT_CHANGE_FLAG).then(pl.lit("样本量变化超过30%"))
        .otherwise(pl.lit("")).alias("flag")).sort("county_code")
    items = scored_items(defs.scheme)

    def means(frame: pl.DataFrame) -> pl.DataFrame:
        scored = item_points(frame, defs)
        return scored.group_by("county_code").agg(
            ((pl.col(POINTS_PREFIX + i) * pl.col("weight")).sum()
             / pl.col("weight").filter(pl.col(POINTS_PREFIX + i).is_not_null()).sum()).alias(i)
            for i in items).unpivot(index="county_code", variable_name="item_id", value_name="mean")

    shifts = means(new).join(means(previous), on=["county_code", "item_id"], suffix="_previous") \
        .with_columns((pl.col("mean") - pl.col("mean_previous")).alias("shift")) \
        .filter(pl.col("shift").abs() > SHIFT_FLAG).sort(pl.col("shift").abs(), descending=True)
    answers = []
    for item in defs.questionnaire.items:
        for frame, name in ((new, "new_share"), (previous, "previous_share")):
            column = pl.col(item.column)
            answers.append(frame.filter(column.is_not_null()).group_by(column.alias("answer_code"))
                           .len().with_columns((pl.col("len") / pl.col("len").sum()).alias("share"),
                                               pl.lit(item.id).alias("item_id"),
                                               pl.lit(name).alias("which")).drop("len"))
    table = pl.concat(answers).pivot("which", index=["item_id", "answer_code"], values="share") \
        .sort("item_id", "answer_code")
    return SurveyPreview(counts, shifts, table)


def indicator_preview(new: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """Indicator values that changed by more than half since the previous wave. A value that
    stayed the same (0 → 0 too) has changed by 0; one that left 0 has no relative change (null)
    and is flagged as the jump it is; a value missing in either wave is not compared."""
    new_value, old = pl.col("value"), pl.col("value_previous")
    change = (pl.when(new_value == old).then(0.0)
              .when(old == 0).then(None)
              .otherwise((new_value - old) / old.abs()))
    return new.join(previous, on=["county_code", "indicator_id"], suffix="_previous") \
        .filter(new_value.is_not_null() & old.is_not_null() & new_value.is_not_nan()
                & old.is_not_nan()) \
        .with_columns(change.alias("change")) \
        .with_columns(pl.when(pl.col("change").is_null()).then(pl.lit("由0变为非0"))
                      .otherwise(pl.lit("变化超过50%")).alias("flag")) \
        .filter(pl.col("change").is_null() | (pl.col("change").abs() > INDICATOR_CHANGE_FLAG)) \
        .sort(pl.col("change").abs(), descending=True, nulls_last=False)
