"""The next wave's sample plan (抽样方案): how many interviews each county gets, so that as few
counties as possible are published on the wrong side of the bottom-3 and bottom-10 lines.

What is minimised: the expected number of counties whose PUBLISHED next-wave score puts them on the
other side of a cut line than their TRUE next-wave level does, Σ_k w_k · #{(true in bottom k) ≠
(published in bottom k)}, with configurable line weights w_k (listing rule: ties at the line all
in, as `ranks.in_bottom`).

- True levels come from the next-wave forecast (`forecast.predict_next`): mean and the variance of
  the level itself (the forecast variance less the sampling variance of a survey of today's size),
  vetoes at the historical rate (vetoed counties are at the bottom both truly and as published).
- The published score adds sampling noise of variance a_c / n + b_c: the survey part per interview
  a_c (today's survey variance × today's n: each county keeps its design effect) and the Poisson
  part b_c of the count indicators, which no number of interviews changes.
- Allocation: draws of the true levels fix each line in each draw; given them a county's chance of
  landing on the wrong side is Φ(−|θ − L| / s_c(n)), separable across counties, decreasing and
  convex in n, so greedy marginal allocation (block by block to the county whose expected error
  falls most) reaches the optimum of that objective under the bounds.
- Reporting: the allocation is then scored on the actual objective (published ranks from noisy
  draws, the lines moving with everyone's noise), with the same random numbers for every
  allocation compared (current, equal, proportional to population, planned), and beside them the
  floor: infinitely many interviews everywhere, the count noise alone. Where counts dominate the
  noise (the sample scheme) the floor sits near equal allocation and no plan can gain much.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import ndtr

from pipelines.ranking.forecast import (
    History,
    history_of,
    next_sampling_variance,
    predict_next,
    veto_rate,
)
from pipelines.stats.wave_scores import WaveScores

PLAN_DRAWS = 4000
MAX_STEPS = 20_000      # greedy steps at most: larger totals move in larger blocks


class PlanError(ValueError):
    """Settings that admit no allocation (message in Chinese, for the user)."""


@dataclass(frozen=True)
class PlanSettings:
    total: int
    min_per_county: int = 200
    max_per_county: int | None = None
    fixed: Mapping[str, int] = field(default_factory=dict)     # county_code → interviews
    weights: Mapping[int, float] = field(default_factory=lambda: {3: 1.0, 10: 1.0})
    block: int = 10
    draws: int = PLAN_DRAWS
    seed: int = 0


@dataclass(frozen=True)
class Outlook:
    """Per county, what the plan needs from the forecast."""
    counties: list[str]
    mean: np.ndarray           # predicted true deviation
    level_var: np.ndarray      # variance of the true level (no sampling noise)
    per_interview: np.ndarray  # a_c: survey variance × n
    fixed_var: np.ndarray      # b_c: Poisson part, independent of n
    n_current: np.ndarray
    veto_rate: float

    def sampling_variance(self, n: np.ndarray) -> np.ndarray:
        return self.per_interview / np.maximum(n, 1) + self.fixed_var


def outlook(history: History, bottom: int = 3) -> Outlook:
    """The forecast split into the true level's uncertainty and the sampling noise's two parts,
    so that a plan can change the one part interviews change."""
    forecast = predict_next(history, bottom=bottom)
    now = next_sampling_variance(history, None)
    fixed = next_sampling_variance(history, np.inf)
    per_interview = next_sampling_variance(history, 1.0) - fixed
    level_var = np.maximum(forecast.variance - now, 1e-6)
    return Outlook(history.counties, forecast.mean, level_var,
                   np.nan_to_num(per_interview, nan=float(np.nanmedian(per_interview))),
                   np.nan_to_num(fixed, nan=0.0), np.nan_to_num(history.n[:, -1], nan=0.0),
                   veto_rate(history))


def true_level_draws(view: Outlook, draws: int, seed: int) -> np.ndarray:
    """draws × C true next-wave levels; −inf where a veto fires; NaN where nothing is forecast."""
    rng = np.random.default_rng(seed)
    theta = view.mean + np.sqrt(view.level_var) * rng.standard_normal((draws, view.mean.size))
    theta[rng.random(theta.shape) < view.veto_rate] = -np.inf
    return theta


def _cut_lines(theta: np.ndarray, k: int) -> np.ndarray:
    """Per draw, the midpoint between the k-th and (k+1)-th lowest true level."""
    filled = np.where(np.isnan(theta), np.inf, theta)
    k = min(k, theta.shape[1] - 1)
    low = np.partition(filled, (k - 1, k), axis=1)
    with np.errstate(invalid="ignore"):
        return (low[:, k - 1] + low[:, k]) / 2


class _Curves:
    """f_c(n) = Σ_k w_k · mean over draws of Φ(−|θ − L_k| / s_c(n)): county c's expected number of
    wrong sides at sample size n, the lines held at their true place in each draw."""

    def __init__(self, view: Outlook, theta: np.ndarray, weights: Mapping[int, float]):
        self.view = view
        self.weights = [float(w) for w in weights.values()]
        with np.errstate(invalid="ignore"):
            distance = [np.abs(theta - _cut_lines(theta, k)[:, None]) for k in weights]
        # C × K × draws; a vetoed county (−inf) or one without a forecast is never misplaced
        self.distance = np.ascontiguousarray(np.nan_to_num(
            np.stack(distance, axis=0).transpose(2, 0, 1), nan=np.inf, posinf=np.inf))

    def value(self, c: int, n: float) -> float:
        s = np.sqrt(self.view.per_interview[c] / max(n, 1) + self.view.fixed_var[c])
        chance = ndtr(-self.distance[c] / s).mean(axis=1)
        return float(np.dot(self.weights, chance))

    def values(self, n: np.ndarray) -> np.ndarray:
        s = np.sqrt(self.view.sampling_variance(np.asarray(n, dtype=float)))
        chance = ndtr(-self.distance / s[:, None, None]).mean(axis=2)
        return chance @ np.array(self.weights)


def _bounds(view: Outlook, settings: PlanSettings) -> tuple[np.ndarray, np.ndarray]:
    c = len(view.counties)
    low = np.full(c, settings.min_per_county, dtype=np.int64)
    high = np.full(c, settings.max_per_county if settings.max_per_county is not None
                   else settings.total, dtype=np.int64)
    index = {code: i for i, code in enumerate(view.counties)}
    unknown = sorted(set(settings.fixed) - index.keys())
    if unknown:
        raise PlanError(f"固定样本量的区县代码不存在：{'、'.join(unknown)}")
    for code, n in settings.fixed.items():
        low[index[code]] = high[index[code]] = int(n)
    if settings.min_per_county < 1:
        raise PlanError("每县最少样本量应为正整数")
    if (high < low).any():
        raise PlanError("每县最多样本量不能小于最少样本量")
    if low.sum() > settings.total:
        raise PlanError(f"总样本量 {settings.total} 不足以满足每县最少样本量（合计需要 {low.sum()}）")
    if high.sum() < settings.total:
        raise PlanError(f"总样本量 {settings.total} 超过每县最多样本量之和（{high.sum()}）")
    return low, high


def allocate(view: Outlook, settings: PlanSettings, theta: np.ndarray | None = None) -> np.ndarray:
    """Interviews per county (ints summing to `settings.total`, within the bounds, fixed counties
    as given): greedy marginal allocation on the expected number of wrong sides."""
    low, high = _bounds(view, settings)
    if theta is None:
        theta = true_level_draws(view, settings.draws, settings.seed)
    curves = _Curves(view, theta, settings.weights)
    n = low.copy()
    left = settings.total - int(n.sum())
    block = max(settings.block, -(-left // MAX_STEPS))
    current = curves.values(n)
    heap: list[tuple[float, int, int, float]] = []

    def push(c: int, step: int) -> None:
        step = min(step, int(high[c] - n[c]))
        if step > 0:   # gain per interview, so a shortened last block competes fairly
            after = curves.value(c, n[c] + step)
            heapq.heappush(heap, (-(current[c] - after) / step, c, step, after))

    for c in range(n.size):
        push(c, block)
    while left > 0 and heap:
        _, c, step, after = heapq.heappop(heap)
        if step > left:                       # the last interviews: a smaller block
            push(c, left)
            continue
        n[c] += step
        left -= step
        current[c] = after
        push(c, min(block, left) if left else block)
    return n


def bounded_shares(weights: np.ndarray, view: Outlook, settings: PlanSettings) -> np.ndarray:
    """`total` split in proportion to `weights` within the bounds (fixed counties as given; the
    excess of a clipped county goes to the others), rounded by largest remainders."""
    low, high = _bounds(view, settings)
    share = np.zeros(low.size)
    free = low < high
    share[~free] = low[~free]
    for _ in range(low.size + 1):
        if not free.any():
            break
        budget = settings.total - share[~free].sum()
        w = np.where(free, weights, 0.0)
        share[free] = budget * w[free] / w[free].sum() if w[free].sum() > 0 else budget / free.sum()
        clipped = free & ((share < low) | (share > high))
        if not clipped.any():
            break
        share[clipped] = np.clip(share[clipped], low[clipped], high[clipped])
        free &= ~clipped
    n = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - n), kind="stable")
    short = settings.total - int(n.sum())
    room = order[n[order] < high[order]]
    n[room[:short]] += 1
    return n


@dataclass(frozen=True)
class Assessment:
    per_county: np.ndarray   # C: expected wrong sides (weighted over the lines)
    expected: float          # Σ over counties
    se: float                # its Monte Carlo error


def assess(view: Outlook, n: np.ndarray, theta: np.ndarray, weights: Mapping[int, float],
           seed: int) -> Assessment:
    """The actual objective by simulation: published = true + noise of a survey of n, ranks in
    every draw, each line where the published (and the true) bottom k put it."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(theta.shape) * np.sqrt(view.sampling_variance(n))
    published = theta + noise                 # −inf (vetoed) stays −inf
    wrong = np.zeros(theta.shape)
    for k, w in weights.items():
        wrong += float(w) * (_listed(theta, k) != _listed(published, k))
    total = wrong.sum(axis=1)
    return Assessment(wrong.mean(axis=0), float(total.mean()),
                      float(total.std(ddof=1) / np.sqrt(total.size)))


def _listed(x: np.ndarray, k: int) -> np.ndarray:
    """Per draw, in the bottom k (ties at the line in; a NaN never)."""
    filled = np.where(np.isnan(x), np.inf, x)
    k = min(k, x.shape[1])
    kth = np.partition(filled, k - 1, axis=1)[:, k - 1:k]
    return filled <= kth


@dataclass(frozen=True)
class SamplePlan:
    table: pl.DataFrame                  # county_code, n_current, n_planned, wrong_current, wrong_planned
    summary: pl.DataFrame                # allocation, label, expected_wrong, se
    settings: PlanSettings
    # median share of a county's sampling variance (at today's n) that interviews reduce: the
    # rest is count noise, and with it what any allocation can gain
    survey_share: float = 1.0
    # expected wrongly placed counties with infinitely many interviews in every county (the
    # survey error gone, the count noise left): the floor under any allocation
    floor: float = float("nan")


ALLOCATION_LABELS = {"current": "本期样本量", "equal": "平均分配", "proportional": "按人口比例",
                     "planned": "优化方案"}


def plan_sample(history: History, settings: PlanSettings,
                population: np.ndarray | None = None) -> SamplePlan:
    """The plan, with per-county expected wrong sides now and planned, and the expected number of
    wrongly placed counties under each allocation (same draws for all)."""
    view = outlook(history, bottom=min(settings.weights))
    return plan_outlook(view, settings, population)


def plan_outlook(view: Outlook, settings: PlanSettings,
                 population: np.ndarray | None = None) -> SamplePlan:
    """`plan_sample` on a forecast already split (`outlook`)."""
    theta = true_level_draws(view, settings.draws, settings.seed)
    planned = allocate(view, settings, theta)
    allocations = {"current": view.n_current,
                   "equal": bounded_shares(np.ones(planned.size), view, settings)}
    if population is not None:
        allocations["proportional"] = bounded_shares(np.asarray(population, float), view, settings)
    allocations["planned"] = planned
    # a fresh set of true levels for the assessment: the plan is not scored on its own draws
    check = true_level_draws(view, settings.draws, settings.seed + 1)
    results = {name: assess(view, n, check, settings.weights, settings.seed + 2)
               for name, n in allocations.items()}
    table = pl.DataFrame({
        "county_code": view.counties,
        "n_current": view.n_current.astype(np.int64), "n_planned": planned,
        "wrong_current": results["current"].per_county,
        "wrong_planned": results["planned"].per_county})
    summary = pl.DataFrame({
        "allocation": list(results), "label": [ALLOCATION_LABELS[a] for a in results],
        "total": [int(np.sum(allocations[a])) for a in results],
        "expected_wrong": [r.expected for r in results.values()],
        "se": [r.se for r in results.values()]})
    now = view.sampling_variance(view.n_current)
    share = float(np.nanmedian(view.per_interview / np.maximum(view.n_current, 1) / now))
    unlimited = assess(view, np.full(planned.size, np.inf), check, settings.weights,
                       settings.seed + 2)
    return SamplePlan(table, summary, settings, share, unlimited.expected)


def plan_for_scores(scores: Sequence[WaveScores], counties: pl.DataFrame,
                    settings: PlanSettings) -> SamplePlan:
    """`plan_sample` on a scored history (oldest first), with each county's population from the
    county list (for the proportional allocation compared)."""
    history = history_of(scores)
    population = pl.DataFrame({"county_code": history.counties}).join(
        counties.select("county_code", pl.col("population").cast(pl.Float64)),
        on="county_code", how="left", maintain_order="left")["population"]
    known = population.is_not_null().all()
    return plan_sample(history, settings, population.to_numpy() if known else None)
