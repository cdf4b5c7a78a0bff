"""Issue 18, layouts and formats as bureaus make them: title rows, two-row headers, blank and total
rows, footnotes, merged county cells, legacy and odd formats. Each file lands exactly as the clean
CSV of the same rows (checked with `check_bytes`, which writes nothing), or is refused with the
exact message and the warehouse unchanged. Row numbers are the rows a person sees in Excel.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import openpyxl
import polars as pl
import pytest

from pipelines.ingest import xlsx_parts
from pipelines.ingest.load import ingest_bytes
from pipelines.ingest.readers import read_table
from tests.conftest import csv_bytes
from tests.test_app import navigation_not_pages_directory  # noqa: F401 (a fixture, used by name)
from tests.test_ingest import NEW_WAVE, rejected, small_wave
from tests.test_ingest_values import PARTIAL, reference, stored


def wave(counties: int = 2, per_county: int = 12) -> pl.DataFrame:
    """A small new wave: the first rows of the first counties."""
    frame = small_wave(counties)
    return frame.filter(pl.int_range(pl.len()).over("区县代码") < per_county)


def lands_as(wh, defs, clean: pl.DataFrame, data: bytes, name: str) -> list[str]:
    expected = reference(wh, defs, clean)
    result = ingest_bytes(wh, defs, data, name, NEW_WAVE, confirmed=PARTIAL)
    got = stored(wh)
    assert got.equals(expected.select(got.columns).sort("respondent_id"))
    return result.warnings


def workbook(sheets: dict[str, list[list]], *, at: tuple[int, int] = (1, 1),
             merges: dict[str, list[str]] | None = None,
             formats: dict[tuple[str, int, int], str] | None = None,
             formatted_empty_rows: int = 0) -> bytes:
    """Sheets of rows written from Excel cell `at` (row, column; 1-based), with merged ranges
    ("A3:A9"), number formats by (sheet, row, column) and empty rows that only carry a format."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.cell(at[0] + r, at[1] + c, value)
        for extra in range(formatted_empty_rows):
            for c in range(len(rows[-1])):
                sheet.cell(at[0] + len(rows) + extra, at[1] + c).number_format = "0.00"
        for ref in (merges or {}).get(name, []):
            sheet.merge_cells(ref)
    for (name, r, c), fmt in (formats or {}).items():
        book[name].cell(r, c).number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table(frame: pl.DataFrame) -> list[list]:
    return [list(frame.columns)] + [list(r) for r in frame.iter_rows()]


# ---------------------------------------------------------------------------------------------
# the XLSX reader: styles and cells from the XML, never cell by cell


@pytest.mark.parametrize(("code", "percent"), [
    ("0%", True), ("0.0%", True), ("#,##0.00%;[Red]-0.00%", True), ('0.0"%"', False),
    ("0.0\\%", False), ("[Red]0.00", False), ('"完成率"0.0%', True), ("0.00", False)])
def test_custom_number_formats_are_told_apart(code, percent):
    assert xlsx_parts.is_percent_code(code) is percent


def test_percent_styles_read_from_styles_xml():
    data = workbook({"表": [["a", "b", "c"], [0.5, 0.25, 0.125]]},
                    formats={("表", 2, 1): "0%", ("表", 2, 2): "0.00", ("表", 2, 3): '0.0"%"'})
    book = xlsx_parts.Workbook(data)
    assert book.cells("表", numbers=False, booleans=False).percent == {(2, 0)}


def test_percent_cells_land_in_their_column_when_the_table_starts_at_c4():
    """calamine's grid starts at the first filled cell; the XML's cell references are absolute."""
    rows = [["区县代码", "社会面管控率", "戒断三年未复吸率"], ["990101", 0.919, 0.5], ["990102", 0.8, 0.25]]
    data = workbook({"指标": rows}, at=(4, 3),
                    formats={("指标", 5, 4): "0.0%", ("指标", 6, 4): "0.0%"})
    raw = read_table(data, "指标.xlsx", header_index={"区县代码": "county_code",
                                                     "社会面管控率": "a", "戒断三年未复吸率": "b"})
    assert raw.frame["社会面管控率"].to_list() == ["91.9%", "80%"]
    assert raw.frame["戒断三年未复吸率"].to_list() == ["0.5", "0.25"]
    assert raw.row_numbers.to_list() == [5, 6]


def test_an_xlsx_is_read_without_openpyxl():
    """openpyxl built every cell of a sheet in Python (15 s for 108,000 rows, 7× the CSV); it
    is a development dependency only, so the page must not need it either."""
    data = workbook({"数据": table(wave())}, formats={("数据", 2, 6): "0.0%"})
    script = ("import sys; sys.path.insert(0, '.'); from pipelines.ingest.readers import read_table; "
              "t = read_table(sys.stdin.buffer.read(), 'a.xlsx'); "
              "print(t.frame.height, 'openpyxl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True,
                         check=True).stdout.decode().split()
    assert out == [str(wave().height), "False"]


def test_xml_without_cell_references_is_walked():
    """A writer may leave out `r=`: the cells are then found by walking the rows in order."""
    data = workbook({"表": [["a", "b"], [1, 0.5]]}, formats={("表", 2, 2): "0%"})
    archive = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as copy:
        for info in archive.infolist():
            part = archive.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                part = part.replace(b' r="A2"', b"").replace(b' r="B2"', b"")
            copy.writestr(info, part)
    assert xlsx_parts.Workbook(out.getvalue()).cells("表", numbers=True, booleans=False) \
        .percent == {(2, 1)}


def test_booleans_and_dates_read_as_a_person_sees_them():
    import datetime

    data = workbook({"表": [["a", "b"], [True, datetime.date(2026, 3, 4)], [False, "x"]]})
    raw = read_table(data, "表.xlsx")
    assert raw.frame["a"].to_list() == ["是", "否"]
    assert raw.frame["b"].to_list() == ["2026-03-04", "x"]


# ---------------------------------------------------------------------------------------------
# layout: title rows, blank rows, totals, footnotes, formatted empty rows


def laid_out(frame: pl.DataFrame) -> tuple[list[list], dict[str, int]]:
    """The rows of a sheet made for reading: a title, a blank row, the header, the data with a
    blank row and a 小计 row after the first county, then 合计 and footnotes. Returns the rows
    (from Excel row 1) and the Excel row of some of them."""
    width = frame.width
    pad = [None] * (width - 1)
    codes = frame["区县代码"].unique(maintain_order=True).to_list()
    first = frame.filter(pl.col("区县代码") == codes[0])
    rest = frame.filter(pl.col("区县代码") != codes[0])
    rows = [["2026年禁毒工作专项调查测评数据", *pad], [None] * width, list(frame.columns)]
    rows += [list(r) for r in first.iter_rows()]
    where = {"blank": len(rows) + 1}
    rows += [[None] * width]
    where["subtotal"] = len(rows) + 1
    rows += [["小计", None, None, None, None, str(first.height), *[None] * (width - 6)]]
    where["rest"] = len(rows) + 1
    rows += [list(r) for r in rest.iter_rows()]
    where["total"] = len(rows) + 1
    rows += [["合计", *pad], [None] * width]
    where["notes"] = len(rows) + 1
    rows += [["注：1. 本表由调查队填报。", *pad], ["制表人：张三", *pad], ["填报日期：2026年3月1日", *pad]]
    return rows, where


def test_a_sheet_made_for_reading_lands_like_the_clean_file(wh, defs):
    clean = wave()
    rows, where = laid_out(clean)
    data = workbook({"调查数据": rows}, at=(1, 2), formatted_empty_rows=3000)
    notes = "\n".join(lands_as(wh, defs, clean, data, "调查.xlsx"))
    assert f"工作表“调查数据”：表头在第3行，读取 {clean.height} 行数据" in notes
    assert f"跳过空行第{where['blank']}行" in notes
    assert f"跳过合计行第{where['subtotal']}、{where['total']}行" in notes
    assert f"跳过表注第{where['notes']}–{where['notes'] + 2}行" in notes


def test_a_csv_saved_from_such_a_sheet_lands_like_the_clean_file(wh, defs):
    clean = wave()
    rows, where = laid_out(clean)
    text = "\n".join(",".join("" if c is None else str(c) for c in row) for row in rows) + "\n"
    notes = "\n".join(lands_as(wh, defs, clean, text.encode("gb18030"), "调查.csv"))
    assert f"文件：表头在第3行，读取 {clean.height} 行数据" in notes
    assert f"跳过合计行第{where['subtotal']}、{where['total']}行" in notes
    assert f"跳过表注第{where['notes']}–{where['notes'] + 2}行" in notes


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_problem_below_a_title_and_blank_rows_names_the_excel_row(wh, defs, fmt):
    clean = wave()
    rows, where = laid_out(clean)
    bad = where["rest"] + 1                                 # the second row after the 小计 row
    rows[bad - 1][clean.columns.index("Q1")] = "7"
    if fmt == "xlsx":
        data = workbook({"数据": rows})
    else:
        data = "\n".join(",".join("" if c is None else str(c) for c in row) for row in rows).encode()
    report = rejected(wh, defs, data, f"调查.{fmt}", confirmed=PARTIAL)
    assert f"第{bad}行，“Q1”列：答案代码 7 不在问卷规定的代码中" in report


def test_a_plain_csv_does_not_take_the_layout_path():
    """A file with the header on line 1 and no layout row keeps the fast reader (no row numbers
    of its own: row = position + 2)."""
    data = csv_bytes(wave())
    raw = read_table(data, "调查.csv", header_index={"受访者编号": "respondent_id",
                                                     "区县代码": "county_code"})
    assert raw.row_numbers is None


def test_a_two_row_header_with_merged_group_cells(wh, defs):
    """基本信息 / 调查题目 merged over the names below them; 权重 under no group, merged over both
    header rows with its name in the upper one (where Excel keeps a merged cell's value)."""
    clean = wave()
    columns = clean.columns
    w, q1 = columns.index("权重"), columns.index("Q1")
    letter = openpyxl.utils.get_column_letter
    groups = [None] * len(columns)
    groups[0], groups[w], groups[w + 1], groups[q1] = "基本信息", "权重", "其他信息", "调查题目"
    names = list(columns)
    names[w] = None
    rows = [["2026年调查", *[None] * (len(columns) - 1)], groups, names, *table(clean)[1:]]
    merges = [f"A2:{letter(w)}2", f"{letter(w + 1)}2:{letter(w + 1)}3",
              f"{letter(w + 2)}2:{letter(q1)}2", f"{letter(q1 + 1)}2:{letter(len(columns))}2"]
    data = workbook({"数据": rows}, merges={"数据": merges})
    notes = "\n".join(lands_as(wh, defs, clean, data, "调查.xlsx"))
    assert "表头在第3行" in notes


def test_a_csv_saved_from_a_two_row_header(wh, defs):
    """The same header saved as CSV: group names on the row above, 权重 only there."""
    clean = wave()
    columns = clean.columns
    w = columns.index("权重")
    groups = [None] * len(columns)
    groups[0], groups[w], groups[columns.index("Q1")] = "基本信息", "权重", "调查题目"
    names = list(columns)
    names[w] = None
    rows = [groups, names, *table(clean)[1:]]
    text = "\r\n".join(",".join("" if c is None else str(c) for c in row) for row in rows)
    notes = "\n".join(lands_as(wh, defs, clean, text.encode("gb18030"), "调查.csv"))
    assert "表头在第2行" in notes


def test_the_data_sheet_after_a_sheet_of_explanations(wh, defs):
    clean = wave()
    explain = [["字段", "说明"], ["受访者编号", "每位受访者一个编号"], ["区县代码", "6位行政区划代码"],
               ["权重", "设计权重"]]
    data = workbook({"说明": explain, "数据": table(clean)})
    notes = "\n".join(lands_as(wh, defs, clean, data, "调查.xlsx"))
    assert "跳过没有数据表头的工作表：说明" in notes


# ---------------------------------------------------------------------------------------------
# merged county cells


def blocks_of(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[list]:
    """The rows with `columns` written only on the first row of each county's block."""
    rows = table(frame)
    key, at = rows[0].index("区县代码"), [rows[0].index(c) for c in columns]
    previous = None
    for row in rows[1:]:
        current = row[key]
        if current == previous:
            for j in at:
                row[j] = None
        previous = current
    return rows


def block_merges(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
    letter = openpyxl.utils.get_column_letter
    merges, start = [], 2
    for _, part in frame.group_by("区县代码", maintain_order=True):
        end = start + part.height - 1
        merges += [f"{letter(frame.columns.index(c) + 1)}{start}:{letter(frame.columns.index(c) + 1)}"
                   f"{end}" for c in columns]
        start = end + 1
    return merges


def test_merged_county_cells_are_filled_down_their_block(wh, defs):
    clean = wave(counties=3)
    columns = ("区县代码", "区县名称")
    data = workbook({"数据": blocks_of(clean, columns)}, merges={"数据": block_merges(clean, columns)})
    notes = "\n".join(lands_as(wh, defs, clean, data, "调查.xlsx"))
    assert "“区县代码”列按合并单元格向下填充" in notes


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_county_written_once_per_block_is_filled_down(wh, defs, fmt):
    clean = wave(counties=3)
    rows = blocks_of(clean, ("区县代码", "区县名称"))
    if fmt == "xlsx":
        data = workbook({"数据": rows})
    else:
        data = "\n".join(",".join("" if c is None else str(c) for c in row) for row in rows).encode()
    notes = "\n".join(lands_as(wh, defs, clean, data, f"调查.{fmt}"))
    assert "“区县代码”列按每块只写一次向下填充" in notes


def test_a_county_cell_left_empty_in_a_full_column_is_refused_not_filled(wh, defs):
    clean = wave(counties=2)
    rows = table(clean)
    code = rows[0].index("区县代码")
    rows[5][code] = None                                   # Excel row 6
    rows[5][rows[0].index("区县名称")] = None
    report = rejected(wh, defs, xlsx_bytes_of(rows), "调查.xlsx", confirmed=PARTIAL)
    assert "第6行，“区县代码”列：区县代码为空" in report


def test_a_merged_cell_outside_the_county_columns_is_not_copied(wh, defs):
    clean = wave(counties=2)
    rows = table(clean)
    w = rows[0].index("权重")
    for r in range(3, 6):                                  # Excel rows 3–5 under row 2's weight
        rows[r - 1][w] = None
    letter = openpyxl.utils.get_column_letter(w + 1)
    data = workbook({"数据": rows}, merges={"数据": [f"{letter}2:{letter}5"]})
    report = rejected(wh, defs, data, "调查.xlsx", confirmed=PARTIAL)
    assert "第3行，“权重”列" in report


def xlsx_bytes_of(rows: list[list]) -> bytes:
    return workbook({"数据": rows})


def test_a_county_missing_from_an_indicator_row_is_not_taken_from_the_row_above(wh, defs):
    """One row per county: each name appears once, so a gap looks like a block; it is not."""
    from tests.test_ingest_values import indicator_frame

    frame = indicator_frame().drop("区县名称")
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(None)
                               .otherwise(pl.col("区县代码")).alias("区县代码"))
    report = rejected(wh, defs, csv_bytes(frame), "指标.csv", kind="indicators")
    assert "第6行，“区县代码”列：区县代码为空" in report


# ---------------------------------------------------------------------------------------------
# formats: legacy .xls and WPS .et, .ods, the web page saved as .xls, Unicode text, GB18030


def xls_bytes(rows: list[list], sheet: str = "数据", merges: list[tuple[int, int, int, int]] = ()
              ) -> bytes:
    """A BIFF8 workbook (Excel 97–2003) written by xlwt, every cell as text; merges are
    (first row, last row, first column, last column), 0-based, value in the first cell."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    page = book.add_sheet(sheet)
    merged = {(r1, c1) for r1, _, c1, _ in merges}
    covered = {(r, c) for r1, r2, c1, c2 in merges for r in range(r1, r2 + 1)
               for c in range(c1, c2 + 1)} - merged
    for r1, r2, c1, c2 in merges:
        page.write_merge(r1, r2, c1, c2, rows[r1][c1])
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None and (r, c) not in merged and (r, c) not in covered:
                page.write(r, c, str(value))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ods_bytes(rows: list[list]) -> bytes:
    """An OpenDocument spreadsheet with one table of text cells (what LibreOffice or WPS save)."""
    from xml.sax.saxutils import escape

    def cell(value) -> str:
        if value is None:
            return "<table:table-cell/>"
        return (f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}'
                "</text:p></table:table-cell>")

    body = "".join(f"<table:table-row>{''.join(cell(v) for v in row)}</table:table-row>"
                   for row in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="数据">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>")
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return out.getvalue()


def html_xls(rows: list[list], *, title: str | None = None, rowspans: dict[tuple[int, int], int]
             | None = None) -> bytes:
    """The page a web system serves as 导出Excel: a GBK table, optionally a title cell spanning
    every column and cells spanning rows (value in the first)."""
    from html import escape

    spans = rowspans or {}
    covered = {(r + k, c) for (r, c), n in spans.items() for k in range(1, n)}
    lines = ['<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
             "</head><body><table border=1>"]
    if title:
        lines.append(f'<tr><td colspan="{len(rows[0])}">{escape(title)}</td></tr>')
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            if (r, c) in covered:
                continue
            span = f' rowspan="{spans[(r, c)]}"' if (r, c) in spans else ""
            tag = "th" if r == 0 else "td"
            cells.append(f"<{tag}{span}>{'' if value is None else escape(str(value))}</{tag}>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table></body></html>")
    return "\n".join(lines).encode("gb18030")


def with_title(rows: list[list]) -> list[list]:
    return [["2026年调查数据", *[None] * (len(rows[0]) - 1)], [None] * len(rows[0]), *rows]


@pytest.mark.parametrize("suffix", ["xls", "et"])
def test_a_legacy_xls_or_wps_et_lands_like_the_clean_file(wh, defs, suffix):
    """BIFF8 as Excel 97–2003 and WPS write it (WPS's .et is the same compound document)."""
    clean = wave()
    data = xls_bytes(with_title(table(clean)))
    assert data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    notes = "\n".join(lands_as(wh, defs, clean, data, f"调查.{suffix}"))
    assert "表头在第3行" in notes


def test_a_problem_in_an_xls_names_the_excel_row(wh, defs):
    clean = wave()
    rows = with_title(table(clean))
    rows[6][clean.columns.index("Q1")] = "7"                # Excel row 7
    report = rejected(wh, defs, xls_bytes(rows), "调查.xls", confirmed=PARTIAL)
    assert "第7行，“Q1”列：答案代码 7 不在问卷规定的代码中" in report


def test_merged_county_cells_in_an_xls_are_filled_down(wh, defs):
    clean = wave(counties=3)
    rows = blocks_of(clean, ("区县代码", "区县名称"))
    code, name = rows[0].index("区县代码"), rows[0].index("区县名称")
    merges, start = [], 1
    for _, part in clean.group_by("区县代码", maintain_order=True):
        end = start + part.height - 1
        merges += [(start, end, code, code), (start, end, name, name)]
        start = end + 1
    lands_as(wh, defs, clean, xls_bytes(rows, merges=merges), "调查.xls")


def test_an_ods_lands_like_the_clean_file(wh, defs):
    clean = wave()
    notes = "\n".join(lands_as(wh, defs, clean, ods_bytes(with_title(table(clean))), "调查.ods"))
    assert "表头在第3行" in notes


def test_a_web_page_saved_as_xls_lands_like_the_clean_file(wh, defs):
    clean = wave(counties=3)
    rows = blocks_of(clean, ("区县代码", "区县名称"))
    code, name = rows[0].index("区县代码"), rows[0].index("区县名称")
    spans, start = {}, 1
    for _, part in clean.group_by("区县代码", maintain_order=True):
        spans[(start, code)] = spans[(start, name)] = part.height
        start += part.height
    data = html_xls(rows, title="2026年禁毒工作专项调查数据", rowspans=spans)
    notes = "\n".join(lands_as(wh, defs, clean, data, "导出数据.xls"))
    assert "网页表格" in notes and "表头在第2行" in notes
    assert "“区县代码”列按合并单元格向下填充" in notes


def test_a_problem_in_a_web_page_table_names_its_row(wh, defs):
    clean = wave()
    rows = table(clean)
    rows[3][clean.columns.index("Q1")] = "7"
    report = rejected(wh, defs, html_xls(rows, title="标题"), "导出.xls", confirmed=PARTIAL)
    assert "第5行，“Q1”列：答案代码 7 不在问卷规定的代码中" in report


def test_excel_unicode_text_lands_like_the_clean_file(wh, defs):
    """Excel's 另存为 → Unicode 文本: UTF-16 little-endian with a BOM, tab-separated, CRLF."""
    clean = wave()
    text = clean.write_csv(separator="\t", line_terminator="\r\n")
    data = text.encode("utf-16")
    assert data[:2] == b"\xff\xfe"
    lands_as(wh, defs, clean, data, "调查.txt")


def test_gb18030_characters_beyond_gbk_land_as_written(wh, defs):
    clean = wave().with_columns(pl.lit("𠀾家镇").alias("乡镇(街道)"))
    with pytest.raises(UnicodeEncodeError):
        csv_bytes(clean, "gbk")
    lands_as(wh, defs, clean, csv_bytes(clean, "gb18030"), "调查.csv")
    assert set(wh.responses(NEW_WAVE)["township"]) == {"𠀾家镇"}


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_trailing_ctrl_z_is_not_a_row(wh, defs, encoding):
    clean = wave()
    lands_as(wh, defs, clean, csv_bytes(clean, encoding) + b"\x1a", "调查.csv")


def test_semicolon_delimiters(wh, defs):
    clean = wave()
    data = clean.write_csv(separator=";").encode()
    lands_as(wh, defs, clean, data, "调查.csv")


def test_a_tab_separated_file_named_xls_is_read_as_text(wh, defs):
    """Some systems write tab-separated text and name it .xls (Excel opens it with a warning)."""
    clean = wave()
    lands_as(wh, defs, clean, clean.write_csv(separator="\t").encode("gb18030"), "导出.xls")


# ---------------------------------------------------------------------------------------------
# the import assistant on the data page


def data_page(monkeypatch, db_copy):
    from pipelines.present.access import hash_password
    from tests.test_app import PASSWORD, run_app, sign_in

    at = sign_in(run_app(monkeypatch, db_copy, hash_password(PASSWORD, rounds=1000)))
    at.switch_page("pages/data.py").run()
    return at


def detected_shown(at) -> str:
    return "\n".join("\n".join(d.value["内容"].tolist()) for d in at.dataframe
                     if "内容" in d.value.columns)


@pytest.mark.usefixtures("navigation_not_pages_directory")
def test_the_assistant_shows_what_it_detected_and_takes_a_corrected_header_row(
        monkeypatch, db_copy):
    from pages import _shared

    clean = wave()
    rows, where = laid_out(clean)
    data = workbook({"说明": [["本表为调查数据"]], "调查数据": rows})
    at = data_page(monkeypatch, db_copy)
    at.checkbox(key="confirm_missing_counties_0").check().run()
    at.file_uploader[0].upload("某县.xlsx", data, "application/octet-stream").run()
    assert not at.exception
    shown = detected_shown(at)
    assert "工作表“调查数据”：表头在第3行" in shown and "跳过没有数据表头的工作表：说明" in shown
    assert f"跳过表注第{where['notes']}–{where['notes'] + 2}行" in shown
    assert any(f"校验通过：{clean.height} 行" in s.value for s in at.success), \
        [e.value for e in at.error]
    # a wrong header row is refused in Chinese; the right one is remembered for the source
    at.number_input(key="layout_row_某县.xlsx_survey").set_value(1).run()
    assert any("未导入" in e.value or "未通过校验" in e.value for e in at.error)
    at.number_input(key="layout_row_某县.xlsx_survey").set_value(3).run()
    assert any(f"校验通过：{clean.height} 行" in s.value for s in at.success)
    next(b for b in at.button if b.label.startswith("记住“默认”的工作表与表头行")).click().run()
    warehouse = _shared._open_warehouse(str(db_copy))
    assert warehouse.layout_choice("默认", "survey") == ([], 3)
    again = data_page(monkeypatch, db_copy)
    again.file_uploader[0].upload("某县.xlsx", data, "application/octet-stream").run()
    assert again.number_input(key="layout_row_某县.xlsx_survey").value == 3


@pytest.mark.usefixtures("navigation_not_pages_directory")
def test_the_assistant_reads_only_the_sheet_chosen(monkeypatch, db_copy):
    clean = wave()
    codes = clean["区县代码"].unique(maintain_order=True).to_list()
    second = clean.filter(pl.col("区县代码") == codes[1])
    data = workbook({"甲市": table(clean.filter(pl.col("区县代码") == codes[0])),
                     "乙市": table(second)})
    at = data_page(monkeypatch, db_copy)
    at.checkbox(key="confirm_missing_counties_0").check().run()
    at.file_uploader[0].upload("两市.xlsx", data, "application/octet-stream").run()
    assert any(f"校验通过：{clean.height} 行" in s.value for s in at.success)
    assert "共读取 2 个工作表" in detected_shown(at)
    at.selectbox(key="layout_sheet_两市.xlsx_survey").set_value("乙市").run()
    assert any(f"校验通过：{second.height} 行" in s.value for s in at.success), \
        [e.value for e in at.error]


def test_the_uploader_accepts_every_format_read():
    import ast
    from pathlib import Path

    from pipelines.ingest.readers import SPREADSHEETS, UPLOAD_TYPES

    assert {s.lstrip(".") for s in SPREADSHEETS} | {"csv", "txt", "parquet", "gz"} <= set(UPLOAD_TYPES)
    page = ast.parse(Path("pages/data.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(page) if isinstance(n, ast.Call)
             and getattr(n.func, "attr", "") == "file_uploader"]
    assert calls and all(ast.unparse(k.value) == "list(UPLOAD_TYPES)" for c in calls
                         for k in c.keywords if k.arg == "type")


def test_cli_sheet_and_header_row_options(db_copy, tmp_path, capsys):
    """The command line takes the same corrections as the page: a sheet and a header row."""
    from pipelines.cli import main
    from pipelines.store.warehouse import Warehouse

    clean = wave()
    codes = clean["区县代码"].unique(maintain_order=True).to_list()
    second = clean.filter(pl.col("区县代码") == codes[1])
    path = tmp_path / "两市.xlsx"
    path.write_bytes(workbook({"甲市": table(clean.filter(pl.col("区县代码") == codes[0])),
                               "乙市": [["标题"], [None], *table(second)]}))
    code = main(["ingest", str(path), "--db", str(db_copy), "--wave", NEW_WAVE, "--sheet", "乙市",
                 "--header-row", "3", "--allow-missing-counties"])
    assert code == 0, capsys.readouterr().err
    with Warehouse.open(db_copy) as wh:
        assert wh.responses(NEW_WAVE).height == second.height


def test_an_excel_2003_xml_named_xls_is_refused_saying_what_to_do(wh, defs):
    """SpreadsheetML holds <Table> too; it must not be taken for a web page without a table."""
    data = ('<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?><Workbook '
            'xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="数据"><Table>'
            '<Row><Cell><Data ss:Type="String">受访者编号</Data></Cell></Row></Table></Worksheet>'
            "</Workbook>").encode()
    report = rejected(wh, defs, data, "导出.xls", confirmed=PARTIAL)
    assert "Excel 2003 XML 表格" in report and "另存为 .xlsx" in report


def test_percent_cells_of_an_xls_are_refused_never_loaded_100_times_off(wh, defs):
    """calamine does not give a BIFF cell's number format: a rate column of fractions is then
    refused by the scale check (the XLSX reader reads the format and scales instead)."""
    import xlwt

    from tests.test_ingest_values import indicator_frame

    clean = indicator_frame()
    book = xlwt.Workbook(encoding="utf-8")
    page = book.add_sheet("指标")
    percent = xlwt.easyxf(num_format_str="0.0%")
    for c, name in enumerate(clean.columns):
        page.write(0, c, name)
    for r, row in enumerate(clean.iter_rows(), start=1):
        for c, (name, value) in enumerate(zip(clean.columns, row, strict=True)):
            if name == "社会面管控率" and value is not None:
                page.write(r, c, float(value) / 100, percent)
            elif value is not None:
                page.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    report = rejected(wh, defs, out.getvalue(), "指标.xls", kind="indicators")
    assert "“社会面管控率”列：本列所有数值都在 0–1 之间" in report
