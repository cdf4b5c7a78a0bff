"""Every page at the oldest wave of a warehouse and on a warehouse holding one wave only: a
province that has just started (or a leader looking back at the first wave) must not open on an
error. The CLI's listing of the first wave likewise."""

from __future__ import annotations

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pipelines.cli import main
from pipelines.ingest.build import build_warehouse
from pipelines.synth.sample import SAMPLE_DIR
from tests.test_app import APP, navigation_not_pages_directory, texts  # noqa: F401

ALL_PAGES = ["overview", "ranking", "risk", "delisting", "county", "exports", "scheme"]


@pytest.fixture(scope="module")
def single_wave_db(tmp_path_factory):
    """A province with only its 2021 wave (the sample's other files left out)."""
    source = tmp_path_factory.mktemp("one-wave")
    for path in SAMPLE_DIR.iterdir():
        if path.is_file() and not any(path.name.startswith(f"{kind}_{w}")
                                      for kind in ("survey", "indicators")
                                      for w in ("2022", "2023", "2024", "2025")):
            (source / path.name).symlink_to(path)
    db = tmp_path_factory.mktemp("one-wave-db") / "w.duckdb"
    build_warehouse(db, source)
    return db


def _every_page(monkeypatch, db, wave: str | None) -> None:
    monkeypatch.setenv("CEPING_DB", str(db))
    monkeypatch.setenv("CEPING_DRAWS", "500")
    at = AppTest.from_file(APP, default_timeout=120)
    if wave:
        at.query_params["wave"] = wave
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["wave"] == "2021"
    for page in ALL_PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.session_state["wave"] == "2021", page
        assert "2021年度" in texts(at) or page in ("scheme", "risk"), page


@pytest.mark.slow
def test_every_page_at_the_oldest_wave(monkeypatch, db_copy):
    _every_page(monkeypatch, db_copy, "2021")


@pytest.mark.slow
def test_every_page_on_a_single_wave_warehouse(monkeypatch, single_wave_db):
    _every_page(monkeypatch, single_wave_db, None)


def test_listing_of_the_first_wave_on_the_command_line(db_copy, capsys, monkeypatch):
    monkeypatch.setenv("CEPING_DRAWS", "500")
    assert main(["listing", "--wave", "2021", "--db", str(db_copy)]) == 0
    out = capsys.readouterr().out
    assert "程序内部错误" not in out and "漪汊县" in out


def test_a_half_published_wave_is_not_shown_to_leaders(monkeypatch, db_copy, defs):
    """Between the survey and the indicator sheet of a new wave (or after the sheet is
    withdrawn), leaders keep the last complete wave: no page opens on 尚未导入工作指标表, and
    no session scores the history only to fail on the missing sheet."""
    from pipelines.ingest.load import ingest_bytes
    from pipelines.store.warehouse import Warehouse
    from tests.conftest import PARTIAL, csv_bytes, sample_indicators, sample_wave

    survey = sample_wave("2025").with_columns(pl.lit("2026").alias("调查期次"),
                                              (pl.lit("N") + pl.col("受访者编号")).alias("受访者编号"))
    with Warehouse.open(db_copy) as wh:
        ingest_bytes(wh, defs, csv_bytes(survey), "2026.csv", "2026", confirmed=PARTIAL)
    monkeypatch.setenv("CEPING_DB", str(db_copy))
    monkeypatch.setenv("CEPING_DRAWS", "500")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert at.session_state["wave"] == "2025"
    assert "2026" not in at.selectbox(key="wave").options
    for page in ALL_PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.warning, (page, [w.value for w in at.warning])
    sheet = sample_indicators("2025").with_columns(pl.lit("2026").alias("年度"))
    with Warehouse.open(db_copy) as wh:       # the sheet arrives: the new wave is complete
        ingest_bytes(wh, defs, csv_bytes(sheet), "指标.csv", "2026", "indicators")
    fresh = AppTest.from_file(APP, default_timeout=120).run()
    assert not fresh.exception and fresh.session_state["wave"] == "2025"   # complete, not released
    from pipelines import release_wave
    with Warehouse.open(db_copy) as wh:       # an analyst releases it (对领导发布)
        release_wave(wh, defs, "2026", "分析人员")
    fresh = AppTest.from_file(APP, default_timeout=120).run()
    assert not fresh.exception and fresh.session_state["wave"] == "2026"
