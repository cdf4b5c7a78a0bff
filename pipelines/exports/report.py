"""Tables for the command line: one row per county, as CSV, JSON or an aligned text table."""

from __future__ import annotations

import json
from typing import TextIO

import polars as pl

from pipelines.ranking.consequences import consequences
from pipelines.results.wave import score_wave
from pipelines.scheme.definitions import Definitions
from pipelines.store.warehouse import Warehouse

SCORE_COLUMNS = ["county_code", "county_name", "city_name", "score", "se", "ci_low", "ci_high",
                 "n", "n_eff", "veto", "veto_reason"]
LABELS = {"county_code": "区县代码", "county_name": "区县", "city_name": "市州", "score": "综合得分",
          "se": "标准误", "ci_low": "下限", "ci_high": "上限", "n": "样本量", "n_eff": "有效样本量",
          "veto": "一票否决", "veto_reason": "否决原因", "grade": "等级"}


def score_table(wh: Warehouse, defs: Definitions, wave: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """The score CSV: the fixed columns, then one 0–100 column per component (scheme order)."""
    scores = score_wave(wh, defs, wave)
    in_force = defs.scheme.in_force(wave).components
    components = [c.id for c in in_force]
    grade = ["grade"] if "grade" in scores.composite.columns else []     # [[grades]] declared
    table = scores.composite.select(*SCORE_COLUMNS, *grade, *components) \
        .sort("score", descending=True, nulls_last=True)
    labels = LABELS | {c.id: c.label for c in in_force}
    return table, labels


RISK_LABELS = LABELS | {
    "rank": "名次", "rank_low": "名次下限", "rank_high": "名次上限", "p_bottom3": "本期后3概率",
    "p_bottom10": "本期后10概率", "p_bottom3_next": "下期后3概率", "p_bottom10_next": "下期后10概率",
    "p_veto_next": "下期一票否决概率",
    "in_worst3_set": "可能属后3", "in_worst10_set": "可能属后10", "band": "风险等级"}
LISTING_LABELS = LABELS | {"wave": "期次", "level": "层级", "action": "判定", "tier": "类别",
                           "status": "状态", "deadline": "期限", "reason": "依据",
                           "official": "正式决定"}


def listing_table(result, counties: pl.DataFrame, wave: str) -> pl.DataFrame:
    """The consequences register up to `wave` (pipelines/ranking/consequences.py), one row per
    consequence, with the county's name and city."""
    register = consequences(result, wave)
    return register.join(counties.select("county_code", "county_name", "city_name"),
                         on="county_code", how="left").select(
        "county_code", "county_name", "city_name", *register.columns[1:])


def write_table(table: pl.DataFrame, labels: dict[str, str], fmt: str, out: TextIO, *,
                title: str = "", shown: tuple[str, ...] | None = None) -> None:
    if fmt == "csv":
        out.write(table.write_csv(float_precision=6))
    elif fmt == "json":
        json.dump(table.to_dicts(), out, ensure_ascii=False, indent=1, default=str)
        out.write("\n")
    else:
        _write_text(table, labels, out, title, shown)


def _write_text(table: pl.DataFrame, labels: dict[str, str], out: TextIO, title: str,
                shown: tuple[str, ...] | None) -> None:
    shown = [c for c in (shown or ("county_name", "city_name", "score", "ci_low", "ci_high",
                                   "n_eff", "veto_reason")) if c in table.columns]
    if title:
        out.write(title + "\n")
    rows = [[labels.get(c, c) for c in shown]]
    for record in table.iter_rows(named=True):
        rows.append([_cell(record[c]) for c in shown])
    widths = [max(_width(r[i]) for r in rows) for i in range(len(shown))]
    for row in rows:
        cells = (_pad(cell, width) for cell, width in zip(row, widths, strict=False))
        out.write("  ".join(cells).rstrip() + "\n")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
