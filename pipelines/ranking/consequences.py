"""The consequences register: every consequence the rules produce, one row each, as of a wave.

The listing engine (listing.py) emits events wave by wave; leaders and analysts ask instead
"what is in force now, at which level, until when, and does it match what was announced?".
The register answers that from the events, the scores after 记零 and the comparison with the
official decisions: province and city listings with their status (挂牌中 / 已摘帽 / 逾期未摘帽),
通报批评 with its deadline, 记零, 一票否决, 摘帽, 重新挂牌 and overdue flags, and official
decisions the rules do not support.
"""

from __future__ import annotations

import polars as pl

from pipelines.ranking.listing import (
    CITY,
    CITY_DELISTED,
    CITY_LISTED,
    CITY_OVERDUE,
    CRITICISM,
    DELISTED,
    LISTED_ACTIONS,
    OVERDUE,
    PROVINCE,
    ZEROED,
    ListingResult,
)

VETOED = "一票否决"
COLUMNS = ("county_code", "wave", "level", "action", "tier", "status", "deadline", "reason",
           "official")
# the tier a consequence belongs to, as provinces name them
TIERS = {(PROVINCE, "挂牌整治"): "省挂牌整治", (PROVINCE, "重新挂牌"): "省挂牌整治",
         (CITY, CITY_LISTED): "市挂牌重点整治", (PROVINCE, CRITICISM): "通报批评",
         (PROVINCE, ZEROED): "考核得分记零", (PROVINCE, VETOED): "一票否决"}
LISTINGS = (*LISTED_ACTIONS, CITY_LISTED)
KNOWN = (*LISTINGS, DELISTED, CITY_DELISTED, OVERDUE, CITY_OVERDUE, CRITICISM, ZEROED, VETOED)


def _listing_status(events: pl.DataFrame, wave: str) -> pl.DataFrame:
    """Per listing event: when (if ever, up to `wave`) the county came off that level's list."""
    listings = events.filter(pl.col("action").is_in(LISTINGS))
    exits = events.filter(pl.col("action").is_in([DELISTED, CITY_DELISTED])).select(
        "county_code", "level", pl.col("wave").alias("off_in"))
    joined = listings.join(exits, on=["county_code", "level"], how="left") \
        .filter(pl.col("off_in").is_null() | (pl.col("off_in") > pl.col("wave")))
    first_exit = joined.group_by("county_code", "level", "wave", maintain_order=True) \
        .agg(pl.col("off_in").min())
    return listings.join(first_exit, on=["county_code", "level", "wave"], how="left").with_columns(
        pl.when(pl.col("off_in").is_not_null())
        .then(pl.lit("已摘帽（") + pl.col("off_in") + "）")
        .when(pl.col("deadline") < wave).then(pl.lit("逾期未摘帽"))
        .otherwise(pl.lit("挂牌中")).alias("status")).drop("off_in")


def _other_status(events: pl.DataFrame, wave: str) -> pl.DataFrame:
    rest = events.filter(~pl.col("action").is_in(LISTINGS))
    return rest.with_columns(
        pl.when(pl.col("action") == CRITICISM).then(
            pl.when(pl.col("deadline") > wave).then(pl.lit("整改中（须书面检查）"))
            .otherwise(pl.lit("整改期限已到")))
        .when(pl.col("action") == ZEROED).then(pl.lit("已记零"))
        .when(pl.col("action").is_in([DELISTED, CITY_DELISTED])).then(pl.lit("已摘帽"))
        .when(pl.col("action").is_in([OVERDUE, CITY_OVERDUE])).then(pl.lit("逾期"))
        .otherwise(pl.lit("本期列入")).alias("status"))     # a scheme tier ([[tiers]])


def _vetoes(result: ListingResult, wave: str) -> pl.DataFrame:
    return result.scores.filter(pl.col("veto_reason").is_not_null() & (pl.col("wave") <= wave)) \
        .select("county_code", "wave", pl.lit(PROVINCE).alias("level"),
                pl.lit(VETOED).alias("action"),
                pl.lit("一票否决：") + pl.col("veto_reason") + "，得分记为0",
                pl.lit(None, pl.String).alias("deadline"),
                pl.lit("已否决").alias("status")).rename({"literal": "reason"})


def consequences(result: ListingResult, wave: str) -> pl.DataFrame:
    """Every consequence up to `wave`, one row each (COLUMNS), with its official match:
    一致 / 规则判定有、未见正式决定 / 有正式决定、规则不支持 / — (a kind not recorded officially)."""
    events = result.events.filter(pl.col("wave") <= wave)
    rows = pl.concat([_listing_status(events, wave), _other_status(events, wave),
                      _vetoes(result, wave).select(*events.columns, "status")])
    keys = ["county_code", "wave", "level", "action"]
    comparison = result.comparison.filter(pl.col("wave") <= wave)
    official_only = comparison.filter(~pl.col("rules")).select(
        *keys, pl.lit("正式决定所列，规则不支持").alias("reason"),
        pl.lit(None, pl.String).alias("deadline"), pl.lit("仅有正式决定").alias("status"))
    rows = pl.concat([rows, official_only.select(rows.columns)])
    tiers = pl.DataFrame([(level, action, tier) for (level, action), tier in TIERS.items()],
                         schema=["level", "action", "tier"], orient="row")
    return rows.join(tiers, on=["level", "action"], how="left").join(
        comparison.select(*keys, "note"), on=keys, how="left").with_columns(
        pl.when(pl.col("tier").is_not_null()).then(pl.col("tier"))
        .when(pl.col("action").is_in(KNOWN)).then(pl.lit("")).otherwise(pl.col("action"))
        .alias("tier"), pl.col("note").fill_null("—").alias("official")) \
        .select(COLUMNS).sort("wave", "level", "county_code", "action")
