"""摘帽进度: every listed county — its conditions (value / target / status), its trajectory, the
expected exit; and the rules' verdicts beside the official decisions."""

import polars as pl
import streamlit as st

from pages._shared import (
    history,
    in_scope,
    listing,
    progress,
    require_entry,
    require_wave,
    sample_badge,
    shared_chart,
    show_table,
    warehouse,
)
from pipelines import consequences, wave_display
from pipelines.present import charts
from pipelines.present.tables import comparison_table, consequences_table
from pipelines.present.views import county_histories, county_history

require_entry()   # before anything renders: only inside app.py's navigation


def unbroken(label: str) -> str:
    """`label` kept on one line: a static table's columns shrink to their narrowest unbreakable
    piece, which in Chinese is one character ("已满" / "足"); word joiners and a no-break space
    leave no break opportunity inside it."""
    return "\u2060".join(label).replace("\u2060 \u2060", "\u00a0")


PER_PAGE = 8   # a county is a table and a chart: 8 draw in about a second

wh = warehouse()
wave = require_wave()
st.title("摘帽进度")
sample_badge(wh)
result = listing(wave)
names = wh.counties().select("county_code", "county_name", "city_code")
current = in_scope(progress(wave).join(names, on="county_code"))
if current.height == 0:
    st.info(f"截至{wave_display(wave)}，没有挂牌整治中的区县。")
elif current.height > PER_PAGE:   # national scale: hundreds of listed counties
    pages = -(-current.height // PER_PAGE)
    st.caption(f"挂牌整治中的区县共 {current.height} 个（逾期的排在前面），每页 {PER_PAGE} 个；"
               "也可在左侧选择市州。")
    number = st.selectbox("页码", range(1, pages + 1), key="delisting_page",
                          format_func=lambda k: f"第 {k} 页 / 共 {pages} 页")
    current = current.sort("overdue", "listed_in", descending=[True, False]) \
        .slice((number - 1) * PER_PAGE, PER_PAGE)
trails = county_histories(history(wave))
for row in current.iter_rows(named=True):
    with st.container(border=True):
        head = f"**{row['county_name']}** · {wave_display(row['listed_in'])}挂牌"
        if row["overdue"]:
            head += " · :red[逾期未摘帽]"
        st.markdown(head)
        cols = st.columns([3, 2])
        conditions = result.conditions.filter((pl.col("county_code") == row["county_code"])
                                              & (pl.col("wave") == wave))
        if conditions.height:
            # a static table: a handful of rows, and a page of them draws far faster than as
            # interactive grids
            cols[0].table(conditions.select(
                pl.when(pl.col("met")).then(pl.lit(unbroken("✓ 已满足")))
                .otherwise(pl.lit(unbroken("✗ 未满足"))).alias("状态"),
                pl.col("condition").alias("条件"),
                pl.col("value").alias("当前"), pl.col("target").alias("要求")),
                hide_index=True, border="horizontal")
        else:
            cols[0].caption("本期新挂牌：自下一期起核对摘帽条件。")
        cols[0].caption(f"预计摘帽：{row['expected_exit']}；下期仍在后10名的概率 "
                        f"{row['p_bottom10_next']:.0%}")
        with cols[1]:
            shared_chart("history", lambda row=row: charts.history_chart(
                county_history(trails, row["county_code"]), title=f"{row['county_name']}历次得分"),
                row["county_code"], key=row["county_code"])

st.subheader("挂牌与通报")
register = in_scope(consequences(result, wave).join(names.select("county_code", "city_code"),
                                                   on="county_code", how="left"))
st.caption("规则产生的每一项后果（省、市挂牌，通报批评，考核得分记零，一票否决，摘帽与重新挂牌，"
           "逾期），一项一行；“正式决定”列为与已录入正式决定的对照（“—”：该类决定未录入，不对照）。")
kinds = ["全部", *register["action"].unique(maintain_order=True).to_list()]
kind = st.selectbox("事项", kinds, key="consequence_kind")
if kind != "全部":
    register = register.filter(pl.col("action") == kind)
show_table(consequences_table(register, names))

st.subheader("规则判定与正式决定对照")
comparison = in_scope(result.comparison.join(names.select("county_code", "city_code"),
                                            on="county_code", how="left"))
disagree = comparison.filter(~pl.col("agree"))
if disagree.height:
    st.warning(f"有 {disagree.height} 处规则判定与正式决定不一致，见下表。")
else:
    st.success("规则判定与已录入的正式决定完全一致。")
show_table(comparison_table(comparison, names))
