"""县区画像: one county — score and rank history, components against its city and the province,
items with intervals, townships (wide intervals), the levers that move its score, and a what-if."""

import polars as pl
import streamlit as st

from pages._shared import (
    chart,
    definitions,
    history,
    levers,
    percent,
    require_entry,
    require_wave,
    risk,
    sample_badge,
    townships,
    warehouse,
    what_if_result,
)
from pipelines import wave_display
from pipelines.present import charts
from pipelines.present import session_keys as keys
from pipelines.present.views import component_comparison, county_history, worst_set_sentence

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
defs = definitions()
st.title("县区画像")
sample_badge(wh)
counties = wh.counties()
if st.session_state.get(keys.CITY):
    counties = counties.filter(pl.col("city_code") == st.session_state[keys.CITY])
codes = counties["county_code"].to_list()
names = dict(zip(counties["county_code"], counties["county_name"], strict=False))
wanted = st.session_state.get(keys.COUNTY) or st.query_params.get("county")
chosen = st.selectbox("区县", codes, index=codes.index(wanted) if wanted in codes else 0,
                      format_func=lambda c: f"{names[c]}（{c}）")
st.session_state[keys.COUNTY] = chosen
st.query_params["county"] = chosen

scores = history(wave)[-1]
table = risk(wave)
mine = table.filter(pl.col("county_code") == chosen)
if mine.height == 0 or mine["score"][0] is None:
    st.info(f"{names[chosen]}在{wave_display(wave)}没有调查数据。")
    st.stop()
row = mine.row(0, named=True)
cols = st.columns(5)
cols[0].metric("综合得分", f"{row['score']:.2f}")
cols[0].caption(f"95%置信区间 {row['ci_low']:.2f} ~ {row['ci_high']:.2f}")
cols[1].metric("全省名次", f"第{row['rank']}名")
cols[1].caption(f"95%名次区间 第{row['rank_low']}–{row['rank_high']}名")
cols[2].metric("风险等级", row["band"])
cols[3].metric("本期后3 / 后10", f"{percent(row['p_bottom3'])} / {percent(row['p_bottom10'])}")
cols[4].metric("下期后3 / 后10",
               f"{percent(row['p_bottom3_next'])} / {percent(row['p_bottom10_next'])}")
cols[4].caption(f"其中下期一票否决概率 {percent(row['p_veto_next'])}")
if row["veto_reason"]:
    st.error(f"一票否决：{row['veto_reason']}（得分记为0）")
with st.expander("统计细节（供分析人员）"):
    k3 = defs.scheme.listing.province_bottom
    st.markdown(worst_set_sentence(names[chosen], k3, bool(row["in_worst3_set"])))

left, right = st.columns(2)
with left:
    trail = county_history(history(wave), chosen)
    chart(charts.history_chart(trail, title="历次综合得分与95%区间"))
    st.caption("历次名次：" + "；".join(f"{w} 第{r}名" for w, r in
                                   zip(trail["wave_label"], trail["rank"], strict=False) if r is not None))
with right:
    city = wh.counties().filter(pl.col("county_code") == chosen)["city_code"][0]
    chart(charts.comparison_chart(component_comparison(scores, chosen, city),
                                  title="分项得分：本县、本市与全省"))

items = scores.items.filter(pl.col("county_code") == chosen).join(
    pl.DataFrame({"item_id": [i.id for i in defs.questionnaire.items],
                  "题目": [i.short or i.label for i in defs.questionnaire.items]}), on="item_id")
left, right = st.columns(2)
with left:
    chart(charts.interval_chart(items, "题目", title="各题得分与95%区间"))
with right:
    towns = townships(wave, chosen)
    if towns is not None:
        chart(charts.interval_chart(towns.rename({"township": "乡镇（街道）"}), "乡镇（街道）",
                                    title="乡镇（街道）调查得分（样本小，区间宽）"))
    else:
        st.caption("本期数据没有乡镇（街道）信息。")

st.subheader("提分杠杆与假设分析")
county_levers = levers(wave).filter(pl.col("county_code") == chosen).sort(
    "points_per_sd", descending=True)
left, right = st.columns([2, 3])
left.dataframe(county_levers.select(pl.col("label").alias("分项"),
                             pl.col("points_per_sd").round(2).alias("改善一个县际标准差可增分"),
                             pl.col("points_per_unit").round(3).alias("每单位增分")),
               hide_index=True, width="stretch")
left.caption("每单位：调查分项提高1分、工作指标朝有利方向变化1个单位时综合得分增加的分数；"
             "县际标准差使不同单位的分项可以比较。")
with right.form("what_if"):
    st.markdown("**假设分析**：调整分项（原始单位），查看新的得分、名次与风险")
    changes = {}
    grid = st.columns(2)
    for k, comp in enumerate(defs.scheme.components):
        changes[comp.id] = grid[k % 2].number_input(comp.label, value=0.0, step=1.0,
                                                    key=f"whatif_{comp.id}")
    submitted = st.form_submit_button("计算")
if submitted:
    result = what_if_result(wave, chosen, changes)
    right.success(f"得分 {result.score_before:.2f} → {result.score:.2f}；名次 第{result.rank_before}名"
                  f" → 第{result.rank}名；本期后3概率 {percent(result.p_bottom3)}，后10概率 "
                  f"{percent(result.p_bottom10)}")
