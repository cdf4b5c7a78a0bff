"""撤回 on the data page (issue 19, item 8): an analyst chooses a published load, gives a reason
and confirms; the load stays in the history as 已撤回, the withdrawal is audited, and the pages stop
using it. Also what the server found beside the warehouse at its start, shown to analysts."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.present.access import hash_password
from pipelines.store.warehouse import Warehouse
from tests.test_app import PASSWORD, navigation_not_pages_directory, run_app, sign_in  # noqa: F401


@pytest.fixture(scope="module")
def analyst_hash() -> str:
    return hash_password(PASSWORD, rounds=1000)


def _data_page(monkeypatch, db, analyst_hash) -> AppTest:
    at = sign_in(run_app(monkeypatch, db, analyst_hash))
    at.switch_page("pages/data.py").run()
    assert not at.exception and at.title[0].value == "数据管理"
    return at


def _survey_load(db, wave: str) -> int:
    with Warehouse.open(db) as wh:
        return wh.active_load(wave, "survey")


def _withdraw(at: AppTest, load_id: int, reason: str, sure: bool) -> AppTest:
    at.selectbox(key="withdraw_load").select(load_id)
    at.text_input(key="withdraw_reason").input(reason)
    box = at.checkbox(key="withdraw_sure")
    box.check() if sure else box.uncheck()
    next(b for b in at.button if b.label == "撤回").click()
    return at.run()


def test_an_analyst_withdraws_a_published_wave(monkeypatch, db_copy, analyst_hash):
    load_id = _survey_load(db_copy, "2025")
    at = _data_page(monkeypatch, db_copy, analyst_hash)
    at = _withdraw(at, load_id, "承包方文件有误，待重新交付", sure=True)
    assert not at.exception, at.exception
    assert any("已撤回2025年度的调查数据" in s.value for s in at.success), [s.value for s in at.success]
    loads = next(d.value for d in at.dataframe if "导入编号" in d.value.columns)
    row = loads[loads["导入编号"] == load_id]
    assert row["状态"].tolist() == ["已撤回"]               # still in the history
    log = next(d.value for d in at.dataframe if "操作" in d.value.columns)
    assert log["操作"].tolist()[0] == "撤回调查数据"
    assert "承包方文件有误" in log["内容"].tolist()[0] and log["操作人"].tolist()[0] == "分析人员"
    # the pages no longer use it: the newest wave a leader can choose is 2024
    assert "2025" not in at.selectbox(key="wave").options
    fresh = run_app(monkeypatch, db_copy)
    assert not fresh.exception and fresh.session_state["wave"] == "2024"
    with Warehouse.open(db_copy) as wh:
        assert wh.active_load("2025", "survey") is None


def test_a_withdrawal_needs_a_reason_and_a_confirmation(monkeypatch, db_copy, analyst_hash):
    load_id = _survey_load(db_copy, "2025")
    at = _withdraw(_data_page(monkeypatch, db_copy, analyst_hash), load_id, "", sure=True)
    assert any("请写明撤回原因" in e.value for e in at.error)
    at = _withdraw(at, load_id, "文件有误", sure=False)
    assert any("请先勾选确认" in e.value for e in at.error)
    assert not at.exception
    assert _survey_load(db_copy, "2025") == load_id       # nothing withdrawn


def test_the_analysts_page_reports_what_a_killed_restore_left(monkeypatch, db_copy, analyst_hash):
    partial = db_copy.with_name(f".{db_copy.name}.restoring-{2**22 + 7}")   # no such process
    partial.write_bytes(b"half a copy")
    copy = db_copy.with_name(f"{db_copy.name}.before-restore-20261204T0000")
    copy.write_bytes(b"x" * 1024)
    at = _data_page(monkeypatch, db_copy, analyst_hash)
    text = "\n".join(i.value for i in at.info)
    assert "已清理上次中断的恢复" in text and copy.name in text
    assert not partial.exists() and copy.exists()
    assert os.path.exists(db_copy)
