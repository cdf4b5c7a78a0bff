"""The Excel workbook of the tables shown: one sheet per table, Chinese headers, number formats,
frozen header row and filters. Written with xlsxwriter (through Polars), which sets formats and
panes without a template; text that looks like a formula is written as text, never as a formula."""

from __future__ import annotations

import io
from collections.abc import Sequence

import xlsxwriter

from pipelines.present.tables import DECIMAL3, INTEGER, PERCENT, SCORE, Table

EXCEL_FORMATS = {SCORE: "0.00", PERCENT: "0.0%", INTEGER: "0", DECIMAL3: "0.000"}
SHEET_NAME_LIMIT = 31


NAME_COLUMNS = {"区县": 14, "市州": 10}   # minimum widths (characters): names never cut off


def _print_setup(sheet, columns: Sequence[str]) -> None:
    """Printed as leaders print it: A4 landscape, one page wide, the header row on every page,
    name columns wide enough for a county name."""
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    for index, column in enumerate(columns):
        if column in NAME_COLUMNS:
            fitted = getattr(sheet.col_info.get(index), "width", None) or 0   # from autofit
            sheet.set_column(index, index, max(NAME_COLUMNS[column], fitted))


def workbook_bytes(tables: Sequence[Table], *, note: str | None = None) -> bytes:
    """An .xlsx with one sheet per table (sheet name = table title) and an optional note sheet."""
    out = io.BytesIO()
    # strings_to_formulas off: a county name "=1+1" stays the text "=1+1" (no formula injection)
    with xlsxwriter.Workbook(out, {"strings_to_formulas": False, "strings_to_urls": False,
                                   "strings_to_numbers": False}) as book:
        header = {"bold": True, "bg_color": "#DCE6F1", "font_name": "等线", "text_wrap": True,
                  "valign": "vcenter"}
        for table in tables:
            formats = {col: EXCEL_FORMATS[kind] for col, kind in table.formats.items()
                       if col in table.frame.columns}
            name = table.title[:SHEET_NAME_LIMIT]
            table.frame.write_excel(
                book, name, column_formats=formats or None,
                header_format=header, freeze_panes=(1, 0), autofit=True, autofilter=True,
                table_style=None, float_precision=6)
            _print_setup(book.get_worksheet_by_name(name), table.frame.columns)
        if note:
            sheet = book.add_worksheet("说明")
            sheet.set_column(0, 0, 110)
            wrap = book.add_format({"text_wrap": True, "valign": "top"})
            for row, line in enumerate(note.splitlines()):
                sheet.write_string(row, 0, line, wrap)
    return out.getvalue()
