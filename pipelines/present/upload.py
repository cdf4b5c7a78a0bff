"""What the upload page proposes before the analyst types anything."""

from __future__ import annotations

import polars as pl

from pipelines.core.waves import next_wave

_LOADED = {"survey": ("survey_load_id", "indicators_load_id"),
           "indicators": ("indicators_load_id", "survey_load_id")}


def proposed_wave(waves: pl.DataFrame, kind: str) -> str:
    """The 期次 an upload of `kind` most likely belongs to: the newest wave that has the other
    kind of data and lacks this one (a wave whose survey is in waits for its indicator sheet),
    else the wave after the newest one."""
    this, other = _LOADED[kind]
    incomplete = waves.filter(pl.col(this).is_null() & pl.col(other).is_not_null())["wave"]
    if incomplete.len():
        return incomplete.sort()[-1]
    known = waves["wave"].sort()
    return next_wave(known[-1]) if known.len() else ""


# what each line the reader and the checks write is about, by the words it opens with or holds
_TOPICS = (("工作表", "工作表与表头"), ("共读取", "工作表与表头"), ("文件：", "工作表与表头"),
           ("网页", "文件格式"), ("向下填充", "合并单元格"), ("百分比", "百分比"),
           ("答案", "答案文字→代码"), ("区县名称写法", "区县名称"), ("已删除", "删除的列"),
           ("已忽略", "删除的列"), ("权重", "权重"), ("缺少", "完整性"), ("重复", "完整性"))


def detected_table(notes: list[str], dropped: dict[str, str] | None = None) -> pl.DataFrame:
    """The import assistant's table: one row per thing the reader or the checks detected, with
    its topic (工作表与表头, 合并单元格, 答案文字→代码 …), so the analyst reads them by kind."""
    rows = [(next((topic for word, topic in _TOPICS if word in note), "其他"), note)
            for note in notes]
    rows += [("删除的列", f"“{h}”列疑似{k}，不会保存") for h, k in (dropped or {}).items()
             if not any(f"“{h}”列" in n for n in notes)]
    return pl.DataFrame(rows, schema=["类别", "内容"], orient="row")
