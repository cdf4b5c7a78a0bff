"""Scores from the scheme, checked against R (survey part) and against what the scheme says."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.results.wave import score_wave
from pipelines.scheme.definitions import Component
from pipelines.stats.change import wave_change
from pipelines.stats.funnel import funnel
from pipelines.stats.normalise import normalise
from pipelines.stats.wave_scores import score_frames
from pipelines.store.warehouse import Warehouse
from tests.test_estimation import R_DIR, assert_close


@pytest.fixture(scope="module")
def sample_wh(built_db):
    warehouse = Warehouse.open(built_db, read_only=True)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def scores_2025(sample_wh, defs):
    return score_wave(sample_wh, defs, "2025")


def test_item_estimates_match_r_svyby_on_the_sample_province(scores_2025):
    reference = pl.read_csv(R_DIR / "sample_items.csv", schema_overrides={"county_code": pl.String},
                            infer_schema_length=None)
    joined = reference.join(scores_2025.items, on=["county_code", "item_id"], suffix="_ours")
    assert joined.height == reference.height == 88 * 9
    for column in ("mean", "se", "n_eff", "deff"):
        assert_close(joined[f"{column}_ours"], joined[column], column)
    for side in ("low", "high"):        # share items: svyciprop's logit interval (the default)
        expected = pl.when(pl.col("share")).then(pl.col(f"logit_{side}")) \
            .otherwise(pl.col(f"ci_{side}"))
        assert_close(joined[f"ci_{side}_ours"], joined.select(expected).to_series(), side)
    assert (joined["df"] == joined["df_ours"]).all() and (joined["n"] == joined["n_ours"]).all()


def test_survey_components_and_survey_part_match_r_svycontrast(scores_2025):
    reference = pl.read_csv(R_DIR / "sample_components.csv",
                            schema_overrides={"county_code": pl.String})
    components = scores_2025.components.filter(pl.col("source") == "survey")
    joined = reference.join(components, left_on=["county_code", "quantity"],
                            right_on=["county_code", "component_id"])
    assert joined.height == 88 * 4
    assert_close(joined["score"], joined["estimate"], "component score")
    assert_close(joined["se_right"], joined["se"], "component se")
    survey_points = components.group_by("county_code").agg(pl.col("points").sum())
    part = reference.filter(pl.col("quantity") == "survey_points").join(survey_points,
                                                                        on="county_code")
    assert_close(part["points"], part["estimate"], "survey points")
    # the survey part's SE is R's linearised composite, not the sum of the item variances
    model = scores_2025.model
    b = model.survey_weights()
    ours = np.sqrt(np.einsum("k,ckl,l->c", b, model.survey_cov, b))
    order = {c: i for i, c in enumerate(model.counties)}
    assert_close(ours[[order[c] for c in part["county_code"]]], part["se"], "survey part se")
    naive = np.sqrt(np.einsum("k,ckk->c", b**2, model.survey_cov))
    assert np.all(ours > naive * 1.05), "items correlate within respondents: the SE must be larger"


def test_composite_is_the_weighted_sum_of_normalised_components(scores_2025, defs):
    comp = scores_2025.components
    total = comp.group_by("county_code").agg(pl.col("points").sum())
    joined = scores_2025.composite.join(total, on="county_code")
    assert_close(joined["score"], joined["points"], "composite = Σ points")
    assert sum(c.weight for c in defs.scheme.components) == 100
    assert comp["score"].min() >= 0 and comp["score"].max() <= 100
    composite = scores_2025.composite
    assert (composite["ci_low"] < composite["score"]).all()
    assert (composite["score"] < composite["ci_high"]).all()
    assert composite["n"].min() >= 285 and (composite["n_eff"] < composite["n"]).all()


def test_veto_zeroes_the_score_and_records_why(sample_wh, defs):
    """The sample scripts a cultivation find in 2024 and two cadres involved in 2023."""
    for wave, reason in (("2024", "发现非法种植毒品原植物"), ("2023", "国家工作人员涉毒2人以上")):
        composite = score_wave(sample_wh, defs, wave).composite
        vetoed = composite.filter(pl.col("veto_reason").str.contains(reason))
        assert vetoed.height >= 1
        assert (vetoed["score"] == 0).all() and (vetoed["se"] == 0).all()
        assert (vetoed["score_before_veto"] > 50).all()
        indicators = sample_wh.indicators(wave)
        subject = "cultivation_found" if wave == "2024" else "cadres_involved"
        threshold = 1 if wave == "2024" else 2
        fired = indicators.filter((pl.col("indicator_id") == subject)
                                  & (pl.col("value") >= threshold))["county_code"]
        assert set(fired) <= set(vetoed["county_code"])


def _component(**changes) -> Component:
    base = Component(id="x", label="x", source="indicator", weight=10, indicator="x",
                     direction="higher", normalisation="goalposts", lo=10, hi=20)
    return dataclasses.replace(base, **changes)


def test_normalisations_follow_direction_and_clip():
    x = np.array([5.0, 10.0, 15.0, 25.0, np.nan])
    assert_close(normalise(x, _component()), [0, 0, 50, 100, np.nan], "goalposts")
    assert_close(normalise(x, _component(direction="lower")), [100, 100, 50, 0, np.nan], "lower")
    minmax = normalise(x, _component(normalisation="minmax"))
    assert_close(minmax, [0, 25, 50, 100, np.nan], "minmax")
    assert_close(normalise(x, _component(normalisation="minmax", direction="lower")),
                 100 - minmax, "minmax lower")
    z = normalise(x, _component(normalisation="zscore"))
    finite = x[:4]
    assert_close(z[:4], np.clip(50 + 10 * (finite - finite.mean()) / finite.std(), 0, 100), "z")
    # relative normalisations work per replicate: the last axis is the counties
    draws = np.stack([x, x * 2])
    assert_close(normalise(draws, _component(normalisation="minmax"))[1], minmax, "per draw")


def _relative_survey_scheme(defs):
    """The sample scheme with satisfaction normalised min–max across counties."""
    comps = tuple(dataclasses.replace(c, normalisation="minmax") if c.id == "satisfaction" else c
                  for c in defs.scheme.components)
    return dataclasses.replace(defs, scheme=dataclasses.replace(defs.scheme, components=comps))


def test_relative_normalisation_makes_counties_depend_on_each_other(sample_wh, defs):
    relative = _relative_survey_scheme(defs)
    responses, indicators, counties = (sample_wh.responses("2025"), sample_wh.indicators("2025"),
                                       sample_wh.counties())
    base = score_frames(responses, indicators, counties, relative)
    best = base.components.filter(pl.col("component_id") == "satisfaction") \
        .sort("raw", descending=True)["county_code"][0]
    # the best county's satisfaction answers all become 5 (不满意): everyone else's points move
    worse = responses.with_columns(pl.when(pl.col("county_code") == best).then(5)
                                   .otherwise(pl.col("q_satisfaction")).alias("q_satisfaction"))
    moved = score_frames(worse, indicators, counties, relative)
    other = base.composite.filter(pl.col("county_code") != best).join(
        moved.composite, on="county_code")
    assert (other["score"] != other["score_right"]).mean() > 0.9
    # and its interval comes from replicates that re-normalise: wider than the county's own noise
    sat = base.components.filter(pl.col("component_id") == "satisfaction")
    plain = score_wave(sample_wh, defs, "2025").components.filter(
        pl.col("component_id") == "satisfaction")
    span = sat["raw"].max() - sat["raw"].min()
    scaled_own = plain["se"] * 100 / span
    assert sat["se"].median() == pytest.approx(scaled_own.median(), rel=0.15)
    draws = base.model.draw(4000, seed=1)
    # within the Jeffreys shift of small counts (≈ half a count of the Poisson indicator)
    assert abs(draws.mean() - base.composite["score"].mean()) < 0.8


def test_poisson_counts_carry_noise_and_small_counts_more_relative_noise(scores_2025):
    outflow = scores_2025.components.filter(pl.col("component_id") == "outflow_traffickers")
    assert (outflow["se"] > 0).all()
    fixed = scores_2025.components.filter(pl.col("component_id") == "social_control_rate")
    assert (fixed["se"] == 0).all()
    noisy = [c.id for c in scores_2025.model.components if c.poisson]
    assert set(noisy) == {"outflow_traffickers", "new_users_change"}
    poisson_var = scores_2025.components.filter(pl.col("component_id").is_in(noisy)) \
        .group_by("county_code").agg((pl.col("points_se") ** 2).sum().alias("poisson_var"))
    composite = scores_2025.composite.join(poisson_var, on="county_code", maintain_order="left")
    model = scores_2025.model
    b = model.survey_weights()
    survey_se = np.sqrt(np.einsum("k,ckl,l->c", b, model.survey_cov, b))
    assert_close(composite["se"] ** 2, survey_se**2 + composite["poisson_var"], "se adds up")


@pytest.mark.parametrize("normalisation,direction", [
    ("goalposts", "higher"), ("goalposts", "lower"), (None, "higher"), (None, "lower"),
    ("minmax", "lower")])
def test_poisson_points_are_the_normalised_rates_of_the_gamma_draws(scores_2025, normalisation,
                                                                     direction):
    """Reference: the same Gamma draws (same generator state) divided by the exposure and put
    through `normalise`; a county with an unknown count has no points."""
    model = scores_2025.model
    k = next(k for k in model.random_indicators()
             if model._indicator_components()[k].change_of is None)
    comp = dataclasses.replace(model._indicator_components()[k], normalisation=normalisation,
                               direction=direction, lo=1.0, hi=9.0)
    components = tuple(comp if c.id == comp.id else c for c in model.components)
    count = model.indicator_count.copy()
    count[3, k] = np.nan
    varied = dataclasses.replace(model, components=components, indicator_count=count)
    got = varied.draw_indicator_points(k, 300, np.random.default_rng(8))
    known = ~np.isnan(count[:, k])
    gamma = np.random.default_rng(8).standard_gamma(np.where(known, count[:, k], 0.0) + 0.5,
                                                    size=(300, known.size), dtype=np.float32)
    rate = np.where(known, gamma / model.exposure[:, k], np.nan)
    expected = normalise(rate, comp) * comp.weight / 100
    assert np.isnan(got[:, 3]).all() and np.isnan(expected[:, 3]).all()
    assert np.nanmax(np.abs(got - expected)) < 1e-5 * comp.weight
    assert 0 < np.nanstd(got) and (normalisation != "goalposts" or np.nanmax(got) <= comp.weight)


def test_draws_are_reproducible_and_agree_with_the_intervals(scores_2025):
    model = scores_2025.model
    a, b = model.draw(4000, seed=5), model.draw(4000, seed=5)
    assert np.array_equal(a, b) and a.shape == (4000, 88)
    composite = scores_2025.composite
    low, high = np.quantile(a, [0.025, 0.975], axis=0)
    assert np.median(np.abs(low - composite["ci_low"].to_numpy())) < 0.1
    assert np.median(np.abs(high - composite["ci_high"].to_numpy())) < 0.1
    sd_ratio = a.std(axis=0) / composite["se"].to_numpy()
    assert 0.9 < np.median(sd_ratio) < 1.1
    inside = (composite["ci_low"] < composite["score"]) & (composite["score"] < composite["ci_high"])
    assert inside.all()


def test_change_between_waves_has_an_interval_and_a_verdict(sample_wh, defs, scores_2025):
    before = score_wave(sample_wh, defs, "2024")
    change = wave_change(before, scores_2025)
    composite = change.filter(pl.col("quantity") == "composite")
    assert composite.height == 88
    ok = composite.filter(pl.col("verdict") != "一票否决，不作比较")
    assert_close(ok["change"], ok["after"] - ok["before"], "change")
    significant = ok.filter(pl.col("verdict").str.starts_with("显著"))
    assert ((significant["ci_low"] > 0) | (significant["ci_high"] < 0)).all()
    quiet = ok.filter(pl.col("verdict") == "无显著变化")
    assert ((quiet["ci_low"] <= 0) & (quiet["ci_high"] >= 0)).all()
    assert change.filter(pl.col("quantity") == "social_control_rate")["verdict"].is_in(
        ["提升", "下降", "持平"]).all()


def test_funnel_limits_widen_for_small_samples_and_flag_the_outlier(scores_2025):
    result = funnel(scores_2025)
    limits = result.limits
    assert (limits["hi_998"] > limits["hi_95"]).all() and (limits["lo_998"] < limits["lo_95"]).all()
    width = (limits["hi_95"] - limits["lo_95"]).to_numpy()
    assert np.all(np.diff(width) < 0)
    assert result.phi > 1 and result.tau2 > 0   # counties truly differ: overdispersion
    flagged = result.points.filter(pl.col("outside_998") == "低于")
    lowest = scores_2025.composite.sort("score")["county_code"][0]
    assert lowest in flagged["county_code"].to_list()
    assert result.points.filter(pl.col("outside_95") != "").height < 20


def test_cli_score_csv_json_and_table(built_db, capsys):
    assert main(["score", "--wave", "2025", "--db", str(built_db), "--format", "csv"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out),
                        schema_overrides={"county_code": pl.String})
    assert table.columns[:10] == ["county_code", "county_name", "city_name", "score", "se",
                                  "ci_low", "ci_high", "n", "n_eff", "veto"]
    assert "satisfaction" in table.columns and "outflow_traffickers" in table.columns
    assert table.height == 88 and table["score"].is_sorted(descending=True)
    assert main(["score", "--wave", "2025", "--db", str(built_db), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 88 and rows[0]["score"] == pytest.approx(table["score"][0], abs=1e-5)
    assert main(["score", "--wave", "2025", "--db", str(built_db)]) == 0
    text = capsys.readouterr().out
    assert "综合得分" in text and "2025年度" in text
    assert main(["score", "--wave", "1999", "--db", str(built_db)]) == 1
    assert "没有调查数据" in capsys.readouterr().err


def test_item_points_follow_the_scheme_for_every_answer_code(sample_wh, defs):
    from pipelines.stats.points import POINTS_PREFIX, item_points

    responses = sample_wh.responses("2025")
    item = defs.questionnaire.items[0]
    codes = [-3, 0, *item.codes, 99, None]     # unknown codes, blanks and every real answer
    probe = pl.concat([responses.head(len(codes)).with_columns(
        pl.Series(item.column, codes, dtype=pl.Int16)), responses])
    points = item_points(probe, defs)
    for item in defs.questionnaire.items:
        scoring = defs.scheme.items.get(item.id)
        if scoring is None:
            continue
        mapping = {code: float(value) for code, value in scoring.points.items()}
        if scoring.dont_know == "score":
            mapping |= {a.code: float(scoring.dont_know_points or 0) for a in item.answers
                        if a.dont_know}
        expected = [mapping.get(code) for code in probe[item.column].to_list()]
        assert points[POINTS_PREFIX + item.id].to_list() == expected, item.id


def test_column_quantiles_match_numpy_including_missing_counties():
    from pipelines.stats.replicates import column_quantiles

    rng = np.random.default_rng(7)
    draws = rng.gamma(0.7, size=(2001, 1300))   # skewed, more columns than one block
    draws[:, 5] = np.nan
    draws[17, 900] = np.nan
    ours = column_quantiles(draws, (0.025, 0.5, 0.975))
    reference = np.quantile(draws, [0.025, 0.5, 0.975], axis=0)
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    assert np.nanmax(np.abs(ours - reference)) < 1e-12
    for n in (1, 2, 3, 40):                   # the ends, ties and very few draws
        few = rng.integers(0, 4, size=(n, 30)).astype(float)
        probs = (0.0, 0.025, 0.5, 0.975, 1.0)
        assert np.allclose(column_quantiles(few, probs), np.quantile(few, probs, axis=0),
                           rtol=0, atol=1e-12)


def test_a_forked_child_gets_its_own_thread_pool():
    """The pool's threads do not survive a fork: a child that maps blocks must not wait on them."""
    import os
    import signal

    from pipelines.core.parallel import in_background, map_blocks

    assert map_blocks(lambda x: x * 2, range(4), 10**6) == [0, 2, 4, 6]   # the parent's pool
    pid = os.fork()
    if pid == 0:                                                         # the child
        signal.alarm(20)                       # a child waiting on dead threads is killed
        try:
            ok = map_blocks(lambda x: x + 1, range(4), 10**6) == [1, 2, 3, 4] \
                and in_background(sum, [1, 2]).result(timeout=20) == 3
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("cells", [
    ["b", "b", "a", "a", "a", "c"],              # grouped, as survey rows come
    ["b", "a", "b", "c", "a", "b", "b"],          # a value in several runs
    ["a"], [],
])
def test_codes_looked_up_per_run_equal_codes_looked_up_per_cell(cells):
    """Reference: every cell cast on its own (the per-cell lookup the runs replace)."""
    from pipelines.stats.county_design import category_codes, dense_codes

    series = pl.Series(cells, dtype=pl.String)
    first_seen = series.unique(maintain_order=True)
    codes, values = dense_codes(series)
    assert values == first_seen.to_list()
    assert codes.tolist() == series.cast(pl.Enum(first_seen)).to_physical().to_list()
    categories = ["c", "a"]                      # "b" and null are not among them
    for with_null in (series, pl.concat([series, pl.Series([None], dtype=pl.String)])):
        expected = with_null.cast(pl.Enum(categories), strict=False).to_physical() \
            .cast(pl.Int64).fill_null(-1).to_list()
        assert category_codes(with_null, categories).tolist() == expected


def test_unknown_county_codes_are_named(defs, scores_2025):
    model = scores_2025.model
    counties = pl.DataFrame({"county_code": model.counties[:2], "county_name": ["甲", "乙"],
                             "city_code": ["1", "1"], "city_name": ["市", "市"],
                             "population": [1000, 1000]})
    responses = pl.DataFrame({"county_code": [model.counties[0], "999999", model.counties[1]],
                              "respondent_id": ["1", "2", "3"], "weight": [1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="999999"):
        score_frames(responses, pl.DataFrame(), counties, defs)


@pytest.mark.parametrize("shape", [(2000, 2850), (2000, 88), (7, 1030), (3, 0)])
def test_column_variances_in_blocks_equal_numpys_bit_for_bit(shape):
    from pipelines.stats.replicates import column_variances

    draws = np.random.default_rng(1).gamma(3.0, size=shape) * 7 + 100
    assert np.array_equal(column_variances(draws), draws.var(axis=0, ddof=1))
