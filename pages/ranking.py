"""县区排名: every county's score with its 95% interval, rank and rank interval; cut lines drawn and
intervals that cross one marked; a sortable table with the component scores."""

import polars as pl
import streamlit as st

from pages._shared import (chart, city_label, definitions, history, in_city, require_wave, risk,
                           sample_badge, warehouse)
from pipelines import charts
from pipelines.dashboard import cut_line_scores, ranking_view
from pipelines.waves import wave_display

wh = warehouse()
wave = require_wave()
scheme = definitions().scheme
bottoms = (scheme.listing.province_bottom, scheme.listing.city_bottom)
st.title("县区排名")
sample_badge(wh)
table = ranking_view(risk(wave), history(wave)[-1], bottoms).join(
    wh.counties().select("county_code", "city_code"), on="county_code").sort("rank")
lines = cut_line_scores(table["score"], bottoms)
shown = in_city(table)
crossing = shown.filter(pl.col("crosses_line") == "跨越分界线").height
st.caption(f"{wave_display(wave)} · {city_label()}：名次为全省名次。橙色区间跨越后{bottoms[0]}名或后"
           f"{bottoms[1]}名分界线（{crossing} 个县）：这些县是否在线下，仅凭本次调查无法确定。")
chart(charts.ranking_chart(shown, lines, title=f"{wave_display(wave)}综合得分与95%置信区间"))

components = [c for c in scheme.components]
st.subheader("得分表")
st.dataframe(shown.select(
    pl.col("rank").alias("名次"), pl.col("county_name").alias("区县"),
    pl.col("city_name").alias("市州"), pl.col("score").round(2).alias("综合得分"),
    pl.col("ci_low").round(2).alias("下限"), pl.col("ci_high").round(2).alias("上限"),
    (pl.col("rank_low").cast(pl.String) + "–" + pl.col("rank_high").cast(pl.String))
    .alias("名次区间"), pl.col("crosses_line").alias("分界线"),
    pl.col("veto_reason").fill_null("").alias("一票否决"),
    *[pl.col(c.id).round(1).alias(c.label) for c in components]),
    hide_index=True, width="stretch", height=560)
