"""对领导发布 (issue 20): a new wave reaches viewers only once it is complete and an analyst has
released it; the release is an official record (who, when, scheme, loads, digest, frozen table)
that a later re-computation is compared with instead of silently replacing it."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.ingest.load import ingest_bytes
from pipelines.results.release import (
    frozen_results,
    release_differences,
    release_wave,
    result_digest,
    scheme_fingerprint,
)
from pipelines.store.warehouse import Warehouse, WarehouseError
from tests.conftest import PARTIAL, csv_bytes, sample_indicators, sample_wave
from tests.test_app import analyst_hash, navigation_not_pages_directory, run_app, sign_in  # noqa: F401

SAMPLE_WAVES = ["2021", "2022", "2023", "2024", "2025"]


def _survey_2026() -> bytes:
    frame = sample_wave("2025").with_columns(
        pl.lit("2026").alias("调查期次"), (pl.lit("N") + pl.col("受访者编号")).alias("受访者编号"))
    return csv_bytes(frame)


def _indicators_2026(corrected: bool = False) -> bytes:
    sheet = sample_indicators("2025").with_columns(pl.lit("2026").alias("年度"))
    if corrected:   # one county's social-control rate was mistyped: 50 instead of its value
        sheet = sheet.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("50.0"))
                                   .otherwise(pl.col("社会面管控率")).alias("社会面管控率"))
    return csv_bytes(sheet)


def _add_2026(wh: Warehouse, defs, *, indicators: bool = True) -> None:
    ingest_bytes(wh, defs, _survey_2026(), "2026.csv", "2026", loaded_by="分析员甲",
                 confirmed=PARTIAL)
    if indicators:
        ingest_bytes(wh, defs, _indicators_2026(), "2026指标.csv", "2026", "indicators",
                     loaded_by="分析员甲")


def test_waves_present_before_the_feature_count_as_released(db_copy):
    con = duckdb.connect(str(db_copy))
    assert set(con.sql("select note from releases").pl()["note"]) == {
        "由 surveys/ 中已公布的文件建库，视为已发布"}             # built from published files
    con.sql("drop table releases")                 # a warehouse from before publication records
    con.close()
    with Warehouse.open(db_copy, read_only=True) as wh:   # not migrated yet: still all visible
        assert wh.released_waves() == SAMPLE_WAVES
    with Warehouse.open(db_copy) as wh:
        assert wh.released_waves() == SAMPLE_WAVES
        records = wh.releases()
        assert set(records["note"]) == {"本功能启用前已有的期次，视为已发布"}
        assert records["survey_load_id"].null_count() == 0
    with Warehouse.open(db_copy) as wh:                    # migrated once, not twice
        assert wh.releases().height == len(SAMPLE_WAVES)


def test_an_incomplete_wave_cannot_be_released(wh, defs):
    _add_2026(wh, defs, indicators=False)
    assert "2026" not in wh.released_waves()
    with pytest.raises(WarehouseError, match="数据不完整"):
        release_wave(wh, defs, "2026", "分析员甲")
    assert wh.releases().filter(pl.col("wave") == "2026").height == 0


def test_a_release_is_an_audited_record_with_frozen_results(wh, defs):
    _add_2026(wh, defs)
    assert "2026" not in wh.released_waves()
    number = release_wave(wh, defs, "2026", "分析员甲")
    assert "2026" in wh.released_waves()
    record = wh.releases().filter(pl.col("release_id") == number).row(0, named=True)
    waves = wh.waves().filter(pl.col("wave") == "2026")
    assert record["released_by"] == "分析员甲"
    assert record["scheme_fingerprint"] == scheme_fingerprint(defs)
    assert (record["survey_load_id"], record["indicators_load_id"]) == \
        (waves["survey_load_id"][0], waves["indicators_load_id"][0])
    frozen = wh.released_result("2026")
    assert frozen.height == 88 and {"score", "rank", "listed"} <= set(frozen.columns)
    assert record["digest"] == result_digest(frozen) == result_digest(frozen_results(wh, defs, "2026"))
    audit = wh.audit_log().row(0, named=True)
    assert audit["action"] == "对领导发布" and audit["wave"] == "2026" and audit["by_user"] == "分析员甲"
    assert release_differences(wh, defs, "2026").height == 0


def test_a_recomputation_that_differs_is_shown_not_applied(wh, defs):
    _add_2026(wh, defs)
    release_wave(wh, defs, "2026", "分析员甲")
    announced = wh.released_result("2026")
    ingest_bytes(wh, defs, _indicators_2026(corrected=True), "2026指标（更正）.csv", "2026",
                 "indicators", replace=True, loaded_by="分析员乙")
    differences = release_differences(wh, defs, "2026")
    assert differences.height > 0
    assert (differences["score_released"] != differences["score_now"]).any()
    assert wh.released_result("2026").equals(announced)    # the announced figures stay


def test_viewers_keep_the_released_wave_until_the_release(monkeypatch, db_copy, defs,
                                                          analyst_hash):  # noqa: F811
    with Warehouse.open(db_copy) as wh:
        _add_2026(wh, defs)
    viewer = run_app(monkeypatch, db_copy)
    wave = viewer.selectbox(key="wave")
    assert viewer.session_state["wave"] == "2025" and "2026" not in wave.options
    assert {m.label: m.value for m in viewer.metric}["已导入期次"] == "5 期"
    analyst = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    assert "2026年度（未发布）" in analyst.selectbox(key="wave").options
    analyst.switch_page("pages/data.py").run()
    button = next(b for b in analyst.button if b.label == "对领导发布2026年度")
    button.click().run()
    assert not analyst.exception
    assert any("已对领导发布2026年度" in s.value for s in analyst.success)
    log = next(d.value for d in analyst.dataframe if "操作" in d.value.columns)
    assert log["操作"].tolist()[0] == "对领导发布"
    assert "北京时间" in " ".join(log.columns)
    fresh = run_app(monkeypatch, db_copy)
    assert fresh.session_state["wave"] == "2026"


def test_release_on_the_command_line(db_copy, defs, capsys):
    with Warehouse.open(db_copy) as wh:
        _add_2026(wh, defs)
    assert main(["release", "--wave", "2026", "--by", "分析员丙", "--db", str(db_copy)]) == 0
    assert "发布编号" in capsys.readouterr().out
    assert main(["release", "--wave", "2030", "--db", str(db_copy)]) == 1
    with Warehouse.open(db_copy, read_only=True) as wh:
        assert wh.releases()["released_by"][0] == "分析员丙"


@pytest.mark.browser
def test_a_viewer_bookmark_of_an_unreleased_wave_opens_the_released_one(db_copy, defs, tmp_path):
    """In a real Chromium: a leader given ?wave=2026 before its release sees 2025, not 2026."""
    from playwright.sync_api import expect, sync_playwright

    from bench.load import stop_server
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
    from tests.test_launchers import _start

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium")
    with Warehouse.open(db_copy) as wh:
        _add_2026(wh, defs)
    process, url = _start("serve", db_copy, tmp_path / "server.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page.goto(f"{url}/ranking?wave=2026")
            wave = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input').first
            wave.wait_for(timeout=90_000)
            page.locator('[data-testid="stMain"]').get_by_text("得分表").first.wait_for(
                timeout=90_000)
            expect(wave).to_have_value("2025年度", timeout=30_000)
            assert "2026" not in page.locator('[data-testid="stMain"]').inner_text()
            browser.close()
    finally:
        stop_server(process)
