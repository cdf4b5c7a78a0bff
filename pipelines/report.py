"""Tables for the command line: one row per county, as CSV, JSON or an aligned text table."""

from __future__ import annotations

import json
from typing import TextIO

import polars as pl

from pipelines.definitions import Definitions
from pipelines.scoring import score_wave
from pipelines.warehouse import Warehouse

SCORE_COLUMNS = ["county_code", "county_name", "city_name", "score", "se", "ci_low", "ci_high",
                 "n", "n_eff", "veto", "veto_reason"]
LABELS = {"county_code": "区县代码", "county_name": "区县", "city_name": "市州", "score": "综合得分",
          "se": "标准误", "ci_low": "下限", "ci_high": "上限", "n": "样本量", "n_eff": "有效样本量",
          "veto": "一票否决", "veto_reason": "否决原因"}


def score_table(wh: Warehouse, defs: Definitions, wave: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """The score CSV: the fixed columns, then one 0–100 column per component (scheme order)."""
    scores = score_wave(wh, defs, wave)
    components = [c.id for c in defs.scheme.components]
    table = scores.composite.select(*SCORE_COLUMNS, *components).sort("score", descending=True,
                                                                       nulls_last=True)
    labels = LABELS | {c.id: c.label for c in defs.scheme.components}
    return table, labels


def write_table(table: pl.DataFrame, labels: dict[str, str], fmt: str, out: TextIO, *,
                title: str = "") -> None:
    if fmt == "csv":
        out.write(table.write_csv(float_precision=6))
    elif fmt == "json":
        json.dump(table.to_dicts(), out, ensure_ascii=False, indent=1, default=str)
        out.write("\n")
    else:
        _write_text(table, labels, out, title)


def _write_text(table: pl.DataFrame, labels: dict[str, str], out: TextIO, title: str) -> None:
    shown = [c for c in ("county_name", "city_name", "score", "ci_low", "ci_high", "n_eff",
                         "veto_reason") if c in table.columns]
    if title:
        out.write(title + "\n")
    rows = [[labels.get(c, c) for c in shown]]
    for record in table.iter_rows(named=True):
        rows.append([_cell(record[c]) for c in shown])
    widths = [max(_width(r[i]) for r in rows) for i in range(len(shown))]
    for row in rows:
        out.write("  ".join(_pad(cell, width) for cell, width in zip(row, widths)).rstrip() + "\n")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
