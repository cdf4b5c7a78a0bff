"""Design features checked against R's `survey` (fixtures in fixtures/r_survey/, written by
reference.R there): rows of weight 0, the lonely-PSU rules including "average", two-stage designs
with an fpc at both stages."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.ingest.load import ingest_bytes
from pipelines.stats.ciprop import share_interval
from pipelines.stats.contrast import contrast
from pipelines.stats.design import EstimationError, make_design
from pipelines.stats.means import estimates_frame, mean_covariance, svymean
from pipelines.stats.points import is_share_item, item_points
from pipelines.stats.wave_scores import score_frames
from pipelines.store.warehouse import Warehouse
from tests.conftest import PARTIAL, csv_bytes, sample_wave
from tests.r_reference import R_DIR, assert_r_reproduces
from tests.test_ingest import rejected

TOL = 1e-6

# case → (input file, svymean design options), mirroring the svydesign calls in reference.R
CASES = {
    "generated_one_stage": ("two_stage_input.csv", "domain", ["y1", "y2"],
                            dict(weight="weight", strata="stratum", psu="psu", fpc="fpc1")),
    "generated_two_stage": ("two_stage_input.csv", "domain", ["y1", "y2"],
                            dict(weight="weight", strata="stratum", psu="psu", fpc="fpc1",
                                 ssu="ssu", ssu_fpc="fpc2")),
    "api_strat_zero_weights": ("api_strat.csv", "stype", ["api00", "meals"],
                               dict(weight="pw0", strata="stype", fpc="fpc")),
    "api_clus2": ("api_clus2.csv", "stype", ["api00", "meals"],
                  dict(weight="pw", psu="dnum", fpc="fpc1", ssu="snum", ssu_fpc="fpc2")),
}


def gap(ours: pl.Series, reference: pl.Series) -> float:
    """Largest relative gap (absolute below 1), NaN-aware."""
    a, b = ours.cast(pl.Float64).to_numpy(), reference.cast(pl.Float64).to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def ours_for(case: str, lonely: str) -> pl.DataFrame:
    file, by, variables, options = CASES[case]
    frame = pl.read_csv(R_DIR / file)
    by_domain = svymean(frame, variables, by=by, lonely_psu=lonely, **options)
    overall = svymean(frame, variables, lonely_psu=lonely, **options)
    return pl.concat([by_domain.with_columns(pl.col(by).cast(pl.String).alias("domain")),
                      overall.with_columns(pl.lit("(all)").alias("domain"))], how="diagonal")


@pytest.mark.parametrize("lonely", ["adjust", "certainty", "average"])
@pytest.mark.parametrize("case", list(CASES))
def test_estimates_match_r_with_zero_weights_lonely_rules_and_two_stages(case, lonely):
    reference = pl.read_csv(R_DIR / "design_features.csv").filter(
        (pl.col("lonely_psu") == lonely) & (pl.col("case") == case))
    joined = reference.join(ours_for(case, lonely), on=["domain", "variable"], suffix="_ours")
    assert joined.height == reference.height > 0
    for column in ("mean", "se", "n_eff", "deff"):
        assert gap(joined[f"{column}_ours"], joined[column]) <= TOL, column
    assert joined["df_ours"].to_list() == joined["df"].to_list()
    assert joined["n_ours"].to_list() == joined["n"].to_list()


@pytest.mark.parametrize("lonely", ["adjust", "certainty", "average"])
@pytest.mark.parametrize("case", ["generated_one_stage", "generated_two_stage"])
def test_item_covariances_give_r_svycontrast_composite(case, lonely):
    """The covariance of two items' means (what a score's survey part uses) per domain, with
    rows of weight 0, each lonely rule and both stages: 0.6·ȳ1 + 0.4·ȳ2 as R's svycontrast."""
    file, by, variables, options = CASES[case]
    frame = pl.read_csv(R_DIR / file)
    reference = pl.read_csv(R_DIR / "design_features_composite.csv").filter(
        (pl.col("lonely_psu") == lonely) & (pl.col("case") == case)).sort("domain")
    design = make_design(frame, lonely_psu=lonely, **options)
    domain = frame[by].rank("dense").cast(pl.Int64).to_numpy() - 1
    est = mean_covariance(design, frame.select(pl.col(variables).fill_null(np.nan)).to_numpy(),
                          domain, 3)
    estimate, variance = contrast(est.mean, est.cov, np.array([0.6, 0.4]))
    assert gap(pl.Series(estimate[:, 0]), reference["estimate"]) <= TOL
    assert gap(pl.Series(np.sqrt(variance[:, 0, 0])), reference["se"]) <= TOL


def test_rows_of_weight_zero_count_in_no_df_n_or_design_effect():
    """R: api strata with the 48 schools below target at weight 0 give df 149, not 197. Their
    PSUs stay in n_h (the variance is not that of the file without them), nothing else."""
    frame = pl.read_csv(R_DIR / "api_strat.csv")
    out = svymean(frame, "api00", weight="pw0", strata="stype", fpc="fpc").row(0, named=True)
    assert (out["df"], out["n"]) == (149, 152)
    dropped = svymean(frame.filter(pl.col("pw0") > 0), "api00", weight="pw0", strata="stype",
                      fpc="fpc").row(0, named=True)
    for key in ("mean", "n_eff", "df", "n"):
        assert out[key] == pytest.approx(dropped[key], rel=1e-12), key


def test_second_stage_adds_variance_only_with_a_first_stage_fpc():
    frame = pl.read_csv(R_DIR / "two_stage_input.csv")
    base = dict(weight="weight", strata="stratum", psu="psu")
    with_fpc = svymean(frame, "y1", fpc="fpc1", **base)["se"][0]
    two = svymean(frame, "y1", fpc="fpc1", ssu="ssu", ssu_fpc="fpc2", **base)["se"][0]
    assert two > with_fpc * 1.05                      # the within-PSU term is not negligible here
    replacement = svymean(frame, "y1", **base)["se"][0]
    assert svymean(frame, "y1", ssu="ssu", ssu_fpc="fpc2", **base)["se"][0] == \
        pytest.approx(replacement, rel=1e-12)       # PSUs with replacement carry everything


def test_second_stage_is_refused_without_psus_or_with_an_inconsistent_fpc():
    frame = pl.read_csv(R_DIR / "two_stage_input.csv")
    with pytest.raises(EstimationError, match="PSU"):
        make_design(frame, weight="weight", strata="stratum", ssu="ssu")
    broken = frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(99)
                                .otherwise(pl.col("fpc2")).alias("fpc2"))
    with pytest.raises(EstimationError, match="同一PSU内"):
        make_design(broken, weight="weight", strata="stratum", psu="psu", ssu="ssu",
                    ssu_fpc="fpc2")


def r_share_items() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "sample_items.csv", schema_overrides={"county_code": pl.String},
                       infer_schema_length=None).filter(pl.col("share"))


@pytest.mark.parametrize("method", ["beta", "logit", "wald"])
def test_share_intervals_match_r_svyciprop_on_the_sample_share_items(method):
    """From R's own mean, se, df, n and n_eff per county × share item (5 items × 88 counties),
    the interval equals svyciprop(method = "beta" / "logit") and the t interval for "wald"."""
    reference = r_share_items()
    assert reference.height == 88 * 5
    low, high = share_interval(reference["mean"].to_numpy() / 100,
                               reference["se"].to_numpy() / 100, reference["df"].to_numpy(),
                               reference["n"].to_numpy(), reference["n_eff"].to_numpy(),
                               0.95, method)
    prefix = "ci" if method == "wald" else method
    assert gap(pl.Series(100 * low), reference[f"{prefix}_low"]) <= TOL
    assert gap(pl.Series(100 * high), reference[f"{prefix}_high"]) <= TOL


def test_a_share_of_0_or_100_percent_gets_the_exact_binomial_interval():
    """Equal weights, one stratum: Kish n = n and df = n − 1, so 0 of n is Clopper–Pearson's
    [0, 1 − 0.025^(1/n)] and n of n its mirror, for every method that respects the boundary."""
    n = np.array([50.0, 300.0])
    for method in ("beta", "logit"):
        low, high = share_interval(np.zeros(2), np.zeros(2), n - 1, n, n, 0.95, method)
        assert np.allclose(low, 0) and np.allclose(high, 1 - 0.025 ** (1 / n), rtol=1e-9)
        low, high = share_interval(np.ones(2), np.zeros(2), n - 1, n, n, 0.95, method)
        assert np.allclose(low, 0.025 ** (1 / n), rtol=1e-9) and np.allclose(high, 1)
    low, high = share_interval(np.array([np.nan, 0.3]), np.array([0.1, 0.1]),
                               np.array([10.0, 0.0]), np.array([11.0, 1.0]),
                               np.array([11.0, 1.0]))
    assert np.isnan(low).all() and np.isnan(high).all()     # nobody answered; no df


def test_share_items_are_the_items_scored_0_or_100_and_their_intervals_stay_inside(defs):
    items = [i.id for i in defs.questionnaire.items]
    assert [i for i in items if is_share_item(defs, i)] == \
        ["seen_nearby", "know_law", "know_addiction", "know_day", "knows_report"]
    frame = pl.read_csv(R_DIR / "design_input.csv").with_columns(
        pl.when(pl.col("domain") == "D1").then(pl.col("y2") * 0).otherwise(pl.col("y2"))
        .alias("y2"))                                       # D1 answers 0% everywhere
    design = make_design(frame, weight="weight", strata="stratum", psu="psu")
    domain = frame["domain"].rank("dense").cast(pl.Int64).to_numpy() - 1
    est = mean_covariance(design, frame.select(pl.col("y1", "y2").fill_null(np.nan)).to_numpy(),
                          domain, 3, pairs=False)
    keys = pl.DataFrame({"domain": ["D1", "D2", "D3"]})
    out = estimates_frame(est, keys, ["y1", "y2"], shares=[False, True])
    wald = estimates_frame(est, keys, ["y1", "y2"])
    shares, t = out.filter(pl.col("variable") == "y2"), wald.filter(pl.col("variable") == "y2")
    assert (shares["ci_low"] >= 0).all() and (shares["ci_high"] <= 100).all()
    assert shares["ci_high"][0] > 0                          # 0% is not a point
    assert t["ci_low"][0] == t["ci_high"][0] == 0           # where the t interval is a point
    assert out.filter(pl.col("variable") == "y1").equals(wald.filter(pl.col("variable") == "y1"))


@pytest.mark.slow
def test_share_item_intervals_cover_the_generators_truth_on_every_share_item(defs):
    """12 simulated provinces × 5 waves × 88 counties per item (tests/simulation.py): the
    published interval (the scheme's share_interval) covers ≥ 93% on each share item, where the
    t interval of the mean fell short on 身边涉毒现象 (true shares near 95%)."""
    from tests.simulation import simulated_histories

    share_ids = [i.id for i in defs.questionnaire.items if is_share_item(defs, i.id)]
    items = pl.concat([w.scores.items.join(w.item_truth, on=["county_code", "item_id"])
                       for history in simulated_histories() for w in history]) \
        .filter(pl.col("item_id").is_in(share_ids))
    truth = items["truth"].to_numpy()
    hits = {"published": (items["ci_low"].to_numpy() <= truth) & (truth <= items["ci_high"].to_numpy())}
    for method in ("wald", "logit", "beta"):
        low, high = share_interval(*(items[c].to_numpy() / s for c, s in
                                     (("mean", 100), ("se", 100), ("df", 1), ("n", 1),
                                      ("n_eff", 1))), 0.95, method)
        hits[method] = (100 * low <= truth) & (truth <= 100 * high)
    coverage = items.with_columns(pl.Series(k, v) for k, v in hits.items()) \
        .group_by("item_id").agg(pl.len(), *(pl.col(k).mean() for k in hits)).sort("item_id")
    print(f"share item coverage\n{coverage}")
    assert coverage["len"].min() == 12 * 5 * 88
    assert coverage["published"].min() >= 0.93 and coverage["published"].max() <= 0.97
    assert coverage["published"].equals(coverage[defs.scheme.estimation.share_interval])
    assert coverage["wald"].min() < 0.93                    # the fault this interval fixes


def two_stage_wave() -> pl.DataFrame:
    """Three sample counties as a two-stage file: townships are PSUs (40 per stratum in the
    population), up to three villages per township the SSUs (10 per township)."""
    frame = sample_wave("2025", counties=3).with_columns(pl.lit("2026").alias("调查期次"))
    return frame.with_columns(
        pl.col("乡镇(街道)").alias("初级抽样单元"),
        (pl.col("乡镇(街道)") + "-村" + (pl.int_range(pl.len()) % 3).cast(pl.String))
        .alias("二阶段抽样单元"),
        pl.lit("40").alias("层内PSU总数"), pl.lit("10").alias("PSU内SSU总数"))


def test_a_two_stage_file_is_stored_and_scored_with_both_stages(wh, defs):
    """The declared columns travel from the file through the warehouse into the county design:
    each county item's se is svymean's (checked against R above) with both stages."""
    ingest_bytes(wh, defs, csv_bytes(two_stage_wave()), "两阶段.csv", "2026", confirmed=PARTIAL)
    responses = wh.responses("2026")
    assert responses["ssu"].null_count() == 0 and set(responses["psu_population"]) == {40.0}
    counties = wh.counties().filter(pl.col("county_code").is_in(responses["county_code"].unique().to_list()))
    items = score_frames(responses, wh.indicators("2025"), counties, defs, replicates=200) \
        .items.filter(pl.col("item_id") == "satisfaction").sort("county_code")
    frame = item_points(responses, defs)
    design = dict(weight="weight", strata=["county_code", "stratum"], psu="psu",
                  by="county_code")
    two = svymean(frame, "p_satisfaction", fpc="psu_population", ssu="ssu",
                  ssu_fpc="ssu_population", **design).sort("county_code")
    one = svymean(frame, "p_satisfaction", **design).sort("county_code")
    assert np.allclose(items["se"], two["se"], rtol=1e-12)
    assert not np.allclose(items["se"], one["se"], rtol=1e-3)


@pytest.mark.parametrize("header, value, message", [
    ("层内PSU总数", "很多", "不是数字"), ("PSU内SSU总数", "0", "必须为正数"),
    ("初级抽样单元", None, "必须同时有“初级抽样单元”列")])
def test_bad_two_stage_columns_are_refused_in_chinese(wh, defs, header, value, message):
    frame = two_stage_wave()
    frame = frame.drop(header) if value is None else \
        frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(value))
                           .otherwise(pl.col(header)).alias(header))
    assert message in rejected(wh, defs, csv_bytes(frame), "两阶段.csv")


def test_a_warehouse_built_before_two_stage_designs_gains_the_columns(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.sql("create table responses (load_id integer, wave varchar, respondent_id varchar); "
            "create table waves (wave varchar, survey_load_id integer); "
            "create view current_responses as select r.* from responses r "
            "join waves w on r.load_id = w.survey_load_id")
    con.close()
    with Warehouse.open(path) as warehouse:
        columns = warehouse.cursor().sql("select * from current_responses").columns
    assert {"ssu", "psu_population", "ssu_population"} <= set(columns)


@pytest.mark.r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R 未安装（apt-get install r-cran-survey）")
def test_r_reproduces_the_committed_design_feature_fixtures(tmp_path):
    def close(fresh: pl.Series, committed: pl.Series, what: str) -> None:
        assert gap(fresh, committed) <= TOL, what

    assert_r_reproduces(tmp_path, ("design_features.csv", "design_features_composite.csv",
                                   "api_strat.csv", "api_clus2.csv"), close)
