"""Next-wave risk: the chance that a county's PUBLISHED score at the next survey lands in the bottom
3 or bottom 10.

The model works on each county's deviation from the wave's provincial mean (a province-wide shift
moves no rank), d[c, w], observed with the survey's sampling variance V[c, w] = se²:

    true deviation   θ[c, w] = ρ·θ[c, w−1] + β[c] + η,   η ~ N(0, σ²_η)  (persistence, drift and
                                                                          wave-to-wave variability)
    published        d[c, w] = θ[c, w] + e,             e ~ N(0, V[c, w])

- ρ (persistence) is the pooled regression of each deviation on the previous one, corrected for the
  survey noise (errors in variables); ρ < 1 is regression to the mean, which a league table of noisy
  estimates always shows and which listed counties under rectification show strongly.
- σ²_η is estimated from the whole history by the method of moments: the spread of d[w] − ρ·d[w−1]
  around each county's drift, less the part the survey noise explains.
- A county's drift β is the mean of its d[w] − ρ·d[w−1] shrunk toward the province (0) with the
  normal–normal weight v_β / (v_β + s²/m): a county with a short or noisy history gets little drift
  of its own. v_β is the between-county spread of drifts, estimated the same way.
- Rectification: counties in the published bottom 3 (listed) are compared in the next wave with
  the others; that average extra change, and its spread, apply to the counties listed now
  (history shows listed counties either climb out or stay: a wider spread than ordinary counties).
- A Kalman filter (scalar state per county, vectorised over counties, looping over waves) gives the
  current true deviation and its variance; the prediction adds β, σ²_η, the drift's own uncertainty
  and the sampling variance of the next survey (today's se², scaled by today's n / planned n).
- Vetoes are events, not trends: the history uses scores before any veto, and every county gets the
  province's historical veto rate of landing at 0 (the bottom) next time.
Draws of all counties' next published deviations give P(bottom k) by counting, as for this wave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core.parallel import draw_blocks, map_blocks
from pipelines.ranking.ranks import bottom_probabilities, in_bottom, rank_scores
from pipelines.stats.wave_scores import WaveScores


@dataclass(frozen=True)
class History:
    counties: list[str]
    waves: list[str]
    deviation: np.ndarray   # C × T (NaN where missing)
    variance: np.ndarray    # C × T sampling variance
    n: np.ndarray           # C × T respondents
    published: np.ndarray   # C × T published scores (after vetoes), for backtests
    vetoed: np.ndarray      # C × T bool


def history_of(scores: Sequence[WaveScores]) -> History:
    """Stack the scored waves (oldest first) on the county list of the newest."""
    counties = scores[-1].composite["county_code"].to_list()
    order = pl.DataFrame({"county_code": counties})
    columns: dict[str, list[np.ndarray]] = {"raw": [], "se": [], "n": [], "score": [],
                                            "veto": []}
    for wave in scores:
        frame = order.join(wave.composite, on="county_code", how="left", maintain_order="left")
        columns["raw"].append(frame["score_before_veto"].cast(pl.Float64).fill_null(np.nan)
                              .to_numpy())
        columns["se"].append(frame["se"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["n"].append(frame["n"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["score"].append(frame["score"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["veto"].append(frame["veto"].fill_null(False).to_numpy())
    raw = np.column_stack(columns["raw"])
    se = np.column_stack(columns["se"])
    # a vetoed wave publishes se 0; its pre-veto precision is that of a county of its size
    se = np.where((se == 0) | np.isnan(se), np.nanmedian(se[se > 0]), se)
    deviation = raw - np.nanmean(raw, axis=0, keepdims=True)
    return History(counties, [w.wave for w in scores], deviation, se**2,
                   np.column_stack(columns["n"]), np.column_stack(columns["score"]),
                   np.column_stack(columns["veto"]).astype(bool))


def veto_rate(history: History) -> float:
    """The chance a county is vetoed in a wave, from the history (Jeffreys-smoothed): a veto puts
    any county at the bottom, so it belongs in the next-wave risk of everyone."""
    return float((history.vetoed.sum() + 0.5) / (history.vetoed.size + 1))


@dataclass(frozen=True)
class NextWave:
    mean: np.ndarray        # predicted published deviation
    variance: np.ndarray
    drift: np.ndarray
    sigma2_eta: float
    var_drift_between: float
    rho: float
    listing_effect: float


def persistence(history: History) -> float:
    """ρ of θ[w] = ρ·θ[w−1] + …, pooled over counties and waves: the regression of each deviation
    on the previous one, corrected for the survey noise in the previous one (errors in variables).
    ρ < 1 is regression to the mean: extreme counties drift back toward the province."""
    d, v = history.deviation, history.variance
    if d.shape[1] < 2:
        return 1.0
    before, after = d[:, :-1].ravel(), d[:, 1:].ravel()
    keep = ~(np.isnan(before) | np.isnan(after))
    if keep.sum() < 10:
        return 1.0
    before, after = before[keep], after[keep]
    signal = np.var(before) - np.nanmean(v[:, :-1].ravel()[keep])
    if signal <= 0:
        return 1.0
    rho = float(np.mean((before - before.mean()) * (after - after.mean())) / signal)
    return float(np.clip(rho, 0.0, 1.0))


def listed_in_history(history: History, bottom: int) -> np.ndarray:
    """C × T: in the published bottom `bottom` of that wave (the counties put under 挂牌整治)."""
    def listed(x: np.ndarray) -> np.ndarray:  # a wave with too few counties lists nobody
        return in_bottom(x, bottom) if np.sum(~np.isnan(x)) > bottom else np.zeros(x.size, bool)
    return np.column_stack([listed(history.published[:, w])
                            for w in range(history.published.shape[1])])


def predict_next(history: History, planned_n: np.ndarray | float | None = None,
                 bottom: int = 3) -> NextWave:
    d, v = history.deviation, history.variance
    rho = persistence(history)
    diff = d[:, 1:] - rho * d[:, :-1]
    noise = v[:, 1:] + rho**2 * v[:, :-1]
    # rectification: how counties did in the wave after landing in the bottom (listed), compared
    # with the others, and how much that varied; applied to the counties listed now
    listed = listed_in_history(history, bottom)
    after_listing = listed[:, :-1] & ~np.isnan(diff)
    listing_effect, listing_spread = 0.0, None
    if after_listing.sum() >= 2:
        others = ~listed[:, :-1] & ~np.isnan(diff)
        listing_effect = float(np.mean(diff[after_listing]) - np.mean(diff[others]))
        listing_spread = float(np.var(diff[after_listing], ddof=1) - np.mean(noise[after_listing]))
    diff = np.where(listed[:, :-1], np.nan, diff)   # drift and σ²_η from the ordinary waves
    m = np.sum(~np.isnan(diff), axis=1)
    sums = np.nansum(diff, axis=1) if diff.size else np.zeros(d.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_drift = np.where(m > 0, sums / np.maximum(m, 1), 0.0)
    raw_drift = np.nan_to_num(raw_drift)
    usable = m >= 2
    if usable.any():
        resid = (diff - raw_drift[:, None])[usable]
        scale = (m[usable] / (m[usable] - 1))[:, None]
        sigma2_eta = float(np.nanmean(resid**2 * scale - noise[usable]))
    else:
        sigma2_eta = float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0
    sigma2_eta = max(sigma2_eta, 0.05 * float(np.nanmedian(v)))
    counted = ~np.isnan(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_noise = np.where(counted.any(axis=1), np.nansum(np.where(counted, noise, np.nan),
                                                             axis=1) / counted.sum(axis=1), np.nan) \
            if diff.size else np.full(d.shape[0], np.nan)
    s2 = sigma2_eta + np.nan_to_num(mean_noise, nan=2 * float(np.nanmedian(v)))
    with np.errstate(invalid="ignore", divide="ignore"):
        drift_noise = np.where(m > 0, s2 / np.maximum(m, 1), np.inf)
    has = m > 0
    var_between = max(float(np.var(raw_drift[has]) - np.mean(drift_noise[has])), 0.0) \
        if has.sum() > 2 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(has, var_between / (var_between + drift_noise), 0.0)
    drift = weight * raw_drift
    drift_var = np.where(has, weight * np.where(has, drift_noise, 0.0), var_between)

    # Kalman filter of the level (θ[w] = ρ·θ[w−1] + β + η), every county at once
    level = np.full(d.shape[0], np.nan)
    level_var = np.full(d.shape[0], np.inf)
    for w in range(d.shape[1]):
        prior = np.where(np.isnan(level), np.nan, rho * level + drift)
        prior_var = rho**2 * level_var + sigma2_eta
        y, obs_var = d[:, w], v[:, w]
        seen = ~np.isnan(y)
        first = seen & np.isnan(prior)
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.where(seen & ~first, prior_var / (prior_var + obs_var), 0.0)
        level = np.where(first, y, np.where(seen, prior + gain * (y - prior), prior))
        level_var = np.where(first, obs_var, np.where(seen, (1 - gain) * prior_var, prior_var))
    current_n = history.n[:, -1]
    ratio = 1.0 if planned_n is None else current_n / np.asarray(planned_n, dtype=float)
    next_sampling = v[:, -1] * np.nan_to_num(ratio, nan=1.0)
    listed_now = listed[:, -1]
    change_var = np.where(listed_now & (listing_spread is not None),
                          max(listing_spread or 0.0, sigma2_eta), sigma2_eta)
    mean = rho * level + drift + np.where(listed_now, listing_effect, 0.0)
    variance = rho**2 * level_var + change_var + drift_var + next_sampling
    return NextWave(mean, variance, drift, sigma2_eta, var_between, rho, listing_effect)


def next_wave_probabilities(history: History, *, draws: int = 10_000, seed: int = 0,
                            bottoms: tuple[int, ...] = (3, 10),
                            planned_n: np.ndarray | float | None = None) -> dict[int, np.ndarray]:
    forecast = predict_next(history, planned_n, bottom=min(bottoms))
    known = ~np.isnan(forecast.mean)
    mean, sd = forecast.mean[known], np.sqrt(forecast.variance[known])
    vetoes = veto_rate(history)
    every_county = bool(known.all())
    shape = (draws, forecast.mean.size)
    # no forecast: never at the bottom
    sample = np.empty(shape) if every_county else np.full(shape, np.inf)

    def fill(block: tuple[slice, np.random.Generator]) -> None:
        rows, rng = block
        part = sample[rows]                                 # a view: filled in place
        if every_county:                                    # in place, without a copy
            rng.standard_normal(out=part)
            part *= sd
            part += mean
        else:
            part[:, known] = mean + sd * rng.standard_normal((part.shape[0], mean.size))
        # vetoed (score 0), each county in each draw with chance `vetoes`: as many cells as a
        # binomial count, placed uniformly, instead of a uniform draw for every cell
        cells = part.reshape(-1)
        cells[rng.choice(cells.size, rng.binomial(cells.size, vetoes), replace=False)] = -np.inf

    map_blocks(fill, draw_blocks(draws, seed, 1000), sample.size)
    return bottom_probabilities(sample, bottoms)


def backtest(scores: Sequence[WaveScores], *, draws: int = 4000, seed: int = 0,
             bottoms: tuple[int, ...] = (3, 10), min_history: int = 2) -> pl.DataFrame:
    """For every wave with at least `min_history` earlier waves: the Brier score of the model's
    P(bottom k) against the published ranking, beside the naive rule "same rank as now"
    (probability 1 for the counties in the bottom k now, 0 for the others)."""
    rows = []
    for t in range(min_history, len(scores)):
        history = history_of(scores[:t])
        target = history_of(scores[: t + 1])
        probabilities = next_wave_probabilities(history, draws=draws, seed=seed, bottoms=bottoms)
        now_rank = rank_scores(history.published[:, -1])
        next_rank = rank_scores(target.published[:, -1])
        n = np.sum(~np.isnan(next_rank))
        for k in bottoms:
            outcome = (next_rank > n - k).astype(float)
            naive = (now_rank > np.sum(~np.isnan(now_rank)) - k).astype(float)
            rows.append((scores[t].wave, k, float(np.mean((probabilities[k] - outcome) ** 2)),
                         float(np.mean((naive - outcome) ** 2)), int(outcome.size)))
    return pl.DataFrame(rows, schema=["wave", "bottom", "brier_model", "brier_naive", "counties"],
                        orient="row")
