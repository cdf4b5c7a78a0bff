"""Rank confidence sets with fixed-score (vetoed) counties: their place is known exactly, and they
must not widen anybody else's set. Checked by simulation from a known truth: fresh estimates
θ + e drawn again and again, every set checked against the true ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipelines.ranking.ranks import rank_confidence_sets, tau_worst_sets

P = 88
SE = 1.1                      # the sample's median composite se
VETOED = [5, 30, 60, 80]


def _truth(vetoes: int) -> tuple[np.ndarray, np.ndarray]:
    """88 counties spread like the sample (sd 3 around 88), the first `vetoes` of VETOED at 0."""
    theta = 88 + 3 * stats.norm.ppf((np.arange(P) + 0.5) / P)
    se = np.full(P, SE)
    theta[VETOED[:vetoes]] = 0.0
    se[VETOED[:vetoes]] = 0.0
    return theta, se


def _true_ranks(theta: np.ndarray) -> np.ndarray:
    """1 + how many are truly above (csranks' rank; tied vetoed counties share the better one)."""
    return 1 + (theta[None, :] > theta[:, None]).sum(axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("vetoes", [0, 1, 2, 4])
def test_rank_sets_stay_informative_and_cover_with_vetoed_counties(vetoes):
    theta, se = _truth(vetoes)
    sigma = np.diag(np.maximum(se, 1e-9) ** 2)     # the floor risk_table gives a vetoed county
    rank = _true_ranks(theta)
    worst3 = np.argsort(theta)[:3]
    rng = np.random.default_rng(100 + vetoes)
    reps = 40
    covered = np.zeros(P)
    worst_hits, widths, worst3_sizes, worst10_sizes = 0, [], [], []
    for r in range(reps):
        x = theta + se * rng.standard_normal(P)
        low, high = rank_confidence_sets(x, sigma, replications=500, seed=r)
        sets = tau_worst_sets(x, sigma, (3, 10), replications=500, seed=r)
        covered += (low <= rank) & (rank <= high)
        worst_hits += bool(sets[3][worst3].all())
        ordinary = se > 0
        widths.append(float(np.mean(high[ordinary] - low[ordinary] + 1)))
        worst3_sizes.append(int(sets[3].sum()))
        worst10_sizes.append(int(sets[10].sum()))
        fixed = VETOED[:vetoes]     # placed exactly: tied at the bottom
        assert (low[fixed] == P - vetoes + 1).all() and (high[fixed] == P).all(), (low[fixed],
                                                                                  high[fixed])
    print(f"vetoes {vetoes}: marginal coverage {covered.mean() / reps:.3f} "
          f"(lowest county {covered.min() / reps:.3f}), worst-3 set covers {worst_hits}/{reps}, "
          f"mean set width {np.mean(widths):.1f}, worst-3 set {np.mean(worst3_sizes):.1f}, "
          f"worst-10 set {np.mean(worst10_sizes):.1f} counties")
    assert covered.mean() / reps >= 0.95
    assert covered.min() / reps >= 0.85           # 40 draws: a county at 95% sees ≤ 6 misses
    assert worst_hits / reps >= 0.95
    # informative: the ordinary counties' sets do not widen with the vetoes, the worst sets are
    # far from the whole province
    assert np.mean(widths) < 0.8 * P
    assert np.mean(worst3_sizes) < 0.75 * P and np.mean(worst10_sizes) < 0.9 * P


def test_two_tied_fixed_scores_do_not_blow_up_the_critical_value():
    """Without vetoes, and with two of them, a clear-cut county far above the rest must be
    placed first, and the vetoed pair at the bottom, on the same bootstrap."""
    x = np.concatenate([[99.0], np.linspace(80, 90, 20), [0.0, 0.0]])
    se = np.concatenate([np.full(21, 0.8), [0.0, 0.0]])
    sigma = np.diag(np.maximum(se, 1e-9) ** 2)
    low, high = rank_confidence_sets(x, sigma, replications=2000, seed=1)
    assert (low[0], high[0]) == (1, 1)
    assert low[-2:].tolist() == [22, 22] and high[-2:].tolist() == [23, 23]
    worst = tau_worst_sets(x, sigma, (3,), replications=2000, seed=1)[3]
    assert worst[-2:].all() and worst.sum() <= 12 and not worst[0]


@pytest.mark.slow
def test_sample_waves_with_vetoes_get_informative_sets(built_db, defs):
    """2021–2024 of the sample have 2–3 vetoes each: their sets were the whole province."""
    from pipelines.results.wave import scored_history
    from pipelines.store.warehouse import Warehouse

    wh = Warehouse.open(built_db, read_only=True)
    try:
        history = scored_history(wh, defs, "2025")
    finally:
        wh.close()
    for wave in history:
        composite = wave.composite
        score = composite["score"].cast(float).to_numpy()
        se = composite["se"].cast(float).fill_null(0.0).to_numpy()
        vetoed = composite["veto"].to_numpy()
        sigma = np.diag(np.maximum(se, 1e-9) ** 2)
        low, high = rank_confidence_sets(score, sigma, seed=0)
        sets = tau_worst_sets(score, sigma, (3, 10), seed=0)
        print(f"{wave.wave}: {int(vetoed.sum())} vetoed, worst-3 set {int(sets[3].sum())}, "
              f"worst-10 set {int(sets[10].sum())}, mean marginal set width "
              f"{np.mean(high - low + 1):.1f} of {score.size}")
        assert sets[3].sum() < score.size / 2 and sets[10].sum() < 0.9 * score.size
        assert (high[vetoed] == score.size).all()
        assert (low[vetoed] == score.size - vetoed.sum() + 1).all()


def test_p_bottom_k_is_the_chance_of_being_listed_by_the_listing_engine():
    """With vetoes tying counties at 0, P(bottom 3) is the chance of being listed (被列入后3名) by
    the listing engine's rule, so its sum is the expected number listed, above 3."""
    import polars as pl

    from pipelines.ranking.listing import bottom_members
    from pipelines.ranking.ranks import expected_listed, listing_probabilities

    rng = np.random.default_rng(8)
    counties = [f"c{i}" for i in range(12)]
    draws = rng.normal(np.linspace(80, 90, 12), 2.0, size=(400, 12))
    draws[rng.random(draws.shape) < 0.08] = 0.0            # vetoes: ties at the bottom
    listed = np.zeros((3, 12))
    for row in draws:
        members = bottom_members(pl.DataFrame({"county_code": counties, "score": row}), 3)
        listed[0] += [c in members for c in counties]
    p = listing_probabilities(draws, (3,))[3]
    assert p.tolist() == (listed[0] / draws.shape[0]).tolist()
    number = np.mean([len(bottom_members(pl.DataFrame({"county_code": counties, "score": row}),
                                         3)) for row in draws])
    assert expected_listed(p) == pytest.approx(number) and number > 3
