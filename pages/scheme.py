"""评分方案: the scheme in force in readable form, the methods in plain Chinese, and a sensitivity
view (other weights or normalisations → how ranks would change)."""

import polars as pl
import streamlit as st

from pages._shared import definitions, history, require_entry, require_wave, sample_badge, warehouse
from pipelines.present.leader import veto_condition
from pipelines.present.tables import validity_label
from pipelines.present.views import sensitivity

require_entry()   # before anything renders: only inside app.py's navigation

NORMALISATION = {None: "原值（0–100）", "goalposts": "目标值法", "minmax": "全省最小最大",
                 "zscore": "标准分（50+10z）"}
wh = warehouse()
defs = definitions()
scheme = defs.scheme
st.title("评分方案")
sample_badge(wh)
st.markdown(f"**{scheme.name}**（{scheme.year}年）")

st.subheader("分项与权重")
st.dataframe(pl.DataFrame([{
    "分项": c.label, "来源": "问卷调查" if c.source == "survey" else "工作指标",
    "权重": c.weight, "方向": "越高越好" if c.direction == "higher" else "越低越好",
    "标准化": NORMALISATION.get(c.normalisation, c.normalisation)
    + (f"（{c.lo:g}–{c.hi:g}）" if c.normalisation == "goalposts" else ""),
    "说明": ("题目：" + "、".join(defs.questionnaire.item(i).label for i in c.items)) if c.items
    else defs.indicators.get(c.indicator).label
    + ("；由本期与上期两个泊松计数计入误差" if c.change_of else "；按泊松计数计入误差" if c.poisson
       else ""),
    "适用期次": validity_label(c.from_wave, c.until_wave),
} for c in scheme.components]), hide_index=True, width="stretch")

st.subheader("一票否决")
st.dataframe(pl.DataFrame([{"情形": v.reason, "条件": veto_condition(v, defs),
                            "适用期次": validity_label(v.from_wave, v.until_wave)}
                           for v in scheme.vetoes]), hide_index=True, width="stretch")
st.caption("方案按年份生效：某条规则只适用于其“适用期次”，此前各期仍按当时的方案评分，已公布的排名不变。")
rules = scheme.listing
st.subheader("挂牌与摘帽规则")
st.markdown(
    f"- 全省后{rules.province_bottom}名：省挂牌整治；后{rules.city_bottom}名：所在市挂牌重点整治"
    f"（{'各市' if 'all' in rules.city_opt_in else '、'.join(rules.city_opt_in)}执行）。\n"
    f"- 后{rules.criticism_bottom}名且得分低于{rules.criticism_score:g}：通报批评、书面检查；"
    f"连续{rules.consecutive_zero_years}年（同一年的两个半年期算一年）：当年考核得分记零，"
    "按0分重新排名。\n"
    f"- 摘帽：连续{scheme.delisting.consecutive_waves}期退出后{scheme.delisting.leave_bottom}名，"
    f"各项指标达标{'，并经验收合格' if scheme.delisting.inspection_required else ''}；"
    f"应在挂牌后{scheme.delisting.deadline_waves}期内完成。")

with st.expander("计算方法说明"):
    st.markdown(
        "- 每道题按方案把答案换算为分数；“说不清”按方案剔除或计分；空白不计入。每县每题得分是按权重"
        "计算的平均分，标准误按调查设计（分层、初级抽样单元）计算，与国际通用的 R survey 软件一致。\n"
        "- 综合得分 = 各分项标准化得分 × 权重 ÷ 100 之和。同一受访者各题的回答是相关的，综合得分的误差"
        "按受访者整体计算，而不是把各题误差简单相加。\n"
        "- 95%置信区间：若重复同样的调查，100次中约95次区间会包含该县的真实得分。区间重叠的两个县，"
        "排名先后可能只是抽样造成的。\n"
        "- 挂牌风险：把各县得分按其误差随机模拟10,000次，统计每县落入后3名、后10名的比例。")

st.subheader("敏感性分析：换一套权重，名次会怎样变")
wave = require_wave()
in_force = scheme.in_force(wave)     # the components that scored this wave
edited = st.data_editor(
    pl.DataFrame({"分项": [c.label for c in in_force.components],
                  "权重": [float(c.weight) for c in in_force.components],
                  "标准化": [NORMALISATION.get(c.normalisation) for c in in_force.components]}),
    column_config={"标准化": st.column_config.SelectboxColumn(
        options=list(NORMALISATION.values()))}, disabled=["分项"], hide_index=True,
    width="stretch", key="sensitivity_editor")
reverse = {v: k for k, v in NORMALISATION.items()}
weights = {c.id: float(w) for c, w in zip(in_force.components, edited["权重"], strict=False)}
methods = {c.id: reverse.get(m, c.normalisation)
           for c, m in zip(in_force.components, edited["标准化"], strict=False)}
result = sensitivity(history(wave)[-1], weights, methods)
moved = result.filter(pl.col("moved_up") != 0)
st.caption(f"权重合计 {sum(weights.values()):g}（计算时按合计100折算）。{moved.height} 个县名次变化。")
st.dataframe(result.sort("rank_after").select(
    pl.col("county_name").alias("区县"), pl.col("rank_before").alias("现行名次"),
    pl.col("rank_after").alias("调整后名次"), pl.col("moved_up").alias("上升"),
    pl.col("score_after").round(2).alias("调整后得分")), hide_index=True, width="stretch",
    height=400)
