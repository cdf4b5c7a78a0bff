"""Every page through Streamlit's AppTest, as a viewer and as an analyst: no exception, the numbers
a user expects on screen, viewers kept out of data management, an upload that ends in the ranking."""

from __future__ import annotations

import hashlib
import shutil

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pipelines.ingest.build import build_warehouse
from pipelines.present.access import hash_password
from pipelines.store.warehouse import REPO_DIR
from pipelines.synth.sample import SAMPLE_DIR
from tests.conftest import csv_bytes, sample_indicators, sample_wave

APP = str(REPO_DIR / "app.py")
PASSWORD = "测试-口令-2026"
PAGES = ["ranking", "risk", "delisting", "county", "exports", "scheme"]


@pytest.fixture(autouse=True)
def navigation_not_pages_directory(monkeypatch):
    """AppTest resets Streamlit's "uses a pages/ directory" flag before every run and sets it from
    the folder's existence, so a rerun after an interaction takes the legacy multipage path and
    runs the page without app.py (no sidebar, no navigation). The real server decides once, from
    st.navigation; this keeps AppTest on that path too."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="module")
def analyst_hash() -> str:
    return hash_password(PASSWORD, rounds=1000)


def run_app(monkeypatch, db, analyst_hash: str | None = None) -> AppTest:
    monkeypatch.setenv("CEPING_DB", str(db))
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    if analyst_hash:
        monkeypatch.setenv("CEPING_ANALYST_HASH", analyst_hash)
    return AppTest.from_file(APP, default_timeout=120).run()


def sign_in(at: AppTest, password: str = PASSWORD) -> AppTest:
    at.text_input[0].input(password)
    at.button[0].click()
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "success",
                                  "error", "subheader") for e in getattr(at, kind)]
    parts += [str(m.value) + str(m.label) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_overview_shows_the_wave_at_a_glance(monkeypatch, db_copy):
    at = run_app(monkeypatch, db_copy)
    assert not at.exception
    assert "示范省" in at.title[0].value
    labels = [m.label for m in at.metric]
    assert labels == ["全省平均分", "全省高危 / 预警", "全省挂牌整治中", "已导入期次"]
    assert at.metric[3].value == "5 期"
    assert at.metric[2].value == "6 个"
    assert any("示例数据" in m.value for m in at.markdown)  # st.badge renders as markdown
    assert "2025年度 · 全省" in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_a_viewer(monkeypatch, db_copy, page):
    at = run_app(monkeypatch, db_copy)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    assert not at.error
    text = texts(at)
    expected = {"ranking": "县区排名", "risk": "挂牌风险", "delisting": "摘帽进度",
                "county": "县区画像", "exports": "会议材料", "scheme": "评分方案"}[page]
    assert at.title[0].value == expected
    if page == "ranking":
        table = at.dataframe[0].value
        assert len(table) == 88 and table["名次"].tolist()[:3] == [1, 2, 3]
        assert "跨越后3名或后10名分界线" in text
    if page == "risk":
        assert "真实水平" in text and "公布的得分" in text
        assert len(at.dataframe[0].value) == 88
    if page == "delisting":
        assert "逾期未摘帽" in text and "规则判定与已录入的正式决定完全一致" in text
        register = next(d.value for d in at.dataframe if "事项" in d.value.columns
                        and "状态" in d.value.columns)
        assert {"通报批评", "考核得分记零", "市挂牌重点整治", "市摘帽"} <= set(register["事项"])
    if page == "county":
        assert "综合得分" in text and "全省名次" in text
    if page == "exports":
        assert "导出范围：2025年度 · 全省" in text
    if page == "scheme":
        assert "一票否决" in text and len(at.dataframe[0].value) == 10
        vetoes = next(d.value for d in at.dataframe if "情形" in d.value.columns)
        assert "自2024年度起" in set(vetoes["适用期次"]) and "各期" in set(vetoes["适用期次"])


def test_every_page_renders_for_an_analyst(monkeypatch, db_copy, analyst_hash):
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    titles = {"overview": "示范省禁毒工作专项调查测评", "ranking": "县区排名", "risk": "挂牌风险",
              "delisting": "摘帽进度", "county": "县区画像", "exports": "会议材料", "scheme": "评分方案",
              "data": "数据管理"}
    for page, title in titles.items():
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.title[0].value == title
        assert at.session_state["role"] == "analyst"
    # the data page's four tabs are there, the audit log among them
    assert any("操作" in d.value.columns for d in at.dataframe)


def test_city_filter_and_wave_travel_in_the_url(monkeypatch, db_copy):
    at = run_app(monkeypatch, db_copy)
    at.selectbox(key="city").select("9901").run()
    at.selectbox(key="wave").select("2024").run()
    assert at.query_params["wave"] in ("2024", ["2024"]) and at.query_params["city"] in ("9901", ["9901"])
    at.switch_page("pages/ranking.py").run()
    table = at.dataframe[0].value
    assert 0 < len(table) < 88
    assert set(table["市州"]) == {"澄屿市"}
    assert "2024年度 · 澄屿市" in texts(at)


def test_viewer_cannot_reach_data_management(monkeypatch, db_copy, analyst_hash):
    at = run_app(monkeypatch, db_copy, analyst_hash)
    with pytest.raises(Exception):  # noqa: B017  (Streamlit raises its own API error type)
        at.switch_page("pages/data.py").run()
    assert all(t.value != "数据管理" for t in at.title)
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash), "wrong password")
    assert any("密码不正确" in e.value for e in at.error)
    assert at.session_state["role"] == "viewer"


@pytest.mark.slow
def test_analyst_uploads_a_gbk_wave_and_it_appears_in_the_ranking(monkeypatch, db_copy,
                                                                   analyst_hash):
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    assert at.session_state["role"] == "analyst"
    at.switch_page("pages/data.py").run()
    assert at.title[0].value == "数据管理" and not at.exception
    survey = sample_wave("2025").with_columns(    # a new wave: new respondent ids
        pl.lit("2026").alias("调查期次"), (pl.lit("N") + pl.col("受访者编号")).alias("受访者编号"))
    at.text_input[0].set_value("2026").run()
    at.file_uploader[0].upload("2026年调查.csv", csv_bytes(survey, "gbk"), "text/csv").run()
    assert not at.exception
    assert any("校验通过" in s.value for s in at.success)
    assert any("与2025年度对比" in s.value for s in at.subheader)
    publish = next(b for b in at.button if b.label == "发布")
    publish.click().run()
    assert any("已导入" in s.value for s in at.success), [s.value for s in at.success]
    # the indicator sheet for the same wave
    at.radio[0].set_value("indicators").run()
    sheet = sample_indicators("2025").with_columns(pl.lit("2026").alias("年度"))
    at.file_uploader[0].upload("2026年指标.csv", csv_bytes(sheet), "text/csv").run()
    next(b for b in at.button if b.label == "发布").click().run()
    assert not at.exception
    # the 操作记录 tab lists both publications, newest first, with the analyst and the SHA-256
    log = next(d.value for d in at.dataframe if "操作" in d.value.columns)
    assert log["操作"].tolist()[:2] == ["发布工作指标表", "发布调查数据"]
    assert log["文件SHA-256"].tolist()[1] == hashlib.sha256(csv_bytes(survey, "gbk")).hexdigest()
    at.switch_page("pages/ranking.py").run()
    assert not at.exception
    assert "2026年度" in texts(at)
    assert len(at.dataframe[0].value) == 88
    assert at.session_state["wave"] == "2026"
    fresh = run_app(monkeypatch, db_copy)     # a leader: 2026 is not released yet (issue 20)
    assert fresh.session_state["wave"] == "2025" and "2025年度" in texts(fresh)


def test_a_bad_upload_shows_every_problem_and_changes_nothing(monkeypatch, db_copy, analyst_hash):
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    at.switch_page("pages/data.py").run()
    bad = sample_wave("2025", counties=2).with_columns(pl.lit("2026").alias("调查期次"),
                                                       pl.lit("x").alias("权重"))
    at.text_input[0].set_value("2026").run()
    at.file_uploader[0].upload("bad.csv", csv_bytes(bad), "text/csv").run()
    assert not at.exception
    assert any("未通过校验" in e.value for e in at.error)
    problems = next(d.value for d in at.dataframe if "列" in d.value.columns)
    assert set(problems["列"]) == {"权重"} and problems["行"].min() == 2


@pytest.mark.slow
def test_first_run_builds_the_warehouse(monkeypatch, tmp_path):
    db = tmp_path / "fresh.duckdb"
    at = run_app(monkeypatch, db)
    assert not at.exception
    assert db.exists()
    assert at.metric[3].value == "5 期"


def test_empty_warehouse_has_a_clear_empty_state(monkeypatch, tmp_path):
    source = tmp_path / "province"
    source.mkdir()
    for name in ("counties.csv", "province.toml"):
        shutil.copy(SAMPLE_DIR / name, source / name)
    db = tmp_path / "empty.duckdb"
    build_warehouse(db, source)
    at = run_app(monkeypatch, db)
    assert not at.exception
    assert at.metric[0].value == "0 期"
    assert any("还没有任何期次" in i.value for i in at.info)
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page


@pytest.mark.parametrize("content", [b"not a database", b""])
def test_broken_warehouse_file_shows_a_chinese_message(monkeypatch, tmp_path, content):
    db = tmp_path / "broken.duckdb"
    db.write_bytes(content)
    at = run_app(monkeypatch, db)
    assert not at.exception


def test_column_mapping_is_chosen_once_and_remembered_per_source(monkeypatch, db_copy,
                                                                  analyst_hash):
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    at.switch_page("pages/data.py").run()
    survey = sample_wave("2025", counties=3).with_columns(pl.lit("2026").alias("调查期次")) \
        .rename({"受访者编号": "访问序号"})          # a spelling no alias knows
    at.text_input(key="upload_wave_survey").set_value("2026").run()
    at.checkbox(key="confirm_missing_counties_0").check().run()   # 3 of 88 counties of 2025,
    at.checkbox(key="confirm_repeat_0").check().run()             # relabelled
    at.text_input(key="upload_source").set_value("某市民调中心").run()
    at.file_uploader[0].upload("某市.csv", csv_bytes(survey), "text/csv").run()
    assert any("未通过校验" in e.value for e in at.error)     # 受访者编号 is missing
    mapping = at.dataframe[0].value if at.dataframe else None
    assert mapping is None or "访问序号" in mapping["文件中的列"].tolist()
    from pages import _shared  # the app's own connection (one read-write connection per process)

    wh = _shared._open_warehouse(str(db_copy))
    wh.save_header_map("某市民调中心", "survey", {"访问序号": "respondent_id"})
    at.file_uploader[0].upload("某市.csv", csv_bytes(survey), "text/csv").run()
    assert not at.exception
    assert any("校验通过" in s.value for s in at.success), [e.value for e in at.error]


def test_overview_draws_a_supplied_boundary_file(monkeypatch, db_copy, tmp_path, analyst_hash):
    import json

    square = [[[100.0, 30.0], [100.1, 30.0], [100.1, 30.1], [100.0, 30.1], [100.0, 30.0]]]
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": "990101"},
         "geometry": {"type": "Polygon", "coordinates": square}}]}
    path = tmp_path / "boundaries.geojson"
    path.write_text(json.dumps(geojson), encoding="utf-8")
    monkeypatch.setenv("CEPING_GEOJSON", str(path))
    at = run_app(monkeypatch, db_copy)
    assert not at.exception
    assert not any("放入边界文件" in c.value for c in at.caption)
    monkeypatch.setenv("CEPING_GEOJSON", str(tmp_path / "missing.geojson"))
    at = run_app(monkeypatch, db_copy, analyst_hash)
    assert not any("放入边界文件" in c.value for c in at.caption)   # a file hint is not for leaders
    at = sign_in(at)
    assert any("放入边界文件" in c.value for c in at.caption)


@pytest.mark.slow
def test_meeting_deck_is_built_from_the_page(monkeypatch, db_copy):
    """A leader (viewer) chooses a city, builds the deck and gets a download button with it."""
    import io

    from pptx import Presentation

    at = run_app(monkeypatch, db_copy)
    at.selectbox(key="city").select("9907").run()
    at.switch_page("pages/exports.py").run()
    assert not at.exception
    at.button(key="make_deck").click().run()
    assert not at.exception, at.exception
    made = at.session_state["deck"]
    assert made[0][2:] == ("2025", "9907")
    deck = Presentation(io.BytesIO(made[1]))
    titles = [s.shapes[0].text_frame.text for s in deck.slides]
    assert any(t.startswith("县区排名（1/1）") for t in titles)   # one city fits on one slide


@pytest.mark.slow
def test_hostile_uploads_on_the_page_end_in_chinese_messages(monkeypatch, db_copy, analyst_hash):
    from tests.test_fuzz import zip_bomb

    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    at.switch_page("pages/data.py").run()
    at.text_input[0].set_value("2026").run()
    for name, data in (("../../炸弹\u202e.xlsx", zip_bomb()), ("乱码.csv", bytes(range(256)) * 50)):
        at.file_uploader[0].upload(name, data, "application/octet-stream").run()
        assert not at.exception, at.exception
        assert at.error and any(ch for ch in at.error[0].value if "\u4e00" <= ch <= "\u9fff")
        assert ".." not in at.error[0].value and "\u202e" not in at.error[0].value


def test_tampering_with_session_state_does_not_make_an_analyst(monkeypatch, db_copy, analyst_hash):
    at = run_app(monkeypatch, db_copy, analyst_hash)
    at.session_state["role"] = "analyst"                       # what a tamperer would try
    at.session_state["access_grant"] = "analyst\x1f某人\x1f" + "0" * 64   # a forged grant
    at.run()
    assert at.session_state["role"] == "viewer"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py").run()            # not even registered for this session
    assert not at.file_uploader
    # a genuine sign-in still works, and signing out ends it
    at = sign_in(run_app(monkeypatch, db_copy, analyst_hash))
    assert at.session_state["role"] == "analyst"
