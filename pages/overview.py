"""总览: the wave at a glance — provincial average and its change, risk bands, listed counties and
their 摘帽 status, biggest movers, and a county map coloured by score or risk."""

import polars as pl
import streamlit as st

from pages._shared import (
    BOUNDARIES_FILE,
    at_risk_list,
    boundaries,
    city_label,
    definitions,
    in_city,
    is_analyst,
    listing,
    overview_summary,
    percent,
    progress,
    require_entry,
    risk,
    sample_badge,
    selected_wave,
    shared_chart,
    warehouse,
)
from pipelines import wave_display, wave_display_expr
from pipelines.present import charts
from pipelines.present.leader import delta_args

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
province = wh.meta("province") or "本省"
st.title(f"{province}禁毒工作专项调查测评")
sample_badge(wh)
wave = selected_wave()
waves = wh.waves()
if not is_analyst():   # an unreleased wave is not announced to leaders, not even as a count
    waves = waves.filter(pl.col("wave").is_in(wh.released_waves()))
if wave is None:
    st.metric("已导入期次", f"{waves.height} 期")
    st.info("数据仓库中还没有任何期次。请分析人员在“数据管理”页上传调查数据。")
    st.stop()

table = risk(wave)
summary = overview_summary(wave)
st.subheader(f"{wave_display(wave)} · {city_label()}")
at_risk_list(wave, table)
cols = st.columns(4)
delta = None if summary.previous_mean is None or summary.province_mean is None \
    else summary.province_mean - summary.previous_mean
scope = city_label()          # every figure below is this scope's (the city's, or 全省)
cols[0].metric(f"{scope}平均分", "—" if summary.province_mean is None
               else f"{summary.province_mean:.2f}", **delta_args(delta))
bands = dict(summary.band_counts.iter_rows())
cols[1].metric(f"{scope}高危 / 预警", f"{bands.get('高危', 0)} / {bands.get('预警', 0)} 个")
listed = in_city(listing(wave).status.join(wh.counties().select("county_code", "city_code"),
                                           on="county_code"))
cols[2].metric(f"{scope}挂牌整治中", f"{listed.height} 个")
cols[3].metric("已导入期次", f"{waves.height} 期")

left, right = st.columns([3, 2])
with left:
    colour = st.radio("地图着色", ["综合得分", "风险等级"], horizontal=True, key="map_colour")
    by = "score" if colour == "综合得分" else "band"
    located = table.join(wh.counties().select("county_code", "city_code"), on="county_code")
    if (geojson := boundaries()) is not None:
        shared_chart("geo_map", lambda: charts.geo_map(in_city(located), geojson, by,
                                                       title="区县地图"), by, id(geojson))
    else:
        tiles = located.join(charts.hex_layout(wh.counties()), on="county_code")
        shared_chart("hex_map", lambda: charts.hex_map(
            in_city(tiles), by, title="区县示意图（按市州分组的六边形格，非真实地理位置）"), by)
        if is_analyst():   # a file-system hint: for whoever can act on it
            st.caption(f"放入边界文件 {BOUNDARIES_FILE.name}（GeoJSON，要素属性含区划代码）即显示真实地图。")
with right:
    st.markdown(f"**{scope}各风险等级区县数**")
    order = [b.label for b in definitions().scheme.listing.bands]
    st.dataframe(pl.DataFrame({"风险等级": order,
                               "区县数": [bands.get(b, 0) for b in order]}),
                 hide_index=True, width="stretch")
    st.markdown(f"**{scope}挂牌整治中的区县**")
    if listed.height == 0:
        st.caption("目前没有挂牌整治的区县。")
    else:
        names = wh.counties().select("county_code", "county_name", "city_code")
        shown = in_city(progress(wave).join(names, on="county_code"))
        st.dataframe(shown.select(
            pl.col("county_name").alias("区县"),
            wave_display_expr("listed_in").alias("挂牌期次"),
            (pl.col("conditions_met").cast(pl.String) + "/" + pl.col("conditions").cast(pl.String))
            .alias("已满足条件"),
            pl.col("expected_exit").alias("预计摘帽")), hide_index=True, width="stretch")

st.subheader("变化最大的区县（较上期显著变化）")
if summary.movers.height == 0:
    st.caption("没有上一期可比，或没有区县显著变化。")
else:
    movers = in_city(summary.movers.join(wh.counties().select("county_code", "city_code"),
                                         on="county_code")) \
        .sort(pl.col("change").abs(), descending=True).head(10)
    st.dataframe(movers.select(
        pl.col("county_name").alias("区县"), pl.col("city_name").alias("市州"),
        pl.col("before").round(2).alias("上期得分"), pl.col("after").round(2).alias("本期得分"),
        pl.col("change").round(2).alias("变化"),
        (pl.col("ci_low").round(2).cast(pl.String) + " ~ " + pl.col("ci_high").round(2)
         .cast(pl.String)).alias("变化的95%区间"),
        pl.col("verdict").alias("判断")), hide_index=True, width="stretch")

with st.expander("调查期次"):
    st.dataframe(waves.select(
        wave_display_expr("wave").alias("期次"),
        waves["respondents"].alias("受访者人数"), waves["counties"].alias("覆盖区县"),
        waves["indicator_values"].alias("工作指标值")), hide_index=True, width="stretch")
own = in_city(located)
st.caption(f"{scope}本期后3名概率最高：{own.sort('p_bottom3', descending=True)['county_name'][0]}"
           f"（{percent(own['p_bottom3'].max())}）。说明见“挂牌风险”页。")
