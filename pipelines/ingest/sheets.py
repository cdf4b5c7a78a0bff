"""Spreadsheets as bureaus make them: every sheet, the header found wherever it is, layout rows
skipped and listed, and each row numbered as the analyst sees it in Excel.

A workbook is read sheet by sheet into a grid of text cells with their Excel row numbers. In each
sheet the header is the row (among the first `HEADER_SEARCH_ROWS`) that names the most known
columns (a two-row header with merged group cells above: a name missing under a merged cell is
taken from the row above). A sheet with no such row (说明, 封面) is skipped and named. Every sheet
with a header must have the same columns; their rows are read one after another. Empty rows,
合计/总计 rows and 注：/制表人/填报日期 footnotes are skipped and listed by row. A county written once
per block is filled down (blocks.py). Excel percent cells (0.919 shown as 91.9%) are read as they
are shown, "91.9%".

Every format goes through calamine (fastexcel: .xlsx, .xls, .xlsb, .ods, .et); for an XLSX what
calamine does not report (number formats, merges, numbers past Excel's 15 digits) is read from
the workbook's XML (xlsx_parts.py), never cell by cell."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time

import numpy
import polars as pl

from pipelines.core.headers import lookup_header
from pipelines.ingest import xlsx_parts
from pipelines.ingest.blocks import (
    FILL_DOWN_FIELDS,
    LAYOUT_ROW,
    TOTAL_ROW,
    Merge,
    fill_blocks,
    spans,
)

HEADER_SEARCH_ROWS = 30


@dataclass
class Grid:
    """One sheet: text cells (columns c0, c1 …), each row's Excel number, the cells' merges."""

    name: str
    cells: pl.DataFrame
    rows: list[int]
    percent: set[tuple[int, int]] = field(default_factory=set)   # (grid row, column) shown as %
    # the merged ranges (Excel rows, grid columns), read only when a block column has gaps
    merges: Callable[[], list[Merge]] = lambda: []


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


def grid_frame(rows: list[list[str | None]]) -> pl.DataFrame:
    width = max((len(r) for r in rows), default=0)
    columns = {f"c{j}": [r[j] if j < len(r) else None for r in rows] for j in range(width)}
    return pl.DataFrame(columns, schema={c: pl.String for c in columns})


def html_grid(name: str, rows: list[list[str | None]], merges: list[Merge]) -> Grid:
    """A web page's table as a sheet (see html_table.py)."""
    grid = Grid(name, grid_frame(rows), list(range(1, len(rows) + 1)))
    grid.merges = lambda: merges
    return grid


def read_calamine(data: bytes, is_xlsx: bool) -> list[Grid]:
    """Every visible sheet through calamine, as text, from Excel row 1 (`skip_rows=0` keeps the
    empty rows above the first value, so a row's index + 1 is its Excel row); for an XLSX the
    cells calamine cannot tell apart are corrected from the workbook's XML (xlsx_parts.py)."""
    import fastexcel

    reader = fastexcel.read_excel(data)
    book = xlsx_parts.Workbook(data) if is_xlsx else None
    grids = []
    for name in reader.sheet_names:
        sheet = reader.load_sheet(name, header_row=None, dtypes="string", skip_rows=0)
        if sheet.visible != "visible":
            continue
        frame = sheet.to_polars()
        offset = sheet.available_columns()[0].absolute_index if frame.width else 0
        frame = frame.rename({c: f"c{j}" for j, c in enumerate(frame.columns)}) \
            .with_columns(pl.all().cast(pl.String))
        frame = frame.with_columns(pl.col(pl.String).str.replace(_MIDNIGHT, "$1"))
        grid = Grid(name, frame, list(range(1, frame.height + 1)))
        if book is not None:
            _correct_cells(grid, book, name, offset)
        grids.append(grid)
    return grids


# calamine writes a date as 2025-03-04 00:00:00; a person sees 2025-03-04
_MIDNIGHT = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"


def _correct_cells(grid: Grid, book: xlsx_parts.Workbook, name: str, offset: int) -> None:
    """Percent cells as shown ("91.9%"), numbers past 15 digits as Excel shows them (1.23E+17:
    calamine writes every digit of the float, which would pass for an exact id), booleans as
    是/否, and the sheet's merged ranges (in grid columns)."""
    text = pl.col(pl.String)
    flags = grid.cells.select(
        pl.any_horizontal(text.str.contains(r"^-?\d{16,}(\.\d*)?$").any()).alias("long"),
        pl.any_horizontal(text.is_in(["true", "false"]).any()).alias("bool")).row(0) \
        if grid.cells.width else (False, False)
    cells = book.cells(name, numbers=bool(flags[0]), booleans=bool(flags[1]))
    grid.merges = functools.cache(
        lambda: [(r1, c1 - offset, r2, c2 - offset) for r1, c1, r2, c2 in book.merges(name)])
    changes: dict[int, dict[int, str | None]] = {}
    for (row, column), value in cells.long_numbers.items():
        changes.setdefault(column - offset, {})[row - 1] = _text(value)
    for (row, column), value in cells.booleans.items():
        changes.setdefault(column - offset, {})[row - 1] = "是" if value else "否"
    columns = grid.cells.columns
    percent_rows: dict[int, list[int]] = {}
    for row, column in cells.percent:
        j, i = column - offset, row - 1
        if 0 <= j < len(columns) and i < grid.cells.height:
            percent_rows.setdefault(j, []).append(i)
    for j, rows in percent_rows.items():
        _scale_percent(grid, j, rows)
    for j, by_row in changes.items():
        if not 0 <= j < len(columns):
            continue
        values = grid.cells.get_column(columns[j]).to_list()
        for i, value in by_row.items():
            if i < len(values):
                values[i] = value
        grid.cells = grid.cells.with_columns(pl.Series(columns[j], values, dtype=pl.String))


def _scale_percent(grid: Grid, j: int, rows: list[int]) -> None:
    """The number cells of column `j` at `rows` as the percentage shown (0.919 → "91.9%"), in
    one Polars pass (a whole percent column of 100,000 cells is common in indicator exports)."""
    name = grid.cells.columns[j]
    at = numpy.zeros(grid.cells.height, dtype=bool)
    at[rows] = True
    number = pl.col(name).cast(pl.Float64, strict=False)
    shown = (number * 100).round(9).cast(pl.String).str.replace(r"\.0$", "") + "%"
    marked = pl.lit(pl.Series(at)) & number.is_not_null()
    flags = grid.cells.select(marked.alias("m")).get_column("m")
    grid.cells = grid.cells.with_columns(pl.when(marked).then(shown).otherwise(pl.col(name))
                                         .alias(name))
    grid.percent.update((i, j) for i in flags.arg_true().to_list())


@dataclass(frozen=True)
class LayoutChoice:
    """What the analyst corrected on the page: the sheets to read (empty: every sheet with a
    header) and the header's Excel row (None: found by the column aliases)."""

    sheets: tuple[str, ...] = ()
    header_row: int | None = None


AUTOMATIC = LayoutChoice()


def _header_row(grid: Grid, index: dict[str, str] | None, choice: LayoutChoice
                ) -> tuple[int, int] | None:
    """(grid row of the header, known columns it names); without an index the first row."""
    if grid.cells.height == 0:
        return None
    if choice.header_row is not None:
        if choice.header_row not in grid.rows:
            return None
        at = grid.rows.index(choice.header_row)
        row = grid.cells.row(at)
        return at, max(1, len({lookup_header(c, index) for c in row if c is not None} - {None})
                       if index else len(row))
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


def to_table(grids: list[Grid], index: dict[str, str] | None,
             choice: LayoutChoice = AUTOMATIC) -> SheetTable:
    """One table from the sheets with a header (those the analyst chose), or SheetError."""
    if choice.sheets:
        unknown = [name for name in choice.sheets if name not in {g.name for g in grids}]
        if unknown:
            raise SheetError(f"工作簿中没有工作表“{'、'.join(unknown)}”：请重新选择工作表")
    found = [(g, _header_row(g, index, choice) if not choice.sheets or g.name in choice.sheets
              else None) for g in grids]
    with_header = [(g, h) for g, h in found if h is not None]
    if not with_header and choice.header_row is not None:
        raise SheetError(f"所选的表头行（第{choice.header_row}行）超出了表格范围：请重新选择表头所在行")
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
        total = first_cells.str.contains(TOTAL_ROW.pattern).fill_null(False)
        note = first_cells.str.contains(LAYOUT_ROW.pattern).fill_null(False) & ~total
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
        blocks = {spelled[k]: j for j, k in enumerate(keyed) if k in FILL_DOWN_FIELDS}
        kept, filled = fill_blocks(kept, kept_rows, grid.merges, blocks)
        label = f"工作表“{grid.name}”" if grid.name else "文件"
        what = [f"{label}：表头在第{grid.rows[at]}行，读取 {kept.height} 行数据", *filled]
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
