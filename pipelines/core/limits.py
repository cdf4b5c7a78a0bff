"""Caps on what an upload may hold, so a hostile or broken file is refused before it can exhaust
memory: file size, size after decompression (gzip, the zip inside an XLSX), rows, columns, cell and
header length. Each cap is configurable by an environment variable (README: 数据与约定).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    file_mb: int = 512            # bytes as uploaded
    unpacked_mb: int = 2048       # after gzip / inside the XLSX zip
    rows: int = 5_000_000
    columns: int = 500
    cell_chars: int = 10_000
    name_chars: int = 120         # file name kept in messages and the audit log

    @property
    def file_bytes(self) -> int:
        return self.file_mb * 1024 * 1024

    @property
    def unpacked_bytes(self) -> int:
        return self.unpacked_mb * 1024 * 1024


ENV = {"file_mb": "CEPING_MAX_FILE_MB", "unpacked_mb": "CEPING_MAX_UNPACKED_MB",
       "rows": "CEPING_MAX_ROWS", "columns": "CEPING_MAX_COLUMNS",
       "cell_chars": "CEPING_MAX_CELL_CHARS"}


def limits() -> Limits:
    """The caps in force (defaults, overridden by the environment)."""
    values = {}
    for field, variable in ENV.items():
        raw = os.environ.get(variable, "").strip()
        if raw.isdigit() and int(raw) > 0:
            values[field] = int(raw)
    return Limits(**values)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def safe_file_name(name: str | None) -> str:
    """The last path component, without control or direction-override characters, shortened:
    a name is shown to people and stored, never used as a path."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _CONTROL.sub("", text).strip().lstrip(".")
    cap = limits().name_chars
    if len(text) > cap:
        stem, dot, suffix = text.rpartition(".")
        text = (stem[: cap - len(suffix) - 2] + "…" + dot + suffix) if dot and len(suffix) < 10 \
            else text[:cap]
    return text or "上传文件"
