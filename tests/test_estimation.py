"""The design-based estimator and raking against R's `survey` (fixtures in fixtures/r_survey/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.stats.contrast import contrast
from pipelines.stats.design import EstimationError, make_design
from pipelines.stats.means import mean_covariance, svymean
from pipelines.stats.raking import rake
from tests.r_reference import assert_r_reproduces

R_DIR = Path(__file__).resolve().parent / "fixtures" / "r_survey"
TOL = 1e-6


def assert_close(ours: np.ndarray, reference: np.ndarray, what: str) -> None:
    ours, reference = np.asarray(ours, dtype=float), np.asarray(reference, dtype=float)
    gap = np.abs(ours - reference) / np.maximum(1.0, np.abs(reference))
    assert np.nanmax(gap) <= TOL, f"{what}: largest relative gap {np.nanmax(gap):.2e}"
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), what


def design_input() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "design_input.csv")


@pytest.mark.parametrize("lonely", ["adjust", "certainty"])
@pytest.mark.parametrize("with_fpc", [True, False])
def test_domain_means_match_r_on_a_design_with_psus_fpc_and_a_single_psu_stratum(lonely, with_fpc):
    frame = design_input()
    reference = pl.read_csv(R_DIR / "design_means.csv").filter(
        (pl.col("lonely_psu") == lonely) & (pl.col("fpc") == ("fpc" if with_fpc else "nofpc")))
    options = dict(weight="weight", strata="stratum", psu="psu",
                   fpc="fpc" if with_fpc else None, lonely_psu=lonely)
    by_domain = svymean(frame, ["y1", "y2"], by="domain", **options)
    overall = svymean(frame, ["y1", "y2"], **options).with_columns(pl.lit("(all)").alias("domain"))
    ours = pl.concat([by_domain, overall.select(by_domain.columns)])
    joined = reference.join(ours, on=["domain", "variable"], suffix="_ours")
    assert joined.height == reference.height == 8
    for column in ("mean", "se", "n_eff", "deff"):
        assert_close(joined[f"{column}_ours"], joined[column], column)
    assert joined["df"].to_list() == joined["df_ours"].to_list()
    assert joined["n"].to_list() == joined["n_ours"].to_list()


def test_linear_combination_of_means_matches_svycontrast():
    """Two variables with different missingness: the covariance of their means per domain gives
    the composite's variance exactly as R's delta method on the totals does."""
    frame = design_input()
    reference = pl.read_csv(R_DIR / "design_composite.csv").sort("domain")
    design = make_design(frame, weight="weight", strata="stratum", psu="psu", fpc="fpc")
    domain = frame["domain"].rank("dense").cast(pl.Int64).to_numpy() - 1
    values = frame.select(pl.col("y1", "y2").fill_null(np.nan)).to_numpy()
    est = mean_covariance(design, values, domain, 3)
    b = np.array([0.6, 0.4])
    composite, variance = contrast(est.mean, est.cov, b)
    assert_close(composite[:, 0], reference["estimate"], "composite")
    assert_close(np.sqrt(variance[:, 0, 0]), reference["se"], "composite se")
    # and not the sum of the variances: the covariance term matters here
    independent = np.sqrt(np.einsum("j,djj,j->d", b**2, est.cov, np.ones(2)))
    assert np.max(np.abs(independent - reference["se"].to_numpy())) > 1e-3


def test_contrast_matches_svycontrast_on_several_contrasts_at_once():
    """Two contrasts of four correlated totals: estimates L·m and the full covariance L Σ L',
    off-diagonal included, as R's svycontrast gives them; and a stack of domains at once."""
    given = pl.read_csv(R_DIR / "contrast_input.csv")
    reference = pl.read_csv(R_DIR / "contrast_result.csv")
    estimates, cov = given["estimate"].to_numpy(), given.drop("name", "estimate").to_numpy()
    coefficients = np.array([[1, 0, -2, 0.5], [0.3, 0.7, 0, 1]])
    mean, covariance = contrast(estimates, cov, coefficients)
    assert_close(mean, reference["estimate"], "contrast")
    assert_close(covariance, reference.drop("name", "estimate").to_numpy(), "contrast covariance")
    stacked_mean, stacked_cov = contrast(np.stack([estimates, 2 * estimates]),
                                         np.stack([cov, 4 * cov]), coefficients)
    assert_close(stacked_mean[1], 2 * reference["estimate"].to_numpy(), "stacked contrast")
    assert_close(stacked_cov[0], covariance, "stacked covariance")
    vector_mean, vector_cov = contrast(estimates, cov, coefficients[1])
    assert vector_mean.shape == (1,) and vector_cov.shape == (1, 1)
    assert_close(vector_mean, reference["estimate"][1:], "one contrast")


def test_a_domain_is_estimated_within_the_full_design_not_by_subsetting():
    """Dropping the other domains' rows would drop PSUs from strata; R keeps them (as zeros)."""
    frame = design_input()
    full = svymean(frame, "y1", weight="weight", strata="stratum", psu="psu", by="domain")
    subset = svymean(frame.filter(pl.col("domain") == "D1"), "y1", weight="weight",
                     strata="stratum", psu="psu")
    d1 = full.filter(pl.col("domain") == "D1")
    assert d1["mean"][0] == pytest.approx(subset["mean"][0], rel=1e-12)
    assert abs(d1["se"][0] - subset["se"][0]) > 1e-4


def test_confidence_interval_is_a_t_interval_on_the_design_df():
    from scipy import stats

    frame = design_input()
    out = svymean(frame, "y1", weight="weight", strata="stratum", psu="psu", by="domain")
    q = stats.t.ppf(0.975, out["df"].to_numpy())
    assert_close(out["ci_high"], out["mean"].to_numpy() + q * out["se"].to_numpy(), "ci_high")
    narrower = svymean(frame, "y1", weight="weight", strata="stratum", psu="psu", by="domain",
                       level=0.9)
    assert (narrower["ci_high"] < out["ci_high"]).all()


def test_raking_matches_r_rake():
    frame = pl.read_csv(R_DIR / "rake_input.csv")
    margins = {"a": pl.read_csv(R_DIR / "rake_margins_a.csv"),
               "b": pl.read_csv(R_DIR / "rake_margins_b.csv")}
    weights = rake(frame, weight="weight", margins=margins, by="domain")
    reference = pl.read_csv(R_DIR / "rake_weights.csv")
    assert_close(weights, reference["weight"], "raked weights")
    raked = frame.with_columns(weights)
    means = svymean(raked, "y", weight="weight", by="domain").sort("domain")
    assert_close(means["mean"], pl.read_csv(R_DIR / "rake_means.csv")["mean"], "raked means")
    totals = raked.group_by("domain", "a").agg(pl.col("weight").sum()).join(
        margins["a"], on=["domain", "a"])
    assert_close(totals["weight"], totals["population"], "margin a reproduced")


def test_raking_refuses_inconsistent_margins_and_empty_cells_in_chinese():
    frame = pl.read_csv(R_DIR / "rake_input.csv")
    margin_a = pl.read_csv(R_DIR / "rake_margins_a.csv")
    margin_b = pl.read_csv(R_DIR / "rake_margins_b.csv")
    wrong_total = margin_b.with_columns(pl.col("population") * 1.1)
    with pytest.raises(EstimationError, match="总人口不一致.*domain=D"):
        rake(frame, weight="weight", margins={"a": margin_a, "b": wrong_total}, by="domain")
    no_a3 = frame.filter(~((pl.col("domain") == "D2") & (pl.col("a") == "a3")))
    with pytest.raises(EstimationError, match="a=a3.*没有受访者"):
        rake(no_a3, weight="weight", margins={"a": margin_a, "b": margin_b}, by="domain")
    unknown = frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("a9"))
                                 .otherwise(pl.col("a")).alias("a"))
    with pytest.raises(EstimationError, match="a=a9.*没有人口数"):
        rake(unknown, weight="weight", margins={"a": margin_a, "b": margin_b}, by="domain")
    with pytest.raises(EstimationError, match="未收敛"):
        rake(frame, weight="weight", margins={"a": margin_a, "b": margin_b}, by="domain",
             max_iter=1, tol=1e-15)


def test_bad_weights_and_lonely_rule_are_refused():
    frame = design_input()
    with pytest.raises(EstimationError, match="权重"):
        svymean(frame.with_columns(pl.lit(-1.0).alias("weight")), "y1", weight="weight")
    with pytest.raises(EstimationError, match="单一PSU"):
        svymean(frame, "y1", weight="weight", lonely_psu="fail")


def test_nobody_answering_gives_missing_not_zero():
    frame = design_input().with_columns(
        pl.when(pl.col("domain") == "D3").then(None).otherwise(pl.col("y1")).alias("y1"))
    out = svymean(frame, "y1", weight="weight", strata="stratum", psu="psu", by="domain")
    d3 = out.filter(pl.col("domain") == "D3").row(0, named=True)
    assert d3["mean"] is None and d3["se"] is None and d3["n"] == 0


@pytest.mark.r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R 未安装（apt-get install r-cran-survey）")
def test_r_reference_script_reproduces_the_committed_fixtures(tmp_path):
    """Run R live: the committed expected values are what R's survey package gives today."""
    assert_r_reproduces(tmp_path, ("sample_items.csv", "sample_components.csv",
                                   "design_means.csv", "design_composite.csv", "rake_weights.csv",
                                   "rake_means.csv", "contrast_input.csv", "contrast_result.csv"),
                        assert_close)


def test_large_domains_are_estimated_in_blocks_of_whole_domains():
    """Blocks never split a domain: one domain bigger than a block, many small ones and unsorted
    rows all give the same estimates as estimating each domain on its own."""
    from pipelines.stats.means import CHUNK_ROWS, _domain_blocks

    assert _domain_blocks(np.zeros(CHUNK_ROWS * 3, dtype=np.int64), CHUNK_ROWS) == \
        [(0, CHUNK_ROWS * 3)]
    rng = np.random.default_rng(3)
    n = CHUNK_ROWS * 2 + 5_000
    domain = np.where(np.arange(n) < CHUNK_ROWS + 7_000, 0, rng.integers(1, 40, n))
    frame = pl.DataFrame({"y": rng.normal(50, 10, n), "w": rng.uniform(0.5, 2, n),
                          "h": rng.integers(0, 3, n), "d": domain}).sample(fraction=1.0,
                                                                           shuffle=True, seed=1)
    together = svymean(frame, "y", weight="w", strata="h", by="d").sort("d")
    overall = svymean(frame, "y", weight="w", strata="h")
    assert overall.height == 1 and np.isfinite(overall["se"][0])
    for d in (0, 1, 17):
        alone = frame.with_columns(pl.when(pl.col("d") == d).then(pl.col("y")).alias("y"))
        one = svymean(alone, "y", weight="w", strata="h")   # the domain within the full design
        row = together.filter(pl.col("d") == d)
        assert abs(row["mean"][0] - one["mean"][0]) < 1e-9
        assert abs(row["se"][0] - one["se"][0]) < 1e-9


def test_t_quantiles_agree_with_scipy_on_both_sides_of_the_expansion():
    from scipy import special

    from pipelines.stats.tquantiles import CORNISH_FISHER_DF, t_quantiles

    probs = np.concatenate([[1e-4, 0.0005, 0.025, 0.5, 0.975, 0.9995, 1 - 1e-4],
                            (np.arange(2000) + 0.5) / 2000])
    df = np.array([1, 2, 7, 30, CORNISH_FISHER_DF - 1, CORNISH_FISHER_DF, 150, 399, 1e5])
    ours = t_quantiles(df[None, :], probs[:, None])
    exact = special.stdtrit(df[None, :], probs[:, None])
    assert ours.shape == (probs.size, df.size)
    assert np.abs(ours - exact).max() < 5e-8
    assert np.array_equal(ours[:, df < CORNISH_FISHER_DF], exact[:, df < CORNISH_FISHER_DF])
    assert np.isnan(t_quantiles(np.array([np.nan, 0.0]), 0.975)).all()


def test_integer_domain_codes_take_the_fast_path_and_agree_with_the_general_one():
    from pipelines.stats.design import domain_codes

    rng = np.random.default_rng(11)
    for values in (rng.integers(-5, 40, 500), rng.integers(0, 10**9, 50), np.array([7])):
        frame = pl.DataFrame({"k": values, "s": values.astype(str)})
        codes, keys = domain_codes(frame, ["k"])
        assert np.array_equal(keys["k"].to_numpy(), np.unique(values))
        assert np.array_equal(keys["k"].to_numpy()[codes], values)
        assert keys["k"].dtype == pl.Int64
        slow_codes, slow_keys = domain_codes(frame, ["s"])     # strings: the join path
        assert np.array_equal(slow_keys["s"].to_numpy()[slow_codes], values.astype(str))


@pytest.mark.parametrize("with_psu", [False, True])
@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_domain_sizes_equal_the_estimation_pass_for_a_column_of_ones(with_psu, order):
    """Reference: `mean_covariance` of a column of ones (which `domain_sizes` replaces when the
    rows are sorted), on strata of one PSU, empty domains and zero weights too."""
    from pipelines.stats.means import domain_sizes

    rng = np.random.default_rng(5)
    n = 3_000
    domain = np.sort(rng.integers(0, 40, n))          # domains 40..44 stay empty
    stratum = domain * 3 + rng.integers(0, 3, n)       # nested in domains
    psu = stratum * 10 + rng.integers(0, 4 if with_psu else 1, n)
    frame = pl.DataFrame({"d": domain, "h": stratum, "p": psu,
                          "w": np.where(rng.random(n) < 0.02, 0.0, rng.uniform(0.5, 3, n))})
    frame = frame.sort("d", "h", "p") if order == "sorted" else \
        frame.sample(fraction=1.0, shuffle=True, seed=2)
    design = make_design(frame, weight="w", strata="h", psu="p" if with_psu else None)
    codes = frame["d"].to_numpy()
    sizes = domain_sizes(design, codes, 45)
    ones = mean_covariance(design, np.ones((n, 1)), codes, 45, pairs=False)
    assert np.array_equal(sizes.n, ones.n[:, 0]) and np.array_equal(sizes.df, ones.df[:, 0])
    assert np.allclose(sizes.n_eff, ones.n_eff[:, 0], rtol=1e-12, equal_nan=True)
    assert np.isnan(sizes.n_eff[40:]).all() and (sizes.df[:40] > 0).all()
