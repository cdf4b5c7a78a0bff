"""测评看板 — Streamlit entry point: the sidebar (wave, city, sign-in) and the page navigation.

The wave and city live in widgets of this entry file, so they persist across pages, and in the URL
(?wave=2025&city=9901), so a leader can bookmark a view. The analysts' page (数据管理) is only in
the navigation for a signed-in analyst: a viewer cannot reach it, not even by its URL.

Once named accounts exist (`python -m pipelines users add`), users sign in with name and password;
the grant's server-side token is checked on every run (sign-out, idle expiry, disabling end it).
Served beyond 127.0.0.1, nothing is shown before sign-in unless public read is switched on.
"""

import os
import time

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from pages._shared import accounts, current, ready_waves, warehouse
from pipelines import keep_freed_memory, run_slot, wave_display
from pipelines.present import session_keys as keys
from pipelines.present.access import (
    ANALYST,
    HASH_ENV,
    VIEWER,
    Grant,
    can_change_data,
    client_key,
    current_grant,
    is_admin,
    issue_grant,
    sign_in_required,
    verify_password,
)
from pipelines.store.accounts import ROLES, AccountError
from pipelines.store.warehouse import WarehouseError

keep_freed_memory()      # the server process: short-lived NumPy temporaries reuse memory

if PagesManager.uses_pages_directory:
    # `streamlit run app.py` on a fresh server: until st.navigation first runs, Streamlit takes
    # pages/ for its legacy navigation folder and runs this script nested inside that navigation,
    # so the first visitor's widgets belong to a page that no longer exists after this run (their
    # wave fell back to the oldest on the next page change). Declare st.navigation and start over.
    PagesManager.uses_pages_directory = False
    st.rerun()

st.set_page_config(page_title="测评看板", page_icon=":material/leaderboard:", layout="wide")


def _secret(*keys: str) -> object:
    try:
        value = st.secrets
        for key in keys:
            value = value[key]
        return value
    except Exception:  # no secrets file, or no such key
        return None


def _sign_in() -> None:
    """Analyst role: OIDC (st.login) when configured, else the local password. The role is held
    as a signed grant (pipelines/access.py); `role` in session state is only its read-out."""
    if _secret("auth") is not None:
        if not st.user.is_logged_in:
            st.sidebar.button("分析人员登录", on_click=st.login, icon=":material/login:")
            st.session_state[keys.ACCESS_GRANT] = None
        else:
            analysts = set(_secret("roles", "analysts") or [])
            role = ANALYST if st.user.email in analysts else VIEWER
            st.session_state[keys.ACCESS_GRANT] = issue_grant(role, str(st.user.email), client=_client())
            st.sidebar.caption(f"已登录：{st.user.email}")
            st.sidebar.button("退出登录", on_click=st.logout)
        _publish_role()
        return
    if accounts().exists():
        _account_sign_in()
        return
    stored = os.environ.get(HASH_ENV) or _secret("local_auth", "analyst_password_hash")
    _publish_role()
    if st.session_state[keys.ROLE] == ANALYST:
        if st.sidebar.button("退出分析人员模式", icon=":material/logout:"):
            st.session_state[keys.ACCESS_GRANT] = None
            _publish_role()
            st.rerun()
        return
    with st.sidebar.expander("分析人员登录"):
        if not stored:
            st.caption("尚未设置分析人员密码：运行 `python -m pipelines set-password`。")
            return
        with st.form("sign_in", border=False):
            password = st.text_input("密码", type="password")
            if st.form_submit_button("登录"):
                if verify_password(password, str(stored)):
                    st.session_state[keys.ACCESS_GRANT] = issue_grant(ANALYST, "分析人员", client=_client())
                    _publish_role()
                    st.rerun()
                time.sleep(1.0)  # slows guessing
                st.error("密码不正确")


def _account_sign_in() -> None:
    """Named accounts: who is signed in and a sign-out that ends the session server-side, or
    the sign-in form."""
    grant = current()
    if grant.signed_in:
        st.sidebar.caption(f"已登录：{grant.user}（{ROLES[grant.role]}）")
        if st.sidebar.button("退出登录", icon=":material/logout:"):
            accounts().sign_out(grant.token)
            st.session_state[keys.ACCESS_GRANT] = None
            _publish_role()
            st.rerun()
        return
    with st.sidebar.expander("登录"):
        _account_form()


def _account_form() -> None:
    with st.form("sign_in", border=False):
        name = st.text_input("用户名")
        password = st.text_input("密码", type="password")
        if st.form_submit_button("登录"):
            try:
                session_token = accounts().sign_in(name, password, _client())
            except AccountError as exc:
                time.sleep(1.0)  # slows guessing; the lockout in the accounts file stops it
                st.error(str(exc))
                return
            account = accounts().session(session_token, _client())
            if account is not None:
                st.session_state[keys.ACCESS_GRANT] = issue_grant(
                    account.role, account.name, account.city_code or "", session_token, _client())
                _publish_role()
                st.rerun()


def _sign_in_page() -> None:
    """All a visitor sees while sign-in to read is required."""
    st.title("测评看板")
    st.info("请先登录。账户由管理员分配（`python -m pipelines users add`）。")
    if accounts().exists():
        _account_form()
    else:
        st.warning("尚未建立任何账户：请管理员在服务器上运行 `python -m pipelines users add`。")


def _client() -> str:
    """This browser's key (the session token is bound to it)."""
    try:
        return client_key(st.context.cookies)
    except Exception:  # no client connection (bare script runs)
        return ""


def _check_grant() -> None:
    """Re-read the grant against the accounts file before anything renders."""
    grant, changed = current_grant(st.session_state.get(keys.ACCESS_GRANT),
                                   accounts() if accounts().exists() else None, _client())
    if changed is not None:
        st.session_state[keys.ACCESS_GRANT] = changed or None
        if not changed:
            st.session_state[keys.FLASH] = "登录已过期或已退出，请重新登录。"
    _publish_role()


def _publish_role() -> None:
    """Read the grant out into `role` and `user_name` for the pages (recomputed every run, so
    writing them directly changes nothing)."""
    grant = current()
    st.session_state[keys.ROLE], st.session_state[keys.USER_NAME] = grant.role, grant.user or "查看者"


def _filters() -> None:
    """Wave and city selectors, initialised from the URL once per session."""
    wh = warehouse()
    waves = ready_waves()                               # survey and (if scored) indicators in
    released = set(wh.released_waves())
    if not can_change_data(current()):
        waves = [w for w in waves if w in released]     # leaders see only what was released
    counties = wh.counties()
    cities = dict(counties.select("city_code", "city_name").unique().sort("city_code").iter_rows())
    if scope := current().city:                      # a city-limited viewer: province or own city
        cities = {code: name for code, name in cities.items() if code == scope}
    if st.session_state.get(keys.CITY) not in (None, "", *cities):
        st.session_state[keys.CITY] = scope or ""    # tampered or stale: back to what is allowed
    if (pending := st.session_state.pop(keys.PENDING_WAVE, None)) in waves:
        st.session_state[keys.WAVE] = pending          # a wave just published: show it
    if keys.WAVE not in st.session_state or st.session_state[keys.WAVE] not in waves:
        wanted = st.query_params.get("wave")
        st.session_state[keys.WAVE] = wanted if wanted in waves else (waves[-1] if waves else None)
    if keys.CITY not in st.session_state:
        wanted = st.query_params.get("city", "")
        st.session_state[keys.CITY] = wanted if wanted in cities else ""
    if keys.COUNTY not in st.session_state:
        # read before the URL is rewritten below: a bookmarked county must survive this run
        wanted = st.query_params.get("county", "")
        if wanted in set(counties["county_code"].to_list()):
            st.session_state[keys.COUNTY] = wanted
    if waves:
        st.sidebar.selectbox("期次", waves, key="wave", format_func=lambda w: wave_display(w)
                             + ("" if w in released else "（未发布）"))
        if st.session_state[keys.WAVE] not in released:
            st.sidebar.warning("本期尚未对领导发布：查看者看不到这一期。")
    st.sidebar.selectbox("市州", ["", *cities], key="city",
                         format_func=lambda code: cities.get(code, "全省"))
    params = {"wave": st.session_state[keys.WAVE] or "", "city": st.session_state[keys.CITY]}
    if county := st.session_state.get(keys.COUNTY):
        params["county"] = county
    st.query_params.from_dict({k: v for k, v in params.items() if v})


# one bounded slot per script run (pipelines/core/slots.py): many sessions at once wait for a
# slot instead of thrashing over the GIL and starving the server's event loop
with run_slot():
    _check_grant()
    drawn = False
    if sign_in_required(st.get_option("server.address")) and not current().signed_in:
        if not accounts().exists():
            _sign_in()  # OIDC's button or the local analyst password, in the sidebar
            drawn = True
        if not current().signed_in:
            st.navigation([st.Page(_sign_in_page, title="登录", icon=":material/login:")]).run()
            st.stop()
    try:
        _filters()
    except WarehouseError as exc:
        st.error(str(exc))
        st.stop()
    if not drawn:
        _sign_in()

    pages = [
        st.Page("pages/overview.py", title="总览", icon=":material/dashboard:", default=True),
        st.Page("pages/ranking.py", title="县区排名", icon=":material/leaderboard:"),
        st.Page("pages/risk.py", title="挂牌风险", icon=":material/warning:"),
        st.Page("pages/delisting.py", title="摘帽进度", icon=":material/flag:"),
        st.Page("pages/county.py", title="县区画像", icon=":material/location_city:"),
        st.Page("pages/exports.py", title="会议材料", icon=":material/slideshow:"),
        st.Page("pages/scheme.py", title="评分方案", icon=":material/rule:"),
    ]
    grant: Grant = current()
    if can_change_data(grant):
        pages.append(st.Page("pages/data.py", title="数据管理", icon=":material/upload_file:"))
        pages.append(st.Page("pages/plan.py", title="抽样方案", icon=":material/call:"))
    if is_admin(grant):
        pages.append(st.Page("pages/accounts.py", title="账户管理", icon=":material/manage_accounts:"))
    st.navigation(pages).run()
