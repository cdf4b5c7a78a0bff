"""县区排名: every county's score with its 95% interval, rank and rank interval; cut lines drawn and
intervals that cross one marked; a sortable table with the component scores."""

import polars as pl
import streamlit as st

from pages._shared import (
    city_label,
    definitions,
    in_city,
    ranking,
    require_entry,
    require_wave,
    sample_badge,
    shared_chart,
    show_table,
    warehouse,
)
from pipelines import wave_display
from pipelines.present import charts
from pipelines.present.tables import ranking_table
from pipelines.present.views import chart_rows, cut_line_scores

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
scheme = definitions().scheme
bottoms = (scheme.listing.province_bottom, scheme.listing.city_bottom)
st.title("县区排名")
sample_badge(wh)
table = ranking(wave)
lines = cut_line_scores(table["score"], bottoms)
shown = in_city(table)
crossing = shown.filter(pl.col("crosses_line") == "跨越分界线").height
st.caption(f"{wave_display(wave)} · {city_label()}：名次为全省名次。橙色区间跨越后{bottoms[0]}名或后"
           f"{bottoms[1]}名分界线（{crossing} 个县）：这些县是否在线下，仅凭本次调查无法确定。")
plotted = chart_rows(shown)
if plotted.height < shown.height:
    st.caption(f"共 {shown.height} 个县，图中只画出得分最低的 {plotted.height} 个（分界线所在的一段）；"
               "其余见下表，或在左侧选择市州。")
if vetoed := charts.vetoed_names(shown):
    st.warning(f"一票否决（得分记为0，名次在最后，未画入图中）：{'、'.join(vetoed)}")
shared_chart("ranking", lambda: charts.ranking_chart(
    plotted, lines, title=f"{wave_display(wave)}综合得分与95%置信区间（得分最低的在上）"))

st.subheader("得分表")
show_table(ranking_table(shown, scheme), height=560)
