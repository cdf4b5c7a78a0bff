"""Reading an uploaded table (CSV in any of the encodings bureaus send, XLSX, Parquet) into text columns.

Everything is read as text: types are checked later, cell by cell, so that a bad cell is reported
with its row and column instead of failing the whole read. Row numbers are the ones a person sees
in Excel or a text editor: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.problems import IngestError, Problem

CSV_ENCODINGS = (("utf-8-sig", "UTF-8"), ("gb18030", "GBK/GB18030"))
FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class RawTable:
    frame: pl.DataFrame  # every column text (pl.String), headers as in the file
    file_format: str  # CSV / XLSX / Parquet
    encoding: str | None


def read_table(data: bytes, file_name: str) -> RawTable:
    """Parse `data` (the bytes of `file_name`) into a text table, or raise IngestError in Chinese."""
    suffix = Path(file_name.lower().removesuffix(".gz")).suffix
    if file_name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _fail(file_name, f"压缩文件已损坏或不完整（{exc}）") from None
    if not data.strip():
        raise _fail(file_name, "文件为空")
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(data, file_name)
    if suffix == ".parquet":
        return _read_parquet(data, file_name)
    if suffix in (".csv", ".txt", ".tsv", ""):
        return _read_csv(data, file_name)
    raise _fail(file_name, f"不支持的文件类型 {suffix}：请上传 CSV、XLSX 或 Parquet 文件")


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


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _read_csv(data: bytes, file_name: str) -> RawTable:
    text, encoding = decode_text(data, file_name)
    if "\x00" in text:
        raise _fail(file_name, "文件含有二进制内容，不是文本格式的 CSV")
    header_line = text.split("\n", 1)[0]
    delimiter = _sniff_delimiter(header_line)
    _check_field_counts(text, delimiter, file_name)
    try:
        frame = pl.read_csv(io.StringIO(text), separator=delimiter, infer_schema=False,
                            raise_if_empty=True)
    except pl.exceptions.NoDataError:
        raise _fail(file_name, "文件为空") from None
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        raise _fail(file_name, f"CSV 无法解析（{str(exc).splitlines()[0]}）") from None
    return RawTable(_clean_frame(frame), "CSV", encoding)


def _check_field_counts(text: str, delimiter: str, file_name: str) -> None:
    """Polars pads short rows silently; a short or long row usually means a truncated or broken file."""
    problems = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise _fail(file_name, "文件为空") from None
    except csv.Error as exc:
        raise _fail(file_name, f"表头无法解析（{exc}）", row=1) from None
    width = len(header)
    try:
        for row in reader:
            if not row:
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


def _read_xlsx(data: bytes, file_name: str) -> RawTable:
    try:
        frame = pl.read_excel(io.BytesIO(data), sheet_id=1, infer_schema_length=0,
                              raise_if_empty=True)
    except Exception as exc:  # fastexcel raises several types for broken workbooks
        raise _fail(file_name, f"XLSX 文件无法读取，可能已损坏或不完整（{type(exc).__name__}）"
                    ) from None
    return RawTable(_clean_frame(frame), "XLSX", None)


def _read_parquet(data: bytes, file_name: str) -> RawTable:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise _fail(file_name, f"Parquet 文件无法读取，可能已损坏（{type(exc).__name__}）") from None
    frame = frame.with_columns(pl.all().cast(pl.String))
    return RawTable(_clean_frame(frame), "Parquet", None)


def _clean_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Trim cells; a cell that is empty after trimming is missing."""
    frame = frame.with_columns(pl.all().cast(pl.String).str.strip_chars())
    return frame.with_columns(pl.when(pl.all() == "").then(None).otherwise(pl.all()).name.keep())
