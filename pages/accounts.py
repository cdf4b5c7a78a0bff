"""账户管理 (administrators only): the named accounts — add a user with a role (and, for a viewer,
a city), disable or enable one, reset a password — and the record of account changes."""

import datetime

import polars as pl
import streamlit as st

from pages._shared import accounts, current, require_entry, warehouse
from pipelines.present.access import is_admin
from pipelines.store.accounts import ROLES, VIEWER, AccountError

require_entry()   # before anything renders: only inside app.py's navigation

if not is_admin(current()):   # not in anyone else's navigation; this guards direct calls too
    st.error("此页仅限管理员。")
    st.stop()

me = current().user
store = accounts()
st.title("账户管理")
cities = dict(warehouse().counties().select("city_code", "city_name").unique().sort("city_code")
              .iter_rows())
users = store.list()
st.dataframe(pl.DataFrame({
    "用户名": [u.name for u in users], "角色": [u.role_label for u in users],
    "市州": [cities.get(u.city_code, u.city_code) if u.city_code else "全省" for u in users],
    "状态": ["已停用" if u.disabled else "正常" for u in users]}), hide_index=True, width="stretch")

add, change = st.columns(2)
with add.form("add_user", clear_on_submit=True):
    st.markdown("**新建用户**")
    name = st.text_input("用户名")
    role = st.selectbox("角色", list(ROLES), format_func=ROLES.get)
    city = st.selectbox("限定市州（仅查看者）", ["", *cities], format_func=lambda c: cities.get(c, "全省"))
    password = st.text_input("初始密码（至少8个字符）", type="password")
    if st.form_submit_button("新建"):
        try:
            store.add(name, password, role, city if role == VIEWER else None, by=me)
        except AccountError as exc:
            st.error(str(exc))
        else:
            st.success(f"已新建用户 {name.strip()}（{ROLES[role]}）。")
with change.form("change_user"):
    st.markdown("**停用、启用或重设密码**")
    who = st.selectbox("用户", [u.name for u in users])
    action = st.radio("操作", ["停用", "启用", "重设密码"], horizontal=True)
    new_password = st.text_input("新密码（重设密码时填写）", type="password")
    if st.form_submit_button("执行") and who:
        try:
            if action == "重设密码":
                store.reset_password(who, new_password, by=me)
            elif who == me and action == "停用":
                raise AccountError("不能停用自己的账户。")
            else:
                store.set_disabled(who, action == "停用", by=me)
        except AccountError as exc:
            st.error(str(exc))
        else:
            st.success(f"已{action}：{who}（其已登录的会话随即失效）。" if action != "启用"
                       else f"已启用：{who}。")

st.subheader("账户操作记录")
events = store.events()[:500]
st.dataframe(pl.DataFrame({
    "时间": [datetime.datetime.fromtimestamp(e[0]).strftime("%Y-%m-%d %H:%M:%S") for e in events],
    "操作人": [e[1] for e in events], "操作": [e[2] for e in events],
    "用户": [e[3] or "" for e in events], "说明": [e[4] or "" for e in events]},
    schema={k: pl.String for k in ("时间", "操作人", "操作", "用户", "说明")}),
    hide_index=True, width="stretch")
