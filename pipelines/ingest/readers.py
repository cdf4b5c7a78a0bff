"""Reading an uploaded table (CSV in any of the encodings bureaus send, XLSX, Parquet) into text columns.

Everything is read as text: types are checked later, cell by cell, so that a bad cell is reported
with its row and column instead of failing the whole read. The one exception is a speed-up for
large survey files: columns the caller names (answer codes, ages) are parsed as small integers
when every cell in them is one, which the checks then take as they are; a file with any other
cell in those columns is read as text throughout. Row numbers are the ones a person sees
in Excel or a text editor: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core.limits import Limits, limits
from pipelines.core.parallel import in_background
from pipelines.core.problems import IngestError, Problem
from pipelines.ingest.blocks import fill_plain_blocks
from pipelines.ingest.html_table import html_tables, looks_like_html
from pipelines.ingest.sheets import AUTOMATIC, LayoutChoice
from pipelines.ingest.text_layout import (
    has_layout_rows,
    header_below_line_one,
    layout_rows,
    needs_layout,
)

CSV_ENCODINGS = (("utf-8-sig", "UTF-8"), ("gb18030", "GBK/GB18030"))
FIRST_DATA_ROW = 2
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # .xls, .et (a compound document)


@dataclass(frozen=True)
class RawTable:
    frame: pl.DataFrame  # text (pl.String), headers as in the file; see `IntegerColumns`
    file_format: str  # CSV / XLSX / Parquet
    encoding: str | None
    row_numbers: pl.Series | None = None  # each row's number as seen in Excel (None: header + 1…)
    sheet_names: pl.Series | None = None  # each row's sheet, when several sheets were read
    notes: tuple[str, ...] = ()           # what the reader detected (sheets, header row, skips)


# the file's headers → those whose cells should all be whole numbers (a CSV's are then parsed as
# pl.Int16 when all of them are: no text is built for them, and no number parsed from it later)
IntegerColumns = Callable[[list[str]], Collection[str]]


class _NotUtf8(Exception):
    """A file taken for UTF-8 (its header line is) has other bytes further on."""


# every extension the page's uploader accepts (what read_table reads; .gz holds a CSV)
UPLOAD_TYPES = ("xlsx", "xlsm", "xls", "xlsb", "et", "ods", "csv", "txt", "tsv", "parquet", "gz")
SPREADSHEETS = {".xlsx": "XLSX", ".xlsm": "XLSX", ".xls": "XLS", ".xlsb": "XLSB", ".et": "ET",
                ".ods": "ODS"}


def read_table(data: bytes, file_name: str, integer_columns: IntegerColumns | None = None,
               header_index: dict[str, str] | None = None,
               choice: LayoutChoice = AUTOMATIC) -> RawTable:
    """Parse `data` (the bytes of `file_name`) into a text table, or raise IngestError in Chinese.
    The caps of pipelines/limits.py apply before anything large is built in memory.
    `header_index` (normalised alias → field) lets a spreadsheet's header row and data sheets be
    found (see sheets.py); without it a sheet's first row is its header. `choice` holds the
    analyst's corrections (sheets, header row)."""
    caps = limits()
    suffix = Path(file_name.lower().removesuffix(".gz")).suffix
    if len(data) > caps.file_bytes:
        raise _fail(file_name, f"文件过大（{len(data) / 2**20:.0f} MB，上限 {caps.file_mb} MB）")
    if file_name.lower().endswith(".gz"):
        data = _gunzip(data, file_name, caps)
    if not data or data.isspace():   # not `strip()`: that copies the whole file
        raise _fail(file_name, "文件为空")
    if suffix in SPREADSHEETS:
        if data[:4] == b"PK\x03\x04":
            _check_zip(data, file_name, caps)
        if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:4096]:
            raise _fail(file_name, "该文件是 Excel 2003 XML 表格（扩展名为 .xls，内容是 XML），"
                                   "暂不能直接读取：请用 Excel 或 WPS 打开后另存为 .xlsx 再上传")
        if looks_like_html(data):        # a web system's table saved as .xls
            table = _read_html(data, file_name, header_index, choice)
        elif not is_workbook(data):
            table = _read_csv(data, file_name, integer_columns, header_index, choice)  # as .xls
        else:
            table = _read_spreadsheet(data, file_name, SPREADSHEETS[suffix], header_index, choice)
    elif suffix == ".parquet":
        table = _read_parquet(data, file_name)
    elif suffix in (".csv", ".txt", ".tsv", ""):
        table = _read_csv(data, file_name, integer_columns, header_index, choice)
    else:
        raise _fail(file_name, f"不支持的文件类型 {suffix}：请上传 Excel（xlsx/xls）、WPS（et）、"
                               "ODS、CSV、文本（txt）或 Parquet 文件")
    _check_shape(table.frame, file_name, caps)
    if header_index is not None and table.row_numbers is None:
        frame, filled = fill_plain_blocks(table.frame, header_index)
        if filled:
            table = dataclasses.replace(table, frame=frame, notes=(*table.notes, *filled))
    return table


def _gunzip(data: bytes, file_name: str, caps: Limits) -> bytes:
    """Decompress, stopping at the cap (a small .gz can expand to gigabytes)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, caps.unpacked_bytes + 1)
    except zlib.error as exc:
        raise _fail(file_name, f"压缩文件已损坏或不完整（{exc}）") from None
    if len(out) > caps.unpacked_bytes:
        raise _fail(file_name, f"解压后超过 {caps.unpacked_mb} MB 的上限，已拒绝（可能是压缩炸弹）")
    if not inflater.eof:
        raise _fail(file_name, "压缩文件不完整（可能被截断）")
    return out


def _check_zip(data: bytes, file_name: str, caps: Limits) -> None:
    """An XLSX is a zip: refuse one whose members would unpack past the cap (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail(file_name, "XLSX 文件无法读取，可能已损坏或不完整（不是有效的压缩包）") from None
    if unpacked > caps.unpacked_bytes:
        raise _fail(file_name, f"XLSX 解压后达 {unpacked / 2**20:.0f} MB，超过 {caps.unpacked_mb} MB "
                               "的上限，已拒绝（可能是压缩炸弹）")


def _check_shape(frame: pl.DataFrame, file_name: str, caps: Limits) -> None:
    if frame.width > caps.columns:
        raise _fail(file_name, f"文件有 {frame.width} 列，超过 {caps.columns} 列的上限")
    if frame.height > caps.rows:
        raise _fail(file_name, f"文件有 {frame.height} 行，超过 {caps.rows} 行的上限")
    long_headers = [c for c in frame.columns if len(c) > caps.cell_chars]
    if long_headers:
        raise _fail(file_name, f"表头过长（超过 {caps.cell_chars} 个字符）", row=1)
    # a cell has at least as many bytes as characters, and its byte length is stored: characters
    # are counted only in columns with a cell longer than the cap in bytes
    in_bytes = frame.select(pl.col(pl.String).str.len_bytes().max()).row(0, named=True)
    suspects = [c for c, longest in in_bytes.items() if longest is not None
                and longest > caps.cell_chars]
    lengths = frame.select(pl.col(suspects).str.len_chars().max()).row(0, named=True) \
        if suspects else {}
    for column, longest in lengths.items():
        if longest is not None and longest > caps.cell_chars:
            row = frame.with_row_index("__r").filter(
                pl.col(column).str.len_chars() > caps.cell_chars)["__r"][0] + FIRST_DATA_ROW
            raise _fail(file_name, f"单元格过长（{longest} 个字符，上限 {caps.cell_chars}）",
                        row=int(row), column=column[:40])


def _fail(file_name: str, message: str, row: int | None = None, column: str | None = None,
          ) -> IngestError:
    return IngestError(file_name, [Problem(file_name, row, column, message)])


def decode_text(data: bytes, file_name: str) -> tuple[str, str]:
    """Decode CSV bytes: UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK)."""
    for codec, label in CSV_ENCODINGS:
        try:
            return data.decode(codec), label
        except UnicodeDecodeError:
            continue
    raise _fail(file_name, "无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV")


def _first_line(content: bytes) -> bytes:
    """The bytes up to the first line break, without copying the rest of a large file."""
    end = content.find(b"\n")
    return content if end < 0 else content[:end]


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _read_csv(data: bytes, file_name: str, integer_columns: IntegerColumns | None,
              header_index: dict[str, str] | None = None,
              choice: LayoutChoice = AUTOMATIC) -> RawTable:
    """A file whose header line is UTF-8 is taken as UTF-8 and parsed as it is: Polars checks
    the encoding as it parses, several times faster than Python decodes a large file, and raises
    where a byte is not UTF-8; the file is then decoded (GBK) and re-encoded once, as Polars
    needs. Every check runs on UTF-8 bytes, where an ASCII delimiter, quote or NUL byte never
    occurs inside a character; a str of the whole file is made only on the paths that report
    rows. Excel's "Unicode 文本" is UTF-16 with a BOM (tab-separated); DOS tools end a file with
    Ctrl-Z, which is not a row."""
    if data.endswith(b"\x1a"):
        data = data.rstrip(b"\x1a")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16").rstrip("\x1a")
        except UnicodeDecodeError:
            raise _fail(file_name, "文件以 UTF-16 标记开头，但内容不是有效的 UTF-16 文本") from None
        return _read_utf8_csv(text.encode("utf-8"), "UTF-16", file_name, integer_columns,
                              header_index, choice)
    try:
        _first_line(data).decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        try:
            return _read_utf8_csv(data, "UTF-8", file_name, integer_columns, header_index,
                                  choice)
        except _NotUtf8:
            pass
    text, encoding = decode_text(data, file_name)
    return _read_utf8_csv(text.encode("utf-8"), encoding, file_name, integer_columns, header_index,
                          choice)


def _read_utf8_csv(content: bytes, encoding: str, file_name: str,
                   integer_columns: IntegerColumns | None,
                   header_index: dict[str, str] | None = None,
                   choice: LayoutChoice = AUTOMATIC) -> RawTable:
    """A plain table through Polars; one laid out for reading (text_layout.py) through the
    workbook's layout rules. The layout test runs while Polars parses."""
    if b"\x00" in content:
        raise _fail(file_name, "文件含有二进制内容，不是文本格式的 CSV")
    delimiter = _sniff_delimiter(_first_line(content).decode("utf-8"))
    if b'"' in content:
        if _laid_out(content, delimiter, header_index, choice):
            return _read_layout_csv(content, delimiter, encoding, file_name, header_index, choice)
        try:
            blank = _check_quoted_field_counts(content, delimiter, file_name)
        except UnicodeDecodeError:
            raise _NotUtf8 from None
        except IngestError:
            if header_index is None or not needs_layout(content, delimiter, header_index):
                raise
            blank = True
        frame = None if blank else _parse_csv(content, delimiter, file_name, integer_columns)
        if frame is None or (header_index is not None and has_layout_rows(frame)):
            return _read_layout_csv(content, delimiter, encoding, file_name, header_index, choice)
        return RawTable(_clean_frame(frame), "CSV", encoding)
    # Polars parses on another thread (it releases the GIL) while this one scans the bytes
    parsing = in_background(_parse_csv, content, delimiter, file_name, integer_columns)
    delimiters = content.count(delimiter.encode("ascii"))
    lines = content.count(b"\n") + (not content.endswith(b"\n"))
    trim = _cells_may_need_trimming(content)
    layout = _laid_out(content, delimiter, header_index, choice)
    try:
        frame = parsing.result()
        if not layout:
            _check_unquoted_field_counts(content, delimiter, delimiters, frame.height, file_name)
    except (IngestError, _NotUtf8):
        if header_index is None or not needs_layout(content, delimiter, header_index):
            raise
        layout = True
    # Polars skips a blank line (so later rows would be numbered one short) and keeps a line
    # of delimiters only as a row of nulls: either is a sheet laid out for reading
    if layout or (header_index is not None and (lines > frame.height + 1 + _trailing_blank(content)
                                                or has_layout_rows(frame))):
        return _read_layout_csv(content, delimiter, encoding, file_name, header_index, choice)
    return RawTable(_clean_frame(frame, trim=trim), "CSV", encoding)


def _trailing_blank(content: bytes) -> int:
    """Blank lines at the very end (after the last row), which are not rows."""
    end = len(content.rstrip(b"\r\n")) if content[-2:] in (b"\n\n", b"\r\n") else len(content)
    return content.count(b"\n", end) - 1 if end < len(content) else 0


def _laid_out(content: bytes, delimiter: str, header_index: dict[str, str] | None,
              choice: LayoutChoice) -> bool:
    """The analyst chose the header row, or line 1 is not the header."""
    if choice.header_row is not None:
        return True
    return header_index is not None and header_below_line_one(content, delimiter, header_index)


def _read_layout_csv(content: bytes, delimiter: str, encoding: str, file_name: str,
                     header_index: dict[str, str] | None, choice: LayoutChoice) -> RawTable:
    from pipelines.ingest import sheets

    try:
        rows = layout_rows(content, delimiter)
    except UnicodeDecodeError:
        raise _NotUtf8 from None
    except csv.Error as exc:
        raise _fail(file_name, f"CSV 格式错误（{exc}）：文件可能被截断或引号不配对") from None
    grid = sheets.Grid("", sheets.grid_frame(rows), list(range(1, len(rows) + 1)))
    try:
        table = sheets.to_table([grid], header_index, choice)
    except sheets.SheetError as exc:
        raise _fail(file_name, str(exc)) from None
    return RawTable(_clean_frame(table.frame), "CSV", encoding, table.row_numbers, None,
                    tuple(table.notes))


def _parse_csv(content: bytes, delimiter: str, file_name: str,
               integer_columns: IntegerColumns | None = None) -> pl.DataFrame:
    if integer_columns is not None:
        headers = _parse(content, delimiter, file_name, n_rows=0).columns
        if wanted := {h: pl.Int16 for h in integer_columns(headers)}:
            try:
                return _parse(content, delimiter, file_name, schema_overrides=wanted)
            except IngestError:
                pass     # a cell that is not a whole number: everything as text, checked later
    return _parse(content, delimiter, file_name)


def _parse(content: bytes, delimiter: str, file_name: str, **options) -> pl.DataFrame:
    try:
        return pl.read_csv(content, separator=delimiter, infer_schema=False, raise_if_empty=True,
                           **options)
    except pl.exceptions.NoDataError:
        raise _fail(file_name, "文件为空") from None
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        if "invalid utf-8" in str(exc).lower():
            raise _NotUtf8 from None
        if b'"' not in content and not options:   # Polars refuses a line longer than the header
            _line_by_line_field_counts(content.decode("utf-8"), delimiter, file_name)
        raise _fail(file_name, f"CSV 无法解析（{str(exc).splitlines()[0]}）") from None


# the first byte of every character `str.strip_chars` trims (Unicode White_Space) but line feed,
# and U+3000 in full; a byte search runs at memory speed, trimming 20 columns of a national
# wave took 0.25 s
_WHITESPACE_BYTES = (b" ", b"\t", b"\x0b", b"\x0c", b"\xc2", b"\xe1", b"\xe2")


def _cells_may_need_trimming(content: bytes) -> bool:
    """For a file without quotes (a line break inside quotes would belong to a cell): False when
    no cell can begin or end with white space, as the file holds no white space character at all
    (line feeds end lines; carriage returns only before them, where the CSV reader drops them)."""
    if any(byte in content for byte in _WHITESPACE_BYTES):
        return True
    if b"\xe3" in content and "\u3000".encode() in content:
        return True
    return b"\r" in content and content.count(b"\r") != content.count(b"\r\n")


def _check_quoted_field_counts(content: bytes, delimiter: str, file_name: str) -> bool:
    """Polars pads short rows silently; a short or long row usually means a truncated or broken
    file. A file with quotes goes through the csv module, which knows quoted delimiters. True
    when a line is blank (Polars would skip it, and number the rows after it one short)."""
    text = content.decode("utf-8")
    problems = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise _fail(file_name, "文件为空") from None
    except csv.Error as exc:
        raise _fail(file_name, f"表头无法解析（{exc}）", row=1) from None
    width, blank = len(header), False
    try:
        for row in reader:
            if not row:
                blank = True
                continue
            if len(row) != width:
                line = reader.line_num
                what = "少" if len(row) < width else "多"
                problems.append(Problem(file_name, line, None,
                                        f"本行有 {len(row)} 列，比表头（{width} 列）{what}；"
                                        "文件可能被截断或分隔符有误"))
    except csv.Error as exc:
        problems.append(Problem(file_name, reader.line_num, None,
                                f"CSV 格式错误（{exc}）：文件可能被截断或引号不配对"))
    if problems:
        raise IngestError(file_name, problems)
    return blank


def _check_unquoted_field_counts(content: bytes, delimiter: str, delimiters: int, rows: int,
                                 file_name: str) -> None:
    """Without quotes a line's field count is its delimiter count + 1. When the file holds
    exactly the header's delimiter count for the header and each of the `rows` Polars parsed
    (it pads a short line silently and refuses a long one), every line has the header's width;
    otherwise the lines are counted one by one, to name the short ones."""
    if delimiters == _first_line(content).count(delimiter.encode("ascii")) * (rows + 1):
        return
    _line_by_line_field_counts(content.decode("utf-8"), delimiter, file_name)


def _line_by_line_field_counts(text: str, delimiter: str, file_name: str) -> None:
    lines = pl.Series([text]).str.split("\n").explode().str.strip_suffix("\r")
    counts = lines.str.count_matches(delimiter, literal=True) + 1
    if lines.len() == 0 or lines[0] == "":
        raise _fail(file_name, "文件为空")
    width = int(counts[0])
    rows = pl.DataFrame({"line": pl.int_range(1, lines.len() + 1, eager=True), "fields": counts,
                         "empty": lines.str.len_bytes() == 0}).slice(1)
    bad = rows.filter(~pl.col("empty") & (pl.col("fields") != width))
    if bad.height:
        raise IngestError(file_name, [
            Problem(file_name, line, None,
                    f"本行有 {fields} 列，比表头（{width} 列）{'少' if fields < width else '多'}；"
                    "文件可能被截断或分隔符有误")
            for line, fields in bad.select("line", "fields").iter_rows()])


def _read_spreadsheet(data: bytes, file_name: str, label: str,
                      header_index: dict[str, str] | None, choice: LayoutChoice) -> RawTable:
    from pipelines.ingest import sheets

    is_zip = data[:4] == b"PK\x03\x04"
    try:
        grids = sheets.read_calamine(data, is_xlsx=is_zip and label == "XLSX")
    except Exception as exc:  # the readers raise several types for broken workbooks
        raise _fail(file_name, f"{label} 文件无法读取，可能已损坏或不完整（{type(exc).__name__}）"
                    ) from None
    try:
        table = sheets.to_table(grids, header_index, choice)
    except sheets.SheetError as exc:
        raise _fail(file_name, str(exc)) from None
    if table.frame.height == 0 and table.frame.width == 0:
        raise _fail(file_name, "文件为空")
    return RawTable(_clean_frame(table.frame), label, None, table.row_numbers, table.sheet_names,
                    tuple(table.notes))


def is_workbook(data: bytes) -> bool:
    """A zip (XLSX, ODS) or a compound document (XLS, ET), not a page or a text table."""
    return data[:4] == b"PK\x03\x04" or data[:8] == OLE_MAGIC or not (
        looks_like_html(data) or _is_text(data))


def _is_text(data: bytes) -> bool:
    """Text (a delimited table) rather than a binary workbook: no NUL byte at its start, unless
    it is UTF-16 with a BOM."""
    return data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" not in data[:4096]


def _read_html(data: bytes, file_name: str, header_index: dict[str, str] | None,
               choice: LayoutChoice) -> RawTable:
    from pipelines.ingest import sheets

    tables = html_tables(data)
    if not tables:
        raise _fail(file_name, "网页格式的文件中没有表格：请在原系统中导出为 Excel 或 CSV")
    grids = [sheets.html_grid(f"表{i + 1}", rows, merges) for i, (rows, merges) in enumerate(tables)]
    try:
        table = sheets.to_table(grids, header_index, choice)
    except sheets.SheetError as exc:
        raise _fail(file_name, str(exc)) from None
    return RawTable(_clean_frame(table.frame), "HTML", None, table.row_numbers, table.sheet_names,
                    ("该文件是网页系统导出的网页表格（扩展名为 .xls），已按表格读取", *table.notes))


def _read_parquet(data: bytes, file_name: str) -> RawTable:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise _fail(file_name, f"Parquet 文件无法读取，可能已损坏（{type(exc).__name__}）") from None
    frame = frame.with_columns(pl.all().cast(pl.String))
    return RawTable(_clean_frame(frame), "Parquet", None)


def _clean_frame(frame: pl.DataFrame, *, trim: bool = True) -> pl.DataFrame:
    """Text cells trimmed (unless the caller knows none needs it); a cell that is empty after
    trimming is missing. Integer columns (see `IntegerColumns`) stay as they are."""
    frame = frame.with_columns(pl.exclude(pl.Int16).cast(pl.String))
    text = pl.col(pl.String)
    if trim:
        frame = frame.with_columns(text.str.strip_chars())
    return frame.with_columns(pl.when(text == "").then(None).otherwise(text).name.keep())
