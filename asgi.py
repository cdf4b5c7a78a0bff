"""测评看板 served as an ASGI app (what `make serve` runs): Streamlit's st.App around app.py, with
the Host allow-list and security headers of pipelines/present/security.py in front of every
HTTP route and the WebSocket. `python -m pipelines.serve --deploy` sets the options."""

import os

import streamlit as st
from starlette.middleware import Middleware
from streamlit.runtime.pages_manager import PagesManager

from pipelines.present.security import SecurityHeaders

HOSTS_ENV = "CEPING_ALLOWED_HOSTS"   # comma-separated; empty accepts any Host (local use only)
TLS_ENV = "CEPING_TLS"               # "1" when served over https: adds HSTS

PagesManager.uses_pages_directory = False   # app.py declares st.navigation (pipelines/serve.py)
hosts = [h for h in os.environ.get(HOSTS_ENV, "").split(",") if h.strip()]
app = st.App("app.py", middleware=[Middleware(SecurityHeaders, allowed_hosts=hosts,
                                              tls=os.environ.get(TLS_ENV) == "1")])
