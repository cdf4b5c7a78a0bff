"""What leaders see is right and unmixed (issue 20): a bookmarked county stays, a city view holds
only that city's numbers, veto waves are marked in histories, one risk-band definition, the
τ-worst set kept for analysts, 得分 beside the raw value, Excel that prints, 北京时间."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone

import polars as pl
import pytest
from pptx import Presentation

from pipelines.core.clock import beijing_expr
from pipelines.exports.deck import build_deck
from pipelines.exports.pack import meeting_pack, meeting_tables
from pipelines.exports.workbook import workbook_bytes
from pipelines.present import charts
from pipelines.present.figures import footer_text
from pipelines.present.tables import band_rule, csv_bytes, ranking_table, risk_display, risk_order
from pipelines.present.views import county_history, ranking_view
from pipelines.ranking.risk import risk_table
from pipelines.results.wave import listing_result, scored_history
from pipelines.store.warehouse import Warehouse
from tests.test_app import navigation_not_pages_directory, run_app, texts  # noqa: F401

CITY, CITY_NAME, COUNTY = "9902", "霁汊市", "990210"
VETOED, VETO_WAVE = "990308", "2024年度"      # 翎畈县: illegal cultivation found in 2024


@pytest.fixture(scope="module")
def results(built_db, defs):
    """The sample's 2025 history, risk table (the dashboard's 2000 draws in tests), listing."""
    with Warehouse.open(built_db, read_only=True) as wh:
        history = scored_history(wh, defs, "2025")
        risk = risk_table(history, defs, draws=2000)
        listing = listing_result(wh, defs, history)
        counties = wh.counties()
        pack = meeting_pack(wh, defs, "2025", CITY, history=history, risk=risk, listing=listing)
    return history, risk.join(counties.select("county_code", "city_code"), on="county_code"), \
        listing, pack


def _query(at, **params):
    for key, value in params.items():
        at.query_params[key] = value
    return at


def test_a_bookmarked_county_is_the_county_shown(monkeypatch, db_copy):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP

    monkeypatch.setenv("CEPING_DB", str(db_copy))
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    at = _query(AppTest.from_file(APP, default_timeout=120), wave="2024", city=CITY,
                county=COUNTY).run()
    at.switch_page("pages/county.py").run()
    assert not at.exception
    box = next(s for s in at.selectbox if s.label == "区县")
    assert box.value == COUNTY
    assert at.query_params["county"] in (COUNTY, [COUNTY])
    assert at.session_state["wave"] == "2024" and at.session_state["city"] == CITY


def test_a_city_overview_holds_only_the_citys_numbers(monkeypatch, db_copy, results):
    _, risk, listing, _ = results
    mine = risk.filter(pl.col("city_code") == CITY)
    at = run_app(monkeypatch, db_copy)
    at.selectbox(key="city").select(CITY).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert not [label for label in metrics if label.startswith("全省")], metrics
    mean = mine.filter(~pl.col("veto"))["score"].mean()
    assert metrics[f"{CITY_NAME}平均分"] == f"{mean:.2f}"
    bands = dict(mine.group_by("band").len().iter_rows())
    assert metrics[f"{CITY_NAME}高危 / 预警"] == f"{bands.get('高危', 0)} / {bands.get('预警', 0)} 个"
    listed = listing.status.filter(pl.col("county_code").is_in(mine["county_code"].implode()))
    assert metrics[f"{CITY_NAME}挂牌整治中"] == f"{listed.height} 个"
    band_table = next(d.value for d in at.dataframe
                      if {"风险等级", "区县数"} <= set(d.value.columns))
    assert band_table["区县数"].sum() == mine.height == 11
    top = mine.sort("p_bottom3", descending=True)["county_name"][0]
    assert f"{CITY_NAME}本期后3名概率最高：{top}" in texts(at)


def test_the_city_deck_overview_slide_holds_the_citys_numbers(results):
    _, risk, listing, pack = results
    mine = risk.filter(pl.col("city_code") == CITY)
    deck = Presentation(io.BytesIO(build_deck(pack)))
    text = "\n".join(shape.text_frame.text for shape in deck.slides[1].shapes
                     if shape.has_text_frame)
    mean = mine.filter(~pl.col("veto"))["score"].mean()
    assert f"{CITY_NAME}平均分：{mean:.2f}" in text and "全省平均分" not in text
    for band, count in mine.group_by("band").len().iter_rows():
        assert f"{band}：{count} 个区县" in text


def test_a_veto_wave_is_a_marked_gap_in_the_county_history(results):
    history, *_ = results
    trail = county_history(history, VETOED)
    spec = charts.history_chart(trail, title="历次得分").to_dict()
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["detail"]["field"] == "segment"      # the line stops at the veto
    rows = spec["datasets"][line["data"]["name"]] if "datasets" in spec else line["data"]["values"]
    segment = {row["wave_label"]: row["segment"] for row in rows}
    assert VETO_WAVE not in segment
    assert segment["2023年度"] != segment["2025年度"]              # not joined across 2024
    texts_in_chart = [layer["encoding"]["text"]["value"] for layer in spec["layer"]
                      if layer["mark"]["type"] == "text"]
    assert texts_in_chart == ["一票否决（记0分）"]


def test_one_band_definition_orders_table_chart_and_slide(results, defs):
    _, risk, _, pack = results
    scheme = defs.scheme
    rule = band_rule(scheme)
    assert "本期" in rule and "高危（本期后3名概率 ≥ 50%）" in rule
    ordered = risk_order(risk, scheme)
    table = risk_display(risk, scheme).frame
    assert table["区县"].to_list() == ordered["county_name"].to_list()
    bands = [b.label for b in scheme.listing.bands]
    positions = [bands.index(b) for b in table["风险等级"]]
    assert positions == sorted(positions)                       # most at risk first, by band
    spec = charts.risk_chart(ordered, top=12).to_dict()
    sorts = [layer["encoding"]["y"]["sort"] for layer in spec.get("layer", [spec])
             if "sort" in layer.get("encoding", {}).get("y", {})]
    assert sorts and all(s == ordered["county_name"].head(12).to_list() for s in sorts)
    deck = Presentation(io.BytesIO(build_deck(pack)))
    slide = next(s for s in deck.slides if any(
        sh.has_text_frame and sh.text_frame.text.startswith("挂牌风险") for sh in s.shapes))
    grid = next(sh.table for sh in slide.shapes if sh.has_table)
    names = [grid.cell(r, 0).text for r in range(1, len(grid.rows))]
    city = risk_order(risk.filter(pl.col("city_code") == CITY), scheme)
    assert names == city["county_name"].head(12).to_list()
    assert [grid.cell(0, c).text for c in range(3)] == ["区县", "名次", "等级"]
    notes = slide.notes_slide.notes_text_frame.text
    assert rule in notes and "由下期" not in notes


def test_the_worst_set_is_not_a_leader_headline(monkeypatch, db_copy, results, defs):
    _, risk, _, _ = results
    at = run_app(monkeypatch, db_copy)
    at.switch_page("pages/risk.py").run()
    assert not at.exception
    assert "可能属于真实后" not in texts(at)
    assert not [c for c in risk_display(risk, defs.scheme).frame.columns if "可能属" in c]
    at.switch_page("pages/county.py").run()
    assert any(e.label == "统计细节（供分析人员）" for e in at.expander)
    assert "按95%置信度" in texts(at)


def test_component_columns_say_score_and_carry_the_raw_value(results, defs):
    history, risk, _, pack = results
    bottoms = (defs.scheme.listing.province_bottom, defs.scheme.listing.city_bottom)
    table = ranking_table(ranking_view(risk.drop("city_code"), history[-1], bottoms), defs.scheme)
    label = "现有吸毒人员千人比"
    columns = table.frame.columns
    assert label not in columns
    at = columns.index(f"{label}·得分")
    assert columns[at + 1] == f"{label}·原始值"
    rates = history[-1].components.filter(pl.col("label") == label).sort("county_code")
    shown = table.frame.select(pl.col(f"{label}·原始值")).to_series()
    assert sorted(shown.to_list()) == sorted(rates["raw"].to_list())
    assert f"{label}·得分".encode() in csv_bytes(table)
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes(meeting_tables(pack))))
    headers = [c.value for c in book["县区排名"][1]]
    assert f"{label}·得分" in headers and f"{label}·原始值" in headers


def test_the_workbook_prints_landscape_one_page_wide_with_the_header_repeated(results):
    import openpyxl

    *_, pack = results
    data = workbook_bytes(meeting_tables(pack))
    book = openpyxl.load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        if sheet.title == "说明":
            continue
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert sheet.page_setup.fitToWidth in (1, None) and sheet.page_setup.fitToHeight == 0
        assert sheet.print_title_rows in ("1:1", "$1:$1"), sheet.title
        header = [c.value for c in sheet[1]]
        if "区县" in header:
            letter = openpyxl.utils.get_column_letter(header.index("区县") + 1)
            assert sheet.column_dimensions[letter].width >= 14, sheet.title
    assert zipfile.is_zipfile(io.BytesIO(data))


def test_times_are_shown_in_beijing_time(results):
    *_, pack = results
    stamp = pl.DataFrame({"at": [datetime(2026, 1, 1, 0, 30, tzinfo=timezone.utc)]})
    assert stamp.select(beijing_expr("at"))["at"][0] == "2026-01-01 08:30:00"
    assert footer_text(generated=datetime(2026, 1, 1, 0, 30, tzinfo=timezone.utc))[1] \
        == "生成时间：2026-01-01 08:30（北京时间）"
    deck = Presentation(io.BytesIO(build_deck(pack, datetime(2026, 1, 1, 16, 5,
                                                               tzinfo=timezone.utc))))
    cover = "\n".join(s.text_frame.text for s in deck.slides[0].shapes if s.has_text_frame)
    assert "生成时间：2026-01-02 00:05（北京时间）" in cover


def test_the_audit_command_prints_beijing_time(db_copy, capsys):
    from pipelines.cli import main
    from pipelines.core.clock import beijing_text

    with Warehouse.open(db_copy) as wh:
        wh.record_audit("测试", "张三")
        at = wh.audit_log()["at"][0]
    assert main(["audit", "--db", str(db_copy), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert beijing_text(at, "%Y-%m-%d %H:%M:%S") in out
    assert at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") not in out
