"""Consequence tiers (重点整治 / 预警通告 / 重点关注 …) from the scheme's `[[tiers]]`.

Provinces revise their tiers each year and list on more than rank: a score floor, an indicator
(外流贩毒 counts, 合成毒品 share), a veto. Each tier is checked on the wave's published scores
(after 记零); per level, the first tier whose triggers hold (any or all, as declared) applies, so
a county is in at most one province tier and one city tier a wave. At city level, rank_bottom
means the bottom of its own city.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.ranking.ranks import in_bottom
from pipelines.scheme.definitions import Tier, Trigger
from pipelines.stats.vetoes import VETO_OPS


def _fired(trigger: Trigger, frame: pl.DataFrame, values: dict[str, dict[str, float]],
           group: str | None) -> tuple[np.ndarray, list[str]]:
    """Which counties (frame order) the trigger fires for, and the reason text of each."""
    score = frame["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    codes = frame["county_code"].to_list()
    if trigger.rank_bottom is not None:
        fired = np.zeros(len(codes), dtype=bool)
        groups = frame[group].to_list() if group else [None] * len(codes)
        for g in set(groups):
            mask = np.array([x == g for x in groups])
            fired[mask] = in_bottom(score[mask], trigger.rank_bottom)
        where = "本市" if group else "全省"
        return fired, [f"{where}后{trigger.rank_bottom}名"] * len(codes)
    if trigger.score_below is not None:
        with np.errstate(invalid="ignore"):
            return score < trigger.score_below, \
                [f"得分 {s:.2f} 低于 {trigger.score_below:g}" for s in score]
    if trigger.indicator is not None:
        own = np.array([values.get(c, {}).get(trigger.indicator, np.nan) for c in codes])
        with np.errstate(invalid="ignore"):
            fired = VETO_OPS[trigger.op](own, trigger.value) & ~np.isnan(own)
        return fired, [f"{trigger.indicator} = {v:g}（{trigger.op} {trigger.value:g}）" for v in own]
    vetoed = frame["veto_reason"].is_not_null().to_numpy()
    return vetoed, [f"一票否决：{r}" for r in frame["veto_reason"].fill_null("")]


def assign_tiers(tiers: tuple[Tier, ...], scores: pl.DataFrame, indicators: pl.DataFrame,
                 city_of: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(county_code, level, tier label, reason) of every county placed in a tier this wave."""
    values: dict[str, dict[str, float]] = {}
    for row in indicators.iter_rows(named=True):
        values.setdefault(row["county_code"], {})[row["indicator_id"]] = row["value"]
    frame = scores.with_columns(pl.col("county_code").replace_strict(city_of, default=None)
                                .alias("__city"))
    placed: dict[tuple[str, str], tuple[str, str]] = {}
    for tier in tiers:
        group = "__city" if tier.level == "市" else None
        results = [_fired(t, frame, values, group) for t in tier.triggers]
        stack = np.vstack([fired for fired, _ in results])
        hit = stack.any(axis=0) if tier.match == "any" else stack.all(axis=0)
        for i, code in enumerate(frame["county_code"]):
            if hit[i] and (code, tier.level) not in placed:
                reasons = [texts[i] for fired, texts in results if fired[i]]
                placed[(code, tier.level)] = (tier.label, "；".join(reasons))
    return [(code, level, label, reason) for (code, level), (label, reason) in placed.items()]
