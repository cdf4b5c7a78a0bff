"""Whether a valid survey file is the whole wave, and a new one: never silently partial or repeated.

A wave without some of the province's counties would rank the others as if those did not exist;
a file that repeats a stored wave (uploaded under the wrong 期次) would show a year without change.
Both are refused unless the analyst confirms them, and named either way.

A repeat is told by identical rows, not by ids alone: many contractors number respondents per
county and wave (990101-0001 …), so the same ids recur in every wave. A row of another stored
wave with the same respondent id, county and every answer is the same interview; when half the
file's rows are, the file is that wave again.
"""

from __future__ import annotations

import polars as pl

from pipelines.core.waves import wave_display
from pipelines.store.warehouse import Warehouse

REPEAT_SHARE = 0.5
NAMED = 20     # counties named in a message; the rest are counted


def missing_counties(rows: pl.DataFrame, counties: pl.DataFrame) -> pl.DataFrame:
    """The province's counties with no row in the wave (county_code, county_name)."""
    present = rows.get_column("county_code").unique()
    return counties.filter(~pl.col("county_code").is_in(present.implode())).select(
        "county_code", "county_name").sort("county_code")


def _named(missing: pl.DataFrame) -> str:
    shown = "、".join(f"{name}（{code}）" for code, name in missing.head(NAMED).iter_rows())
    return shown + (f"等 {missing.height} 个" if missing.height > NAMED else "")


def missing_counties_message(missing: pl.DataFrame, confirmed: bool) -> str:
    if confirmed:
        return f"本期调查缺少 {missing.height} 个区县（已确认按缺少导入）：{_named(missing)}"
    return (f"本期调查缺少 {missing.height} 个区县的数据：{_named(missing)}。缺少的区县不会出现在"
            "排名中，其余区县的名次也会因此改变。如确认这些区县本期没有调查，请勾选“允许缺少区县"
            "导入”（命令行加 --allow-missing-counties）；否则请补齐后重新导入")


def repeated_wave(wh: Warehouse, rows: pl.DataFrame, wave: str, items: list[str],
                  ) -> tuple[str, int] | None:
    """(the stored wave, rows identical to it) when at least half of `rows` repeat a stored
    wave other than `wave`, else None. The join runs in DuckDB, beside the stored rows."""
    others = wh.waves().filter(pl.col("survey_load_id").is_not_null()
                               & (pl.col("wave") != wave))["wave"].to_list()
    if not others or rows.height == 0:
        return None
    key = ["respondent_id", "county_code", *items]
    same = " and ".join(f"r.{c} is not distinct from n.{c}" for c in key[1:])
    cur = wh.cursor()
    cur.register("__new_rows", rows.select(key).to_arrow())
    try:
        found = cur.execute(
            "select r.wave, count(*) as n from current_responses r join __new_rows n "
            f"on r.respondent_id = n.respondent_id and {same} "
            f"where r.wave in ({', '.join('?' for _ in others)}) "
            "group by r.wave order by n desc limit 1", others).fetchall()
    finally:
        cur.unregister("__new_rows")
    if found and found[0][1] >= REPEAT_SHARE * rows.height:
        return found[0][0], int(found[0][1])
    return None


def repeated_wave_message(stored: str, identical: int, total: int, confirmed: bool) -> str:
    what = (f"本文件有 {identical} 行（共 {total} 行）与已导入的{wave_display(stored)}调查数据完全相同"
            "（受访者编号、区县和全部答案一致）")
    if confirmed:
        return what + "，已按分析人员的确认导入"
    return (what + "：很可能是重复上传了往期文件，或期次选错了。请核对文件与期次；如确认本文件确实是"
            "新一期的数据，请勾选“确认不是重复的往期数据”（命令行加 --allow-repeat）")
