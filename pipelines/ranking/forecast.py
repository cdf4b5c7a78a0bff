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
- Rectification (整治): counties listed on their survey score (published bottom 3, not by a veto)
  are compared in the next wave with the filter's own prediction of their next deviation (the
  innovation), less the others' mean innovation: the filtered level has already pulled a noisy low
  score back (regression to the mean), so that rebound is not counted again. The effect comes with
  its se and between-county spread, and is shrunk toward 0 when it rests on few cells
  (`listing_effect`); it applies to the counties listed now on their score.
- A Kalman filter (scalar state per county, vectorised over counties, looping over waves) gives the
  current true deviation and its variance; the prediction adds β, σ²_η, the drift's own uncertainty
  and the sampling variance of the next survey (today's se², scaled by today's n / planned n).
- Vetoes are events, not trends: the history uses scores before any veto, and each county lands
  at 0 (the bottom) next time with its own chance of a veto, from the counts its veto rules saw
  (events below the threshold included) and its size, shrunk toward the province
  (pipelines/ranking/veto_risk.py; the flat historical rate when the rules' inputs are unknown).
Draws of all counties' next published deviations give P(bottom k) by counting, as for this wave:
the chance of being LISTED in the bottom k next time (被列入后k名, ties at the line all listed, as
the listing engine lists). Vetoes tie counties at 0, so these add up to the expected number listed,
more than k (`ranks.listing_probabilities`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core.parallel import draw_blocks, map_blocks
from pipelines.ranking.ranks import in_bottom, listing_probabilities, rank_scores
from pipelines.ranking.veto_risk import VetoRules, flat_veto_rate, veto_probabilities, veto_rules_of
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
    # C × T: the part of `variance` that comes from the survey (scales as 1/n); the rest is the
    # Poisson noise of counts, which no number of interviews changes. None: all of it is survey.
    survey_variance: np.ndarray | None = None
    veto_rules: VetoRules | None = None     # what the veto rules saw per wave (None: unknown)

    def survey_part(self) -> np.ndarray:
        return self.variance if self.survey_variance is None else self.survey_variance


def history_of(scores: Sequence[WaveScores]) -> History:
    """Stack the scored waves (oldest first) on the county list of the newest."""
    counties = scores[-1].composite["county_code"].to_list()
    order = pl.DataFrame({"county_code": counties})
    columns: dict[str, list[np.ndarray]] = {"raw": [], "se": [], "n": [], "score": [],
                                            "veto": [], "survey": []}
    for wave in scores:
        frame = order.join(wave.composite, on="county_code", how="left", maintain_order="left")
        columns["survey"].append(order.join(_survey_variance(wave), on="county_code", how="left",
                                            maintain_order="left")["survey_variance"]
                                 .fill_null(np.nan).to_numpy())
        columns["raw"].append(frame["score_before_veto"].cast(pl.Float64).fill_null(np.nan)
                              .to_numpy())
        columns["se"].append(frame["se"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["n"].append(frame["n"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["score"].append(frame["score"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        columns["veto"].append(frame["veto"].fill_null(False).to_numpy())
    raw = np.column_stack(columns["raw"])
    se = np.column_stack(columns["se"])
    survey = np.column_stack(columns["survey"])
    vetoed = np.column_stack(columns["veto"]).astype(bool)
    variance = se**2
    published = (se > 0) & ~np.isnan(se)
    survey = np.where(published, np.minimum(survey, variance), survey)
    # a vetoed wave publishes se 0; its pre-veto precision is its own survey part plus the typical
    # count part (or, without a survey part, that of a county of its size)
    counts = np.nanmedian((variance - survey)[published]) if published.any() else 0.0
    variance = np.where(published, variance, np.where(np.isnan(survey),
                                                      np.nanmedian(variance[published]),
                                                      survey + counts))
    survey = np.where(np.isnan(survey), variance, survey)
    deviation = raw - np.nanmean(raw, axis=0, keepdims=True)
    return History(counties, [w.wave for w in scores], deviation, variance,
                   np.column_stack(columns["n"]), np.column_stack(columns["score"]), vetoed,
                   survey, veto_rules_of([w.veto_inputs for w in scores], counties))


def _survey_variance(wave: WaveScores) -> pl.DataFrame:
    """county_code, survey_variance: the survey part of the composite's variance, b'Σb (the part
    a bigger sample shrinks). When a survey component is normalised across counties the survey
    part is not separable: the whole published variance counts as survey (NaN here)."""
    model = wave.model
    part = np.full(len(model.counties), np.nan) if model.random_survey() \
        else model.survey_part_variance()
    return pl.DataFrame({"county_code": model.counties, "survey_variance": part},
                        schema={"county_code": pl.String, "survey_variance": pl.Float64})


def veto_rate(history: History) -> float:
    """The province's flat chance of a veto per county-wave (Jeffreys-smoothed), the fallback of
    the per-county model `veto_risk`."""
    return flat_veto_rate(history.vetoed)


def veto_risk(history: History) -> np.ndarray:
    """C: each county's chance of a veto at the next wave (pipelines/ranking/veto_risk.py)."""
    return veto_probabilities(history.vetoed, history.veto_rules)


@dataclass(frozen=True)
class NextWave:
    mean: np.ndarray        # predicted published deviation
    variance: np.ndarray
    drift: np.ndarray
    sigma2_eta: float
    var_drift_between: float
    rho: float
    listing_effect: float       # shrunk, from survey-score listings (see `listing_effect`)
    listing_effect_se: float = 0.0
    listing_cells: int = 0
    listing_effect_raw: float = 0.0


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
    listed = listed_in_history(history, bottom)
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

    # rectification (整治): counties listed on their SURVEY score (not by a veto, whose pre-veto
    # score says nothing about the listing) against the filter's own prediction of their next
    # deviation; the filtered level already accounts for regression to the mean, so the effect is
    # what is left over, not the raw rebound of a noisy low score
    rectified = listed & ~history.vetoed
    first = _kalman(d, v, rho, drift, sigma2_eta)
    effect = listing_effect(first, rectified, sigma2_eta, d[:, -1], v[:, -1])
    level, level_var = _kalman(d, v, rho, drift, sigma2_eta, rectified, effect.effect)[:2]
    next_sampling = next_sampling_variance(history, planned_n)
    listed_now = rectified[:, -1]
    mean = rho * level + drift + np.where(listed_now, effect.effect, 0.0)
    change_var = sigma2_eta + np.where(listed_now, effect.spread + effect.se**2, 0.0)
    variance = rho**2 * level_var + change_var + drift_var + next_sampling
    return NextWave(mean, variance, drift, sigma2_eta, var_between, rho, effect.effect,
                    effect.se, effect.cells, effect.raw)


def _kalman(d: np.ndarray, v: np.ndarray, rho: float, drift: np.ndarray, sigma2_eta: float,
            rectified: np.ndarray | None = None, effect: float = 0.0) -> tuple[np.ndarray, ...]:
    """Kalman filter of the level θ[w] = ρ·θ[w−1] + β (+ the listing effect after a listing) + η,
    every county at once: the filtered level and its variance after the last wave, and per wave
    the innovation (observed − predicted) and its variance (NaN where there was no prediction)."""
    level = np.full(d.shape[0], np.nan)
    level_var = np.full(d.shape[0], np.inf)
    innovation = np.full(d.shape, np.nan)
    innovation_var = np.full(d.shape, np.nan)
    for w in range(d.shape[1]):
        bump = effect * rectified[:, w - 1] if rectified is not None and w > 0 else 0.0
        prior = np.where(np.isnan(level), np.nan, rho * level + drift + bump)
        prior_var = rho**2 * level_var + sigma2_eta
        y, obs_var = d[:, w], v[:, w]
        seen = ~np.isnan(y)
        first = seen & np.isnan(prior)
        predicted = seen & ~first
        innovation[predicted, w] = (y - prior)[predicted]
        innovation_var[predicted, w] = (prior_var + obs_var)[predicted]
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.where(predicted, prior_var / (prior_var + obs_var), 0.0)
        level = np.where(first, y, np.where(seen, prior + gain * (y - prior), prior))
        level_var = np.where(first, obs_var, np.where(seen, (1 - gain) * prior_var, prior_var))
    return level, level_var, innovation, innovation_var


@dataclass(frozen=True)
class ListingEffect:
    effect: float     # shrunk estimate: extra change in the wave after a listing (points)
    se: float         # its posterior sd
    raw: float        # before shrinkage
    spread: float     # between-county variance of the effect (DerSimonian–Laird), ≥ 0
    cells: int        # county-waves it rests on


def listing_effect(filtered: tuple[np.ndarray, ...], rectified: np.ndarray, sigma2_eta: float,
                   latest: np.ndarray, latest_var: np.ndarray) -> ListingEffect:
    """The mean innovation of the wave after a survey-score listing, less that of the others
    (the model's own misfit), inverse-variance weighted, with its se and the between-county
    spread; then shrunk toward 0 with the normal prior N(0, A), A the spread of true deviations:
    with few cells the estimate is pulled in, with many it stands."""
    innovation, innovation_var = filtered[2][:, 1:], filtered[3][:, 1:]
    known = ~np.isnan(innovation)
    cells = rectified[:, :-1] & known
    others = ~rectified[:, :-1] & known
    if cells.sum() == 0 or others.sum() < 2:
        return ListingEffect(0.0, 0.0, 0.0, 0.0, int(cells.sum()))
    u, s = innovation[cells], innovation_var[cells]
    baseline = float(np.mean(innovation[others]))
    baseline_var = float(np.var(innovation[others])) / others.sum()
    w = 1 / s
    fixed = float(np.sum(w * u) / w.sum())
    q = float(np.sum(w * (u - fixed) ** 2))
    spread = max(0.0, (q - (u.size - 1)) / (w.sum() - np.sum(w**2) / w.sum())) if u.size > 1 \
        else 0.0
    w = 1 / (s + spread)
    raw = float(np.sum(w * u) / w.sum()) - baseline
    var = 1 / float(w.sum()) + baseline_var
    prior = max(float(np.nanvar(latest) - np.nanmean(latest_var)), sigma2_eta)
    shrink = prior / (prior + var)
    return ListingEffect(raw * shrink, float(np.sqrt(var * shrink)), raw, spread,
                         int(cells.sum()))


def next_sampling_variance(history: History,
                           planned_n: np.ndarray | float | None = None) -> np.ndarray:
    """C: the sampling variance of the next published score with `planned_n` interviews per
    county: the survey part of the latest wave scaled by n_now / n_planned (same design effect per
    interview), plus the Poisson part of the counts, which the number of interviews does not
    change. None: a survey of today's size."""
    total = history.variance[:, -1]
    survey = np.minimum(history.survey_part()[:, -1], total)
    if planned_n is None:
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = history.n[:, -1] / np.asarray(planned_n, dtype=float)
    return survey * np.nan_to_num(ratio, nan=1.0, posinf=np.inf) + (total - survey)


def next_wave_probabilities(history: History, *, draws: int = 10_000, seed: int = 0,
                            bottoms: tuple[int, ...] = (3, 10),
                            planned_n: np.ndarray | float | None = None,
                            vetoes: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """P(listed in the bottom k next wave) per county; `vetoes`: each county's chance of a veto
    (default: `veto_risk`)."""
    forecast = predict_next(history, planned_n, bottom=min(bottoms))
    known = ~np.isnan(forecast.mean)
    mean, sd = forecast.mean[known], np.sqrt(forecast.variance[known])
    vetoes = (veto_risk(history) if vetoes is None
              else np.broadcast_to(np.asarray(vetoes, dtype=float), forecast.mean.shape))
    veto_chance = vetoes.astype(np.float32)
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
        # vetoed (score 0), each county in each draw with its own chance (single precision:
        # the chances are far coarser than 2⁻²⁴)
        part[rng.random(part.shape, dtype=np.float32) < veto_chance] = -np.inf

    map_blocks(fill, draw_blocks(draws, seed, 1000), sample.size)
    return listing_probabilities(sample, bottoms)


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
