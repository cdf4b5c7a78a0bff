"""Next-wave veto (一票否决) risk per county, instead of one flat provincial rate.

A veto rule on a count (two or more cadres involved, two or more students, any illegal cultivation)
fires when the county's count of events reaches the threshold. Counts below it are evidence too: a
county with one cadre involved every year is closer to two than one with none. Per rule:

    y[c, w] ~ Poisson(u[c]·μ[c]),   log μ[c] = a + b·log(population[c] / mean),   u[c] ~ Gamma(α, α)

- (a, b) are fitted by Newton's method on all county-waves, with a Gamma(½, ·) prior on the rate
  (so no events gives the Jeffreys-smoothed rate, not 0) and b ~ N(0, 1) (rare events do not fit
  an exposure slope of their own);
- the between-county spread 1/α is the method-of-moments overdispersion of the county totals
  (0: counties differ only by exposure);
- empirical Bayes: u[c] | data ~ Gamma(α + Y[c], α + m[c]), so the next count is negative binomial
  (Poisson when 1/α = 0), and P(rule fires) = P(next count meets the threshold). A county with a
  short or quiet history is pulled toward the province's rate for its size.

Rules are taken as independent, P(any count rule fires) = 1 − Π(1 − P(rule fires)), and used as
a relative risk RR (mean 1 over counties) on the flat provincial rate, which counts every veto
whatever the rule (a component's floor too) and is the steadier estimate of the level:

    P(veto next wave) = flat · (1 − w + w·RR)

with w chosen on the history itself (each wave predicted from the others, log score): w = 0
where the history shows no county pattern, so the model is never worse than the flat rate by
more than the choice of w costs, and follows the counties where their risk does differ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import betainc, gammaincc

_SLOPE_SD = 1.0      # prior sd of the exposure slope b
_RATE_SHAPE = 0.5    # Gamma(½, ·) prior on the provincial rate: Jeffreys-like smoothing


@dataclass(frozen=True)
class VetoRules:
    """The veto rules of the history and what they saw: counts[r] is C × T (NaN where missing)."""

    subjects: tuple[str, ...]
    ops: tuple[str, ...]
    thresholds: tuple[float, ...]
    counts: np.ndarray           # R × C × T
    population: np.ndarray       # C (NaN where unknown)


def veto_rules_of(frames: list[pl.DataFrame | None], counties: list[str]) -> VetoRules | None:
    """Stack each wave's `veto_inputs` on `counties`; None when a wave has none (an older result)."""
    if not frames or any(f is None for f in frames):
        return None
    last = frames[-1]
    rules = last.select("rule", "subject", "op", "threshold").unique("rule").sort("rule")
    order = pl.DataFrame({"county_code": counties})
    counts = np.full((rules.height, len(counties), len(frames)), np.nan)
    for w, frame in enumerate(frames):
        for r, subject in enumerate(rules["subject"]):
            part = order.join(frame.filter(pl.col("subject") == subject)
                              .unique("county_code", keep="first"),
                              on="county_code", how="left", maintain_order="left")
            counts[r, :, w] = part["value"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    population = order.join(last.unique("county_code", keep="first"), on="county_code",
                            how="left", maintain_order="left")["population"] \
        .cast(pl.Float64).fill_null(np.nan).to_numpy()
    return VetoRules(tuple(rules["subject"]), tuple(rules["op"]),
                     tuple(float(t) for t in rules["threshold"]), counts, population)


def until(rules: VetoRules | None, waves: int) -> VetoRules | None:
    """The rules as seen after the first `waves` waves (for backtests)."""
    return None if rules is None else dataclasses.replace(rules, counts=rules.counts[:, :, :waves])


def flat_veto_rate(vetoed: np.ndarray) -> float:
    """The province's historical chance of a veto per county-wave (Jeffreys-smoothed)."""
    return float((vetoed.sum() + 0.5) / (vetoed.size + 1))


def _is_count(values: np.ndarray) -> bool:
    known = values[~np.isnan(values)]
    return known.size > 0 and bool(np.all(known >= 0)) and bool(np.all(known == np.round(known)))


def _fires(op: str, values: np.ndarray, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        fired = {">=": values >= threshold, ">": values > threshold, "<=": values <= threshold,
                 "<": values < threshold, "==": values == threshold}[op]
    return fired & ~np.isnan(values)


@dataclass(frozen=True)
class CountFit:
    mean: np.ndarray         # C: the next wave's expected count for the province's county of its size
    total: np.ndarray        # C: events seen
    expected: np.ndarray     # C: events expected over the waves seen
    dispersion: float        # 1/α, between-county spread of the rate (0: none beyond exposure)
    slope: float             # b, exposure slope


def fit_counts(counts: np.ndarray, population: np.ndarray) -> CountFit:
    """Poisson GLM on log exposure (MAP, see the module notes) and the moment estimate of 1/α."""
    seen = ~np.isnan(counts)
    waves = seen.sum(axis=1).astype(float)
    total = np.nansum(counts, axis=1)
    known_pop = np.isfinite(population) & (population > 0)
    x = np.where(known_pop, np.log(np.where(known_pop, population, 1.0)), np.nan)
    x = np.where(known_pop, x - np.nanmean(x) if known_pop.any() else 0.0, 0.0)
    rate0 = (total.sum() + _RATE_SHAPE) / max(waves.sum(), 1.0)
    a, b = np.log(rate0), 0.0
    for _ in range(50):
        mu = np.exp(a + b * x) * waves
        grad = np.array([total.sum() - mu.sum() + _RATE_SHAPE,
                         np.sum(x * (total - mu)) - b / _SLOPE_SD**2])
        hess = np.array([[mu.sum(), np.sum(x * mu)],
                         [np.sum(x * mu), np.sum(x * x * mu) + 1 / _SLOPE_SD**2]])
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        a, b = a + step[0], b + step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    per_wave = np.exp(a + b * x)
    expected = per_wave * waves
    counted = waves > 0
    excess = np.sum(((total - expected) ** 2 - total)[counted])
    dispersion = max(0.0, float(excess / np.sum(expected[counted] ** 2))) if counted.any() else 0.0
    return CountFit(per_wave, total, expected, dispersion, float(b))


def _at_most(k: np.ndarray, fit: CountFit) -> np.ndarray:
    """P(next count ≤ k) per county: negative binomial posterior predictive (Poisson if 1/α = 0)."""
    k = np.asarray(k, dtype=float)
    if fit.dispersion <= 0:
        out = gammaincc(np.maximum(k, 0) + 1, fit.mean)
    else:
        alpha = 1 / fit.dispersion
        shape = alpha + fit.total
        rate = alpha + fit.expected
        mean = fit.mean
        out = betainc(shape, np.maximum(k, 0) + 1, rate / (rate + mean))
    return np.where(k < 0, 0.0, out)


def rule_probability(op: str, threshold: float, fit: CountFit) -> np.ndarray:
    """C: P(the rule fires next wave) for a rule on a count."""
    lower = np.ceil(threshold) - 1          # the largest count below a ">=" threshold
    if op == ">=":
        return 1 - _at_most(np.full(fit.mean.size, lower), fit)
    if op == ">":
        return 1 - _at_most(np.full(fit.mean.size, np.floor(threshold)), fit)
    if op == "<=":
        return _at_most(np.full(fit.mean.size, np.floor(threshold)), fit)
    if op == "<":
        return _at_most(np.full(fit.mean.size, lower), fit)
    if threshold != np.round(threshold):    # "==" a fraction: a count never equals it
        return np.zeros(fit.mean.size)
    at = np.full(fit.mean.size, threshold)
    return _at_most(at, fit) - _at_most(at - 1, fit)


def rule_chances(rules: VetoRules) -> np.ndarray | None:
    """C: each county's chance that one of the count rules fires next wave (1 − Π(1 − P)), from
    the count model; None when no rule is on a count."""
    stay, modelled = np.ones(rules.counts.shape[1]), False
    for r, (op, threshold) in enumerate(zip(rules.ops, rules.thresholds, strict=True)):
        counts = rules.counts[r]
        if _is_count(counts):
            fit = fit_counts(counts, rules.population)
            stay *= 1 - np.clip(rule_probability(op, threshold, fit), 0.0, 1.0)
            modelled = True
    return 1 - stay if modelled else None


def relative_risk(rules: VetoRules | None) -> np.ndarray | None:
    """C: each county's veto risk relative to the province's mean (mean 1), from the count rules."""
    if rules is None or rules.counts.shape[2] == 0:
        return None
    chances = rule_chances(rules)
    if chances is None or not np.isfinite(chances).all() or chances.mean() <= 0:
        return None
    return chances / chances.mean()


def blend_weight(vetoed: np.ndarray, rules: VetoRules | None) -> float:
    """How much of the county model to trust, w in P = flat·(1 − w + w·RR): on a grid, the log
    score when each wave of the history is predicted from the others, and the smallest w within
    one standard error of the best (paired, county-wave by county-wave, against w = 0). A
    province whose vetoes show no pattern by county beyond chance keeps the flat rate (w = 0); one
    whose veto risk differs between counties earns w → 1. Fewer than two waves: 0."""
    waves = vetoed.shape[1]
    if rules is None or waves < 2:
        return 0.0
    grid = np.linspace(0.0, 1.0, 11)
    cells = []
    for held in range(waves):
        keep = [w for w in range(waves) if w != held]
        rr = relative_risk(dataclasses.replace(rules, counts=rules.counts[:, :, keep]))
        if rr is None:
            return 0.0
        flat = flat_veto_rate(vetoed[:, keep])
        outcome = vetoed[:, held]
        p = np.clip(flat * (1 - grid[:, None] + grid[:, None] * rr[None, :]), 1e-9, 1 - 1e-9)
        cells.append(-np.where(outcome[None, :], np.log(p), np.log(1 - p)))
    loss = np.concatenate(cells, axis=1)                 # grid × county-waves
    gain = loss - loss[:1]                               # paired against the flat rate
    best = int(np.argmin(gain.sum(axis=1)))
    # one-standard-error rule: the county model must beat the flat rate by more than the noise
    # of that comparison, else the simplest weight within that noise of the best is taken
    noise = np.sqrt(gain.shape[1]) * gain[best].std()
    within = gain.sum(axis=1) <= gain[best].sum() + noise
    return float(grid[int(np.argmax(within))])


def veto_probabilities(vetoed: np.ndarray, rules: VetoRules | None) -> np.ndarray:
    """C: each county's chance of a veto at the next wave: the flat provincial rate (all vetoes,
    whatever the rule) times the county's relative risk from the count rules, blended by
    `blend_weight`. Without rules (a history scored before rules were recorded) every county gets
    the flat historical rate."""
    flat = flat_veto_rate(vetoed)
    rr = relative_risk(rules)
    if rr is None:
        return np.full(vetoed.shape[0], flat)
    w = blend_weight(vetoed, rules)
    return np.clip(flat * (1 - w + w * rr), 0.0, 1.0)


def backtest_veto_risk(vetoed: np.ndarray, rules: VetoRules | None, waves: list[str],
                       min_history: int = 1) -> pl.DataFrame:
    """Rolling origin: every wave t ≥ `min_history` predicted from the waves before it, per-county
    model beside the flat rate. One row per wave: Brier score, log score (mean −log likelihood,
    lower is better), vetoes seen, counties."""
    rows = []
    eps = 1e-12
    for t in range(min_history, vetoed.shape[1]):
        outcome = vetoed[:, t].astype(float)
        model = veto_probabilities(vetoed[:, :t], until(rules, t))
        flat = np.full(outcome.size, flat_veto_rate(vetoed[:, :t]))

        def scores(p: np.ndarray) -> tuple[float, float]:
            p = np.clip(p, eps, 1 - eps)
            return (float(np.mean((p - outcome) ** 2)),  # noqa: B023
                    float(-np.mean(outcome * np.log(p) + (1 - outcome) * np.log(1 - p))))  # noqa: B023

        rows.append((waves[t], *scores(model), *scores(flat), int(outcome.sum()), outcome.size))
    return pl.DataFrame(rows, schema=["wave", "brier_model", "log_model", "brier_flat", "log_flat",
                                      "vetoes", "counties"], orient="row")
