"""Ranks and how sure they are: published rank, P(bottom 3/10) now, rank intervals, rank confidence
sets (Mogstad, Romano, Shaikh & Wilhelm), gap to the cut lines and the levers that move a score.

Rank 1 is the best (highest score). "This wave" asks whether a county's TRUE standing is in the
bottom k: the simulation draws every county's score from its sampling distribution
(`ScoreModel.draw`: re-normalising relative components and redrawing Poisson counts in each draw) and
counts how often each county is among the k lowest (Goldstein & Spiegelhalter 1996). The published
rank itself is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from pipelines.core.parallel import map_blocks
from pipelines.scheme.definitions import Scheme
from pipelines.stats.normalise import normalise
from pipelines.stats.wave_scores import WaveScores

DRAWS = 10_000


def rank_scores(score: np.ndarray, ties: str = "min") -> np.ndarray:
    """Rank 1 = highest score. ties: min (1,2,2,4), average, first (in the given order).
    Missing scores get no rank (NaN)."""
    x = np.asarray(score, dtype=np.float64)
    known = ~np.isnan(x)
    method = {"min": "min", "average": "average", "first": "ordinal"}[ties]
    ranks = np.full(x.size, np.nan)
    ranks[known] = pl.Series(-x[known]).rank(method=method).cast(pl.Float64).to_numpy()
    return ranks


def rank_column(name: str, ranks: np.ndarray) -> pl.Series:
    """Ranks (from `rank_scores` or a simulation) as an integer column, null where a county has
    none: a county without a score, e.g. not yet surveyed in a partly uploaded wave."""
    return pl.Series(name, ranks).fill_nan(None).cast(pl.Int64)


def in_bottom(score: np.ndarray, k: int) -> np.ndarray:
    """Among the k lowest: at or below the k-th lowest score, so ties at the line are all in (as
    `min` ranks); a missing score is never in."""
    x = np.asarray(score, dtype=np.float64)
    known = ~np.isnan(x)
    if known.sum() == 0:
        return np.zeros(x.size, dtype=bool)
    kth = np.sort(x[known])[min(k, int(known.sum())) - 1]
    return known & (np.where(known, x, np.inf) <= kth)


@dataclass(frozen=True)
class RankSimulation:
    p_bottom: dict[int, np.ndarray]   # k → P(true standing among the k lowest)
    rank_low: np.ndarray              # 2.5% quantile of the simulated rank
    rank_high: np.ndarray
    rank_median: np.ndarray


def simulate_ranks(draws: np.ndarray, bottoms: tuple[int, ...] = (3, 10), level: float = 0.95,
                   chunk: int = 1000) -> RankSimulation:
    """P(bottom k) and rank quantiles from score draws (n × C); P(bottom k) as in
    `bottom_probabilities`. Tied scores in a draw share the better rank (the scheme's default
    `min` rule).

    Blocks of draws are ranked in threads (`_rank_draws`); each county's ranks are kept (int16 up
    to 32,767 counties) and sorted once for the quantiles, instead of a county × rank histogram."""
    n_draws, n_counties = draws.shape
    ranks = np.empty((n_counties, n_draws), dtype=np.int16 if n_counties < 2**15 else np.int32)

    def rank_block(rows: slice) -> np.ndarray:
        block_ranks, hits = _rank_draws(draws[rows], ranks.dtype, bottoms)
        ranks[:, rows] = block_ranks.T
        return hits

    hits = sum(map_blocks(rank_block, _draw_slices(n_draws, chunk), draws.size))

    def sort_counties(counties: slice) -> None:
        ranks[counties].sort(axis=1, kind="stable")     # radix sort for 16-bit ranks

    map_blocks(sort_counties, _draw_slices(n_counties, max(1, n_counties // 8)), ranks.size)
    tail = (1 - level) / 2

    def quantile(p: float) -> np.ndarray:
        """The smallest rank r with P(rank ≤ r) ≥ p."""
        index = max(int(np.ceil(p * n_draws - 1e-9)) - 1, 0)
        return ranks[:, index].astype(np.float64)

    return RankSimulation({k: hits[i] / n_draws for i, k in enumerate(bottoms)}, quantile(tail),
                          quantile(1 - tail), quantile(0.5))


def _rank_draws(block: np.ndarray, dtype: np.dtype,
                bottoms: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`min` ranks (1 = highest) within each row of `block`, NaN last; and, for each k of
    `bottoms`, how many rows put each county in the bottom k (at or below the k-th lowest known
    score, which is a rank at least that score's rank).

    One sort of 64-bit integer keys instead of an argsort (which NumPy does not vectorise): the
    score's bits made order-preserving as a signed integer, with the county's index in the lowest
    ⌈log2 C⌉ bits, so the sorted keys carry both the order and who is where. Scores that agree in
    all but those lowest mantissa bits (a relative difference under 2⁻⁴⁰ for 2,850 counties, far
    below rounding noise) count as tied."""
    n_rows, n_counties = block.shape
    bits = max(1, (n_counties - 1).bit_length())
    index_mask = np.int64((1 << bits) - 1)
    key, missing = _descending_keys(block)
    key &= ~index_mask
    key |= np.arange(n_counties, dtype=np.int64)
    key.sort(axis=1)
    county = key & index_mask
    key >>= bits
    ranks = np.empty(block.shape, dtype=dtype)
    np.put_along_axis(ranks, county, np.broadcast_to(np.arange(1, n_counties + 1, dtype=dtype),
                                                     block.shape), axis=1)
    # ties are few (vetoed counties, fixed scores): each repeat takes its group's first position
    repeat = np.flatnonzero(key[:, 1:] == key[:, :-1])
    if repeat.size:
        row = repeat // (n_counties - 1)
        position = row * n_counties + repeat % (n_counties - 1) + 1   # flat, in sorted order
        starts_run = np.ones(position.size, dtype=bool)
        starts_run[1:] = np.diff(position) != 1
        first = (position[starts_run] - 1)[np.cumsum(starts_run) - 1]
        ranks.reshape(-1)[row * n_counties + county.reshape(-1)[position]] = \
            first % n_counties + 1
    known = n_counties - (missing.sum(axis=1) if missing is not None else np.zeros(n_rows, int))
    rows = np.arange(n_rows)
    hits = []
    for k in bottoms:
        line = ranks[rows, county[rows, np.maximum(known - k, 0)]]   # rank of the k-th lowest
        in_bottom = ranks >= line[:, None]
        if missing is not None:
            in_bottom &= ~missing
        hits.append(in_bottom.sum(axis=0))
    return ranks, np.stack(hits)


_ALL_BUT_SIGN = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _descending_keys(block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """int64 keys that sort ascending as the scores descend, −0.0 and +0.0 alike, NaN last (as
    −∞); and where the NaNs are (None when there are none)."""
    if block.dtype == np.float64 and block.min() >= 0:   # scores: no sign bits to handle
        key = np.add(block, 0.0).view(np.int64)
        np.invert(key, out=key)
        return key, None
    negated = np.subtract(0.0, block, dtype=np.float64)
    missing = np.isnan(negated)
    if missing.any():
        negated[missing] = np.inf
    else:
        missing = None
    key = negated.view(np.int64)
    key ^= (key >> 63) & _ALL_BUT_SIGN         # negative floats: reverse their order
    return key, missing


def bottom_probabilities(draws: np.ndarray, bottoms: tuple[int, ...] = (3, 10),
                         chunk: int = 1000) -> dict[int, np.ndarray]:
    """P(bottom k) from score draws (n × C): a county is in the bottom k of a draw when its score is
    at or below the k-th lowest known score (ties at the line count as in, as with `min`). Needs a
    partial sort per draw only, so it is cheaper than ranking."""
    n_draws, n_counties = draws.shape

    def count_block(rows: slice) -> np.ndarray:
        block = draws[rows]
        known = (~np.isnan(block)).sum(axis=1, keepdims=True)
        lines = sorted({min(k, n_counties) - 1 for k in bottoms})
        low = _partition_at(block, lines) if known.min() >= max(lines) + 1 \
            else np.sort(block, axis=1)                    # NaN last either way
        return np.stack([(block <= np.take_along_axis(
            low, np.clip(np.minimum(k, known) - 1, 0, None), axis=1)).sum(axis=0)
            for k in bottoms])

    hits = sum(map_blocks(count_block, _draw_slices(n_draws, chunk), draws.size))
    return {k: hits[i] / n_draws for i, k in enumerate(bottoms)}


def _partition_at(values: np.ndarray, kth: list[int]) -> np.ndarray:
    """np.partition(values, kth, axis=1) for ascending `kth`, as one partition at the largest and
    then ever shorter heads (NumPy's vectorised select is several times faster for one kth than
    for a list)."""
    out = np.partition(values, kth[-1], axis=1)
    for k, above in zip(reversed(kth[:-1]), reversed(kth[1:]), strict=False):
        out[:, :above] = np.partition(out[:, :above], k, axis=1)   # all below the last pivot
    return out


def _draw_slices(n_draws: int, chunk: int) -> list[slice]:
    return [slice(start, min(start + chunk, n_draws)) for start in range(0, n_draws, chunk)]


# -- frequentist rank confidence sets (Mogstad, Romano, Shaikh & Wilhelm; R package csranks) ------


def _bootstrap_errors(sigma: np.ndarray, replications: int, seed: int) -> np.ndarray:
    """p × R draws of the estimation errors, N(0, Σ) (the parametric bootstrap), one row per
    population so that a pair's two rows are contiguous."""
    var = np.diag(sigma)
    root = np.linalg.cholesky(sigma + 1e-12 * np.eye(var.size) * max(var.max(), 1e-12))
    # single precision: the bounds need the errors' quantiles to a few digits, and the stepdown
    # rounds stream these replicates through memory many times (half the bytes, half the time)
    return np.ascontiguousarray(
        (np.random.default_rng(seed).standard_normal((replications, var.size)) @ root.T).T,
        dtype=np.float32)


def _difference_bounds(x: np.ndarray, sigma: np.ndarray, i: np.ndarray, j: np.ndarray, kind: str,
                       coverage: float, stepdown: bool,
                       z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous bounds for θ_i − θ_j over the pairs (i[m], j[m]) from the p × R bootstrap
    errors `z`: kind "lower" (one-sided lower), "upper", or "symmetric"; stepdown drops rejected
    pairs and recomputes the critical value until nothing new is rejected (csranks'
    `csdiffmeans`). Only the listed pairs are touched: a population's marginal set needs 2(p − 1)
    of them, not a p × p matrix."""
    diff = x[i] - x[j]
    var = np.diag(sigma)
    sd = np.sqrt(np.maximum(var[i] + var[j] - 2 * sigma[i, j], 1e-300))
    low = np.full(i.size, -np.inf)
    high = np.full(i.size, np.inf)
    active = np.ones(i.size, dtype=bool)
    replications = z.shape[1]

    def largest(part: np.ndarray) -> np.ndarray:
        """Per replication, the largest standardised error over the pairs `part`."""
        scaled = _standardised_errors(z, i, j, sd, part)
        if kind == "upper":
            return -scaled.min(axis=0)
        if kind == "symmetric":
            np.abs(scaled, out=scaled)
        return scaled.max(axis=0)

    while active.any():
        live = np.flatnonzero(active)
        parts = [live[start:start + 4_000] for start in range(0, live.size, 4_000)]  # bounded
        statistic = np.max(map_blocks(largest, parts, live.size * replications), axis=0)  # memory
        critical = _quantile(statistic, coverage)
        if kind in ("lower", "symmetric"):
            low[live] = diff[live] - sd[live] * critical
        if kind in ("upper", "symmetric"):
            high[live] = diff[live] + sd[live] * critical
        rejected = active & ((low > 0) | (high < 0))
        if not stepdown or not rejected.any():
            break
        active &= ~rejected
    return low, high


def _standardised_errors(z: np.ndarray, i: np.ndarray, j: np.ndarray, sd: np.ndarray,
                         part: np.ndarray | slice) -> np.ndarray:
    """(z_i − z_j) / sd_ij for the pairs `part`, one row per pair, in z's precision."""
    scaled = z[i[part]]
    scaled -= z[j[part]]
    scaled *= (1 / sd[part, None]).astype(z.dtype)
    return scaled


def _marginal_counts(x: np.ndarray, sigma: np.ndarray, k: int, coverage: float,
                     z: np.ndarray) -> tuple[int, int]:
    """csranks' marginal set of population k (`_difference_bounds` with kind "lower" and stepdown
    over its 2(p − 1) pairs (k, j) and (j, k)): how many populations k is significantly above and
    below."""
    others = np.delete(np.arange(x.size), k)
    above, below = _paired_lower_bounds(x, sigma, np.full(others.size, k), others, coverage, z)
    return int((above > 0).sum()), int((below > 0).sum())


def _paired_lower_bounds(x: np.ndarray, sigma: np.ndarray, i: np.ndarray, j: np.ndarray,
                         coverage: float, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_difference_bounds(kind="lower", stepdown=True)` over the pairs (i, j) and (j, i) at once:
    the lower bounds for θ_i − θ_j and for θ_j − θ_i. The (j, i) errors are exactly the negated
    (i, j) ones, so each pair is standardised once per stepdown round instead of twice."""
    var = np.diag(sigma)
    sd = np.sqrt(np.maximum(var[i] + var[j] - 2 * sigma[i, j], 1e-300))
    diff = x[i] - x[j]
    low = np.full(i.size, -np.inf), np.full(i.size, -np.inf)     # (i, j) and (j, i)
    live = np.ones(i.size, dtype=bool), np.ones(i.size, dtype=bool)

    def largest(scaled: np.ndarray, part: np.ndarray | slice) -> np.ndarray:
        """Per replication, the largest standardised error over the live pairs of `part`."""
        out = np.full(z.shape[1], -np.inf, dtype=z.dtype)
        for sign, rows in ((1, live[0][part]), (-1, live[1][part])):
            if rows.any():
                chosen = scaled if rows.all() else scaled[rows]
                out = np.maximum(out, chosen.max(axis=0) if sign > 0 else -chosen.min(axis=0))
        return out

    # the standardised errors are kept across stepdown rounds when they fit in 16 MB
    stored = _standardised_errors(z, i, j, sd, slice(None)) \
        if i.size * z.shape[1] <= 4_000_000 else None
    while live[0].any() or live[1].any():
        if stored is not None:
            parts = [slice(start, start + 2_000) for start in range(0, i.size, 2_000)]
            statistic = np.max(map_blocks(lambda part: largest(stored[part], part), parts,
                                          stored.size), axis=0)
        else:
            pending = np.flatnonzero(live[0] | live[1])
            parts = [pending[start:start + 2_000] for start in range(0, pending.size, 2_000)]
            statistic = np.max(map_blocks(
                lambda part: largest(_standardised_errors(z, i, j, sd, part), part), parts,
                pending.size * z.shape[1]), axis=0)
        critical = _quantile(statistic, coverage)
        low[0][live[0]] = diff[live[0]] - sd[live[0]] * critical
        low[1][live[1]] = -diff[live[1]] - sd[live[1]] * critical
        rejected = live[0] & (low[0] > 0), live[1] & (low[1] > 0)
        if not (rejected[0].any() or rejected[1].any()):
            break
        live[0][rejected[0]] = False
        live[1][rejected[1]] = False
    return low


def _quantile(values: np.ndarray, q: float) -> float:
    """np.quantile's default (linear) quantile of a short vector, without its per-call overhead
    (called once per population and stepdown round)."""
    ordered = np.sort(values)
    position = q * (ordered.size - 1)
    below = int(np.floor(position))
    above = min(below + 1, ordered.size - 1)
    return float(ordered[below] + (position - below) * (ordered[above] - ordered[below]))


def _all_pairs(p: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.nonzero(~np.eye(p, dtype=bool))
    return i, j


BOOTSTRAP_LIMIT = 400  # beyond this many populations, Bonferroni critical values (see below)


def _bonferroni_counts(x: np.ndarray, sd: np.ndarray, critical: float,
                       chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """For independent estimates: per population, how many others it is significantly above
    (n_plus) and below (n_minus) with one-sided bounds x_i − x_j ∓ c·sd_ij; O(p²) in chunks."""
    p = x.size
    n_plus = np.zeros(p, dtype=np.int64)
    n_minus = np.zeros(p, dtype=np.int64)
    for start in range(0, p, chunk):
        rows = slice(start, start + chunk)
        diff = x[rows, None] - x[None, :]
        sd_ij = np.sqrt(sd[rows, None] ** 2 + sd[None, :] ** 2)
        n_plus[rows] = (diff - critical * sd_ij > 0).sum(axis=1)
        n_minus[rows] = (diff + critical * sd_ij < 0).sum(axis=1)
    return n_plus, n_minus


def rank_confidence_sets(x: np.ndarray, sigma: np.ndarray, *, coverage: float = 0.95,
                         simultaneous: bool = False, stepdown: bool = True,
                         replications: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided confidence sets [L, U] for the ranks of all populations (rank 1 = largest x),
    marginal (each covers its own rank with `coverage`) or simultaneous (all at once).

    Up to BOOTSTRAP_LIMIT populations: csranks' parametric bootstrap with stepdown. Beyond (a
    national table has ~2,850 counties and 8 million pairs), Bonferroni critical values for
    independent estimates: valid, somewhat wider, and O(p²) instead of O(R·p²) per population."""
    p = x.size
    if p > BOOTSTRAP_LIMIT:
        sd = np.sqrt(np.diag(sigma))
        comparisons = 2 * (p - 1) * (p if simultaneous else 1)
        critical = float(special.ndtri(1 - (1 - coverage) / comparisons))
        n_plus, n_minus = _bonferroni_counts(x, sd, critical)
        return n_minus + 1, p - n_plus
    z = _bootstrap_errors(sigma, replications, seed)   # shared by the populations' sets
    lower = np.empty(p, dtype=np.int64)
    upper = np.empty(p, dtype=np.int64)
    if stepdown and not simultaneous:
        for k in range(p):
            n_plus, n_minus = _marginal_counts(x, sigma, k, coverage, z)
            lower[k], upper[k] = n_minus + 1, p - n_plus
        return lower, upper
    # csranks: two-sided sets with stepdown use one-sided lower bounds on both orders of a pair
    # (simultaneous here; the marginal ones are `_marginal_counts` above)
    kind = "lower" if stepdown else "symmetric"
    groups = [np.arange(p)] if simultaneous else [np.array([k]) for k in range(p)]
    for indices in groups:
        if simultaneous:
            i, j = _all_pairs(p)
        else:
            others = np.delete(np.arange(p), indices[0])
            i, j = np.full(others.size, indices[0]), others
        low, high = _difference_bounds(x, sigma, i, j, kind, coverage, stepdown, z)
        mine = np.zeros(p, dtype=bool)
        mine[indices] = True
        above = low > 0
        n_plus = np.bincount(i[above & mine[i]], minlength=p)[indices]
        n_minus = (np.bincount(j[above & mine[j]], minlength=p) if stepdown
                   else np.bincount(i[(high < 0) & mine[i]], minlength=p))[indices]
        lower[indices] = n_minus + 1
        upper[indices] = p - n_plus
    return lower, upper


def tau_worst_sets(x: np.ndarray, sigma: np.ndarray, taus: tuple[int, ...], *,
                   coverage: float = 0.95, stepdown: bool = True, replications: int = 1000,
                   seed: int = 0) -> dict[int, np.ndarray]:
    """For each τ: which populations may be among the τ worst; the set contains all of the true
    τ worst with probability ≥ `coverage` (csranks' `cstauworst`; Bonferroni beyond
    BOOTSTRAP_LIMIT). One set of simultaneous lower bounds serves every τ."""
    p = x.size
    if p > BOOTSTRAP_LIMIT:
        critical = float(special.ndtri(1 - (1 - coverage) / (p * (p - 1))))
        n_plus, _ = _bonferroni_counts(x, np.sqrt(np.diag(sigma)), critical)
    else:
        z = _bootstrap_errors(sigma, replications, seed)
        if stepdown:
            i, j = np.triu_indices(p, 1)
            low_ij, low_ji = _paired_lower_bounds(x, sigma, i, j, coverage, z)
            n_plus = np.bincount(i[low_ij > 0], minlength=p) \
                + np.bincount(j[low_ji > 0], minlength=p)   # how many it is significantly above
        else:
            i, j = _all_pairs(p)
            low, _ = _difference_bounds(x, sigma, i, j, "lower", coverage, stepdown, z)
            n_plus = np.bincount(i[low > 0], minlength=p)
    return {tau: p - n_plus >= p - tau + 1 for tau in taus}


def tau_worst_set(x: np.ndarray, sigma: np.ndarray, tau: int, **options) -> np.ndarray:
    return tau_worst_sets(x, sigma, (tau,), **options)[tau]


# -- gaps and levers ---------------------------------------------------------------------------


def cut_line_gaps(score: np.ndarray, k: int) -> np.ndarray:
    """Points above (+) or below (−) the bottom-k cut line: for a county outside the bottom k, its
    margin over the k-th lowest score; for one inside, how far it must rise to pass the
    (k+1)-th lowest (negative)."""
    x = np.asarray(score, dtype=np.float64)
    ordered = np.sort(x[~np.isnan(x)])
    if ordered.size <= k:
        return np.full(x.size, np.nan)
    kth, next_up = ordered[k - 1], ordered[k]
    return np.where(x > kth, x - kth, x - next_up)


def component_levers(scores: WaveScores, step: float = 0.01) -> pl.DataFrame:
    """How much each component can lift a county's composite, per county:
    - `points_per_unit`: composite points per one unit of the component's RAW value (one point of
      a survey component, one unit of an indicator, in the direction that helps);
    - `points_per_sd`: the same for an improvement of one between-county standard deviation of
      that component, which makes components in different units comparable (the lever).
    Relative normalisations hold the other counties' yardstick fixed; zero where a goalpost is
    already reached."""
    model = scores.model
    per_unit, per_sd = [], []
    s = i = 0
    for comp in model.components:
        if comp.source == "survey":
            raw = model.survey_mean[:, s]
            s += 1
        else:
            raw = model.indicator_raw[:, i]
            i += 1
        better = step if comp.direction == "higher" else -step
        gain = normalise(raw + better, comp, reference=raw) - normalise(raw, comp, reference=raw)
        per_unit.append(gain / step * comp.weight / 100)
        spread = float(np.nanstd(raw)) if np.isfinite(raw).sum() > 1 else 0.0
        moved = raw + (spread if comp.direction == "higher" else -spread)
        per_sd.append((normalise(moved, comp, reference=raw) - normalise(raw, comp, reference=raw))
                      * comp.weight / 100)
    unit = np.nan_to_num(np.stack(per_unit, axis=1))          # C × K
    sd = np.nan_to_num(np.stack(per_sd, axis=1))
    n_counties, n_components = unit.shape
    return pl.DataFrame({
        "county_code": np.repeat(np.array(model.counties, dtype=object), n_components),
        "component_id": np.tile(np.array([c.id for c in model.components], dtype=object),
                                n_counties),
        "label": np.tile(np.array([c.label for c in model.components], dtype=object), n_counties),
        "points_per_unit": unit.ravel(), "points_per_sd": sd.ravel(),
    }).with_columns(pl.col("county_code", "component_id", "label").cast(pl.String))


def risk_band(scheme: Scheme, p_bottom3: np.ndarray, p_bottom10: np.ndarray) -> list[str]:
    """The first band (scheme order) whose thresholds hold."""
    labels = []
    for p3, p10 in zip(p_bottom3, p_bottom10, strict=False):
        for band in scheme.listing.bands:
            if band.p_bottom3_at_least is not None and p3 < band.p_bottom3_at_least:
                continue
            if band.p_bottom10_at_least is not None and p10 < band.p_bottom10_at_least:
                continue
            labels.append(band.label)
            break
        else:
            labels.append(scheme.listing.bands[-1].label if scheme.listing.bands else "")
    return labels
