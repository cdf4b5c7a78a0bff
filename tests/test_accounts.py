"""Named accounts: roles on every page and action, a viewer limited to one city (URL and session
state tampering), the lockout shared by parallel sessions, sign-out and idle expiry that end the
server-side session, the audit naming the user, sign-in to read, and the `users` command."""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pipelines.cli import main as cli_main
from pipelines.present.access import Grant, county_visible, sign_in_required, visible_city
from pipelines.store.accounts import AccountError, Accounts, users_path, verify_password
from pipelines.store.warehouse import REPO_DIR
from tests.test_app import navigation_not_pages_directory, texts  # noqa: F401  (autouse fixture)

APP = str(REPO_DIR / "app.py")
PASSWORD = "测试-口令-2026"
VIEWER_PAGES = ["overview", "ranking", "risk", "delisting", "county", "exports", "scheme"]
HOME, OTHER = "9901", "9902"


@pytest.fixture
def store(db_copy) -> Accounts:
    accounts = Accounts(users_path(db_copy))
    accounts.add("王管理", PASSWORD, "admin", by="测试")
    accounts.add("李分析", PASSWORD, "analyst", by="测试")
    accounts.add("赵查看", PASSWORD, "viewer", HOME, by="测试")
    accounts.add("钱领导", PASSWORD, "viewer", by="测试")
    return accounts


def run_app(monkeypatch, db, **env: str) -> AppTest:
    monkeypatch.setenv("CEPING_DB", str(db))
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    monkeypatch.delenv("CEPING_ANALYST_HASH", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return AppTest.from_file(APP, default_timeout=120).run()


def sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    boxes = [t for t in at.text_input if t.label in ("用户名", "密码")]
    boxes[0].input(name)
    boxes[1].input(password)
    next(b for b in at.button if b.label == "登录").click()
    return at.run()


# -- the accounts file ---------------------------------------------------------------------------


def test_passwords_are_slow_hashes_and_wrong_ones_are_refused(store):
    import sqlite3

    with sqlite3.connect(store.path) as con:
        stored = con.execute("select hash from users where name = '李分析'").fetchone()[0]
    assert stored.startswith("scrypt$32768$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password("x" + PASSWORD, stored)
    with pytest.raises(AccountError, match="不正确"):
        store.sign_in("李分析", "wrong-password")
    with pytest.raises(AccountError, match="不正确"):
        store.sign_in("无此人", PASSWORD)
    assert store.session(store.sign_in("李分析", PASSWORD)).role == "analyst"


def test_lockout_is_shared_by_parallel_sessions(store, monkeypatch):
    """Eight sessions guess at once (each its own connection): the guesses are counted in the
    file, so after five failures even the right password is refused, for everyone."""
    monkeypatch.setenv("CEPING_LOCKOUT_FAILURES", "5")
    outcomes: list[str] = []

    def guess(k: int) -> None:
        session = Accounts(store.path)      # another browser session, another connection
        for attempt in range(3):
            try:
                session.sign_in("李分析", f"guess-{k}-{attempt}")
            except AccountError as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=guess, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 24
    assert sum("不正确" in o for o in outcomes) == 5       # only five passwords were even checked
    assert sum("锁定" in o for o in outcomes) == 19
    with pytest.raises(AccountError, match="锁定"):
        Accounts(store.path).sign_in("李分析", PASSWORD)
    store.reset_password("李分析", PASSWORD + "!", by="王管理")  # an administrator lifts it
    assert Accounts(store.path).sign_in("李分析", PASSWORD + "!")


def test_sign_out_idle_expiry_and_disabling_end_the_session(store, monkeypatch):
    token = store.sign_in("钱领导", PASSWORD)
    assert store.session(token).name == "钱领导"
    store.sign_out(token)
    assert store.session(token) is None
    token = store.sign_in("钱领导", PASSWORD)
    monkeypatch.setenv("CEPING_IDLE_MINUTES", "30")
    later = time.time() + 31 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    assert store.session(token) is None                     # idle for 31 minutes
    monkeypatch.undo()
    token = store.sign_in("钱领导", PASSWORD)
    store.set_disabled("钱领导", True, by="王管理")
    assert store.session(token) is None
    with pytest.raises(AccountError, match="停用"):
        store.sign_in("钱领导", PASSWORD)
    actions = [(e[1], e[2], e[3]) for e in store.events()]
    assert ("王管理", "停用用户", "钱领导") in actions


def test_only_a_viewer_can_be_limited_to_a_city(store):
    with pytest.raises(AccountError, match="查看者"):
        store.add("孙分析", PASSWORD, "analyst", HOME, by="测试")
    with pytest.raises(AccountError, match="8"):
        store.add("周查看", "short", "viewer", by="测试")


def test_policy_rules():
    limited, free = Grant("viewer", "赵查看", HOME, "t"), Grant("viewer", "钱领导")
    assert visible_city(limited, OTHER) == HOME and visible_city(limited, None) is None
    assert visible_city(free, OTHER) == OTHER
    assert county_visible(limited, HOME) and not county_visible(limited, OTHER)
    assert not sign_in_required("127.0.0.1", {}) and sign_in_required("0.0.0.0", {})
    assert sign_in_required("10.1.2.3", {}) and not sign_in_required("10.1.2.3", {"CEPING_PUBLIC_READ": "1"})
    assert sign_in_required("127.0.0.1", {"CEPING_REQUIRE_SIGN_IN": "1"})


def test_users_command_adds_lists_and_disables(db_copy, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main(["users", "add", "吴分析", "--role", "analyst", "--password-stdin",
                     "--db", str(db_copy)]) == 0
    assert cli_main(["users", "disable", "吴分析", "--db", str(db_copy)]) == 0
    assert cli_main(["users", "list", "--db", str(db_copy)]) == 0
    assert "吴分析\t分析人员\t全省\t已停用" in capsys.readouterr().out
    assert cli_main(["users", "disable", "无此人", "--db", str(db_copy)]) == 1
    events = Accounts(users_path(db_copy)).events()
    assert events[0][1].startswith("命令行:") and events[0][2] == "停用用户"


# -- the dashboard -------------------------------------------------------------------------------


def test_an_analyst_signs_in_by_name_and_the_audit_names_them(monkeypatch, db_copy, store):
    at = sign_in(run_app(monkeypatch, db_copy), "李分析")
    assert not at.exception
    assert at.session_state["role"] == "analyst" and at.session_state["user_name"] == "李分析"
    at.switch_page("pages/data.py").run()
    assert at.title[0].value == "数据管理"
    form_buttons = [b for b in at.button if b.label == "保存决定"]
    form_buttons[0].click()
    at.run()
    assert not at.exception
    log = [d.value for d in at.dataframe if "操作人" in d.value.columns][0]
    assert "李分析" in set(log["操作人"]) and "分析人员" not in set(log["操作人"])
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/accounts.py").run()           # analysts do not manage accounts


def test_a_session_reused_after_sign_out_is_refused(monkeypatch, db_copy, store):
    at = sign_in(run_app(monkeypatch, db_copy), "李分析")
    grant = at.session_state["access_grant"]
    next(b for b in at.button if b.label == "退出登录").click()
    at.run()
    assert at.session_state["role"] == "viewer"
    at.session_state["access_grant"] = grant         # the old session's grant, replayed
    at.run()
    assert at.session_state["role"] == "viewer" and at.session_state["user_name"] == "查看者"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py").run()


def test_disabling_a_signed_in_analyst_takes_effect_at_the_next_click(monkeypatch, db_copy, store):
    at = sign_in(run_app(monkeypatch, db_copy), "李分析")
    at.switch_page("pages/data.py").run()
    assert at.title[0].value == "数据管理"
    store.set_disabled("李分析", True, by="王管理")
    at.run()
    assert at.session_state["role"] == "viewer"
    assert all(t.value != "数据管理" for t in at.title)


def test_reading_needs_sign_in_when_required(monkeypatch, db_copy, store):
    at = run_app(monkeypatch, db_copy, CEPING_REQUIRE_SIGN_IN="1")
    assert not at.exception
    assert not at.metric and not at.dataframe and "请先登录" in texts(at)
    with pytest.raises(ValueError):
        at.switch_page("pages/ranking.py").run()
    at = sign_in(at, "钱领导")
    assert at.metric and at.metric[0].label == "全省平均分"


def test_an_admin_manages_accounts_on_the_page(monkeypatch, db_copy, store):
    at = sign_in(run_app(monkeypatch, db_copy), "王管理")
    at.switch_page("pages/accounts.py").run()
    assert at.title[0].value == "账户管理" and not at.exception
    fields = {t.label: t for t in at.text_input}
    fields["用户名"].input("郑查看")
    fields["初始密码（至少8个字符）"].input(PASSWORD)
    next(b for b in at.button if b.label == "新建").click()
    at.run()
    assert any("已新建用户 郑查看" in s.value for s in at.success)
    assert ("王管理", "新建用户", "郑查看") in [(e[1], e[2], e[3]) for e in store.events()]
    assert store.sign_in("郑查看", PASSWORD)


def test_viewers_and_analysts_cannot_open_the_accounts_page(monkeypatch, db_copy, store):
    for name in ("钱领导", "李分析"):
        at = sign_in(run_app(monkeypatch, db_copy), name)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("pages/accounts.py").run()


# -- a viewer limited to one city ---------------------------------------------------------------


def test_a_city_viewer_sees_every_page_without_error(monkeypatch, db_copy, store):
    at = sign_in(run_app(monkeypatch, db_copy), "赵查看")
    for page in VIEWER_PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
    with pytest.raises(ValueError):
        at.switch_page("pages/data.py").run()


def test_a_city_viewer_sees_the_province_ranking(monkeypatch, db_copy, store, counties):
    at = sign_in(run_app(monkeypatch, db_copy), "赵查看")
    at.switch_page("pages/ranking.py").run()
    assert len(at.dataframe[0].value) == counties.height       # the province ranking, in full


def test_a_city_viewer_cannot_choose_or_tamper_another_city(monkeypatch, db_copy, store, counties):
    at = sign_in(run_app(monkeypatch, db_copy), "赵查看")
    assert at.selectbox(key="city").options == ["全省", counties.filter(
        pl.col("city_code") == HOME)["city_name"][0]]
    at.session_state["city"] = OTHER                  # session-state tampering
    at.switch_page("pages/ranking.py").run()
    shown = at.dataframe[0].value
    other_name = counties.filter(pl.col("city_code") == OTHER)["city_name"][0]
    assert len(shown) == counties.height or other_name not in set(shown["市州"])
    assert set(shown["市州"]) != {other_name}       # never the other city's own view
    assert at.session_state["city"] in ("", HOME)


def test_a_city_viewer_cannot_open_another_citys_county(monkeypatch, db_copy, store, counties):
    other = counties.filter(pl.col("city_code") == OTHER)
    foreign, foreign_name = other["county_code"][0], other["county_name"][0]
    at = sign_in(run_app(monkeypatch, db_copy), "赵查看")
    at.query_params["county"] = foreign              # a bookmarked URL of another city's county
    at.session_state["county"] = foreign             # and session-state tampering
    at.switch_page("pages/county.py").run()
    assert not at.exception
    options = at.selectbox[-1].options
    assert options and all(foreign_name not in o for o in options)
    assert at.session_state["county"] in set(counties.filter(pl.col("city_code") == HOME)["county_code"])
    assert foreign_name not in texts(at)


def test_a_city_viewer_exports_and_delisting_are_their_city(monkeypatch, db_copy, store, counties):
    home_name = counties.filter(pl.col("city_code") == HOME)["city_name"][0]
    at = sign_in(run_app(monkeypatch, db_copy), "赵查看")
    at.session_state["city"] = OTHER
    at.switch_page("pages/exports.py").run()
    assert f"导出范围：2025年度 · {home_name}" in texts(at)
    next(b for b in at.button if b.label == "生成会议材料").click()
    at.run()
    assert at.session_state["deck"][0][3] == HOME     # the deck was built for their city only
    at.switch_page("pages/delisting.py").run()
    names = set(counties.filter(pl.col("city_code") != HOME)["county_name"])
    assert not any(n in texts(at) for n in names)


def test_backup_copies_the_accounts_file_beside_the_warehouse(db_copy, store, tmp_path):
    out = tmp_path / "备份.duckdb"
    assert cli_main(["backup", "--db", str(db_copy), str(out)]) == 0
    copy = Accounts(users_path(out))
    assert [a.name for a in copy.list()] == [a.name for a in store.list()]
    assert copy.sign_in("李分析", PASSWORD)


def test_a_session_token_only_works_from_the_browser_that_signed_in(store):
    """A stolen Streamlit session id replayed from another browser (another XSRF cookie) is a
    visitor; the genuine browser's session stays open."""
    from pipelines.present.access import client_key, current_grant, issue_grant

    def cookie(token: bytes, mask: bytes) -> dict[str, str]:
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        return {"_streamlit_xsrf": f"2|{mask.hex()}|{masked.hex()}|1796410117"}

    mine = client_key(cookie(b"browser-one-token-bytes", b"\x01\x02\x03\x04"))
    assert mine == client_key(cookie(b"browser-one-token-bytes", b"\x09\x08\x07\x06"))  # re-masked
    theirs = client_key(cookie(b"browser-two-token-bytes", b"\x01\x02\x03\x04"))
    assert mine and theirs and mine != theirs and client_key({}) == ""
    token = store.sign_in("李分析", PASSWORD, mine)
    grant = issue_grant("analyst", "李分析", "", token, mine)
    assert current_grant(grant, store, theirs)[0].role == "viewer"
    assert current_grant(grant, store, "")[0].role == "viewer"
    assert current_grant(grant, store, mine)[0].user == "李分析"


def test_the_shared_analyst_password_grant_is_bound_to_the_browser_too():
    """Local mode (no accounts): the grant from the one analyst password names the browser."""
    from pipelines.present.access import current_grant, issue_grant

    grant = issue_grant("analyst", "分析人员", client="a" * 32)
    assert current_grant(grant, None, "a" * 32)[0].role == "analyst"
    refused, store_value = current_grant(grant, None, "b" * 32)
    assert refused.role == "viewer" and not refused.signed_in and store_value == ""
