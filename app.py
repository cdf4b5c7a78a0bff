"""测评看板 — Streamlit entry point: page navigation only; every page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="测评看板", page_icon=":material/leaderboard:", layout="wide")

navigation = st.navigation([
    st.Page("pages/overview.py", title="总览", icon=":material/dashboard:", default=True),
])
navigation.run()
