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
    county_fixes,
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
from pipelines.present.access import Grant, can_change_data, county_visible, granted, visible_city
from pipelines.present.figures import figure_png
from pipelines.present.tables import DECIMAL3, INTEGER, PERCENT, SCORE, Table, csv_bytes
from pipelines.present.views import Overview, overview, ranking_view
from pipelines.store.accounts import Accounts, users_path
from pipelines.store.leftovers import clean_leftovers
from pipelines.store.warehouse import DEFAULT_DB, Warehouse, WarehouseError


def require_entry() -> None:
    """Every page calls this first: a page runs only inside app.py's navigation (sidebar, filters,
    sign-in check). `streamlit run app.py` on a fresh server takes pages/ for Streamlit's legacy
    navigation folder until st.navigation first runs, so a bookmarked deep link would run this
    file alone; switch the server to st.navigation and rerun, and app.py runs first."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    label_sidebar_toggle()


def label_sidebar_toggle() -> None:
    """On a phone the sidebar (pages, wave, city) hides behind a bare » icon: name it 菜单, so a
    leader sees where the other pages are."""
    st.html("""<style>
    [data-testid="stExpandSidebarButton"] { width: auto; padding: 0 0.6rem; gap: 0.25rem; }
    [data-testid="stExpandSidebarButton"]::after { content: "菜单（页面·期次·市州）";
        font-size: 0.95rem; font-weight: 600; white-space: nowrap; }
    </style>""")


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


@st.cache_resource
def _leftovers(path: str) -> str | None:
    return clean_leftovers(Path(path)).notice()


def warehouse() -> Warehouse:
    """The one read-write connection of this process (pages take cursors from it)."""
    _leftovers(str(warehouse_path()))        # once per server start, before the first open
    return _open_warehouse(str(warehouse_path()))


def leftovers_notice() -> str | None:
    """What the server found beside the warehouse at its start (partial copies of a killed
    restore, removed; before-restore safety copies, kept), for the analysts' page."""
    return _leftovers(str(warehouse_path()))


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


@st.cache_resource(max_entries=64, show_spinner="正在计算各分项离开后3名/后10名所需的改变……")
def _fixes(path: str, version: str, wave: str, county: str) -> pl.DataFrame:
    listing_rules = definitions().scheme.listing
    return county_fixes(_history(path, version, wave)[-1], county,
                        (listing_rules.province_bottom, listing_rules.city_bottom))


def fixes(wave: str, county: str) -> pl.DataFrame:
    """What the county must change, component by component, to leave the bottom 3 / bottom 10."""
    return _guard(lambda path, version, w: _fixes(path, version, w, county), wave)


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


def ready_waves() -> list[str]:
    """The waves leaders can open, oldest first: a survey published and, when the scheme scores
    work indicators, the indicator sheet too. Between an analyst's two publishes (or after a
    sheet is withdrawn) a wave is half there; leaders keep seeing the last complete wave, and
    no session scores the history only to fail on the missing sheet."""
    ready = pl.col("survey_load_id").is_not_null()
    if any(c.source == "indicator" for c in definitions().scheme.components):
        ready &= pl.col("indicators_load_id").is_not_null()
    return warehouse().waves().filter(ready)["wave"].to_list()


def warm_after_publish() -> str:
    """Compute the newest wave's results right after a publish, so the first leader to open the
    dashboard gets them at once; returns a note for the analyst when they cannot be computed yet.

    Through the pages' own caches (which store to the result store as well): a leader who opens
    the new wave meanwhile waits for this computation instead of running a second one beside
    it, which on two cores slowed every session while both ran."""
    waves = ready_waves()
    if not waves:
        return ""
    wave = waves[-1]
    try:
        key = (*_key(wave), wave)
        for compute in (_history, _risk, _listing, _ranking, _overview):
            compute(*key)
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


def accounts() -> Accounts:
    """The named accounts of this warehouse (pipelines/store/accounts.py)."""
    return Accounts(users_path(warehouse_path()))


def current() -> Grant:
    """Who this session is: the signed grant, checked against the accounts file by app.py at
    the start of every run."""
    return granted(st.session_state.get(keys.ACCESS_GRANT))


def selected_city() -> str | None:
    """City code, or None for the whole province; a city-limited viewer never gets another
    city, whatever session state or the URL say."""
    return visible_city(current(), st.session_state.get(keys.CITY) or None)


def scope_city() -> str | None:
    """The one city a city-limited viewer may see in detail (None: no limit)."""
    return current().city or None


def may_see_county(city_code: str | None) -> bool:
    return county_visible(current(), city_code)


def is_analyst() -> bool:
    return can_change_data(current())


def in_city(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows of the chosen city (all rows when the whole province is shown)."""
    city = selected_city()
    if city is None or "city_code" not in frame.columns:
        return frame
    return frame.filter(pl.col("city_code") == city)


def detail_city() -> str | None:
    """The city whose counties a page shows in detail (county pages, 摘帽 details, exports): the
    chosen one, or a city-limited viewer's own city when the province is chosen."""
    return selected_city() or scope_city()


def in_scope(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows of `detail_city()`'s counties (all rows for an unlimited user and the province)."""
    city = detail_city()
    if city is None or "city_code" not in frame.columns:
        return frame
    return frame.filter(pl.col("city_code") == city)


def city_label(city: str | None = None) -> str:
    city = city or selected_city()
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

    The spec is turned into Vega-Lite without Altair's JSON-schema validation (the chart builders
    are validated by the tests) and outside st.altair_chart, which converts under one
    process-wide lock. Pages shown to every leader use `shared_chart`, which builds it once."""
    _draw(spec.to_dict(validate=False), download=download, key=key)


@st.cache_resource(max_entries=512, show_spinner=False)
def _vega(path: str, version: str, name: str, parts: tuple, _build) -> dict:
    return _build().to_dict(validate=False)  # data are inline values (pipelines/charts.py)


def shared_chart(name: str, build, *parts: object, download: bool = True, key: str = "") -> None:
    """A chart built once per data version and shared by every session: building an Altair
    chart and converting it was most of a page view (ranking 1.1 s of 1.7 s under load).
    `name` and `parts` must name everything the chart depends on besides the chosen wave's data
    and city (a county, an option, a title); `build()` makes the Altair chart."""
    wave, city = selected_wave(), selected_city()
    vega = _guard(lambda path, version, w: _vega(path, version, name, (w, city, *parts), build),
                  wave)
    _draw(vega, download=download, key=key)


def _draw(vega: dict, *, download: bool, key: str) -> None:
    title = _title_of(vega) or "图表"
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


def _title_of(vega: dict) -> str:
    title = vega.get("title")
    if isinstance(title, str):
        return title
    text = title.get("text") if isinstance(title, dict) else None
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


def at_risk_list(wave: str, risk_frame: pl.DataFrame) -> None:
    """The answer a leader opens 总览 for: the 高危 and 预警 counties of the chosen scope, red
    and amber, with score, rank, change since the last wave and probability."""
    from pipelines.present.leader import at_risk, at_risk_table, band_rules, band_styled

    listing_rules = definitions().scheme.listing
    located = risk_frame.join(warehouse().counties().select("county_code", "city_code"),
                              on="county_code")
    alarm = at_risk(in_city(located), history(wave))
    counts = alarm["band"].value_counts()
    n = dict(zip(counts["band"], counts["count"], strict=False))
    st.markdown(f"#### :red[高危 {n.get('高危', 0)} 个] · :orange[预警 {n.get('预警', 0)} 个]"
                f"（{city_label()}）")
    for band, colour in (("高危", "red"), ("预警", "orange")):
        if names := alarm.filter(pl.col("band") == band)["county_name"].to_list():
            st.markdown(f":{colour}[**{band}**]：{'、'.join(names)}")
    if alarm.height == 0:
        st.success("本期没有高危或预警的区县。")
    else:
        table = at_risk_table(alarm, listing_rules.province_bottom, listing_rules.city_bottom)
        st.dataframe(band_styled(table), hide_index=True, width="stretch",
                     height=min(420, 38 + 35 * alarm.height))
    st.caption(f"{band_rules(definitions().scheme)}。概率为该县真实水平落在全省后几名的可能性"
               "（已考虑抽样误差）；名次为全省名次。")


def localise_uploader() -> None:
    """Streamlit 1.67 offers no option for the uploader's English ("Drag and drop file here",
    "200MB per file", "Upload"): hide those texts and draw Chinese ones in their place."""
    limit = st.get_option("server.maxUploadSize")
    st.html(f"""<style>
    [data-testid="stFileUploaderDropzoneInstructions"] > * {{ display: none; }}
    [data-testid="stFileUploaderDropzoneInstructions"]::after {{
        content: "把文件拖到这里，或点击“选择文件”（每个文件不超过 {limit} MB）";
        font-size: 0.9rem; color: #555; }}
    [data-testid="stFileUploaderDropzone"] button {{ font-size: 0; }}
    [data-testid="stFileUploaderDropzone"] button * {{ display: none; }}
    [data-testid="stFileUploaderDropzone"] button::after {{ content: "选择文件"; font-size: 0.9rem; }}
    </style>""")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value >= 0.995 or value < 0.005 \
        else f"{value:.1%}"
