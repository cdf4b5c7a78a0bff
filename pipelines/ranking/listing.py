"""The listing rules engine: 挂牌 (listing), 摘帽 (delisting) and their conditions, driven by the scheme.

Rules, wave by wave on the PUBLISHED scores (officially ranks use point scores only):
- bottom `criticism_bottom` and a score under `criticism_score` → 通报批评 (written
  self-examination by the next wave); criticised in `consecutive_zero_years` calendar years in a
  row → 当年考核得分记零: the score becomes 0 before the listings below are decided;
- province bottom `province_bottom` (后3名) → 省挂牌整治; a county delisted before → 重新挂牌;
- bottom `city_bottom` (后10名) in a city that opts in → 市挂牌重点整治, a list of its own: off it
  (市摘帽) after `consecutive_waves` waves out of the bottom `city_bottom`;
- a vetoed county scores 0, so it lands at the bottom and is listed like any other (its reason is
  kept);
- a listed county is delisted (摘帽) at the first wave after its listing where every condition
  holds: out of the bottom `leave_bottom` for `consecutive_waves` waves in a row, every indicator
  target (absolute, or relative to the value at listing), and — when required — an inspection
  (验收) recorded as passed for that wave. Past `deadline_waves` waves it is flagged 逾期.
The verdicts are compared with the official decisions recorded by analysts; any difference is listed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core.waves import next_wave, wave_year
from pipelines.ranking.ranks import in_bottom, rank_scores
from pipelines.ranking.tiers import assign_tiers
from pipelines.scheme.definitions import (
    DelistingRules,
    DelistingTarget,
    IndicatorCatalogue,
    ListingRules,
    Scheme,
)

PROVINCE = "省"
CITY = "市"
LISTED_ACTIONS = ("挂牌整治", "重新挂牌")
DELISTED = "摘帽"
CITY_LISTED = "市挂牌重点整治"
CRITICISM = "通报批评"
ZEROED = "考核得分记零"
OVERDUE = "逾期未摘帽"
CITY_DELISTED = "市摘帽"        # city-level actions are named apart: a page that asks for 摘帽
CITY_OVERDUE = "市挂牌逾期未摘帽"  # means the province's


@dataclass(frozen=True)
class PublishedWave:
    wave: str
    scores: pl.DataFrame        # county_code, score, veto_reason
    indicators: pl.DataFrame    # county_code, indicator_id, value


@dataclass(frozen=True)
class ListingResult:
    events: pl.DataFrame        # county_code, wave, level, action, reason, deadline (a wave)
    conditions: pl.DataFrame    # county_code, wave, condition, value, target, met
    status: pl.DataFrame        # county_code, listed, listed_in, waves_listed, overdue, …
    comparison: pl.DataFrame    # county_code, wave, level, action, rules, official, agree, note
    scores: pl.DataFrame        # county_code, wave, published, score (after 记零), zeroed,
    #                             veto_reason, rank (on the score after 记零)


def _scores(frame: pl.DataFrame) -> np.ndarray:
    return frame["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def bottom_members(scores: pl.DataFrame, k: int) -> set[str]:
    """Counties listed in the bottom k (被列入后k名): among the k lowest, every county tied at the
    line included, so two vetoed counties at 0 beside a third-lowest make four listed. The
    dashboard's P(bottom k) is the chance of this (`ranks.listing_probabilities`)."""
    return set(scores.filter(pl.Series(in_bottom(_scores(scores), k)))["county_code"])


def published_rank(scores: pl.DataFrame) -> dict[str, int]:
    """Rank 1 = highest; ties share the better rank (1, 2, 2, 4)."""
    ranks = rank_scores(_scores(scores), "min")
    return {c: int(r) for c, r in zip(scores["county_code"], ranks, strict=False) if not np.isnan(r)}


def _target_label(target: DelistingTarget, catalogue: IndicatorCatalogue) -> tuple[str, str]:
    indicator = catalogue.get(target.indicator)
    unit = indicator.unit or ""
    if target.at_least is not None:
        return indicator.label, f"≥ {target.at_least:g}{unit}"
    if target.at_most is not None:
        return indicator.label, f"≤ {target.at_most:g}{unit}"
    change = target.relative_to_baseline
    word = "下降" if change < 0 else "上升"
    return indicator.label, f"较挂牌时{word} {abs(change):.0%} 以上"


def _target_met(target: DelistingTarget, value: float | None, baseline: float | None) -> bool:
    if value is None or np.isnan(value):
        return False
    if target.at_least is not None:
        return value >= target.at_least
    if target.at_most is not None:
        return value <= target.at_most
    if baseline is None or np.isnan(baseline):
        return False
    bound = baseline * (1 + target.relative_to_baseline)
    return value <= bound if target.relative_to_baseline < 0 else value >= bound


def _zeroed_scores(w: PublishedWave, rules: ListingRules, zeroed: set[tuple[str, int]],
                   criticised_years: dict[str, set[int]], events: list) -> pl.DataFrame:
    """The wave's scores after 记零: bottom `criticism_bottom` and under `criticism_score` is a
    通报批评; criticised in `consecutive_zero_years` calendar years in a row (two half-year waves
    of one year are one year) sets the county's score of that year to 0, which moves its rank
    and the listings decided on it. A county zeroed in 2025H1 stays at 0 in 2025H2."""
    year = wave_year(w.wave)
    frame = w.scores.with_columns(pl.col("score").cast(pl.Float64).alias("published"))
    carried = {code for code, y in zeroed if y == year}
    frame = frame.with_columns(pl.when(pl.col("county_code").is_in(list(carried))).then(0.0)
                               .otherwise(pl.col("score")).alias("score"))
    ranks = published_rank(frame)
    bottom = bottom_members(frame, rules.criticism_bottom)
    score = dict(zip(frame["county_code"], frame["score"], strict=False))
    deadline = next_wave(w.wave)
    newly: set[str] = set()
    for code in sorted(ranks):
        if code not in bottom or not score[code] < rules.criticism_score:
            continue
        events.append((code, w.wave, PROVINCE, CRITICISM,
                       f"全省第{ranks[code]}名且得分 {score[code]:.2f} 低于 "
                       f"{rules.criticism_score:g}，须书面检查", deadline))
        years = criticised_years.setdefault(code, set())
        years.add(year)
        run = 0
        while year - run in years:
            run += 1
        if run >= rules.consecutive_zero_years and (code, year) not in zeroed:
            zeroed.add((code, year))
            newly.add(code)
            events.append((code, w.wave, PROVINCE, ZEROED,
                           f"连续{rules.consecutive_zero_years}年被通报批评（{year - run + 1}–{year}年），"
                           f"{year}年考核得分由 {score[code]:.2f} 记为 0", None))
    zero = carried | newly
    return frame.with_columns(
        pl.when(pl.col("county_code").is_in(list(zero))).then(0.0).otherwise(pl.col("score"))
        .alias("score"), pl.col("county_code").is_in(list(zero)).alias("zeroed"))


def _exit_checks(code: str, since: str, wave: str, ranks: dict[str, int], n: int, streak: int,
                 exit_rules: DelistingRules, catalogue: IndicatorCatalogue,
                 value_at: dict, passed: dict) -> list[tuple[str, str, str, bool]]:
    """The 摘帽 conditions of a province-listed county at `wave`: (label, value, target, met)."""
    checks = [("退出全省后" + str(exit_rules.leave_bottom) + "名",
               f"第{ranks.get(code, '—')}名（共{n}个）",
               f"连续{exit_rules.consecutive_waves}期在后{exit_rules.leave_bottom}名之外",
               streak >= exit_rules.consecutive_waves)]
    for target in exit_rules.targets:
        label, wanted = _target_label(target, catalogue)
        value = value_at.get((code, wave, target.indicator))
        baseline = value_at.get((code, since, target.indicator))
        shown = "无数据" if value is None else f"{value:g}"
        if target.relative_to_baseline is not None and baseline is not None:
            shown += f"（挂牌时 {baseline:g}）"
        checks.append((label, shown, wanted, _target_met(target, value, baseline)))
    if exit_rules.inspection_required:
        result = passed.get((code, wave))
        checks.append(("验收", {True: "合格", False: "不合格", None: "未验收"}[result],
                       "合格", bool(result)))
    return checks


def _deadline(wave: str, waves_allowed: int) -> str:
    """The last wave by which a county listed at `wave` should be delisted."""
    for _ in range(waves_allowed):
        wave = next_wave(wave)
    return wave


def run_listing(scheme: Scheme, catalogue: IndicatorCatalogue, waves: Sequence[PublishedWave],
                counties: pl.DataFrame, inspections: pl.DataFrame,
                decisions: pl.DataFrame | None = None) -> ListingResult:
    """Apply the scheme's listing and delisting rules over the waves (oldest first)."""
    rules, exit_rules = scheme.listing, scheme.delisting
    city_of = dict(zip(counties["county_code"], counties["city_code"], strict=False))
    opt_in = set(rules.city_opt_in)
    passed = {(r["county_code"], r["wave"]): bool(r["passed"])
              for r in inspections.iter_rows(named=True)}
    listed: dict[str, str] = {}          # county → wave listed in (province)
    city_listed: dict[str, str] = {}     # county → wave listed in (its city's own list)
    ever_delisted: set[str] = set()
    out_streak: dict[str, int] = {}      # consecutive waves outside the bottom leave_bottom
    city_out_streak: dict[str, int] = {}  # consecutive waves outside the bottom city_bottom
    zeroed: set[tuple[str, int]] = set()
    criticised_years: dict[str, set[int]] = {}
    events, conditions, adjusted = [], [], []
    wave_index = {w.wave: i for i, w in enumerate(waves)}
    value_at: dict[tuple[str, str, str], float] = {}
    for w in waves:
        for r in w.indicators.iter_rows(named=True):
            value_at[(r["county_code"], w.wave, r["indicator_id"])] = r["value"]

    for w in waves:
        scores = _zeroed_scores(w, rules, zeroed, criticised_years, events)
        ranks = published_rank(scores)
        adjusted.append(scores.select("county_code", pl.lit(w.wave).alias("wave"), "published",
                                      "score", "zeroed", "veto_reason").with_columns(
            pl.col("county_code").replace_strict(ranks, default=None, return_dtype=pl.Int64)
            .alias("rank")))
        for code, level, label, reason in assign_tiers(scheme.in_force(w.wave).tiers, scores,
                                                       w.indicators, city_of):
            events.append((code, w.wave, level, label, reason, None))
        veto = dict(zip(scores["county_code"], scores["veto_reason"], strict=False))
        zero_now = set(scores.filter(pl.col("zeroed"))["county_code"])
        n = len(ranks)
        bottom_province = bottom_members(scores, rules.province_bottom)
        bottom_city = bottom_members(scores, rules.city_bottom)
        bottom_exit = bottom_members(scores, exit_rules.leave_bottom)
        for code in ranks:
            out_streak[code] = 0 if code in bottom_exit else out_streak.get(code, 0) + 1
            city_out_streak[code] = 0 if code in bottom_city else city_out_streak.get(code, 0) + 1

        # delisting first: a county listed before this wave may come off
        for code in sorted(listed):
            since = listed[code]
            if since == w.wave:
                continue
            checks = _exit_checks(code, since, w.wave, ranks, n, out_streak.get(code, 0),
                                  exit_rules, catalogue, value_at, passed)
            overdue = wave_index[w.wave] - wave_index[since] > exit_rules.deadline_waves
            for label, value, target, met in checks:
                conditions.append((code, w.wave, label, value, target, met))
            if all(met for *_, met in checks):
                events.append((code, w.wave, PROVINCE, DELISTED,
                               "各项摘帽条件均已满足" + ("（已超过期限）" if overdue else ""), None))
                ever_delisted.add(code)
                del listed[code]
            elif overdue:
                events.append((code, w.wave, PROVINCE, OVERDUE,
                               f"挂牌已超过{exit_rules.deadline_waves}期仍未满足摘帽条件",
                               _deadline(since, exit_rules.deadline_waves)))
        for code in sorted(city_listed):
            since = city_listed[code]
            if city_out_streak.get(code, 0) >= exit_rules.consecutive_waves:
                events.append((code, w.wave, CITY, CITY_DELISTED, f"连续{exit_rules.consecutive_waves}"
                               f"期在全省后{rules.city_bottom}名之外", None))
                del city_listed[code]
            elif wave_index[w.wave] - wave_index[since] > exit_rules.deadline_waves:
                events.append((code, w.wave, CITY, CITY_OVERDUE,
                               f"市挂牌已超过{exit_rules.deadline_waves}期仍在全省后{rules.city_bottom}名",
                               _deadline(since, exit_rules.deadline_waves)))

        for code in sorted(bottom_province):
            if code in listed:
                continue
            action = "重新挂牌" if code in ever_delisted else "挂牌整治"
            reason = f"全省第{ranks[code]}名（后{rules.province_bottom}名）"
            if veto.get(code):
                reason += f"；一票否决：{veto[code]}"
            if code in zero_now:
                reason += "；考核得分记零"
            events.append((code, w.wave, PROVINCE, action, reason,
                           _deadline(w.wave, exit_rules.deadline_waves)))
            listed[code] = w.wave
        for code in sorted(bottom_city - bottom_province):
            if code in city_listed or not ("all" in opt_in or city_of.get(code) in opt_in):
                continue
            events.append((code, w.wave, CITY, CITY_LISTED,
                           f"全省第{ranks[code]}名（后{rules.city_bottom}名）",
                           _deadline(w.wave, exit_rules.deadline_waves)))
            city_listed[code] = w.wave

    # typed schemas: a first wave has no conditions yet (and may have no events), and an untyped
    # empty frame has null columns that every later string filter rejects
    text = pl.String
    events_frame = pl.DataFrame(events, schema={"county_code": text, "wave": text, "level": text,
                                                "action": text, "reason": text, "deadline": text},
                                orient="row")
    conditions_frame = pl.DataFrame(
        conditions, schema={"county_code": text, "wave": text, "condition": text, "value": text,
                            "target": text, "met": pl.Boolean}, orient="row")
    last = waves[-1].wave if waves else ""
    status = pl.DataFrame({
        "county_code": list(listed), "listed_in": list(listed.values()),
        "waves_listed": [wave_index[last] - wave_index[s] for s in listed.values()],
    }, schema={"county_code": pl.String, "listed_in": pl.String, "waves_listed": pl.Int64})
    status = status.with_columns(
        (pl.col("waves_listed") > exit_rules.deadline_waves).alias("overdue"),
        pl.col("county_code").is_in(list(ever_delisted)).alias("relisted"))
    comparison = compare_with_official(events_frame, decisions, [w.wave for w in waves])
    scores_frame = pl.concat(adjusted) if adjusted else pl.DataFrame(schema={
        "county_code": text, "wave": text, "published": pl.Float64, "score": pl.Float64,
        "zeroed": pl.Boolean, "veto_reason": text, "rank": pl.Int64})
    return ListingResult(events_frame, conditions_frame, status, comparison, scores_frame)


def compare_with_official(events: pl.DataFrame, decisions: pl.DataFrame | None,
                          waves: Sequence[str]) -> pl.DataFrame:
    """The rules' verdicts beside the official decisions, at every level. Province listings and
    delistings are always compared; any other consequence (a city's list, 通报批评, 记零 …) only
    once analysts record decisions of that level and kind, so a province that never records its
    criticisms is not shown a disagreement for each of them."""
    keys = ["county_code", "wave", "level", "action"]
    if decisions is None or decisions.height == 0:
        official = pl.DataFrame(schema={k: pl.String for k in keys})
    else:
        official = decisions.filter(pl.col("wave").is_in(list(waves))).select(keys)
    recorded = official.select("level", "action").unique()
    always = pl.DataFrame({"level": [PROVINCE] * 3, "action": [*LISTED_ACTIONS, DELISTED]})
    compared = pl.concat([always, recorded]).unique()
    rules = events.select(keys).join(compared, on=["level", "action"], how="semi")
    merged = rules.with_columns(pl.lit(True).alias("rules")).join(
        official.with_columns(pl.lit(True).alias("official")), on=keys, how="full",
        coalesce=True).with_columns(pl.col("rules", "official").fill_null(False))
    return merged.with_columns(
        (pl.col("rules") == pl.col("official")).alias("agree"),
        pl.when(pl.col("rules") & ~pl.col("official")).then(pl.lit("规则判定应" )
                                                             + pl.col("action") + "，未见正式决定")
        .when(~pl.col("rules") & pl.col("official")).then(pl.lit("有正式决定“") + pl.col("action")
                                                           + "”，但规则不支持")
        .otherwise(pl.lit("一致")).alias("note"),
    ).sort("wave", "county_code", "level", "action")
