"""抽样方案 (analysts): how many interviews each county should get at the next wave, so that as few
counties as possible are published on the wrong side of the bottom-3 / bottom-10 lines; the
comparison with equal and proportional allocation, a chart, the table and an Excel workbook."""

import functools

import polars as pl
import streamlit as st

from pages._shared import (
    chart,
    definitions,
    history,
    require_entry,
    require_wave,
    sample_badge,
    sample_plan,
    show_table,
    warehouse,
)
from pipelines import PlanError, wave_display, workbook_bytes
from pipelines.present.plan_views import (
    floor_note,
    parse_fixed,
    plan_chart,
    plan_table,
    plan_view,
    settings_note,
    summary_table,
    weighting_note,
)

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
listing = definitions().scheme.listing
k3, k10 = listing.province_bottom, listing.city_bottom
st.title("抽样方案")
sample_badge(wh)
st.caption(f"依据截至{wave_display(wave)}的各期数据，为下一期调查分配各县样本量：把访问量放在最可能"
           f"被错排到后{k3}名/后{k10}名分界线另一侧的区县，使“公布名次与真实水平分处分界线两侧”的"
           "区县数（错判区县数）的期望最小。")

current = history(wave)[-1].composite["n"].cast(pl.Int64)
counties = current.len()
with st.form("plan_settings"):
    cols = st.columns(5)
    total = cols[0].number_input("下一期总样本量（人）", min_value=counties, step=100,
                                 value=int(round(current.sum(), -2)), key="plan_total")
    minimum = cols[1].number_input("每县最少样本量", min_value=1, value=200, step=10,
                                   key="plan_min")
    maximum = cols[2].number_input("每县最多（0 = 不限）", min_value=0, value=0, step=50,
                                   key="plan_max")
    w3 = cols[3].number_input(f"后{k3}名线权重", min_value=0.0, value=1.0, step=0.5, key="plan_w3")
    w10 = cols[4].number_input(f"后{k10}名线权重", min_value=0.0, value=1.0, step=0.5,
                               key="plan_w10")
    with st.expander("固定样本量的区县（例如已另行委托调查的县）"):
        fixed_text = st.text_area("每行一个：区县代码=样本量", height=80, key="plan_fixed",
                                  placeholder="990101=400")
    st.form_submit_button("计算抽样方案", type="primary")

try:
    fixed = parse_fixed(fixed_text.splitlines())
except ValueError:
    st.error("固定样本量的格式应为每行“区县代码=样本量”，例如 990101=400。")
    st.stop()
if w3 + w10 <= 0:
    st.error("两条分界线的权重不能都为 0。")
    st.stop()
try:
    plan = sample_plan(wave, int(total), int(minimum), int(maximum) or None, fixed,
                       {k3: float(w3), k10: float(w10)})
except PlanError as exc:
    st.error(str(exc))
    st.stop()

summary = plan.summary.to_dicts()
by_name = {row["allocation"]: row for row in summary}
equal = by_name["equal"]["expected_wrong"]
for col, row in zip(st.columns(len(summary)), summary, strict=True):
    delta = None if row["allocation"] in ("equal", "current") \
        else f"{row['expected_wrong'] - equal:+.2f}（较平均分配）"
    col.metric(f"预计错判区县数·{row['label']}", f"{row['expected_wrong']:.2f}", delta,
               delta_color="inverse")
st.caption(f"预计错判区县数{weighting_note(plan)}：各分配方式的总样本量相同"
           f"（“本期样本量”为本期实际的 {by_name['current']['total']} 人）；"
           f"{plan.settings.draws} 次模拟，模拟误差约 ±{by_name['planned']['se']:.2f}。"
           "真实水平取自下期预测。")
if plan.survey_share < 0.6:
    st.info(f"各县得分的抽样误差中，调查部分只占约 {plan.survey_share:.0%}（中位数），其余是计数指标"
            "的泊松误差，增加访问量不能缩小它：重新分配样本量能减少的错判因此有限。" + floor_note(plan))

view = plan_view(plan, wh.counties())
chart(plan_chart(view, title=f"样本量变化最大的区县（{wave_display(wave)}之后一期）"))
st.caption("条形为建议样本量（深蓝：较本期增加，浅蓝：减少），黑色竖线为本期样本量。")

st.subheader("各县样本量")
table = plan_table(view)
show_table(table, height=420)
note = settings_note(plan, wave_display(wave), (k3, k10))
st.download_button("下载Excel（调查队使用）", icon=":material/table_view:",
                   data=functools.partial(workbook_bytes, [table, summary_table(plan)], note=note),
                   file_name=f"抽样方案_{wave}之后一期.xlsx", key="plan_xlsx", on_click="ignore",
                   mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
