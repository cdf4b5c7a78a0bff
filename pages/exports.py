"""会议材料: the meeting deck (PPTX) and the workbook (Excel) for the chosen wave and city, built from
the same cached results as the other pages."""

import streamlit as st

from pages._shared import (
    city_label,
    definitions,
    detail_city,
    history,
    listing,
    require_entry,
    require_wave,
    risk,
    sample_badge,
    warehouse,
)
from pipelines import build_deck, meeting_pack, meeting_tables, wave_display, workbook_bytes, workbook_note
from pipelines.present import session_keys as keys

require_entry()   # before anything renders: only inside app.py's navigation

wh = warehouse()
wave = require_wave()
st.title("会议材料")
sample_badge(wh)
city = detail_city()   # a city-limited viewer exports their own city only
label = f"{wave_display(wave)} · {city_label(city)}"
st.caption(f"导出范围：{label}（在左侧切换期次和市州）。名次均为全省名次。")


@st.cache_data(max_entries=8, show_spinner=False)
def _deck(path: str, version: int, wave: str, city: str | None) -> bytes:
    return build_deck(_pack(wave, city))


@st.cache_data(max_entries=8, show_spinner=False)
def _workbook(path: str, version: int, wave: str, city: str | None) -> bytes:
    pack = _pack(wave, city)
    return workbook_bytes(meeting_tables(pack), note=workbook_note(pack))


def _pack(wave: str, city: str | None):
    return meeting_pack(wh, definitions(), wave, city, history=history(wave), risk=risk(wave),
                        listing=listing(wave))


key = (str(wh.path), wh.data_version(), wave, city)
stem = f"禁毒测评_{wave}_{city_label(city)}"
left, right = st.columns(2)
with left.container(border=True):
    st.markdown("**会议幻灯片（PPTX，16:9）**")
    st.caption("封面、总览、分页排名（每页22个县）、挂牌风险、摘帽进度、每个挂牌或高危县一页（含提分杠杆）、"
               "方法说明；演讲者备注中有方法提示。")
    if st.button("生成会议材料", key="make_deck", type="primary"):
        with st.spinner("正在生成幻灯片（绘制图表约需十秒）……"):
            st.session_state[keys.DECK] = (key, _deck(*key))
    made = st.session_state.get(keys.DECK)
    if made and made[0] == key:
        st.download_button("下载会议材料（PPTX）", data=made[1], file_name=f"{stem}.pptx",
                           mime="application/vnd.openxmlformats-officedocument."
                                "presentationml.presentation",
                           key="download_deck", icon=":material/slideshow:", on_click="ignore")
with right.container(border=True):
    st.markdown("**表格（Excel）**")
    st.caption("县区排名、挂牌风险、分项得分、摘帽进度、规则与正式决定对照各一张表；中文表头、数字格式、冻结表头。")
    st.download_button("下载表格（Excel）", data=lambda: _workbook(*key), file_name=f"{stem}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       key="download_workbook", icon=":material/table:", on_click="ignore")
st.caption("每张图下方的“下载图片”可单独导出 1920×1080 的图片；每张表下方可下载 CSV。"
           "导出文件不含任何受访者个人层面的数据。")
