"""县区画像: one county — score and rank history, components against its city and the province,
items with intervals, townships (wide intervals), the levers that move its score, and a what-if."""

import polars as pl
import streamlit as st

from pages._shared import (
    definitions,
    fixes,
    history,
    in_scope,
    levers,
    percent,
    require_entry,
    require_wave,
    risk,
    sample_badge,
    shared_chart,
    show_table,
    townships,
    warehouse,
    what_if_result,
)
from pipelines import wave_display
from pipelines.present import charts
from pipelines.present import session_keys as keys
from pipelines.present.leader import fixes_table, what_if_words
from pipelines.present.views import component_comparison, county_history, worst_set_sentence

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
defs = definitions()
st.title("县区画像")
sample_badge(wh)
counties = in_scope(wh.counties())     # a city-limited viewer: their own city's counties only
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
    shared_chart("county_history", lambda: charts.history_chart(trail, title="历次综合得分与95%区间"),
                 chosen)
    st.caption("历次名次：" + "；".join(f"{w} 第{r}名" for w, r in
                                   zip(trail["wave_label"], trail["rank"], strict=False) if r is not None))
with right:
    city = wh.counties().filter(pl.col("county_code") == chosen)["city_code"][0]
    shared_chart("components", lambda: charts.comparison_chart(
        component_comparison(scores, chosen, city), title="分项得分：本县、本市与全省"), chosen)

items = scores.items.filter(pl.col("county_code") == chosen).join(
    pl.DataFrame({"item_id": [i.id for i in defs.questionnaire.items],
                  "题目": [i.short or i.label for i in defs.questionnaire.items]}), on="item_id")
left, right = st.columns(2)
with left:
    shared_chart("items", lambda: charts.interval_chart(items, "题目", title="各题得分与95%区间"),
                 chosen)
with right:
    towns = townships(wave, chosen)
    if towns is not None:
        shared_chart("townships", lambda: charts.interval_chart(
            towns.rename({"township": "乡镇（街道）"}), "乡镇（街道）",
            title="乡镇（街道）调查得分（样本小，区间宽）"), chosen)
    else:
        st.caption("本期数据没有乡镇（街道）信息。")

st.subheader("提分杠杆与假设分析")
k3, k10 = defs.scheme.listing.province_bottom, defs.scheme.listing.city_bottom
needs = fixes_table(fixes(wave, chosen), (k3, k10))
st.markdown(f"**{names[chosen]}须改进什么**：每个分项单独改变多少（原始单位），本县就能离开全省后{k3}名 / "
            f"后{k10}名；“最多可增综合分”为该分项改善到最好水平时综合得分最多能增加的分数。")
show_table(needs, key=f"fixes_{chosen}")
st.caption("计算时其他县保持本期水平；按相对方法计分的分项已随之重算。调查分项最多到100分，"
           "工作指标最多到全省最好县的水平（或方案规定的目标值）。")
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
    st.markdown("**假设分析**：调整分项（原始单位，正数为提高、负数为降低），查看新的得分、名次与风险")
    changes = {}
    grid = st.columns(2)
    for k, comp in enumerate(defs.scheme.components):
        changes[comp.id] = grid[k % 2].number_input(comp.label, value=0.0, step=1.0,
                                                    key=f"whatif_{comp.id}")
    submitted = st.form_submit_button("计算")
if submitted:
    result = what_if_result(wave, chosen, changes)
    verdict = what_if_words(result)
    crossed = any(result.listed_before.get(k) and not v for k, v in result.listed_after.items())
    (right.success if crossed else right.info)(
        f"得分 {result.score_before:.2f} → {result.score:.2f}；名次 第{result.rank_before}名"
        f" → 第{result.rank}名；本期后{k3}概率 {percent(result.p_bottom3)}，后{k10}概率 "
        f"{percent(result.p_bottom10)}。\n\n**{names[chosen]}{verdict}**")
