"""A county written once per block of rows (a merged cell in Excel, or a value left out below
the first row of its block) filled down to every row of its block, and only there.

Filling is the one place where the reader writes a value the file does not hold in that cell, so
it is done only where the file says so unambiguously: in the county (and city) columns, and there
either inside a merged range, or when the column is laid out as blocks without doubt: its first
data row is filled, no value appears twice (each county starts one block) and the empty cells
are at least as many as the filled ones (blocks of several rows). A county seen again further
down, a cell left empty in a column that otherwise repeats its value, or a county missing from a
sheet of one row per county is a gap the analyst must see, and stays empty for the checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

# a layout row (sheets.py skips it): its first filled cell starts with one of these
LAYOUT_ROW = re.compile(r"^\s*(合\s*计|总\s*计|小\s*计|全省合计|全市合计|注\s*[:：\d一二三]|备注\s*[:：]"
                        r"|说明\s*[:：]|制表|填报|填表|审核|负责人|数据来源|单位负责人|统计负责人)")
TOTAL_ROW = re.compile(r"^\s*(合\s*计|总\s*计|小\s*计|全省合计|全市合计)")
# the fields whose cells a bureau writes once per block
FILL_DOWN_FIELDS = ("county_code", "county_name", "city_code", "city_name")

Merge = tuple[int, int, int, int]   # first Excel row, first column, last Excel row, last column


def fill_blocks(body: pl.DataFrame, rows: list[int], merges: Callable[[], list[Merge]],
                columns: dict[str, int]) -> tuple[pl.DataFrame, list[str]]:
    """`body` (text columns named by the header, `rows` their Excel rows) with the block columns
    (`columns`: header → grid column) filled down; notes say which columns and rows. `merges`
    is asked only when a block column has an empty cell."""
    notes = []
    where = {number: i for i, number in enumerate(rows)}
    for header, j in columns.items():
        if body.get_column(header).null_count() == 0:
            continue
        cells = body.get_column(header).to_list()
        filled = _fill_merged(cells, where, [m for m in merges() if m[1] == j == m[3] and m[0] < m[2]])
        how = "合并单元格"
        if not filled and _is_block_column(body.get_column(header)):
            filled = _fill_forward(cells)
            how = "每块只写一次"
        if filled:
            body = body.with_columns(pl.Series(header, cells, dtype=pl.String))
            notes.append(f"“{header}”列按{how}向下填充：{spans([rows[i] for i in filled])}")
    return body, notes


def fill_plain_blocks(frame: pl.DataFrame, index: dict[str, str]) -> tuple[pl.DataFrame, list[str]]:
    """The same for a plain table (a CSV, header on line 1): rows numbered from 2, no merges.
    Free when the block columns have no empty cell (Polars keeps the null count)."""
    from pipelines.core.headers import lookup_header

    columns = {h: j for j, h in enumerate(frame.columns)
               if frame.schema[h] == pl.String and lookup_header(h, index) in FILL_DOWN_FIELDS
               and frame.get_column(h).null_count()}
    if not columns:
        return frame, []
    return fill_blocks(frame, list(range(2, frame.height + 2)), lambda: [], columns)


def _fill_merged(cells: list[str | None], where: dict[int, int], merges: list[Merge]) -> list[int]:
    filled = []
    for r1, _, r2, _ in merges:
        if r1 not in where:
            continue
        value = cells[where[r1]]
        for number in range(r1 + 1, r2 + 1):
            i = where.get(number)
            if i is not None and cells[i] is None and value is not None:
                cells[i] = value
                filled.append(i)
    return filled


def _is_block_column(cells: pl.Series) -> bool:
    present = cells.drop_nulls()
    # blocks of one row (an indicator sheet, a county per row) are no blocks: a gap there is
    # a county left out, not a county written once
    return (cells.len() > 1 and cells.null_count() >= present.len() and cells[0] is not None
            and present.n_unique() == present.len())


def _fill_forward(cells: list[str | None]) -> list[int]:
    filled, last = [], None
    for i, cell in enumerate(cells):
        if cell is None:
            cells[i] = last
            filled.append(i)
        else:
            last = cell
    return filled


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
