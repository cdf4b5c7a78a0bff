"""Every page through Streamlit's AppTest: no exception, the numbers a user expects on screen."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.build import build_warehouse
from pipelines.sample_province import SAMPLE_DIR
from pipelines.warehouse import REPO_DIR

APP = str(REPO_DIR / "app.py")


def run_app(monkeypatch, db) -> AppTest:
    monkeypatch.setenv("CEPING_DB", str(db))
    return AppTest.from_file(APP, default_timeout=60).run()


def test_overview_lists_waves_and_counties(monkeypatch, db_copy):
    at = run_app(monkeypatch, db_copy)
    assert not at.exception
    assert "示范省" in at.title[0].value
    assert [m.value for m in at.metric] == ["5 期", "88 个", "9 个"]
    waves = at.dataframe[0].value
    assert waves["期次"].tolist() == ["2021年度", "2022年度", "2023年度", "2024年度", "2025年度"]
    assert (waves["覆盖区县"] == 88).all()
    assert len(at.dataframe[1].value) == 88
    assert any("示例数据" in m.value for m in at.markdown)  # st.badge renders as markdown


def test_first_run_builds_the_warehouse(monkeypatch, tmp_path):
    db = tmp_path / "fresh.duckdb"
    at = run_app(monkeypatch, db)
    assert not at.exception
    assert db.exists()
    assert at.metric[0].value == "5 期"


def test_empty_warehouse_has_a_clear_empty_state(monkeypatch, tmp_path):
    source = tmp_path / "province"
    source.mkdir()
    for name in ("counties.csv", "province.toml"):
        shutil.copy(SAMPLE_DIR / name, source / name)
    db = tmp_path / "empty.duckdb"
    build_warehouse(db, source)
    at = run_app(monkeypatch, db)
    assert not at.exception
    assert at.metric[0].value == "0 期"
    assert any("还没有任何期次" in i.value for i in at.info)


@pytest.mark.parametrize("content", [b"not a database", b""])
def test_broken_warehouse_file_shows_a_chinese_message(monkeypatch, tmp_path, content):
    db = tmp_path / "broken.duckdb"
    db.write_bytes(content)
    at = run_app(monkeypatch, db)
    assert not at.exception
    assert at.error and ("数据仓库" in at.error[0].value)
