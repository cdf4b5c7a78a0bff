"""Files as bureaus really send them (issue 18's five silently-wrong cases): each lands exactly as
its clean form would, or is refused with a message saying what to do and the warehouse unchanged.

Reference: the clean CSV of the same rows, checked with `check_bytes` (it writes nothing) before
the real-world file is loaded; never the code's own output for the messy file.
"""

from __future__ import annotations

import io
import random

import openpyxl
import polars as pl
import pytest

from pipelines.ingest.load import check_bytes, ingest_bytes
from pipelines.ingest.privacy import valid_id_cards
from pipelines.ingest.validation import Confirmations
from tests.conftest import PARTIAL, csv_bytes, sample_indicators
from tests.test_ingest import NEW_WAVE, rejected, small_wave
from tests.test_privacy import id_number

SORT = ["respondent_id"]


def xlsx_bytes(sheets: dict[str, list[list]], formats: dict[tuple[str, int, int], str] | None = None,
               ) -> bytes:
    """A workbook: sheet name → rows (None = empty cell); formats: (sheet, row, col) 1-based →
    number format."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(r, c, value)
    for (name, r, c), fmt in (formats or {}).items():
        book[name].cell(r, c).number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rows_of(frame: pl.DataFrame) -> list[list]:
    return [list(frame.columns)] + [list(r) for r in frame.iter_rows()]


def stored_survey(wh) -> pl.DataFrame:
    return wh.responses(NEW_WAVE).select(clean_columns(wh)).sort(SORT)


def clean_columns(wh) -> list[str]:
    return [c for c in wh.responses(NEW_WAVE).columns if c not in ("load_id",)]


def clean_rows(wh, defs, frame: pl.DataFrame, **options) -> pl.DataFrame:
    checked = check_bytes(wh, defs, csv_bytes(frame), "clean.csv", NEW_WAVE,
                          **({"confirmed": PARTIAL} | options))
    return checked.rows


def assert_same_rows(wh, reference: pl.DataFrame) -> None:
    stored = wh.responses(NEW_WAVE)
    columns = [c for c in reference.columns if c in stored.columns]
    assert stored.height == reference.height
    assert stored.select(columns).sort(SORT).equals(reference.select(columns).sort(SORT))


# ---------------------------------------------------------------------------------------------
# 1. one sheet per city, after a 说明 sheet


def test_every_city_sheet_is_read_and_the_note_sheet_skipped(wh, defs):
    frame = small_wave(counties=3)
    reference = clean_rows(wh, defs, frame)
    codes = frame["区县代码"].unique(maintain_order=True).to_list()
    sheets = {"说明": [["本表为2026年禁毒工作专项调查数据"], ["各市州一个工作表"]]}
    for i, code in enumerate(codes):
        part = frame.filter(pl.col("区县代码") == code)
        sheets[f"市州{i + 1}"] = rows_of(part)
    result = ingest_bytes(wh, defs, xlsx_bytes(sheets), "分市州.xlsx", NEW_WAVE, confirmed=PARTIAL)
    assert_same_rows(wh, reference)
    notes = "\n".join(result.warnings)
    counts = [frame.filter(pl.col("区县代码") == c).height for c in codes]
    assert f"共读取 3 个工作表：市州1（{counts[0]} 行）、市州2（{counts[1]} 行）、市州3（{counts[2]} 行）" \
        in notes
    assert "跳过没有数据表头的工作表：说明" in notes


def test_a_problem_on_a_later_sheet_names_the_sheet_and_its_excel_row(wh, defs):
    frame = small_wave(counties=2)
    codes = frame["区县代码"].unique(maintain_order=True).to_list()
    second = rows_of(frame.filter(pl.col("区县代码") == codes[1]))
    second[3][second[0].index("Q1")] = "7"                  # Excel row 4 of the second sheet
    sheets = {"甲市": rows_of(frame.filter(pl.col("区县代码") == codes[0])), "乙市": second}
    report = rejected(wh, defs, xlsx_bytes(sheets), "两市.xlsx", confirmed=PARTIAL)
    assert "工作表“乙市”，第4行，“Q1”列：答案代码 7 不在问卷规定的代码中" in report


def test_sheets_with_different_headers_are_refused_by_name(wh, defs):
    frame = small_wave(counties=2)
    codes = frame["区县代码"].unique(maintain_order=True).to_list()
    sheets = {"甲市": rows_of(frame.filter(pl.col("区县代码") == codes[0])),
              "乙市": rows_of(frame.filter(pl.col("区县代码") == codes[1]).drop("Q9"))}
    report = rejected(wh, defs, xlsx_bytes(sheets), "两市.xlsx", confirmed=PARTIAL)
    assert "工作表“乙市”的列与工作表“甲市”不同" in report


# ---------------------------------------------------------------------------------------------
# 2. Excel percent cells in an indicator sheet


RATES = ["社会面管控率", "戒断三年未复吸率", "社区戒毒社区康复执行率", "强制隔离戒毒出所人员管控率",
         "戒毒康复人员就业安置率", "社区戒毒社区康复人员报到率", "禁毒宣传覆盖率"]


def indicator_sheet() -> pl.DataFrame:
    return sample_indicators("2025").with_columns(pl.lit(NEW_WAVE).alias("年度"))


def test_percent_formatted_cells_land_as_the_percentages_shown(wh, defs):
    clean = indicator_sheet()
    reference = check_bytes(wh, defs, csv_bytes(clean), "clean.csv", NEW_WAVE, "indicators").rows
    rows = rows_of(clean)
    header = rows[0]
    formats = {}
    for r, row in enumerate(rows[1:], start=2):
        for c, name in enumerate(header):
            cell = row[c]
            if name in RATES and cell is not None:
                row[c] = float(cell) / 100                 # what Excel stores under 91.9%
                formats[("指标", r, c + 1)] = "0.0%"
            elif cell is not None and name not in ("区县代码", "区县名称", "年度"):
                row[c] = float(cell)
    result = ingest_bytes(wh, defs, xlsx_bytes({"指标": rows}, formats), "指标.xlsx", NEW_WAVE,
                          "indicators")
    key = ["county_code", "indicator_id", "value"]
    stored = wh.indicators(NEW_WAVE).select(key).sort(key[:2])
    assert stored.height == reference.height
    assert stored.equals(reference.select(key).sort(key[:2]))
    assert any("百分比格式" in w and "社会面管控率" in w for w in result.warnings)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_rates_written_as_fractions_are_refused_not_loaded_100_times_off(wh, defs, suffix):
    clean = indicator_sheet()
    fractions = clean.with_columns(
        (pl.col("社会面管控率").cast(pl.Float64) / 100).round(4).cast(pl.String))
    data = csv_bytes(fractions) if suffix == "csv" else xlsx_bytes({"指标": rows_of(fractions)})
    report = rejected(wh, defs, data, f"指标.{suffix}", kind="indicators")
    assert "“社会面管控率”列：本列所有数值都在 0–1 之间" in report
    assert "往期该指标的中位数为" in report and "小100倍" in report


# ---------------------------------------------------------------------------------------------
# 3. weight synonyms and general header normalisation


@pytest.mark.parametrize("header", ["权数", "权重系数", "加权系数", "权重(%)", "ＷＥＩＧＨＴ", "最终权重"])
def test_weight_synonyms_are_recognised(wh, defs, header):
    frame = small_wave()
    reference = clean_rows(wh, defs, frame)
    messy = frame.rename({"权重": header})
    ingest_bytes(wh, defs, csv_bytes(messy, "gb18030"), "权数.csv", NEW_WAVE, confirmed=PARTIAL)
    assert_same_rows(wh, reference)


def test_numbered_question_headers_and_units_are_matched(wh, defs):
    frame = small_wave()
    reference = clean_rows(wh, defs, frame)
    labels = {item.aliases[0]: item.label for item in defs.questionnaire.items}
    messy = frame.rename({f"Q{i}": f"{i}.{labels[f'Q{i}']}" for i in range(1, 10)
                          if f"Q{i}" in labels})
    messy = messy.rename({"年龄": "年龄（岁）", "受访者编号": "受访者编号："})
    ingest_bytes(wh, defs, csv_bytes(messy), "带题号.csv", NEW_WAVE, confirmed=PARTIAL)
    assert_same_rows(wh, reference)


def test_no_weight_column_is_refused_unless_equal_weights_are_confirmed(wh, defs):
    frame = small_wave().drop("权重")
    report = rejected(wh, defs, csv_bytes(frame), "无权重.csv", confirmed=PARTIAL)
    assert "文件没有权重列" in report and "--equal-weights" in report
    result = ingest_bytes(wh, defs, csv_bytes(frame), "无权重.csv", NEW_WAVE,
                          confirmed=Confirmations(equal_weights=True, allow_missing_counties=True))
    assert result.rows == frame.height


# ---------------------------------------------------------------------------------------------
# 4. phone numbers inside free text


def test_a_free_text_column_is_neither_stored_nor_archived(wh, defs):
    frame = small_wave()
    notes = ["" if i % 7 else f"已回访，联系电话1{3 + i % 6}{i:09d}" for i in range(frame.height)]
    phones = [n.removeprefix("已回访，联系电话") for n in notes if n]
    messy = frame.with_columns(pl.Series("备注", notes))
    for data, name in ((csv_bytes(messy), "备注.csv"), (xlsx_bytes({"数据": rows_of(messy)}),
                                                        "备注.xlsx")):
        result = ingest_bytes(wh, defs, data, name, NEW_WAVE, replace=True, confirmed=PARTIAL)
        assert any("“备注”列不在问卷定义中" in w and "归档" in w for w in result.warnings)
        _, archived = wh.archived_file(result.load_id)
        text = archived.decode("utf-8")
        assert "受访者编号" in text and "备注" not in text
        assert not [p for p in phones if p in text]


def test_a_phone_number_in_a_kept_text_column_is_refused(wh, defs):
    frame = small_wave()
    township = frame["乡镇(街道)"].to_list()
    township[4] = f"{township[4]}（联系人13912345678）"
    report = rejected(wh, defs, csv_bytes(frame.with_columns(pl.Series("乡镇(街道)", township))),
                      "乡镇.csv", confirmed=PARTIAL)
    assert "第6行，“乡镇(街道)”列：单元格中含有电话号码或身份证号码" in report


# ---------------------------------------------------------------------------------------------
# 5. respondent ids of 12 or 18 digits are ids, real ID-card numbers are refused


@pytest.mark.parametrize("digits", [12, 18])
def test_long_numeric_respondent_ids_are_kept(wh, defs, digits):
    frame = small_wave()
    base = 510104202600000000 if digits == 18 else 510104000000
    frame = frame.with_columns(pl.Series("受访者编号", [str(base + i) for i in range(frame.height)]))
    reference = clean_rows(wh, defs, frame)
    assert reference.height == frame.height          # the check itself keeps the id column
    result = ingest_bytes(wh, defs, csv_bytes(frame), "长编号.csv", NEW_WAVE, confirmed=PARTIAL)
    assert not any("受访者编号" in w and "疑似" in w for w in result.warnings)
    assert_same_rows(wh, reference)
    assert wh.responses(NEW_WAVE)["respondent_id"].str.len_chars().unique().to_list() == [digits]


def test_id_card_numbers_in_the_id_column_are_refused_saying_so(wh, defs):
    frame = small_wave()
    rng = random.Random(3)
    ids = []
    while len(ids) < frame.height:
        body = id_number(rng)[:17]
        total = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10,
                                                      5, 8, 4, 2), strict=True))
        ids.append(body + "10X98765432"[total % 11])
    assert valid_id_cards(pl.Series(ids)).all()
    report = rejected(wh, defs, csv_bytes(frame.with_columns(pl.Series("受访者编号", ids))),
                      "身份证.csv", confirmed=PARTIAL)
    assert "“受访者编号”列：受访者编号列中多数是真实的身份证号码" in report
