"""Ranks, rank uncertainty, rank confidence sets (against csranks), levers, what-if, next-wave model."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.ranking.forecast import (
    History,
    backtest,
    history_of,
    next_wave_probabilities,
    predict_next,
    veto_rate,
)
from pipelines.ranking.ranks import (
    bottom_probabilities,
    component_levers,
    cut_line_gaps,
    rank_confidence_sets,
    rank_scores,
    simulate_ranks,
    tau_worst_set,
    tau_worst_sets,
)
from pipelines.ranking.risk import risk_table, what_if
from pipelines.results.wave import scored_history
from pipelines.store.warehouse import Warehouse

CS_DIR = Path(__file__).resolve().parent / "fixtures" / "csranks"


@pytest.fixture(scope="module")
def history(built_db, defs):
    wh = Warehouse.open(built_db, read_only=True)
    scored = scored_history(wh, defs, "2025")
    wh.close()
    return scored


@pytest.fixture(scope="module")
def risk(history, defs):
    return risk_table(history, defs, draws=10_000)


def test_rank_ties_follow_the_scheme():
    scores = np.array([90.0, 85.0, 85.0, 80.0, np.nan])
    assert rank_scores(scores, "min")[:4].tolist() == [1, 2, 2, 4]
    assert rank_scores(scores, "average")[:4].tolist() == [1, 2.5, 2.5, 4]
    assert rank_scores(scores, "first")[:4].tolist() == [1, 2, 3, 4]
    assert np.isnan(rank_scores(scores)[4])


def test_simulated_bottom_probabilities_count_ties_at_the_line_and_sum_to_k():
    rng = np.random.default_rng(0)
    draws = rng.normal(np.arange(20.0), 1.5, size=(5000, 20))
    sim = simulate_ranks(draws, (3, 10))
    assert sim.p_bottom[3].sum() == pytest.approx(3.0)
    assert sim.p_bottom[10].sum() == pytest.approx(10.0)
    assert np.all(np.diff(sim.p_bottom[3]) <= 0.02)         # lower scores, higher risk
    assert np.all(sim.rank_low <= sim.rank_median) and np.all(sim.rank_median <= sim.rank_high)
    tied = np.zeros((10, 6))
    tied[:, 3:] = 1.0
    assert simulate_ranks(tied, (2,)).p_bottom[2].tolist() == [1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("counties", [8, 300])
def test_simulated_rank_quantiles_match_per_draw_min_ranks(counties):
    """Reference: SciPy's `min` ranks of every draw, their quantiles taken by sorting, on draws
    with ties (rounded scores, vetoed zeros, a county stuck at −0.0), negative scores and
    infinities, for a county count that fills its index bits exactly and one that does not."""
    from scipy.stats import rankdata
    rng = np.random.default_rng(4)
    draws = np.round(rng.normal(np.linspace(-2, 3, counties), 1.0, size=(2003, counties)), 1)
    draws[:, 0] = 0.0
    draws[:, 1] = -0.0
    draws[::5, 2] = np.inf
    draws[::7, 3] = -np.inf
    sim = simulate_ranks(draws, (3, 10), chunk=500)
    expected = np.sort(rankdata(-draws, method="min", axis=1), axis=0)
    for p, got in ((0.025, sim.rank_low), (0.5, sim.rank_median), (0.975, sim.rank_high)):
        index = max(int(np.ceil(p * draws.shape[0] - 1e-9)) - 1, 0)
        assert got.tolist() == expected[index].tolist(), p
    for values in (draws, np.abs(draws)):             # signed scores, and scores ≥ 0 only
        reference = bottom_probabilities(values, (3, 10))
        got = simulate_ranks(values, (3, 10), chunk=500).p_bottom
        assert all(got[k].tolist() == reference[k].tolist() for k in (3, 10))
    unknown = draws.copy()
    unknown[::3, 4] = np.nan                           # no score in a third of the draws
    unknown[:, 5] = np.nan                             # never a score
    reference = bottom_probabilities(unknown, (3, 10))
    got = simulate_ranks(unknown, (3, 10), chunk=500)
    assert all(got.p_bottom[k].tolist() == reference[k].tolist() for k in (3, 10))
    assert got.p_bottom[3][5] == 0
    assert got.rank_low[5] >= counties - 2       # last, tied with the other missing and −∞ scores


@pytest.mark.parametrize("example", ["doc", "league"])
def test_rank_confidence_sets_match_csranks(example):
    """Reference: csranks' own procedure (fixtures/csranks/, R = 20000, seed 1)."""
    frame = pl.read_csv(CS_DIR / "examples.csv").filter(pl.col("example") == example)
    expected = pl.read_csv(CS_DIR / "csranks_expected.csv", null_values="NA") \
        .filter(pl.col("example") == example)
    x = frame["estimate"].to_numpy()
    sigma = np.diag(frame["sd"].to_numpy() ** 2)
    for kind, simultaneous in (("marginal", False), ("simultaneous", True)):
        low, high = rank_confidence_sets(x, sigma, simultaneous=simultaneous,
                                         replications=20_000, seed=1)
        ref = expected.filter(pl.col("kind") == kind).sort("index")
        assert low.tolist() == ref["L"].to_list(), kind
        assert high.tolist() == ref["U"].cast(pl.Int64).to_list(), kind
    for tau in (3, 10):
        ref = expected.filter(pl.col("kind") == f"worst{tau}").sort("index")
        if ref.height:
            got = tau_worst_set(x, sigma, tau, replications=20_000, seed=1)
            assert got.tolist() == ref["L"].cast(pl.Boolean).to_list(), tau


@pytest.mark.skipif(shutil.which("Rscript") is None or subprocess.run(
    ["Rscript", "-e", "library(csranks)"], capture_output=True).returncode != 0,
    reason="R 包 csranks 未安装（CRAN 在本机不可达）；使用提交的参照值")
def test_csranks_live(tmp_path):
    done = subprocess.run(["Rscript", str(CS_DIR / "reference.R"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-1000:]
    fresh = pl.read_csv(tmp_path / "csranks_expected.csv", null_values="NA")
    committed = pl.read_csv(CS_DIR / "csranks_expected.csv", null_values="NA")
    assert fresh.equals(committed)


def test_partition_at_several_lines_agrees_with_a_full_sort():
    from pipelines.ranking.ranks import _partition_at

    rng = np.random.default_rng(5)
    values = rng.integers(0, 30, size=(200, 88)).astype(float)   # with ties
    for kth in ([2, 9], [0, 1, 2], [9], [4, 40, 87]):
        ours = _partition_at(values, kth)
        assert np.array_equal(np.sort(ours, axis=1), np.sort(values, axis=1))
        assert np.array_equal(ours[:, kth], np.sort(values, axis=1)[:, kth])


def test_marginal_and_tau_worst_sets_take_the_same_stepdown_as_the_pairwise_bounds():
    """The sets standardise each unordered pair once (the (j, k) errors are the negated (k, j)
    ones); they must give exactly what the stepdown over every ordered pair gives."""
    from pipelines.ranking.ranks import _bootstrap_errors, _difference_bounds, _marginal_counts

    rng = np.random.default_rng(3)
    for p in (2, 5, 30):
        x = rng.normal(80, 2, p)
        root = rng.normal(0, 0.4, (p, p))
        for sigma in (np.diag(rng.uniform(0.1, 2.0, p)), root @ root.T + 0.2 * np.eye(p)):
            z = _bootstrap_errors(sigma, 500, seed=p)
            for k in range(p):
                others = np.delete(np.arange(p), k)
                i = np.concatenate([np.full(p - 1, k), others])
                j = np.concatenate([others, np.full(p - 1, k)])
                low, _ = _difference_bounds(x, sigma, i, j, "lower", 0.95, True, z)
                above = int((low[:p - 1] > 0).sum())
                below = int((low[p - 1:] > 0).sum())
                assert _marginal_counts(x, sigma, k, 0.95, z) == (above, below)
            i, j = np.nonzero(~np.eye(p, dtype=bool))               # τ-worst: every pair
            low, _ = _difference_bounds(x, sigma, i, j, "lower", 0.95, True, z)
            n_plus = np.bincount(i[low > 0], minlength=p)
            for tau in (1, 2):
                sets = tau_worst_sets(x, sigma, (tau,), replications=500, seed=p)
                assert np.array_equal(sets[tau], p - n_plus >= p - tau + 1)


def test_simultaneous_sets_are_wider_than_marginal_and_contain_the_estimated_rank():
    frame = pl.read_csv(CS_DIR / "examples.csv").filter(pl.col("example") == "league")
    x, sigma = frame["estimate"].to_numpy(), np.diag(frame["sd"].to_numpy() ** 2)
    m_low, m_high = rank_confidence_sets(x, sigma, replications=4000)
    s_low, s_high = rank_confidence_sets(x, sigma, simultaneous=True, replications=4000)
    rank = rank_scores(x)
    assert np.all((m_low <= rank) & (rank <= m_high))
    assert np.all(s_low <= m_low) and np.all(s_high >= m_high)


def test_cut_line_gaps():
    scores = np.array([70.0, 71.0, 72.0, 75.0, 80.0])
    assert cut_line_gaps(scores, 3).tolist() == [-5.0, -4.0, -3.0, 3.0, 8.0]


def test_risk_table_columns_and_meaning(risk, defs):
    for column in ("county_code", "county_name", "score", "rank", "rank_low", "rank_high",
                   "p_bottom3", "p_bottom10", "p_bottom3_next", "p_bottom10_next",
                   "in_worst3_set", "band"):
        assert column in risk.columns
    assert risk.height == 88
    assert risk["p_bottom3"].sum() == pytest.approx(3, abs=1e-9)
    assert risk["p_bottom10"].sum() == pytest.approx(10, abs=1e-9)
    # next wave: a veto (historical rate) can put several counties at 0 together: ties are all in
    assert 3 <= risk["p_bottom3_next"].sum() < 3.5
    bottom3 = risk.sort("score").head(3)
    assert bottom3["in_worst3_set"].all() and (bottom3["p_bottom10"] > 0.9).all()
    assert (risk["rank_low"] <= risk["rank"]).all() and (risk["rank"] <= risk["rank_high"]).all()
    assert set(risk["band"]) <= {b.label for b in defs.scheme.listing.bands}
    high = risk.filter(pl.col("band") == "高危")
    assert (high["p_bottom3"] >= 0.5).all()
    assert (risk.filter(pl.col("p_bottom10") < 0.2)["band"] == "安全").all()
    # gaps: the bottom 3 are below the line (negative), everyone else above
    assert (bottom3["gap_bottom3"] < 0).all()
    assert (risk.sort("score").tail(85)["gap_bottom3"] > 0).all()


def test_this_wave_and_next_wave_are_different_questions(risk):
    """The next published ranking adds a year of change and a new survey's noise: a clear-cut
    county now is less certain next time."""
    worst = risk.sort("score").row(0, named=True)
    assert worst["p_bottom3"] == 1.0 and worst["p_bottom3_next"] < 1.0 + 1e-12
    safe = risk.filter(pl.col("p_bottom10") == 0)
    assert safe["p_bottom10_next"].mean() > 0


def test_levers_follow_weights_and_goalposts(history):
    levers = component_levers(history[-1])
    one = levers.filter(pl.col("county_code") == history[-1].model.counties[0])
    by_id = dict(zip(one["component_id"], one["points_per_unit"], strict=False))
    assert by_id["satisfaction"] == pytest.approx(0.30, abs=1e-9)   # weight 30 / 100
    assert by_id["safety"] == pytest.approx(0.10, abs=1e-9)
    # users_per_1000: goalposts 0.5–6 (lower is better), weight 6 → 6/5.5 points per unit down
    value = history[-1].components.filter(
        (pl.col("county_code") == history[-1].model.counties[0])
        & (pl.col("component_id") == "users_per_1000"))["raw"][0]
    expected = 6 / 5.5 if 0.5 < value < 6 else 0.0
    assert by_id["users_per_1000"] == pytest.approx(expected, rel=1e-6)


def test_what_if_moves_score_rank_and_risk(history, defs, risk):
    county = risk.sort("score")["county_code"][2]   # third from the bottom
    before = what_if(history[-1], defs, county, {})
    after = what_if(history[-1], defs, county, {"satisfaction": 10.0})
    assert after.score == pytest.approx(before.score + 3.0, abs=1e-9)
    assert after.rank < before.rank
    assert after.p_bottom3 < before.p_bottom3
    with pytest.raises(KeyError):
        what_if(history[-1], defs, county, {"no_such_component": 1})


def test_next_wave_model_beats_same_rank_as_now_on_the_sample_history(history):
    result = backtest(history)
    print(result)
    assert result["brier_model"].mean() < result["brier_naive"].mean()
    for k in (3, 10):
        part = result.filter(pl.col("bottom") == k)
        assert part["brier_model"].sum() < part["brier_naive"].sum()


def test_next_wave_vetoes_strike_any_county_at_the_historical_rate():
    """A county far above the others reaches the bottom 3 only through a veto, so its P(bottom 3)
    estimates the chance of a veto per county and draw, which must be the history's rate."""
    counties, waves = 20, 6
    rng = np.random.default_rng(5)
    deviation = np.linspace(-3, 3, counties)[:, None] + rng.normal(0, 0.3, (counties, waves))
    deviation[0] += 100.0
    vetoed = np.zeros((counties, waves), dtype=bool)
    vetoed[5, 2] = vetoed[9, 4] = True
    past = History([f"c{i}" for i in range(counties)], [str(w) for w in range(waves)], deviation,
                   np.full((counties, waves), 0.09), np.full((counties, waves), 300),
                   deviation + 80, vetoed)
    draws = 40_000
    p = next_wave_probabilities(past, draws=draws, seed=3, bottoms=(3,))[3][0]
    rate = veto_rate(past)
    assert rate == pytest.approx(2.5 / 121)
    assert abs(p - rate) < 4 * np.sqrt(rate * (1 - rate) / draws), (p, rate)


def test_short_history_is_shrunk_to_the_province(history):
    one = predict_next(history_of(history[:1]))
    assert np.all(one.drift == 0) and one.rho == 1.0
    full = predict_next(history_of(history))
    raw = np.nanmean(np.diff(history_of(history).deviation, axis=1), axis=1)
    assert np.var(full.drift) < np.var(raw)          # drifts pulled toward the province
    assert 0 < full.rho <= 1 and full.sigma2_eta > 0
    print(f"rho {full.rho:.3f}, sigma_eta {np.sqrt(full.sigma2_eta):.2f}, "
          f"listing effect {full.listing_effect:+.2f} ± {full.listing_effect_se:.2f} "
          f"(raw {full.listing_effect_raw:+.2f}, {full.listing_cells} cells)")


@pytest.mark.slow
def test_cli_risk_and_listing(built_db, capsys):
    assert main(["risk", "--wave", "2025", "--db", str(built_db), "--format", "csv",
                 "--draws", "2000"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out),
                        schema_overrides={"county_code": pl.String})
    assert table.columns[:14] == ["county_code", "county_name", "city_name", "score", "rank",
                                  "rank_low", "rank_high", "p_bottom3", "p_bottom10",
                                  "p_bottom3_next", "p_bottom10_next", "in_worst3_set",
                                  "in_worst10_set", "band"]
    assert main(["risk", "--wave", "2025", "--db", str(built_db), "--draws", "2000"]) == 0
    text = capsys.readouterr().out
    assert "本期" in text and "下期" in text and "风险等级" in text
    assert main(["listing", "--wave", "2025", "--db", str(built_db)]) == 0
    text = capsys.readouterr().out
    assert "重新挂牌" in text and "摘帽" in text and "正式决定" in text
    assert main(["risk", "--wave", "2030", "--db", str(built_db)]) == 1


def test_a_wave_with_counties_not_yet_surveyed_has_no_rank_for_them(built_db, history, defs):
    """A partial wave (only some counties' survey rows in) must not break the risk table: the
    counties without a score get no rank and no chance of the bottom k, the others are ranked."""
    from pipelines.stats.wave_scores import score_frames

    wh = Warehouse.open(built_db, read_only=True)
    try:
        responses, indicators, counties = wh.responses("2025"), wh.indicators("2025"), \
            wh.counties()
    finally:
        wh.close()
    surveyed = counties["county_code"].head(30).to_list()
    partial = score_frames(responses.filter(pl.col("county_code").is_in(surveyed)), indicators,
                           counties, defs, wave="2025")
    table = risk_table([*history[:-1], partial], defs, draws=500, rank_cs_replications=200)
    missing = table.filter(~pl.col("county_code").is_in(surveyed))
    assert missing.height == 58
    assert missing["rank"].null_count() == 58 and missing["rank_low"].null_count() == 58
    assert (missing["p_bottom3"] == 0).all()
    present = table.filter(pl.col("county_code").is_in(surveyed))
    assert sorted(present["rank"].to_list()) == list(range(1, 31))
    assert abs(present["p_bottom3"].sum() - 3) < 1e-9
    # the pages' views of the same wave: the ranking table and the scheme's sensitivity analysis
    from pipelines.present.views import ranking_view, sensitivity

    assert ranking_view(table, partial, (3, 10)).height == 88
    moved = sensitivity(partial, {c.id: c.weight for c in defs.scheme.components})
    assert moved["rank_before"].null_count() == 58 and moved["rank_after"].null_count() == 58
