"""What every page needs: the warehouse connection, cached results keyed on the data version, the
wave and city chosen in the sidebar, the role, and small rendering helpers."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st
from altair.utils.schemapi import disable_debug_mode
from streamlit.runtime.pages_manager import PagesManager

from pipelines import (
    Definitions,
    Funnel,
    ListingResult,
    PlanSettings,
    SamplePlan,
    WaveScores,
    WhatIf,
    component_levers,
    delisting_progress,
    funnel,
    load_definitions,
    plan_for_scores,
    result_cache,
    township_scores,
    wave_display,
    what_if,
)
from pipelines.present import charts  # noqa: F401  (registers the chart theme)
from pipelines.present import session_keys as keys
from pipelines.present.access import ANALYST, granted
from pipelines.present.figures import figure_png
from pipelines.present.tables import DECIMAL3, INTEGER, PERCENT, SCORE, Table, csv_bytes
from pipelines.present.views import Overview, overview, ranking_view
from pipelines.store.warehouse import DEFAULT_DB, Warehouse, WarehouseError


def require_entry() -> None:
    """Every page calls this first: a page runs only inside app.py's navigation (sidebar, filters,
    sign-in check). `streamlit run app.py` on a fresh server takes pages/ for Streamlit's legacy
    navigation folder until st.navigation first runs, so a bookmarked deep link would run this
    file alone; switch the server to st.navigation and rerun, and app.py runs first."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# Altair validates every schema object as it is built (debug mode): a county map's inline data is
# then checked value by value on each page view. The chart builders are validated by the tests and
# exports (to_dict validates); the dashboard skips it.
disable_debug_mode()

DB_ENV = "CEPING_DB"
BOUNDARIES_ENV = "CEPING_GEOJSON"
BOUNDARIES_FILE = Path(__file__).resolve().parent.parent / "surveys" / "boundaries.geojson"


def warehouse_path() -> Path:
    """`$CEPING_DB` when set (tests, a copy), else warehouse.duckdb at the repository root."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


@st.cache_resource(show_spinner="首次运行：正在由示例数据构建数据仓库，约需数秒……")
def _open_warehouse(path: str) -> Warehouse:
    if not Path(path).exists():
        from pipelines import build_warehouse  # only on first run: it imports the generator
        build_warehouse(Path(path))
    return Warehouse.open(path)


def warehouse() -> Warehouse:
    """The one read-write connection of this process (pages take cursors from it)."""
    return _open_warehouse(str(warehouse_path()))


@st.cache_resource
def definitions() -> Definitions:
    return load_definitions()


# -- cached results: keyed on the warehouse file and its data version (an upload bumps it) -------


def _key(wave: str) -> tuple[str, str]:
    """Cache key of a wave's results: the warehouse file and what those results depend on (a
    publish of a later wave does not invalidate them)."""
    return str(warehouse_path()), warehouse().content_version(wave)


@st.cache_resource(max_entries=8, show_spinner="正在计算得分与区间……")
def _history(path: str, version: str, wave: str) -> list[WaveScores]:
    return result_cache.history(Path(path), warehouse(), definitions(), version, wave)


def _guard(compute, wave: str):
    """Run a cached computation; a data problem becomes a Chinese message and stops the page."""
    try:
        return compute(*_key(wave), wave)
    except WarehouseError as exc:
        st.warning(str(exc))
        st.stop()


def history(wave: str) -> list[WaveScores]:
    return _guard(_history, wave)


@st.cache_resource(max_entries=8, show_spinner="正在模拟排名（10,000 次）……")
def _risk(path: str, version: str, wave: str) -> pl.DataFrame:
    return result_cache.risk(Path(path), lambda: _history(path, version, wave), definitions(),
                             version, wave, result_cache.dashboard_draws())


def risk(wave: str) -> pl.DataFrame:
    return _guard(_risk, wave)


@st.cache_resource(max_entries=8, show_spinner="正在核对挂牌与摘帽规则……")
def _listing(path: str, version: str, wave: str) -> ListingResult:
    return result_cache.listing(Path(path), warehouse(), definitions(),
                                lambda: _history(path, version, wave), version, wave)


def listing(wave: str) -> ListingResult:
    return _guard(_listing, wave)


@st.cache_resource(max_entries=8, show_spinner=False)
def _ranking(path: str, version: str, wave: str) -> pl.DataFrame:
    bottoms = (definitions().scheme.listing.province_bottom, definitions().scheme.listing.city_bottom)
    return ranking_view(_risk(path, version, wave), _history(path, version, wave)[-1], bottoms) \
        .join(warehouse().counties().select("county_code", "city_code"), on="county_code") \
        .sort("rank")


def ranking(wave: str) -> pl.DataFrame:
    """The ranking table (scores, intervals, ranks, cut-line flags, components, city code)."""
    return _guard(_ranking, wave)


@st.cache_resource(max_entries=8, show_spinner=False)
def _funnel(path: str, version: str, wave: str) -> Funnel:
    return funnel(_history(path, version, wave)[-1])


def funnel_data(wave: str) -> Funnel:
    return _guard(_funnel, wave)


@st.cache_resource(max_entries=32, show_spinner=False)
def _overview(path: str, version: str, wave: str, city: str | None) -> Overview:
    return overview(_history(path, version, wave), _risk(path, version, wave), city)


def overview_summary(wave: str) -> Overview:
    """The overview of the chosen city (or of the province when none is chosen)."""
    city = selected_city()
    return _guard(lambda path, version, w: _overview(path, version, w, city), wave)


@st.cache_resource(max_entries=8, show_spinner=False)
def _progress(path: str, version: str, wave: str) -> pl.DataFrame:
    return delisting_progress(_listing(path, version, wave), _risk(path, version, wave), wave)


def progress(wave: str) -> pl.DataFrame:
    return _guard(_progress, wave)


@st.cache_resource(max_entries=8, show_spinner=False)
def _levers(path: str, version: str, wave: str) -> pl.DataFrame:
    return component_levers(_history(path, version, wave)[-1])


def levers(wave: str) -> pl.DataFrame:
    """Points each component adds to every county's score (per unit and per county-level SD)."""
    return _guard(_levers, wave)


@st.cache_resource(max_entries=64, show_spinner="正在计算乡镇（街道）得分……")
def _townships(path: str, version: str, wave: str, county: str) -> pl.DataFrame | None:
    return township_scores(warehouse(), definitions(), wave, county)


def townships(wave: str, county: str) -> pl.DataFrame | None:
    """One county's township survey scores, computed once per data version for every session."""
    return _guard(lambda path, version, w: _townships(path, version, w, county), wave)


WHAT_IF_DRAWS = 4000


@st.cache_resource(max_entries=256, show_spinner="正在模拟新的名次……")
def _what_if(path: str, version: str, wave: str, county: str,
             changes: tuple[tuple[str, float], ...]) -> WhatIf:
    return what_if(_history(path, version, wave)[-1], definitions(), county, dict(changes),
                   draws=WHAT_IF_DRAWS)


def what_if_result(wave: str, county: str, changes: dict[str, float]) -> WhatIf:
    """The score, rank and bottom-k chances a county would have after `changes` (raw units)."""
    chosen = tuple(sorted((k, float(v)) for k, v in changes.items() if v))
    return _guard(lambda path, version, w: _what_if(path, version, w, county, chosen), wave)


@st.cache_resource(max_entries=32, show_spinner="正在规划各县样本量……")
def _plan(path: str, version: str, wave: str, total: int, minimum: int, maximum: int | None,
          fixed: tuple[tuple[str, int], ...], weights: tuple[tuple[int, float], ...]) -> SamplePlan:
    settings = PlanSettings(total=total, min_per_county=minimum, max_per_county=maximum,
                            fixed=dict(fixed), weights=dict(weights),
                            seed=definitions().scheme.estimation.seed)
    return plan_for_scores(_history(path, version, wave), warehouse().counties(), settings)


def sample_plan(wave: str, total: int, minimum: int, maximum: int | None,
                fixed: dict[str, int], weights: dict[int, float]) -> SamplePlan:
    """The next wave's sample plan from the history up to `wave`, once per data version and
    settings (raises PlanError for settings that admit no allocation)."""
    return _guard(lambda path, version, w: _plan(path, version, w, total, minimum, maximum,
                                                 tuple(sorted(fixed.items())),
                                                 tuple(weights.items())), wave)


def warm_after_publish() -> str:
    """Store the newest wave's results right after a publish, so the first leader to open the
    dashboard gets them at once; returns a note for the analyst when they cannot be computed yet."""
    try:
        result_cache.warm_latest(warehouse_path(), warehouse(), definitions())
    except Exception as exc:  # optional work after the publish has committed: report, go on
        return f"（最新一期暂时无法预先计算：{exc}）"
    return ""


@st.cache_resource
def _read_boundaries(path: str, mtime: float) -> dict | None:
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def boundaries() -> dict | None:
    """The user's county boundary file (GeoJSON) when present: `$CEPING_GEOJSON` or
    surveys/boundaries.geojson."""
    path = Path(os.environ.get(BOUNDARIES_ENV) or BOUNDARIES_FILE)
    if not path.exists():
        return None
    return _read_boundaries(str(path), path.stat().st_mtime)


# -- selections made in the sidebar (app.py) -----------------------------------------------------


def selected_wave() -> str | None:
    return st.session_state.get(keys.WAVE)


def selected_city() -> str | None:
    """City code, or None for the whole province."""
    return st.session_state.get(keys.CITY) or None


def is_analyst() -> bool:
    return granted(st.session_state.get(keys.ACCESS_GRANT))[0] == ANALYST


def in_city(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows of the chosen city (all rows when the whole province is shown)."""
    city = selected_city()
    if city is None or "city_code" not in frame.columns:
        return frame
    return frame.filter(pl.col("city_code") == city)


def city_label() -> str:
    city = selected_city()
    if city is None:
        return "全省"
    names = warehouse().counties().filter(pl.col("city_code") == city)["city_name"]
    return names[0] if names.len() else city


def sample_badge(wh: Warehouse) -> None:
    """Mark every page while the fictional sample province is loaded: screenshots travel."""
    if wh.meta("is_sample") == "true":
        st.badge("示例数据（虚构省份，仅供演示）", icon=":material/science:", color="orange")


def chart(spec: alt.TopLevelMixin, *, download: bool = True, key: str = "") -> None:
    """Render with the shared theme, not Streamlit's, so the screen matches an exported PNG; under
    it a 下载图片 menu (16:9 PNG at 1920×1080 or 2×, rendered only when clicked, bytes cached).

    The spec is turned into Vega-Lite once, without Altair's JSON-schema validation (the chart
    builders are validated by the tests) and outside st.altair_chart, which converts under one
    process-wide lock: with many sessions, that lock and the validation were most of a page view."""
    title = _title_of(spec) or "图表"
    vega = spec.to_dict(validate=False)  # data are inline values (pipelines/charts.py)
    st.vega_lite_chart(spec=vega, theme=None, width="stretch")
    if not download:
        return
    subtitle = f"{wave_display(selected_wave()) if selected_wave() else ''} · {city_label()}"
    # a key from the title (plus `key` where a page repeats a title), not from the spec: hashing a
    # large spec costs as much as drawing it
    key = hashlib.sha1(f"{title}\x1f{subtitle}\x1f{key}".encode()).hexdigest()[:12]
    name = re.sub(r"[\\/:*?\"<>|\s]+", "_", title)[:40]
    with st.popover("下载图片", icon=":material/image:"):
        for scale, label in ((1, "标准（1920×1080）"), (2, "高清（3840×2160）")):
            st.download_button(
                label, data=functools.partial(figure_png, vega, title=title, subtitle=subtitle,
                                              scale=scale),
                file_name=f"{name}{'' if scale == 1 else '@2x'}.png", mime="image/png",
                key=f"png_{key}_{scale}", on_click="ignore")


def _title_of(spec: alt.TopLevelMixin) -> str:
    title = getattr(spec, "title", None)
    if isinstance(title, str):
        return title
    text = getattr(title, "text", None)
    return text if isinstance(text, str) else ""


def show_table(table: Table, *, height: int | None = None, key: str | None = None) -> None:
    """A table as the exports write it: the same Chinese headers and number formats, and a CSV
    download whose text cells cannot run as spreadsheet formulas."""
    config = {column: st.column_config.NumberColumn(format=NUMBER_FORMATS[kind])
              for column, kind in table.formats.items() if column in table.frame.columns}
    st.dataframe(table.frame, hide_index=True, width="stretch", column_config=config,
                 **({"height": height} if height else {}))
    st.download_button("下载CSV", data=functools.partial(csv_bytes, table),
                       file_name=f"{table.title}.csv", mime="text/csv",
                       key=key or f"csv_{table.title}", icon=":material/download:",
                       on_click="ignore")


NUMBER_FORMATS = {SCORE: "%.2f", PERCENT: "percent", INTEGER: "%d", DECIMAL3: "%.3f"}


def require_wave() -> str:
    """The chosen wave, or a clear empty state and stop."""
    wave = selected_wave()
    if wave is None:
        st.info("数据仓库中还没有调查数据。请分析人员在“数据管理”页上传一期调查数据。")
        st.stop()
    return wave


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value >= 0.995 or value < 0.005 \
        else f"{value:.1%}"
