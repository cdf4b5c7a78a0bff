"""Official decisions imported from a CSV/XLSX list (挂牌/摘帽, 通报批评, 督办, 约谈 …).

Analysts keep the announced decisions in a spreadsheet; typing them one at a time was the only
way in. The file is read like every upload (encodings, title rows, sheets: readers.py), every
row is checked — county known (code or name), wave label, level, decision type, dates, a period
that ends after it starts, a deadline ("年底前" = 31 December of the decision's year) — and any
bad row refuses the whole file, naming its Excel row, before anything is written.
"""

from __future__ import annotations

import datetime
import re

import polars as pl

from pipelines.core.headers import build_alias_index, match_headers
from pipelines.core.problems import ProblemList
from pipelines.core.waves import normalise_wave_cell, wave_error
from pipelines.ingest.counties import CountyNames, county_codes
from pipelines.ingest.privacy import numbers_in_text
from pipelines.ingest.readers import FIRST_DATA_ROW, read_table

DECISION_TYPES = ("挂牌整治", "重新挂牌", "摘帽", "市挂牌重点整治", "市摘帽", "通报批评", "挂牌督办",
                  "督办", "约谈", "考核得分记零", "延期摘帽")
LEVELS = ("省", "市")
ALIASES: dict[str, tuple[str, ...]] = {
    "county_code": ("区县代码", "代码", "行政区划代码"),
    "county_name": ("区县", "区县名称", "县(市、区)", "县市区"),
    "wave": ("期次", "年度", "测评期次", "依据期次"),
    "level": ("层级", "级别"),
    "action": ("决定", "决定类型", "事项", "处理"),
    "decided_on": ("决定日期", "日期", "发文日期"),
    "document": ("文号", "文件", "发文字号"),
    "period_start": ("起始日期", "挂牌起", "开始日期", "期限起"),
    "period_end": ("结束日期", "挂牌止", "期限止"),
    "deadline": ("整改期限", "期限", "截止日期", "完成时限"),
    "note": ("备注", "说明"),
}
REQUIRED = ("wave", "level", "action")
DATES = ("decided_on", "period_start", "period_end", "deadline")


def parse_date(text: str, year_of: datetime.date | None = None) -> datetime.date | None:
    """2025-03-20, 2025/3/20, 2025.3.20, 2025年3月20日, an Excel serial (45736); 年底前 / 年底
    = 31 December of `year_of`'s year. None when it is none of them."""
    text = text.strip()
    if text in ("年底前", "年底", "当年年底前") and year_of is not None:
        return datetime.date(year_of.year, 12, 31)
    if match := re.fullmatch(r"(20\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text):
        try:
            return datetime.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    if re.fullmatch(r"\d{5}(\.0+)?", text):       # an Excel date cell read as its serial
        return datetime.date(1899, 12, 30) + datetime.timedelta(days=int(float(text)))
    return None


def read_decisions(data: bytes, file_name: str, counties: pl.DataFrame) -> pl.DataFrame:
    """The decisions of a file, one row each (county_code, wave, level, action, decided_on,
    document, period_start, period_end, deadline, note), or IngestError naming each bad row."""
    index = build_alias_index(ALIASES)
    raw = read_table(data, file_name, header_index=index)
    frame = raw.frame
    matched, _unmatched, duplicated = match_headers(frame.columns, index)
    problems = ProblemList(file_name)
    header_of = {target: header for header, target in matched.items()}
    for target, headers in duplicated.items():
        problems.add(f"多列都对应“{ALIASES[target][0]}”：{'、'.join(headers)}")
    for target in REQUIRED:
        if target not in header_of:
            problems.add(f"缺少“{ALIASES[target][0]}”列")
    if "county_code" not in header_of and "county_name" not in header_of:
        problems.add("缺少“区县代码”或“区县”列")
    problems.raise_if_any()

    rows = raw.row_numbers.to_list() if raw.row_numbers is not None else \
        list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + frame.height))
    cells = {t: frame[h].cast(pl.String).fill_null("").str.strip_chars() for t, h in header_of.items()}
    codes = county_codes(cells["county_code"]).to_list() if "county_code" in cells else None
    personal = {t: numbers_in_text(cells[t]).to_list() for t in ("note", "document") if t in cells}
    names = CountyNames(counties)
    known = set(counties["county_code"])
    out = []
    for i, row in enumerate(rows):
        def cell(target: str, i: int = i) -> str:
            return cells[target][i] if target in cells else ""

        def fail(target: str, message: str, row: int = row) -> None:
            problems.add(message, row=row, column=header_of.get(target))

        if not any(cells[t][i] for t in cells):
            continue                                 # a blank row
        code = codes[i] if codes is not None and codes[i] else None
        if code is None and cell("county_name"):
            match = names.match(cell("county_name"))
            code = match.code
            if code is None:
                fail("county_name", f"区县“{cell('county_name')}”不在区县名单中"
                     + ("（有同名区县，请写区县代码）" if match.how == "ambiguous" else ""))
        elif code is not None and code not in known:
            fail("county_code", f"区县代码“{code}”不在区县名单中")
        elif code is None:
            fail("county_code", "区县代码与区县名称都为空")
        wave = normalise_wave_cell(cell("wave"))
        if message := wave_error(wave):
            fail("wave", message)
        level = cell("level").removesuffix("级")
        if level not in LEVELS:
            fail("level", f"层级“{cell('level')}”应为 省 或 市")
        action = cell("action")
        if action not in DECISION_TYPES:
            fail("action", f"决定“{action}”不是可识别的决定类型（{'、'.join(DECISION_TYPES)}）")
        dates: dict[str, datetime.date | None] = {}
        for target in DATES:
            text = cell(target)
            dates[target] = parse_date(text, dates.get("decided_on")) if text else None
            if text and dates[target] is None:
                fail(target, f"日期“{text}”无法识别（例如 2025-03-20、2025年3月20日、年底前）")
        if dates["period_start"] and dates["period_end"] and dates["period_end"] < dates["period_start"]:
            fail("period_end", "结束日期早于起始日期")
        if dates["decided_on"] and dates["deadline"] and dates["deadline"] < dates["decided_on"]:
            fail("deadline", "整改期限早于决定日期")
        for target, flags in personal.items():
            if flags[i]:
                fail(target, "含电话或身份证号码：个人信息不能导入，请删去后重新上传")
        out.append((code, wave, level, action, dates["decided_on"], cell("document") or None,
                    dates["period_start"], dates["period_end"], dates["deadline"],
                    cell("note") or None))
    if not out and not problems.total:
        problems.add("文件中没有任何决定")
    problems.raise_if_any()
    return pl.DataFrame(out, orient="row", schema={
        "county_code": pl.String, "wave": pl.String, "level": pl.String, "action": pl.String,
        "decided_on": pl.Date, "document": pl.String, "period_start": pl.Date,
        "period_end": pl.Date, "deadline": pl.Date, "note": pl.String})
