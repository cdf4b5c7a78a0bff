"""挂牌风险: P(bottom 3) and P(bottom 10) this wave (true standing) and next wave (published
ranking), the sets that may contain the true bottom 3/10, the funnel plot and the gaps to the lines."""

import streamlit as st

from pages._shared import (
    city_label,
    definitions,
    funnel_data,
    in_city,
    require_entry,
    require_wave,
    risk,
    sample_badge,
    shared_chart,
    show_table,
    warehouse,
)
from pipelines import wave_display
from pipelines.present import charts
from pipelines.present.leader import funnel_outliers
from pipelines.present.tables import band_rule, risk_display, risk_order

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
scheme = definitions().scheme
k3, k10 = scheme.listing.province_bottom, scheme.listing.city_bottom
st.title("挂牌风险")
sample_badge(wh)
table = in_city(risk(wave).join(wh.counties().select("county_code", "city_code"),
                                on="county_code"))
st.info(f"**本期**：公布名次已定；概率回答“该县的**真实水平**是否在后{k3}名/后{k10}名”（挂牌是否公平，"
        f"还是抽样误差）。**下期**：概率回答“下一期**公布的得分**是否落入后{k3}名/后{k10}名”"
        "（真实水平的变化 + 下一次调查的抽样误差）。两者回答的是不同的问题。")
st.caption(band_rule(scheme))
shared_chart("risk", lambda: charts.risk_chart(
    risk_order(table, scheme), title=f"{wave_display(wave)} · {city_label()}：风险最高的区县"))

st.subheader("风险表")
show_table(risk_display(table, scheme), height=480)
st.caption("距分界线：正数为高出分界线的分数，负数为须提高的分数。提分杠杆：改善一个县际标准差时综合得分增加最多的分项。")

st.subheader("与全省平均相比差异明显的县")
result = funnel_data(wave)
names = wh.counties().select("county_code", "city_code")
shown_points = in_city(result.points.join(names, on="county_code"))
st.markdown(funnel_outliers(shown_points))
shared_chart("funnel", lambda: charts.funnel_chart(
    shown_points, result.limits, result.target,
    title="综合得分与样本量：控制限外的县与全省平均差异明显"))
st.caption(f"中心线为全省平均 {result.target:.2f}。样本越大，偶然波动越小，控制限越窄；限外的县与全省平均的"
           "差异超出了抽样误差和一般县际差异。（方法：漏斗图，控制限已按县际真实差异调整。）")
