"""Importing official decisions from CSV/XLSX: every type, dated periods and deadlines, validated
like every upload; a bad row refuses the file naming its Excel row, and nothing is written."""

from __future__ import annotations

import datetime
import io

import openpyxl
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.core.problems import IngestError
from pipelines.ingest.decisions import parse_date, read_decisions
from pipelines.ranking.consequences import consequences
from pipelines.results.wave import listing_result, scored_history
from pipelines.store.warehouse import Warehouse

GOOD = """区县代码,期次,层级,决定,决定日期,文号,起始日期,结束日期,整改期限,备注
990210,2025,省,通报批评,2026年3月20日,示禁毒委〔2026〕23号,,,年底前,书面检查
990410,2025年度,省级,督办,2026/3/20,,2026-03-20,2026-12-31,,
990709,2025,省,约谈,2026.3.21,,,,2026-06-30,
990301,2021,市,市挂牌重点整治,2022-03-20,沅垭禁毒委〔2022〕1号,2022-03-20,2023-03-19,,
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-20", datetime.date(2025, 3, 20)), ("2025年3月2日", datetime.date(2025, 3, 2)),
    ("2025/12/31", datetime.date(2025, 12, 31)), ("45736", datetime.date(2025, 3, 20)),
    ("年底前", datetime.date(2026, 12, 31)), ("2025-02-30", None), ("下个月", None),
])
def test_dates_as_offices_write_them(text, expected):
    assert parse_date(text, datetime.date(2026, 3, 20)) == expected


def test_a_gbk_csv_of_every_type_is_imported_and_compared(db_copy, tmp_path, defs):
    path = tmp_path / "决定.csv"
    path.write_bytes(GOOD.encode("gb18030"))
    assert main(["decisions", str(path), "--db", str(db_copy)]) == 0
    wh = Warehouse.open(db_copy, read_only=True)
    try:
        decisions = wh.decisions()
        result = listing_result(wh, defs, scored_history(wh, defs, "2025"))
    finally:
        wh.close()
    assert decisions.height == 26
    criticism = decisions.filter(pl.col("action") == "通报批评").row(0, named=True)
    assert criticism["deadline"] == datetime.date(2026, 12, 31)          # 年底前
    assert criticism["decided_on"] == datetime.date(2026, 3, 20)
    supervised = decisions.filter(pl.col("action") == "督办").row(0, named=True)
    assert (supervised["level"], supervised["period_end"]) == ("省", datetime.date(2026, 12, 31))
    register = consequences(result, "2025")
    # criticisms are now recorded, so they are compared: 990210's agrees, others lack a decision
    row = register.filter((pl.col("county_code") == "990210") & (pl.col("action") == "通报批评")
                          & (pl.col("wave") == "2025"))
    assert row["official"].to_list() == ["一致"]
    assert register.filter((pl.col("action") == "通报批评")
                           & pl.col("official").str.contains("未见正式决定")).height >= 1
    assert register.filter(pl.col("action") == "约谈")["status"].to_list() == ["仅有正式决定"]
    city = register.filter((pl.col("county_code") == "990301") & (pl.col("level") == "市")
                           & (pl.col("wave") == "2021"))
    assert city["official"].to_list() == ["一致"]


def _xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["2025年度正式决定清单"])         # a title row above the header
    sheet.append([])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_bad_row_refuses_the_file_naming_its_excel_row(db_copy, counties):
    header = ["区县", "期次", "层级", "决定", "决定日期", "整改期限", "备注"]
    data = _xlsx([header,
                  ["翎埠县", "2025", "省", "通报批评", "2026-03-20", "年底前", ""],     # row 4
                  ["不存在县", "2025", "省", "约谈", "2026-03-20", "", ""],            # row 5
                  ["苓汊县", "25年", "县", "表扬", "2026-13-01", "", ""],              # row 6
                  ["蔺坳县", "2025", "省", "督办", "2026-03-20", "2026-01-01",
                   "联系人 13912345678"]])                                               # row 7
    with pytest.raises(IngestError) as caught:
        read_decisions(data, "决定.xlsx", counties)
    text = caught.value.report()
    assert "第5行，“区县”列：区县“不存在县”不在区县名单中" in text
    assert "第6行，“期次”列" in text and "第6行，“层级”列" in text
    assert "第6行，“决定”列：决定“表扬”不是可识别的决定类型" in text
    assert "第6行，“决定日期”列：日期“2026-13-01”无法识别" in text
    assert "第7行，“整改期限”列：整改期限早于决定日期" in text
    assert "第7行，“备注”列：含电话或身份证号码" in text
    assert "第4行" not in text
    wh = Warehouse.open(db_copy, read_only=True)
    try:
        assert wh.decisions().height == 22                 # nothing written
    finally:
        wh.close()


