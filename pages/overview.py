"""总览: the province at a glance. For now: the waves in the warehouse and the county list."""

import streamlit as st

from pages._shared import sample_badge, warehouse
from pipelines.warehouse import WarehouseError
from pipelines.waves import wave_display

try:
    wh = warehouse()
    province = wh.meta("province") or "本省"
    waves = wh.waves()
    counties = wh.counties()
except WarehouseError as exc:
    st.error(str(exc))
    st.stop()

st.title(f"{province}禁毒工作专项调查测评")
sample_badge(wh)

left, middle, right = st.columns(3)
left.metric("已导入期次", f"{waves.height} 期")
middle.metric("区县数", f"{counties.height} 个")
right.metric("市州数", f"{counties['city_code'].n_unique()} 个")

st.subheader("调查期次")
if waves.height == 0:
    st.info("数据仓库中还没有任何期次。请分析人员在“数据管理”页上传调查数据。")
else:
    st.dataframe(
        waves.select(
            waves["wave"].map_elements(wave_display, return_dtype=str).alias("期次"),
            waves["respondents"].alias("受访者人数"),
            waves["counties"].alias("覆盖区县"),
            waves["indicator_values"].alias("工作指标值"),
        ),
        hide_index=True, width="stretch",
    )

st.subheader("区县名单")
st.dataframe(
    counties.select(
        counties["city_name"].alias("市州"), counties["county_name"].alias("区县"),
        counties["county_code"].alias("区划代码"), counties["population"].alias("常住人口"),
        (counties["urban_share"] * 100).round(1).alias("城镇人口比例(%)"),
    ),
    hide_index=True, width="stretch", height=420,
)
