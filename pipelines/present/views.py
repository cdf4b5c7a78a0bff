"""What each dashboard page shows, assembled from the scored history, the risk table and the
listing engine (pages only render these frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core.waves import wave_display
from pipelines.ranking.ranks import rank_column, rank_scores
from pipelines.stats.change import wave_change
from pipelines.stats.wave_scores import WaveScores

RAW_SUFFIX = "__raw"       # ranking_view's column of a component's raw value


def cut_line_scores(scores: pl.Series, bottoms: tuple[int, ...] = (3, 10)) -> pl.DataFrame:
    """The score of each cut line: halfway between the k-th and (k+1)-th lowest scores."""
    ordered = scores.drop_nulls().sort().to_list()
    rows = [(f"后{k}名分界线", k, (ordered[k - 1] + ordered[k]) / 2)
            for k in bottoms if len(ordered) > k]
    return pl.DataFrame(rows, schema=["line", "k", "score"], orient="row")


def ranking_view(risk: pl.DataFrame, scores: WaveScores, bottoms: tuple[int, ...]) -> pl.DataFrame:
    """The ranking table: score, interval, rank and rank interval, whether the interval crosses a
    cut line, and the component scores."""
    lines = cut_line_scores(risk["score"], bottoms)["score"].to_list()
    crosses = pl.lit(False)
    for line in lines:
        crosses = crosses | ((pl.col("ci_low") <= line) & (pl.col("ci_high") >= line))
    components = scores.components.pivot("component_id", index="county_code", values="score") \
        .join(scores.components.pivot("component_id", index="county_code", values="raw")
              .rename(lambda c: c if c == "county_code" else f"{c}{RAW_SUFFIX}"), on="county_code")
    return risk.with_columns(pl.when(crosses & ~pl.col("veto")).then(pl.lit("跨越分界线"))
                             .otherwise(pl.lit("不跨越")).alias("crosses_line")) \
        .join(components, on="county_code", how="left").sort("rank")


CHART_ROWS = 150   # one readable label per county; at national scale the rest go to the table


def chart_rows(ranking: pl.DataFrame, limit: int = CHART_ROWS) -> pl.DataFrame:
    """The counties a per-county chart can show legibly: all of them up to `limit`, else the
    `limit` lowest (where the bottom-3 and bottom-10 lines are)."""
    if ranking.height <= limit:
        return ranking
    return ranking.sort("score", nulls_last=True).head(limit).sort("rank")


@dataclass(frozen=True)
class Overview:
    province_mean: float | None     # of the city's counties when the overview is a city's
    previous_mean: float | None
    band_counts: pl.DataFrame
    movers: pl.DataFrame        # county_name, before, after, change, verdict (biggest first)


def overview(history: list[WaveScores], risk: pl.DataFrame,
             city_code: str | None = None) -> Overview:
    """Average score (vetoed counties left out: their 0 is a rule, not a score) and its change,
    counties per risk band, and the biggest significant movers since the previous wave — of the
    province, or of one city's counties only (`city_code`), so a city view never shows a
    province figure under the city's heading."""
    def mine(frame: pl.DataFrame) -> pl.DataFrame:
        return frame if city_code is None else frame.filter(pl.col("city_code") == city_code)

    def mean(scores: WaveScores) -> float | None:
        value = mine(scores.composite).filter(~pl.col("veto"))["score"].mean()
        return None if value is None else float(value)

    current = history[-1]
    previous = history[-2] if len(history) > 1 else None
    codes = mine(current.composite)["county_code"]
    bands = risk.filter(pl.col("county_code").is_in(codes.implode())).group_by("band") \
        .len("counties")
    movers = pl.DataFrame()
    if previous is not None:
        change = wave_change(previous, current).filter(pl.col("quantity") == "composite")
        movers = change.join(mine(current.composite).select("county_code", "county_name",
                                                            "city_name"),
                             on="county_code").filter(pl.col("verdict").str.starts_with("显著")) \
            .sort(pl.col("change").abs(), descending=True)
    return Overview(mean(current), mean(previous) if previous else None, bands, movers)


def county_histories(history: list[WaveScores]) -> pl.DataFrame:
    """Every county's score, interval and published rank in every wave (one rank pass per wave)."""
    frames = []
    for scores in history:
        composite = scores.composite
        ranks = rank_scores(composite["score"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        frames.append(composite.select(
            "county_code", pl.lit(scores.wave).alias("wave"),
            pl.lit(wave_display(scores.wave)).alias("wave_label"), "score", "ci_low", "ci_high",
            rank_column("rank", ranks),
            pl.lit(composite.height).alias("counties"), "veto_reason"))
    return pl.concat(frames)


def county_history(history: list[WaveScores] | pl.DataFrame, county_code: str) -> pl.DataFrame:
    """One county's rows of `county_histories` (pass that frame when drawing many counties)."""
    table = history if isinstance(history, pl.DataFrame) else county_histories(history)
    return table.filter(pl.col("county_code") == county_code).drop("county_code")


def worst_set_sentence(county: str, k: int, in_set: bool) -> str:
    """The τ-worst set in one plain sentence for one county (it is a statement about what the
    survey cannot rule out, not a forecast of who will be listed, so no headline counts it)."""
    if in_set:
        return (f"按95%置信度，不能排除{county}的真实水平属于全省后{k}名：它与后{k}名的差距在"
                "抽样误差之内。这只说明调查无法排除，不是挂牌预测。")
    return f"按95%置信度，可以排除{county}的真实水平属于全省后{k}名。"


def component_comparison(scores: WaveScores, county_code: str,
                         city_code: str | None) -> pl.DataFrame:
    """The county's component scores beside its city's and the province's averages."""
    comp = scores.components.join(scores.composite.select("county_code", "city_code", "veto"),
                                  on="county_code").filter(~pl.col("veto"))
    order = scores.components["label"].unique(maintain_order=True)
    county = comp.filter(pl.col("county_code") == county_code).select(
        "label", pl.lit("本县").alias("who"), "score")
    city = comp.filter(pl.col("city_code") == city_code).group_by("label").agg(
        pl.col("score").mean()).select("label", pl.lit("本市平均").alias("who"), "score")
    province = comp.group_by("label").agg(pl.col("score").mean()).select(
        "label", pl.lit("全省平均").alias("who"), "score")
    out = pl.concat([county, city, province])
    return out.join(pl.DataFrame({"label": order, "order": range(order.len())}), on="label") \
        .sort("order", "who").drop("order")


def sensitivity(scores: WaveScores, weights: dict[str, float],
                normalisations: dict[str, str | None] | None = None) -> pl.DataFrame:
    """Ranks under other component weights (and normalisations): county, rank now, rank then,
    score then. Weights are rescaled to sum to 100; vetoes still apply."""
    import dataclasses

    model = scores.model
    total = sum(weights.values()) or 1.0
    changed = []
    for comp in model.components:
        updates: dict[str, object] = {"weight": 100 * weights.get(comp.id, comp.weight) / total}
        method = (normalisations or {}).get(comp.id, comp.normalisation)
        if method != comp.normalisation:
            updates["normalisation"] = method
            if method == "goalposts" and (comp.lo is None or comp.hi is None):
                updates["normalisation"] = "minmax"
        changed.append(dataclasses.replace(comp, **updates))
    alternative = dataclasses.replace(model, components=tuple(changed))
    after = np.where(model.vetoed, 0.0,
                     alternative.points(model.survey_mean, model.indicator_raw).sum(axis=1))
    before = scores.composite["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return scores.composite.select("county_code", "county_name", "city_name").with_columns(
        rank_column("rank_before", rank_scores(before)),
        rank_column("rank_after", rank_scores(after)),
        pl.Series("score_before", before), pl.Series("score_after", after),
    ).with_columns((pl.col("rank_before") - pl.col("rank_after")).alias("moved_up"))
