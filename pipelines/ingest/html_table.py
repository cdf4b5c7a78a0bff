"""The "Excel file" a web system saves: an HTML page holding a <table>, named .xls. Excel opens it;
so must the ingest. Each table becomes a sheet grid as a workbook's would (cells as text, one grid
row per <tr>, numbered from 1 as Excel shows it); a cell spanning columns holds its value in its
first column, and one spanning rows is a merged range, filled down only where blocks.py allows.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def looks_like_html(data: bytes) -> bool:
    """A page, not a spreadsheet: the first bytes (after a BOM and white space) open a tag and
    a <table> follows."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<table" in data[:2**20].lower()


def decode_html(data: bytes) -> str:
    """The page's declared charset, else UTF-8, else GB18030 (what Chinese systems write)."""
    declared = _CHARSET.search(data[:4096])
    codecs = ([declared[1].decode("ascii")] if declared else []) + ["utf-8-sig", "gb18030"]
    for codec in codecs:
        try:
            return data.decode("gb18030" if codec.lower() in ("gbk", "gb2312") else codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("gb18030", errors="replace")


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[list[list[str | None]], list[tuple[int, int, int, int]]]] = []
        self._rows: list[list[str | None]] | None = None
        self._merges: list[tuple[int, int, int, int]] = []
        self._spans: dict[tuple[int, int], bool] = {}   # (row, column) taken by a span above
        self._cell: list[str] | None = None
        self._span = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and self._rows is None:
            self._rows, self._merges, self._spans = [], [], {}
        elif self._rows is None:
            return
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            if not self._rows:
                self._rows.append([])
            values = dict(attrs)
            self._span = (_int(values.get("rowspan")), _int(values.get("colspan")))
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._rows is None:
            return
        if tag in ("td", "th") and self._cell is not None:
            self._place("".join(self._cell).strip() or None)
            self._cell = None
        elif tag == "table":
            self.tables.append((self._rows, self._merges))
            self._rows = None

    def _place(self, value: str | None) -> None:
        rows = self._rows
        i = len(rows) - 1
        row = rows[i]
        while self._spans.get((i, len(row))):
            row.append(None)
        j = len(row)
        down, across = self._span
        row.append(value)
        row.extend([None] * (across - 1))
        for r in range(i, i + down):
            for c in range(j, j + across):
                if (r, c) != (i, j):
                    self._spans[(r, c)] = True
        if down > 1:
            # Excel rows are 1-based; grid columns 0-based (as xlsx_parts gives them)
            self._merges.extend((i + 1, c, i + down, c) for c in range(j, j + across))


def _int(text: str | None) -> int:
    try:
        return max(1, min(int(text or 1), 10_000))
    except ValueError:
        return 1


def html_tables(data: bytes) -> list[tuple[list[list[str | None]], list[tuple[int, int, int, int]]]]:
    """Each table's rows of text cells and its row-spanning (merged) ranges."""
    parser = _Tables()
    parser.feed(decode_html(data))
    parser.close()
    return [(rows, merges) for rows, merges in parser.tables if rows]
