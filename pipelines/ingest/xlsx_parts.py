"""What calamine does not say about an XLSX cell, read from the workbook's XML without a cell-by-cell
reader: which cells Excel shows as percentages, which numbers are past Excel's 15 digits, which
are booleans, and the merged ranges.

An XLSX is a zip of XML parts. `xl/styles.xml` lists the cell formats (`cellXfs`); a cell names
its format by index (`<c r="C6" s="3">`). A format is a percentage when its number format is
Excel's built-in 9 (0%) or 10 (0.00%), or a custom code with a `%` outside quotes. Only the
attributes of the cells with such a format are looked at: a byte search for ` s="3"` runs at
memory speed, where openpyxl spent 15 s building every cell of a 108,000-row sheet. Cells are
located by their `r` reference; a sheet written without references (allowed, rare) is walked
element by element instead.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
PERCENT_BUILTINS = frozenset({9, 10})
_REF = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_TYPE = re.compile(rb'\bt="([a-zA-Z]+)"')
_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
# a stored number of 16 digits or more, or with an exponent of 15 or more: past what Excel keeps
_LONG_NUMBER = re.compile(rb"<v>(-?(?:\d{16,}(?:\.\d*)?|\d(?:\.\d+)?[eE]\+?(?:1[5-9]|[2-9]\d|\d{3})))"
                          rb"</v>")
_BOOLEAN = re.compile(rb'\bt="b"')


@dataclass
class SheetCells:
    """Cells of one sheet by (Excel row, 0-based column)."""

    percent: set[tuple[int, int]] = field(default_factory=set)   # numbers shown as %
    long_numbers: dict[tuple[int, int], float] = field(default_factory=dict)
    booleans: dict[tuple[int, int], bool] = field(default_factory=dict)


def column_index(letters: bytes) -> int:
    """A → 0, Z → 25, AA → 26."""
    index = 0
    for ch in letters.decode():
        index = index * 26 + ord(ch) - 64
    return index - 1


def is_percent_code(code: str) -> bool:
    """A number format shows a percentage (and so scales by 100) when it has a `%` that is not
    quoted text ("%"), escaped (\\%) or inside brackets ([Red])."""
    quoted = escaped = bracket = False
    for ch in code:
        if escaped:
            escaped = False
        elif quoted:
            quoted = ch != '"'
        elif bracket:
            bracket = ch != "]"
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = True
        elif ch == "[":
            bracket = True
        elif ch == "%":
            return True
    return False


def percent_styles(styles_xml: bytes) -> set[int]:
    """Indices into cellXfs whose number format is a percentage."""
    root = ElementTree.fromstring(styles_xml)
    custom = {int(f.get("numFmtId", -1)): f.get("formatCode", "")
              for f in root.iter(f"{_NS}numFmt")}
    xfs = root.find(f"{_NS}cellXfs")
    if xfs is None:
        return set()
    found = set()
    for i, xf in enumerate(xfs.findall(f"{_NS}xf")):
        fmt = int(xf.get("numFmtId", 0))
        if fmt in PERCENT_BUILTINS or (fmt in custom and is_percent_code(custom[fmt])):
            found.add(i)
    return found


class Workbook:
    """The parts of one XLSX that the reader needs; a sheet's XML is decompressed only when asked for."""

    def __init__(self, data: bytes) -> None:
        self.archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(self.archive.namelist())
        self.percent = percent_styles(self.archive.read("xl/styles.xml")) \
            if "xl/styles.xml" in names else set()
        self.paths = _sheet_paths(self.archive)

    def sheet_xml(self, name: str) -> bytes | None:
        path = self.paths.get(name)
        try:
            return self.archive.read(path) if path else None
        except KeyError:
            return None

    def merges(self, name: str) -> list[tuple[int, int, int, int]]:
        """The sheet's merged ranges (first row, first column, last row, last column)."""
        xml = self.sheet_xml(name)
        return _merges(xml) if xml is not None else []

    def cells(self, name: str, *, numbers: bool, booleans: bool) -> SheetCells:
        """The sheet's percent cells; its long numbers and booleans when asked (the caller knows
        from calamine's text whether any cell can be one). Nothing is decompressed when no
        cell can be any of them."""
        found = SheetCells()
        if not (self.percent or numbers or booleans) or (xml := self.sheet_xml(name)) is None:
            return found
        wanted: list[tuple[re.Pattern[bytes], str]] = []
        if self.percent:
            styles = b"|".join(str(s).encode() for s in sorted(self.percent))
            wanted.append((re.compile(rb'\ss="(?:' + styles + rb')"'), "percent"))
        if numbers:
            wanted.append((_LONG_NUMBER, "long"))
        if booleans:
            wanted.append((_BOOLEAN, "bool"))
        for pattern, kind in wanted:
            if not _collect(xml, pattern, kind, found):
                return _walk(xml, self.percent)
        return found


def _collect(xml: bytes, pattern: re.Pattern[bytes], kind: str, found: SheetCells) -> bool:
    """Record the cells whose tag (or value) matches; False when a matching cell has no `r`
    reference, so its place is known only by walking the sheet."""
    for match in pattern.finditer(xml):
        start = xml.rfind(b"<", 0, match.start())
        if kind == "long":     # the match is the value: its cell's tag comes before it
            start = xml.rfind(b"<c", 0, match.start())
        if xml[start:start + 3] not in (b"<c ", b"<c>"):
            continue           # a row's or column's style, not a cell's
        end = xml.find(b">", start)
        tag = xml[start:end]
        ref = _REF.search(tag)
        if ref is None:
            return False
        typed = _TYPE.search(tag)
        cell_type = typed[1] if typed else b"n"
        where = (int(ref[2]), column_index(ref[1]))
        if kind == "percent" and cell_type == b"n":
            found.percent.add(where)
        elif kind == "long" and cell_type == b"n":
            found.long_numbers[where] = float(match[1])
        elif kind == "bool" and cell_type == b"b":
            value = xml[end:xml.find(b"</c>", end)]
            found.booleans[where] = b"<v>1</v>" in value
    return True


def _merges(xml: bytes) -> list[tuple[int, int, int, int]]:
    if b"<mergeCell " not in xml:
        return []
    return [(int(r1), column_index(c1), int(r2), column_index(c2))
            for c1, r1, c2, r2 in _MERGE.findall(xml)]


def _walk(xml: bytes, percent: set[int]) -> SheetCells:
    """Every cell in order, for a sheet whose cells carry no references: a row without `r` follows
    the one before, and so does a cell within its row."""
    found = SheetCells()
    row_number = 0
    for _, element in ElementTree.iterparse(io.BytesIO(xml)):
        if element.tag == f"{_NS}row":
            row_number = int(element.get("r", row_number + 1))
            column = -1
            for cell in element.findall(f"{_NS}c"):
                ref = cell.get("r")
                column = column_index(re.match(r"[A-Z]+", ref)[0].encode()) if ref else column + 1
                _walk_cell(cell, (row_number, column), percent, found)
            element.clear()
    return found


def _walk_cell(cell: ElementTree.Element, where: tuple[int, int], percent: set[int],
               found: SheetCells) -> None:
    value = cell.findtext(f"{_NS}v")
    kind = cell.get("t", "n")
    if value is None:
        return
    if kind == "n" and int(cell.get("s", 0)) in percent:
        found.percent.add(where)
    if kind == "n" and _LONG_NUMBER.fullmatch(f"<v>{value}</v>".encode()):
        found.long_numbers[where] = float(value)
    if kind == "b":
        found.booleans[where] = value == "1"


def _sheet_paths(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → the path of its XML part, from the workbook and its relationships."""
    try:
        book = archive.read("xl/workbook.xml")
        rels = archive.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets = {}
    for tag in re.findall(rb"<Relationship\b[^>]*>", rels):
        rid, target = re.search(rb'\bId="([^"]+)"', tag), re.search(rb'\bTarget="([^"]+)"', tag)
        if rid and target:
            targets[rid[1]] = target[1].decode()
    paths = {}
    for tag in re.findall(rb"<(?:\w+:)?sheet\b[^>]*>", book):
        name = re.search(rb'\bname="([^"]*)"', tag)
        rid = re.search(rb'\br:id="([^"]*)"', tag) or re.search(rb'\bid="([^"]*)"', tag)
        if not name or not rid or rid[1] not in targets:
            continue
        target = targets[rid[1]]
        path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        paths[html.unescape(name[1].decode())] = path
    return paths
