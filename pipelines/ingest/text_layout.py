"""A CSV or text table saved from a sheet laid out for reading (a title row above the header,
blank rows, 合计 rows, 注：/制表人 footnotes) goes through the same layout rules as a workbook
(sheets.py): it becomes one grid, a record per row, numbered as Excel numbers them when it opens
the file. A plain table (the header on line 1, no layout row) never takes this path: it is found
after Polars parsed it (a line count and two passes over the frame), so the large files keep the
fast reader.
"""

from __future__ import annotations

import csv
import io
import re

import polars as pl

from pipelines.core.headers import lookup_header
from pipelines.ingest.blocks import LAYOUT_ROW

SEARCH_LINES = 30
# words a layout row starts with (sheets.py has the full rule); any of them in the file, or a
# line of delimiters only, sends it to the layout reader
_MARKERS = tuple(w.encode() for w in ("计", "注", "制", "填", "审", "负责人", "数据来源", "说明"))


def _layout_line(delimiter: str) -> re.Pattern[bytes]:
    """A line (after the first) of delimiters only, or whose first filled cell starts with a
    layout word; the pattern starts with a literal line feed, which the regex engine scans for."""
    d = re.escape(delimiter.encode())
    space = rb"[ \t]*"

    def word(text: str) -> bytes:
        return space.join(re.escape(ch.encode()) for ch in text)

    words = [word(w) for w in ("合计", "总计", "小计", "制表", "填报", "填表", "审核", "负责人",
                               "数据来源")]
    words.append(word("注") + space + b"(?:[:0-9]|" + b"|".join(word(c) for c in "：一二三") + b")")
    words.append(word("说明") + space + b"(?::|" + word("：") + b")")
    blank = rb"(?:" + d + rb'|""|[ \t])*\r?\n(?=[^\r\n])'
    first = rb"(?:" + d + rb"|[ \t])*\"?" + space + rb"(?:" + b"|".join(words) + rb")"
    return re.compile(rb"\n(?:" + blank + rb"|" + first + rb")")


def header_below_line_one(content: bytes, delimiter: str, index: dict[str, str]) -> bool:
    """A later line among the first SEARCH_LINES names more known columns than line 1 (a title
    or a group row above the header)."""
    head = _records(content[:2**16], delimiter)[:SEARCH_LINES]
    if not head:
        return False
    known = [len({lookup_header(c, index) for c in row if c.strip()} - {None}) for row in head]
    return max(known) >= 2 and known.index(max(known)) > 0


def has_layout_rows(frame: pl.DataFrame) -> bool:
    """A parsed plain table holds a blank row, or a row whose first filled cell opens a total or
    a footnote (two Polars passes: 0.06 s on 1.14 million rows)."""
    text = frame.select(pl.col(pl.String)).columns
    if not text:
        return False
    found = frame.select(pl.all_horizontal(pl.all().is_null()).any().alias("blank"),
                         pl.coalesce(text).str.contains(LAYOUT_ROW.pattern).any().alias("layout")
                         ).row(0)
    return any(bool(v) for v in found)


def needs_layout(content: bytes, delimiter: str, index: dict[str, str]) -> bool:
    """For a file Polars could not take as a plain table (lines of other widths): True when line
    1 is not the header or a later line is blank or starts with a layout word. Byte searches
    first, the regex only when one finds a marker."""
    if header_below_line_one(content, delimiter, index):
        return True
    d = delimiter.encode()
    blank = (b"\n\n", b"\n\r\n", b"\n" + d, b'\n""')
    if not any(m in content for m in blank) and not any(m in content for m in _MARKERS):
        return False
    return _layout_line(delimiter).search(content) is not None


def _records(content: bytes, delimiter: str) -> list[list[str]]:
    text = content.decode("utf-8", errors="ignore")
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return []


def layout_rows(content: bytes, delimiter: str) -> list[list[str | None]]:
    """Every record as text cells (empty → None), one per row as Excel shows it."""
    text = content.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [[c if c.strip() else None for c in row] for row in reader]
