"""What every page needs: the process's warehouse connection and the definitions (cached)."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from pipelines.build import build_warehouse
from pipelines.definitions import Definitions, load_definitions
from pipelines.warehouse import DEFAULT_DB, Warehouse

DB_ENV = "CEPING_DB"


def warehouse_path() -> Path:
    """`$CEPING_DB` when set (tests, a copy), else warehouse.duckdb at the repository root."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


@st.cache_resource(show_spinner="首次运行：正在由示例数据构建数据仓库，约需数秒……")
def _open_warehouse(path: str) -> Warehouse:
    build_warehouse(Path(path))  # no-op when it exists
    return Warehouse.open(path)


def warehouse() -> Warehouse:
    """The one read-write connection of this process (pages take cursors from it)."""
    return _open_warehouse(str(warehouse_path()))


@st.cache_resource
def definitions() -> Definitions:
    return load_definitions()


def sample_badge(wh: Warehouse) -> None:
    """Mark every page while the fictional sample province is loaded: screenshots travel."""
    if wh.meta("is_sample") == "true":
        st.badge("示例数据（虚构省份，仅供演示）", icon=":material/science:", color="orange")
