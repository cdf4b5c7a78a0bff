"""The sample plan (抽样方案) as the page, the CLI and the Excel export show it: one row per county
with its name and city, the comparison of allocations, and the chart of where the interviews go."""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt
import numpy as np
import polars as pl

from pipelines.present.charts import SCORE_COLOUR
from pipelines.present.tables import INTEGER, SCORE, Table
from pipelines.ranking.plan import SamplePlan

PLAN_LABELS = {"county_code": "区县代码", "county_name": "区县", "city_name": "市州",
               "n_current": "本期样本量", "n_planned": "建议样本量", "change": "增减",
               "wrong_current": "错判期望·本期样本量", "wrong_planned": "错判期望·建议样本量"}
SUMMARY_LABELS = {"label": "分配方式", "total": "总样本量", "expected_wrong": "预计错判区县数",
                  "se": "模拟误差"}
# not red or orange: those mean the bottom 3 / bottom 10 everywhere else on the dashboard
CHANGE_COLOURS = {"增加": SCORE_COLOUR, "不变": "#7f8c8d", "减少": "#9fb6cd"}


def parse_fixed(items: Iterable[str]) -> dict[str, int]:
    """"990101=400" items (blank ones skipped, "＝" and "：" accepted) → {county code: interviews};
    ValueError on anything else."""
    fixed = {}
    for item in items:
        text = item.strip().replace("＝", "=").replace("：", "=").replace(":", "=")
        if not text:
            continue
        code, _, size = text.partition("=")
        if not code.strip() or not size.strip() or int(size) < 1:
            raise ValueError(item)
        fixed[code.strip()] = int(size)
    return fixed


def plan_view(plan: SamplePlan, counties: pl.DataFrame) -> pl.DataFrame:
    """Per county: code, name, city, current and planned interviews, the change, and the expected
    number of wrong sides of the lines at each size; most interviews first."""
    return plan.table.join(counties.select("county_code", "county_name", "city_name"),
                           on="county_code", how="left", maintain_order="left").with_columns(
        (pl.col("n_planned") - pl.col("n_current")).alias("change")).select(
        "county_code", "county_name", "city_name", "n_current", "n_planned", "change",
        "wrong_current", "wrong_planned").sort("n_planned", "wrong_current", descending=True)


def plan_table(view: pl.DataFrame) -> Table:
    frame = view.rename(PLAN_LABELS)
    formats = {PLAN_LABELS[c]: INTEGER for c in ("n_current", "n_planned", "change")} \
        | {PLAN_LABELS[c]: SCORE for c in ("wrong_current", "wrong_planned")}
    return Table("抽样方案", frame, formats)


def summary_table(plan: SamplePlan) -> Table:
    frame = plan.summary.select(*SUMMARY_LABELS).rename(SUMMARY_LABELS)
    return Table("分配方式比较", frame, {"总样本量": INTEGER, "预计错判区县数": SCORE,
                                      "模拟误差": SCORE})


def weighting_note(plan: SamplePlan) -> str:
    """What the counts are when the lines do not weigh the same: weighted sums, not counties."""
    weights = set(plan.settings.weights.values())
    return "" if weights == {1.0} else "（按分界线权重加权）"


def floor_note(plan: SamplePlan) -> str:
    """What no allocation goes below: the expected wrongly placed counties with unlimited
    interviews in every county (the count indicators' Poisson noise alone)."""
    if not np.isfinite(plan.floor):
        return ""
    equal = plan.summary.filter(pl.col("allocation") == "equal")["expected_wrong"][0]
    return (f"即使每县样本量不设上限（调查误差为零），预计错判区县数仍有 {plan.floor:.2f}"
            f"（平均分配 {equal:.2f}）：这部分来自计数指标的泊松误差，任何样本分配都不能减少。")


def settings_note(plan: SamplePlan, wave_label: str, lines: tuple[int, ...]) -> str:
    """The workbook's 说明 sheet: what was planned, with which settings, and what is minimised."""
    s = plan.settings
    weights = "、".join(f"后{k}名线 {w:g}" for k, w in s.weights.items())
    fixed = "、".join(f"{code} {n}" for code, n in s.fixed.items()) or "无"
    planned = plan.summary.filter(pl.col("allocation") == "planned")["expected_wrong"][0]
    equal = plan.summary.filter(pl.col("allocation") == "equal")["expected_wrong"][0]
    return "\n".join([
        f"抽样方案：依据截至{wave_label}的各期数据，为下一期调查分配各县样本量。",
        f"总样本量 {s.total}；每县最少 {s.min_per_county}，最多 "
        f"{s.max_per_county if s.max_per_county is not None else '不限'}；固定样本量的区县：{fixed}。",
        f"目标：使公布名次与真实水平分处后{'名/后'.join(str(k) for k in lines)}名分界线两侧的区县数"
        f"（错判区县数）的期望最小；分界线权重：{weights}。",
        "真实水平取自下期预测（趋势、期间波动、一票否决概率）；抽样误差的调查部分随样本量缩小，"
        "各县设计效应保持本期水平，计数指标的泊松误差不随样本量变化。",
        f"预计错判区县数：平均分配 {equal:.2f}，建议方案 {planned:.2f}（{s.draws} 次模拟）。",
        floor_note(plan),
    ])


def plan_chart(view: pl.DataFrame, top: int = 30, title: str = "") -> alt.Chart:
    """Current and planned interviews of the counties whose sample changes most, the planned bar
    coloured by the direction of the change."""
    shown = view.with_columns(pl.col("change").abs().alias("size")) \
        .sort("size", descending=True).head(top).sort("n_planned", descending=True)
    order = shown["county_name"].to_list()
    data = shown.with_columns(
        pl.when(pl.col("change") > 0).then(pl.lit("增加"))
        .when(pl.col("change") < 0).then(pl.lit("减少")).otherwise(pl.lit("不变"))
        .alias("direction"))
    base = alt.Chart(alt.Data(values=data.to_dicts())).encode(
        y=alt.Y("county_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=120)))
    bars = base.mark_bar(height=9).encode(
        x=alt.X("n_planned:Q", title="样本量（人）"),
        color=alt.Color("direction:N", title="建议样本量较本期", scale=alt.Scale(
            domain=list(CHANGE_COLOURS), range=list(CHANGE_COLOURS.values()))),
        tooltip=[alt.Tooltip("county_name:N", title="区县"),
                 alt.Tooltip("n_current:Q", title="本期样本量"),
                 alt.Tooltip("n_planned:Q", title="建议样本量"),
                 alt.Tooltip("wrong_current:Q", title="错判期望·本期", format=".2f"),
                 alt.Tooltip("wrong_planned:Q", title="错判期望·建议", format=".2f")])
    ticks = base.mark_tick(color="black", thickness=2, size=14).encode(x="n_current:Q")
    return alt.layer(bars, ticks).properties(title=title, height=max(200, 16 * shown.height),
                                             width="container")
