"""The answers a leader comes for, as frames and sentences: which counties are at risk (with their
change since the last wave), the ranking as the numbered table of the meeting deck, what a county
must fix to leave the bottom 3 / bottom 10, and whether a what-if crosses the line."""

from __future__ import annotations

import polars as pl

from pipelines.present.tables import INTEGER, PERCENT, SCORE, Table, fixed_decimals
from pipelines.present.views import county_histories
from pipelines.ranking.risk import WhatIf
from pipelines.stats.wave_scores import WaveScores

AT_RISK_BANDS = ("高危", "预警")


def two_decimals(column: str | pl.Expr) -> pl.Expr:
    """A number as text with two decimals (91.00), as the Excel-made decks print scores."""
    return fixed_decimals(pl.col(column) if isinstance(column, str) else column, 2)


def previous_standing(history: list[WaveScores]) -> pl.DataFrame:
    """county_code, prev_score, prev_rank of the wave before the newest (empty without one)."""
    schema = {"county_code": pl.String, "prev_score": pl.Float64, "prev_rank": pl.Int64}
    if len(history) < 2:
        return pl.DataFrame(schema=schema)
    trails = county_histories(history[-2:-1])
    return trails.select("county_code", pl.col("score").cast(pl.Float64).alias("prev_score"),
                         pl.col("rank").cast(pl.Int64).alias("prev_rank"))


def rank_move_expr() -> pl.Expr:
    """较上期名次 as leaders write it: ↑3 (climbed), ↓2 (fell), 持平, — (no earlier rank)."""
    moved = pl.col("prev_rank") - pl.col("rank")
    return pl.when(pl.col("prev_rank").is_null() | pl.col("rank").is_null()).then(pl.lit("—")) \
        .when(moved > 0).then(pl.lit("↑") + moved.cast(pl.String)) \
        .when(moved < 0).then(pl.lit("↓") + (-moved).cast(pl.String)) \
        .otherwise(pl.lit("持平"))


def at_risk(risk: pl.DataFrame, history: list[WaveScores],
            bands: tuple[str, ...] = AT_RISK_BANDS) -> pl.DataFrame:
    """The counties of the top risk bands, worst band first then lowest score, with their change
    since the previous wave (score and rank)."""
    order = {b: k for k, b in enumerate(bands)}
    return risk.filter(pl.col("band").is_in(list(bands))) \
        .join(previous_standing(history), on="county_code", how="left") \
        .with_columns(pl.col("band").replace_strict(order, return_dtype=pl.Int64).alias("_o"),
                      (pl.col("score") - pl.col("prev_score")).alias("score_change"),
                      rank_move_expr().alias("rank_move")) \
        .sort("_o", "score", nulls_last=True).drop("_o")


def at_risk_table(frame: pl.DataFrame, k3: int = 3, k10: int = 10) -> Table:
    """`at_risk` with Chinese headers, as the 总览 page and the deck show it."""
    shown = frame.select(
        pl.col("band").alias("风险等级"), pl.col("county_name").alias("区县"),
        pl.col("city_name").alias("市州"), pl.col("score").alias("得分"),
        pl.col("rank").alias("名次"), pl.col("score_change").alias("得分较上期"),
        pl.col("rank_move").alias("名次较上期"),
        pl.col("p_bottom3").alias(f"后{k3}名概率"), pl.col("p_bottom10").alias(f"后{k10}名概率"))
    return Table("高危与预警区县", shown, {"得分": SCORE, "名次": INTEGER, "得分较上期": SCORE,
                                    f"后{k3}名概率": PERCENT, f"后{k10}名概率": PERCENT})


def deck_ranking_rows(ranking: pl.DataFrame, history: list[WaveScores]) -> pl.DataFrame:
    """The deck's ranking table: 名次 / 区县 / 市州 / 得分 / 95%区间 / 较上期名次, best first, with
    the rank kept for shading."""
    return ranking.join(previous_standing(history), on="county_code", how="left",
                        maintain_order="left").sort("rank", nulls_last=True,
                                                    maintain_order=True).select(
            pl.col("rank").alias("名次"), pl.col("county_name").alias("区县"),
            pl.col("city_name").alias("市州"),
            pl.when(pl.col("veto")).then(pl.lit("0（一票否决）"))
            .otherwise(two_decimals("score")).alias("得分"),
            pl.when(pl.col("veto")).then(pl.lit("—"))
            .otherwise(pl.format("{}～{}", two_decimals("ci_low"), two_decimals("ci_high")))
            .alias("95%区间"),
            rank_move_expr().alias("较上期名次"))


def fixes_table(fixes: pl.DataFrame, bottoms: tuple[int, int]) -> Table:
    """`county_fixes` for a leader: 现值, the change needed alone for each line in words, and the
    headroom in composite points, largest first."""
    def need(k: int) -> pl.Expr:
        value = pl.col(f"need_{k}")
        verb = pl.when(pl.col("direction") == "higher").then(pl.lit("提高 ")).otherwise(pl.lit("降低 "))
        return pl.when(value.is_null()).then(pl.lit("无法单独达到")) \
            .when(value == 0).then(pl.lit("已在线外")) \
            .otherwise(verb + two_decimals(value)).alias(f"单独离开后{k}名需")

    frame = fixes.sort("headroom", descending=True).select(
        pl.col("label").alias("分项"), pl.col("raw").alias("现值（原始单位）"),
        pl.col("points").alias("分项得分"), *[need(k) for k in bottoms],
        pl.col("headroom").alias("最多可增综合分"),
        pl.when(pl.col("largest")).then(pl.lit("提分空间最大")).otherwise(pl.lit("")).alias("提示"))
    return Table("本县须改进的分项", frame, {"现值（原始单位）": SCORE, "分项得分": SCORE,
                                      "最多可增综合分": SCORE})


def what_if_words(result: WhatIf) -> str:
    """Whether the change takes the county across each line, in one sentence per line."""
    parts = []
    for k in sorted(result.listed_after):
        before, after = result.listed_before.get(k), result.listed_after[k]
        if before and not after:
            parts.append(f"可以跨过后{k}名分界线，离开后{k}名")
        elif before and after:
            parts.append(f"仍在后{k}名之内，这一调整不足以离开后{k}名")
        elif not before and after:
            parts.append(f"会落入后{k}名")
        else:
            parts.append(f"本来就不在后{k}名，调整后仍不在")
    return "；".join(parts) + "。" if parts else ""


BAND_FILL = {"高危": ("#fbe3e1", "#a93226"), "预警": ("#fdebd3", "#a04000")}


def band_styled(table: Table):
    """The at-risk table as a pandas Styler: 高危 rows red, 预警 rows amber, numbers formatted as
    on the other pages (st.dataframe draws a Styler's colours). Row styles are set by position,
    without a per-row Python callback."""
    frame = table.frame.to_pandas()
    formats = {c: ("{:.1%}" if kind == PERCENT else "{:+.2f}" if c.endswith("较上期") else "{:.2f}")
               for c, kind in table.formats.items() if kind in (PERCENT, SCORE)}
    styler = frame.style.format(formats, na_rep="—")
    bands = table.frame["风险等级"].to_list() if "风险等级" in table.frame.columns else []
    for band, (fill, ink) in BAND_FILL.items():
        rows = [k for k, b in enumerate(bands) if b == band]
        if rows:
            styler = styler.set_properties(subset=(rows, slice(None)),
                                           **{"background-color": fill, "color": ink})
    return styler


def band_rules(scheme) -> str:
    """The risk bands in one sentence, from the scheme: 高危：后3名概率≥50%；…"""
    k3, k10 = scheme.listing.province_bottom, scheme.listing.city_bottom
    parts = []
    for band in scheme.listing.bands:
        rules = []
        if band.p_bottom3_at_least is not None:
            rules.append(f"后{k3}名概率≥{band.p_bottom3_at_least:.0%}")
        if band.p_bottom10_at_least is not None:
            rules.append(f"后{k10}名概率≥{band.p_bottom10_at_least:.0%}")
        if rules:
            parts.append(f"{band.label}：{'且'.join(rules)}")
    return "；".join(parts)


def funnel_outliers(points: pl.DataFrame) -> str:
    """The funnel plot's message in words: which counties differ clearly from the provincial
    average (outside the 99.8% limits; else the 95% ones), lower first."""
    def names(frame: pl.DataFrame, side: str, column: str) -> list[str]:
        return frame.filter(pl.col(column) == side).sort("score")["county_name"].to_list()

    for column, level in (("outside_998", "99.8%"), ("outside_95", "95%")):
        low, high = names(points, "低于", column), names(points, "高于", column)
        if low or high:
            parts = [f"明显低于全省平均：{'、'.join(low)}" if low else "",
                     f"明显高于全省平均：{'、'.join(high)}" if high else ""]
            return "；".join(p for p in parts if p) + f"（超出{level}控制限）。"
    return "没有与全省平均相比差异明显的县。"


VETO_OPS = {">=": "达到或超过", ">": "超过", "<=": "不超过", "<": "低于", "==": "等于"}


def veto_condition(veto, defs) -> str:
    """A veto rule as the official document words it (国家工作人员涉毒人数达到或超过2人), not as
    the scheme file codes it (cadres_involved >= 2)."""
    label, unit = veto.subject, ""
    try:
        indicator = defs.indicators.get(veto.subject)
        label, unit = indicator.label, indicator.unit
        if indicator.kind == "flag" and (veto.op, veto.value) in ((">=", 1), (">", 0), ("==", 1)):
            return f"工作指标表中“{label}”填报为“是”"
    except StopIteration:
        item = next((i for i in defs.questionnaire.items if i.id == veto.subject), None)
        label = (item.short or item.label) if item is not None else veto.subject
    return f"{label}{VETO_OPS.get(veto.op, veto.op)}{veto.value:g}{unit}"


def delta_args(delta: float | None, unit: str = "较上期") -> dict:
    """st.metric's delta for a change: none without a previous wave; a change that rounds to
    0.00 is 持平, grey and without an arrow (a green ▲ on +0.00 reads as an improvement)."""
    if delta is None:
        return {"delta": None}
    if round(delta, 2) == 0:
        return {"delta": f"持平（{unit}）", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": f"{delta:+.2f} {unit}"}
