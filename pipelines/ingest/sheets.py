"""Spreadsheets as bureaus make them: every sheet, the header found wherever it is, layout rows
skipped and listed, and each row numbered as the analyst sees it in Excel.

A workbook is read sheet by sheet into a grid of text cells with their Excel row numbers. In each
sheet the header is the row (among the first `HEADER_SEARCH_ROWS`) that names the most known
columns (a two-row header with merged group cells above: a name missing under a merged cell is
taken from the row above). A sheet with no such row (说明, 封面) is skipped and named. Every sheet
with a header must have the same columns; their rows are read one after another. Empty rows,
合计/总计 rows and 注：/制表人/填报日期 footnotes are skipped and listed by row. Merged cells (a
county written once per block) are filled down from the XLSX's merge list. Excel percent cells
(0.919 shown as 91.9%) are read as they are shown, "91.9%".

XLSX files up to `OPENPYXL_MAX_BYTES` are read cell by cell with openpyxl (exact rows, number
formats, merges, numbers that Excel stored beyond its 15 digits); larger ones and .xls/.xlsb/.ods/.et
through calamine (fast; the first row with a value is located with openpyxl's streaming reader).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time

import polars as pl

from pipelines.core.headers import lookup_header

HEADER_SEARCH_ROWS = 30
OPENPYXL_MAX_BYTES = 8 * 2**20
# a layout row: its first filled cell starts with one of these
_LAYOUT_ROW = re.compile(r"^\s*(合\s*计|总\s*计|小\s*计|全省合计|全市合计|注\s*[:：\d一二三]|备注\s*[:：]"
                         r"|说明\s*[:：]|制表|填报|填表|审核|负责人|数据来源|单位负责人|统计负责人)")
_TOTAL_ROW = re.compile(r"^\s*(合\s*计|总\s*计|小\s*计|全省合计|全市合计)")


@dataclass
class Grid:
    """One sheet: text cells (columns c0, c1 …), each row's Excel number, the cells' merges."""

    name: str
    cells: pl.DataFrame
    rows: list[int]
    percent: set[tuple[int, int]] = field(default_factory=set)   # (grid row, column) shown as %


@dataclass
class SheetTable:
    frame: pl.DataFrame            # text columns named by the header
    row_numbers: pl.Series         # Excel row of each row
    sheet_names: pl.Series | None  # sheet of each row, when more than one sheet was read
    notes: list[str]               # what was detected, in Chinese


class SheetError(Exception):
    """A workbook that cannot be read as one table; the message is Chinese."""


def _text(value: object) -> str | None:
    """A cell as the text a person sees for it (numbers without a spurious .0)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value) if abs(value) < 1e15 else f"{value:.15G}"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def _percent_text(value: float) -> str:
    return f"{round(value * 100, 9):.15g}%"


def _grid_frame(rows: list[list[str | None]]) -> pl.DataFrame:
    width = max((len(r) for r in rows), default=0)
    columns = {f"c{j}": [r[j] if j < len(r) else None for r in rows] for j in range(width)}
    return pl.DataFrame(columns, schema={c: pl.String for c in columns})


def read_openpyxl(data: bytes) -> list[Grid]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    merges = _xlsx_merges(data)
    grids = []
    try:
        for sheet in book.worksheets:
            if getattr(sheet, "sheet_state", "visible") != "visible":
                continue
            rows: list[list[str | None]] = []
            numbers: list[int] = []
            percent: set[tuple[int, int]] = set()
            for number, row in enumerate(sheet.iter_rows(), start=1):
                texts = []
                for j, cell in enumerate(row):
                    value = getattr(cell, "value", None)
                    fmt = getattr(cell, "number_format", None) or ""
                    if isinstance(value, (int, float)) and not isinstance(value, bool) \
                            and "%" in fmt:
                        percent.add((len(rows), j))
                        texts.append(_percent_text(float(value)))
                    else:
                        texts.append(_text(value))
                if any(t is not None for t in texts):
                    rows.append(texts)
                    numbers.append(number)
                elif rows:
                    rows.append(texts)
                    numbers.append(number)
            while rows and all(t is None for t in rows[-1]):
                rows.pop()
                numbers.pop()
            grid = Grid(sheet.title, _grid_frame(rows), numbers, percent)
            _fill_merges(grid, merges.get(sheet.title, []))
            grids.append(grid)
    finally:
        book.close()
    return grids


def read_calamine(data: bytes, is_xlsx: bool) -> list[Grid]:
    import fastexcel

    reader = fastexcel.read_excel(data)
    merges = _xlsx_merges(data) if is_xlsx else {}
    grids = []
    for name in reader.sheet_names:
        sheet = reader.load_sheet(name, header_row=None, dtypes="string")
        frame = sheet.to_polars()
        frame = frame.rename({c: f"c{j}" for j, c in enumerate(frame.columns)})
        first = _first_value_row(data, name) if is_xlsx else 1
        numbers = list(range(first, first + frame.height))
        grid = Grid(name, frame.with_columns(pl.all().cast(pl.String)), numbers)
        _fill_merges(grid, merges.get(name, []))
        grids.append(grid)
    return grids


def _first_value_row(data: bytes, sheet_name: str) -> int:
    """The Excel row of the first row with a value (calamine's grid starts there)."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for number, row in enumerate(book[sheet_name].iter_rows(values_only=True), start=1):
            if any(_text(v) is not None for v in row):
                return number
    finally:
        book.close()
    return 1


_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _column_index(letters: bytes) -> int:
    index = 0
    for ch in letters.decode():
        index = index * 26 + ord(ch) - 64
    return index - 1


def _xlsx_merges(data: bytes) -> dict[str, list[tuple[int, int, int, int]]]:
    """Sheet name → merged ranges (first row, first column, last row, last column; Excel rows,
    0-based columns), from each sheet's XML."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        book = archive.read("xl/workbook.xml")
        rels = archive.read("xl/_rels/workbook.xml.rels")
    except (KeyError, zipfile.BadZipFile):
        return {}
    targets = dict(re.findall(rb'<Relationship[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"', rels))
    targets |= {k: v for v, k in re.findall(rb'<Relationship[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"',
                                            rels)}
    found: dict[str, list[tuple[int, int, int, int]]] = {}
    for tag in re.findall(rb"<sheet [^>]*>", book):
        name = re.search(rb'name="([^"]*)"', tag)
        rid = re.search(rb'r:id="([^"]*)"', tag) or re.search(rb'\bid="([^"]*)"', tag)
        if not name or not rid or rid[1] not in targets:
            continue
        target = targets[rid[1]].decode().lstrip("/")
        path = target if target.startswith("xl/") else f"xl/{target}"
        try:
            xml = archive.read(path)
        except KeyError:
            continue
        if b"<mergeCell " not in xml:
            continue
        import html

        found[html.unescape(name[1].decode())] = [
            (int(r1), _column_index(c1), int(r2), _column_index(c2))
            for c1, r1, c2, r2 in _MERGE.findall(xml)]
    return found


def _fill_merges(grid: Grid, merges: list[tuple[int, int, int, int]]) -> None:
    """Copy each merged range's value (held by its first cell) into the rest of the range, for a
    range within one column (a county merged over its rows); ranges across columns are header
    group cells and stay as they are."""
    if not merges or grid.cells.height == 0:
        return
    where = {number: i for i, number in enumerate(grid.rows)}
    columns = {c: grid.cells.get_column(c).to_list() for c in grid.cells.columns}
    changed = False
    for r1, c1, r2, c2 in merges:
        if c1 != c2 or r1 == r2 or f"c{c1}" not in columns or r1 not in where:
            continue
        cells = columns[f"c{c1}"]
        value = cells[where[r1]]
        for number in range(r1 + 1, r2 + 1):
            if number in where and cells[where[number]] is None:
                cells[where[number]] = value
                changed = True
    if changed:
        grid.cells = pl.DataFrame(columns, schema=grid.cells.schema)


def _header_row(grid: Grid, index: dict[str, str] | None) -> tuple[int, int] | None:
    """(grid row of the header, known columns it names); without an index the first row."""
    if grid.cells.height == 0:
        return None
    if index is None:
        return 0, grid.cells.width
    best: tuple[int, int] | None = None
    for i, row in enumerate(grid.cells.head(HEADER_SEARCH_ROWS).iter_rows()):
        targets = {lookup_header(c, index) for c in row if c is not None} - {None}
        if len(targets) >= 2 and (best is None or len(targets) > best[1]):
            best = (i, len(targets))
    return best


def _headers(grid: Grid, at: int) -> list[str]:
    """The header cells; a blank one under a merged group takes the cell above it (a two-row
    header), a still blank one is named 列N; repeated names get a suffix."""
    row = list(grid.cells.row(at))
    above = list(grid.cells.row(at - 1)) if at > 0 else [None] * len(row)
    names, seen = [], set()
    for j, cell in enumerate(row):
        name = (cell or above[j] or f"列{j + 1}").strip()
        base, k = name, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def spans(rows: list[int]) -> str:
    """Row numbers as 第2–3、7行."""
    parts, start, prev = [], None, None
    for r in sorted(rows):
        if start is None:
            start = prev = r
        elif r == prev + 1:
            prev = r
        else:
            parts.append(f"{start}" if start == prev else f"{start}–{prev}")
            start = prev = r
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}–{prev}")
    shown = parts[:12] + (["……"] if len(parts) > 12 else [])
    return "第" + "、".join(shown) + "行"


def to_table(grids: list[Grid], index: dict[str, str] | None) -> SheetTable:
    """One table from the sheets with a header, or SheetError."""
    found = [(g, _header_row(g, index)) for g in grids]
    with_header = [(g, h) for g, h in found if h is not None]
    if not with_header:
        raise SheetError("工作簿中没有找到表头行（需要一行包含“受访者编号”“区县代码”等列名）：请检查是否"
                         "选错了文件")
    best = max(h[1] for _, h in with_header)
    # a sheet naming far fewer known columns than the best one is a note or summary sheet
    data_sheets = [(g, h) for g, h in with_header if h[1] * 2 > best]
    notes: list[str] = []
    skipped_sheets = [g.name for g, h in found if (g, h) not in data_sheets]
    frames, numbers, names = [], [], []
    reference: list[str] | None = None
    reference_sheet, reference_headers = "", []
    for grid, (at, _) in data_sheets:
        headers = _headers(grid, at)
        keyed = [lookup_header(h, index) or h for h in headers] if index else headers
        if reference is None:
            reference, reference_sheet, reference_headers = keyed, grid.name, headers
        elif sorted(keyed) != sorted(reference):
            raise SheetError(f"工作表“{grid.name}”的列与工作表“{reference_sheet}”不同（"
                             f"{'、'.join(sorted(set(keyed) ^ set(reference))[:6])}）：各工作表须使用"
                             "相同的表头，或只保留一个工作表")
        body = grid.cells.slice(at + 1)
        body.columns = headers
        # the same columns under the first sheet's spelling and order
        spelled = dict(zip(reference, reference_headers, strict=True))
        body = body.rename({h: spelled[k] for h, k in zip(headers, keyed, strict=True)}) \
            .select(reference_headers)
        rows = grid.rows[at + 1:]
        first_cells = body.select(pl.coalesce(pl.all()).alias("first")).get_column("first")
        empty = first_cells.is_null()
        total = first_cells.str.contains(_TOTAL_ROW.pattern).fill_null(False)
        note = first_cells.str.contains(_LAYOUT_ROW.pattern).fill_null(False) & ~total
        # after a footnote every row is a footnote too (a signature, a date)
        note = note.cast(pl.Int8).cum_max().cast(pl.Boolean) & ~empty
        keep = ~empty & ~total & ~note
        totals = [rows[i] for i in total.arg_true().to_list()]
        notes_rows = [rows[i] for i in note.arg_true().to_list()]
        blank_rows = [rows[i] for i in (empty & ~note).arg_true().to_list()]
        blank_rows = [r for r in blank_rows if r < max(rows[i] for i in keep.arg_true())] \
            if keep.any() else []
        kept = body.filter(keep)
        kept_rows = [rows[i] for i in keep.arg_true().to_list()]
        label = f"工作表“{grid.name}”"
        what = [f"{label}：表头在第{grid.rows[at]}行，读取 {kept.height} 行数据"]
        if blank_rows:
            what.append(f"跳过空行{spans(blank_rows)}")
        if totals:
            what.append(f"跳过合计行{spans(totals)}")
        if notes_rows:
            what.append(f"跳过表注{spans(notes_rows)}")
        notes.append("；".join(what))
        frames.append(kept)
        numbers.extend(kept_rows)
        names.extend([grid.name] * kept.height)
    if skipped_sheets:
        notes.append(f"跳过没有数据表头的工作表：{'、'.join(skipped_sheets)}")
    if len(frames) > 1:
        notes.insert(0, f"共读取 {len(frames)} 个工作表："
                     + "、".join(f"{g.name}（{f.height} 行）"
                                for (g, _), f in zip(data_sheets, frames, strict=True)))
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    percent_columns = sorted({_headers(g, h[0])[j] for g, h in data_sheets
                              for (i, j) in g.percent if i > h[0]})
    if percent_columns:
        notes.append(f"{'、'.join(percent_columns)} 列为 Excel 百分比格式单元格（如 0.919 显示为 "
                     "91.9%），已按显示的百分数读取")
    return SheetTable(frame, pl.Series("row", numbers, dtype=pl.Int64),
                      pl.Series("sheet", names) if len(frames) > 1 else None, notes)
