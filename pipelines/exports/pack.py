"""Everything a meeting export needs for one wave and city filter, gathered once: the scored
history, the risk table, the listing verdicts and 摘帽 progress, and the tables as shown on the pages.

The dashboard passes its cached results in; the CLI lets this module compute them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.core.waves import wave_display
from pipelines.present.tables import (
    Table,
    comparison_table,
    component_table,
    consequences_table,
    progress_table,
    ranking_table,
    risk_display,
)
from pipelines.present.views import Overview, cut_line_scores, overview, ranking_view
from pipelines.ranking.consequences import consequences
from pipelines.ranking.listing import ListingResult
from pipelines.ranking.ranks import DRAWS
from pipelines.ranking.risk import delisting_progress, risk_table
from pipelines.results.wave import listing_result, scored_history
from pipelines.scheme.definitions import Definitions
from pipelines.stats.wave_scores import WaveScores
from pipelines.store.warehouse import Warehouse, WarehouseError

METHOD_NOTES = (
    "综合得分由居民调查（按抽样设计加权）和县区工作指标按评分方案合成；95%置信区间按泰勒线性化"
    "（与R survey包一致）并对随机的指标计数作模拟。",
    "名次区间和“后3名/后10名概率”来自一万次模拟：本期概率回答“真实水平是否在后3/后10名”，"
    "下期概率回答“下一期公布的得分是否落入后3/后10名”。两者是不同的问题。",
    "区间跨越分界线的县，仅凭本次调查无法确定其是否在线下；请避免据此作出“某县退步/进步”的结论，"
    "除非变化的区间不含0。",
    "一票否决的县得分记为0，不参与全省平均分计算。",
)


@dataclass(frozen=True)
class MeetingPack:
    province: str
    wave: str
    city_code: str | None
    city_name: str           # 全省 when no city is chosen
    is_sample: bool
    definitions: Definitions
    counties: pl.DataFrame   # county_code, county_name, city_code, city_name
    history: list[WaveScores]
    risk: pl.DataFrame       # one row per county (whole province: ranks are provincial)
    listing: ListingResult
    progress: pl.DataFrame
    summary: Overview

    @property
    def label(self) -> str:
        return f"{wave_display(self.wave)} · {self.city_name}"

    def in_city(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of the chosen city's counties (by county_code, so any county-level frame)."""
        if self.city_code is None:
            return frame
        codes = self.counties.filter(pl.col("city_code") == self.city_code)["county_code"]
        return frame.filter(pl.col("county_code").is_in(codes.implode()))

    @property
    def bottoms(self) -> tuple[int, int]:
        listing = self.definitions.scheme.listing
        return listing.province_bottom, listing.city_bottom

    def ranking(self) -> pl.DataFrame:
        return self.in_city(ranking_view(self.risk, self.history[-1], self.bottoms))

    def cut_lines(self) -> pl.DataFrame:
        return cut_line_scores(self.risk["score"], self.bottoms)


def meeting_pack(wh: Warehouse, defs: Definitions, wave: str, city_code: str | None = None, *,
                 history: list[WaveScores] | None = None, risk: pl.DataFrame | None = None,
                 listing: ListingResult | None = None, draws: int = DRAWS) -> MeetingPack:
    """Gather (or take) the results of one wave for the exports."""
    counties = wh.counties()
    if city_code is not None and city_code not in counties["city_code"].to_list():
        known = "、".join(counties["city_code"].unique(maintain_order=True).to_list())
        raise WarehouseError(f"没有代码为 {city_code} 的市州。现有：{known}")
    history = history if history is not None else scored_history(wh, defs, wave)
    risk = risk if risk is not None else risk_table(history, defs, draws=draws)
    listing = listing if listing is not None else listing_result(wh, defs, history)
    city_name = "全省" if city_code is None else \
        counties.filter(pl.col("city_code") == city_code)["city_name"][0]
    return MeetingPack(
        province=wh.meta("province") or "本省", wave=wave, city_code=city_code,
        city_name=city_name, is_sample=wh.meta("is_sample") == "true", definitions=defs,
        counties=counties, history=history, risk=risk, listing=listing,
        progress=delisting_progress(listing, risk, wave), summary=overview(history, risk, city_code))


def meeting_tables(pack: MeetingPack) -> list[Table]:
    """The tables of the ranking, risk, 摘帽 and scheme pages for the chosen wave and city."""
    scores = pack.history[-1]
    names = pack.counties.select("county_code", "county_name")
    return [
        ranking_table(pack.ranking(), pack.definitions.scheme),
        risk_display(pack.in_city(pack.risk), pack.definitions.scheme),
        component_table(pack.in_city(scores.components), pack.in_city(scores.composite)),
        progress_table(pack.in_city(pack.progress), names),
        comparison_table(pack.in_city(pack.listing.comparison), names),
        consequences_table(pack.in_city(consequences(pack.listing, pack.wave)), names),
    ]


def workbook_note(pack: MeetingPack) -> str:
    lines = [f"{pack.province}禁毒工作专项调查测评 · {pack.label}",
             "名次均为全省名次；概率以小数存储、以百分比显示。", "", "方法说明："]
    lines += [f"{k}. {text}" for k, text in enumerate(METHOD_NOTES, 1)]
    if pack.is_sample:
        lines += ["", "注意：本文件由示例数据（虚构省份）生成，仅供演示。"]
    return "\n".join(lines)
