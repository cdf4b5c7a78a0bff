"""The bundled sample province: reproducible byte for byte, and shaped as DOMAIN.md describes."""

from __future__ import annotations

import gzip
import re

import polars as pl
import pytest

from pipelines.synth.sample import SAMPLE_DIR, WAVES, generate
from tests.conftest import sample_wave


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out)


@pytest.mark.slow
def test_generator_reproduces_bundled_files_byte_for_byte(regenerated):
    out, written = regenerated
    bundled = sorted(p.relative_to(SAMPLE_DIR) for p in SAMPLE_DIR.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(out) for p in written)
    assert fresh == bundled
    for relative in bundled:
        assert (out / relative).read_bytes() == (SAMPLE_DIR / relative).read_bytes(), (
            f"{relative} differs: run `make sample` and commit the result")


def test_province_geography():
    counties = pl.read_csv(SAMPLE_DIR / "counties.csv", infer_schema=False)
    assert counties.height == 88
    assert counties["市州代码"].n_unique() == 9
    assert counties["区县代码"].n_unique() == 88
    assert all(re.fullmatch(r"99\d{4}", c) for c in counties["区县代码"])  # 99: no real province
    assert counties["区县名称"].n_unique() == 88
    assert all(name[-1] in "区县市" for name in counties["区县名称"])
    shares = counties["城镇人口比例"].cast(float)
    assert shares.min() > 0.1 and shares.max() < 0.95


def test_waves_have_about_300_interviews_per_county_with_strata_and_gaps():
    for wave in WAVES:
        frame = sample_wave(wave)
        per_county = frame.group_by("区县代码").len()["len"]
        assert per_county.len() == 88
        assert 280 <= per_county.min() and per_county.max() <= 320
        assert set(frame["抽样层"].unique()) == {"手机-城镇", "手机-农村", "固话-城镇", "固话-农村"}
        assert frame["Q1"].null_count() > 0  # item non-response
        assert (frame["Q1"] == "9").sum() > 0  # 说不清
        assert frame["乡镇(街道)"].null_count() == 0


def test_weights_are_poststratified_to_margins():
    margins = pl.read_csv(SAMPLE_DIR / "margins.csv", infer_schema=False).with_columns(
        pl.col("人口数").cast(pl.Int64))
    frame = sample_wave("2024").with_columns(pl.col("权重").cast(pl.Float64),
                                              pl.col("年龄").cast(pl.Int64))
    age = pl.col("年龄")
    frame = frame.with_columns(pl.when(age <= 29).then(pl.lit("18-29"))
                               .when(age <= 39).then(pl.lit("30-39"))
                               .when(age <= 49).then(pl.lit("40-49"))
                               .otherwise(pl.lit("50-65")).alias("年龄组"))
    totals = frame.group_by("区县代码", "年龄组", "性别", "城乡").agg(pl.col("权重").sum())
    joined = totals.join(margins, on=["区县代码", "年龄组", "性别", "城乡"])
    # weights are rounded to 3 decimals; a cell left empty by chance is weighted with its group
    close = ((joined["权重"] - joined["人口数"]).abs() / joined["人口数"] < 0.01).mean()
    assert close > 0.97


def test_truth_is_complete_and_consistent():
    shares = pl.read_csv(gzip.decompress((SAMPLE_DIR / "truth/answer_shares.csv.gz").read_bytes()))
    sums = shares.group_by("wave", "county_code", "item_id").agg(pl.col("share").sum())
    assert sums.height == len(WAVES) * 88 * 9
    assert (sums["share"] - 1).abs().max() < 1e-6


def test_truth_matches_what_the_survey_measures():
    """Across counties, the weighted share answering 满意 tracks the true share closely."""
    shares = pl.read_csv(gzip.decompress((SAMPLE_DIR / "truth/answer_shares.csv.gz").read_bytes()),
                         schema_overrides={"wave": pl.String, "county_code": pl.String})
    true = shares.filter((pl.col("wave") == "2025") & (pl.col("item_id") == "satisfaction")
                         & (pl.col("answer_code") == 1)).select("county_code", "share")
    frame = sample_wave("2025").filter(pl.col("Q1").is_not_null()).with_columns(
        pl.col("权重").cast(pl.Float64))
    observed = frame.group_by("区县代码").agg(
        ((pl.col("Q1") == "1") * pl.col("权重")).sum() / pl.col("权重").sum())
    joined = observed.join(true, left_on="区县代码", right_on="county_code")
    error = (joined["Q1"] - joined["share"])
    assert abs(error.mean()) < 0.01  # unbiased
    assert pl.DataFrame({"a": joined["Q1"], "b": joined["share"]}).corr()[0, 1] > 0.7


def test_decisions_tell_the_listing_story():
    decisions = pl.read_csv(SAMPLE_DIR / "decisions.csv", infer_schema=False)
    listed_early = decisions.filter(pl.col("决定").is_in(["挂牌整治"])
                                    & pl.col("期次").is_in(["2021", "2022", "2023"]))
    delisted = decisions.filter(pl.col("决定") == "摘帽")
    assert listed_early.height >= 3
    assert set(delisted["区县代码"]) & set(listed_early["区县代码"])
    assert decisions.filter(pl.col("决定") == "重新挂牌").height >= 1  # a relapse


def test_truth_is_never_loaded(wh):
    sources = wh.loads()["source_name"].to_list()
    assert not any("truth" in s or "answer_shares" in s or "latent" in s for s in sources)
    tables = wh.cursor().sql("select table_name from information_schema.tables").pl()
    assert not any("truth" in t or "latent" in t for t in tables["table_name"])
