"""Change between two waves per county, for the composite and every component, with its interval.

The two waves are independent samples (new respondents each wave), so the change's variance is the
sum of the two variances; the t interval uses the Welch–Satterthwaite degrees of freedom. A change is
called significant only when its interval excludes zero. Administrative indicators without sampling
error have an exact change (se 0): they are labelled 提升/下降/持平 without a test.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.wave_scores import WaveScores

COMPOSITE = "composite"


def _long(scores: WaveScores) -> pl.DataFrame:
    """county × quantity: score, se, df, veto (composite first, then components)."""
    composite = scores.composite.select(
        "county_code", pl.lit(COMPOSITE).alias("quantity"), pl.lit("综合得分").alias("label"),
        "score", "se", pl.col("df").cast(pl.Float64), "veto")
    df = scores.composite.select("county_code", pl.col("df").cast(pl.Float64), "veto")
    components = scores.components.join(df, on="county_code").select(
        "county_code", pl.col("component_id").alias("quantity"), "label", "score", "se",
        pl.when(pl.col("source") == "survey").then(pl.col("df")).otherwise(None).alias("df"),
        "veto")
    return pl.concat([composite, components])


def wave_change(before: WaveScores, after: WaveScores, level: float | None = None) -> pl.DataFrame:
    """One row per county and quantity: before, after, change, se, ci_low, ci_high, df, verdict."""
    level = level or after.level
    joined = _long(before).join(_long(after), on=["county_code", "quantity"], suffix="_after",
                                how="inner")
    score_a, score_b = joined["score"].to_numpy(), joined["score_after"].to_numpy()
    var_a, var_b = joined["se"].to_numpy() ** 2, joined["se_after"].to_numpy() ** 2
    df_a = joined["df"].fill_null(np.inf).to_numpy()
    df_b = joined["df_after"].fill_null(np.inf).to_numpy()
    change = score_b - score_a
    se = np.sqrt(var_a + var_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (var_a + var_b) ** 2 / (np.where(var_a > 0, var_a**2 / df_a, 0.0)
                                     + np.where(var_b > 0, var_b**2 / df_b, 0.0))
        q = special.stdtrit(df, 0.5 + level / 2)   # Student t quantile
    low, high = change - q * se, change + q * se
    vetoed = (joined["veto"] | joined["veto_after"]).to_numpy() \
        & (joined["quantity"] == COMPOSITE).to_numpy()
    verdict = np.select(
        [vetoed, np.isnan(change), se == 0,
         low > 0, high < 0],
        ["一票否决，不作比较", "缺少数据", np.where(change > 0, "提升", np.where(change < 0, "下降", "持平")),
         "显著提升", "显著下降"], default="无显著变化")
    return joined.select("county_code", "quantity", "label").with_columns(
        pl.Series("before", score_a), pl.Series("after", score_b), pl.Series("change", change),
        pl.Series("se", se), pl.Series("ci_low", np.where(se > 0, low, change)),
        pl.Series("ci_high", np.where(se > 0, high, change)), pl.Series("df", df),
        pl.Series("verdict", verdict),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
