"""Meeting exports: chart pictures, the PPTX deck, the Excel workbook, CSV downloads and the CLI."""

from __future__ import annotations

import io
import math

import openpyxl
import polars as pl
import pytest
from fontTools.ttLib import TTCollection
from PIL import Image
from pptx import Presentation
from pptx.oxml.ns import qn

from pipelines.cli import main
from pipelines.exports.deck import COUNTIES_PER_SLIDE, DECK_FONT, build_deck
from pipelines.exports.pack import meeting_pack, meeting_tables, workbook_note
from pipelines.exports.workbook import workbook_bytes
from pipelines.present import charts, figures
from pipelines.present.tables import Table, csv_bytes, neutralise
from pipelines.present.views import component_comparison, county_history
from pipelines.stats.funnel import funnel
from pipelines.store.warehouse import Warehouse


@pytest.fixture(scope="module")
def pack(built_db, defs):
    wh = Warehouse.open(built_db, read_only=True)
    try:
        yield meeting_pack(wh, defs, "2025", draws=2000)
    finally:
        wh.close()


@pytest.fixture(scope="module")
def font_cmap() -> set[int]:
    """The character map of the CJK face the charts name."""
    collection = TTCollection(str(figures.font_file()))
    for face in collection.fonts:
        if face["name"].getDebugName(1) == charts.FONT:
            return set(face.getBestCmap())
    pytest.fail(f"{charts.FONT} not in {figures.font_file()}")


def every_chart(pack) -> dict[str, object]:
    scores = pack.history[-1]
    view = pack.ranking()
    code = pack.listing.status["county_code"][0]
    city = pack.counties.filter(pl.col("county_code") == code)["city_code"][0]
    result = funnel(scores)
    tiles = pack.risk.join(pack.counties.select("county_code", "city_code"), on="county_code") \
        .join(charts.hex_layout(pack.counties), on="county_code")
    items = scores.items.filter(pl.col("county_code") == code).rename({"item_id": "题目"})
    return {
        "ranking": charts.ranking_chart(view, pack.cut_lines(), title="综合得分"),
        "risk": charts.risk_chart(pack.risk, title="风险"),
        "funnel": charts.funnel_chart(result.points, result.limits, result.target, title="漏斗图"),
        "history": charts.history_chart(county_history(pack.history, code), title="历次得分"),
        "comparison": charts.comparison_chart(component_comparison(scores, code, city)),
        "items": charts.interval_chart(items, "题目", title="各题得分"),
        "map": charts.hex_map(tiles, "band", title="区县示意图"),
    }


@pytest.mark.slow
def test_every_chart_exports_a_16_9_picture_whose_text_the_font_can_draw(pack, font_cmap):
    title, subtitle = "2025年度综合得分与95%置信区间", "2025年度 · 全省（示例数据）"
    source, stamp = figures.footer_text()
    for name, chart in every_chart(pack).items():
        png = figures.figure_png(chart, title=title, subtitle=subtitle)
        image = Image.open(io.BytesIO(png))
        image.load()                                  # decodes the whole picture
        assert image.format == "PNG" and image.size == (1920, 1080), name
        # something was drawn in the chart area, not a blank canvas
        assert image.convert("L").crop((0, 100, 1920, 1000)).getextrema()[0] < 128, name
        text = figures.spec_text(figures.fixed_size_spec(chart, 1920, 1036, title=title,
                                                         subtitle=[subtitle]))
        missing = {ch for s in text | {source, stamp} for ch in s if ord(ch) not in font_cmap}
        assert not missing, (name, sorted(missing))


@pytest.mark.slow
def test_pictures_come_at_double_scale_and_renders_are_cached(pack):
    chart = every_chart(pack)["history"]
    before = figures._render.cache_info()
    big = figures.figure_png(chart, title="历次得分", subtitle="示例", scale=2)
    assert Image.open(io.BytesIO(big)).size == (3840, 2160)
    again = figures.figure_png(chart, title="历次得分", subtitle="示例", scale=2)
    after = figures._render.cache_info()
    assert after.misses - before.misses <= 1 and after.hits - before.hits >= 1
    # same picture apart from the footer's generation time
    crop = (0, 0, 3840, 2160 - 2 * figures.FOOTER_HEIGHT)
    assert Image.open(io.BytesIO(big)).crop(crop).tobytes() == \
        Image.open(io.BytesIO(again)).crop(crop).tobytes()


def runs_of(deck) -> list:
    """Every text run of the deck: shapes, table cells and speaker notes."""
    runs = []
    for slide in deck.slides:
        frames = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                frames.append(shape.text_frame)
            if shape.has_table:
                frames += [cell.text_frame for row in shape.table.rows for cell in row.cells]
        frames.append(slide.notes_slide.notes_text_frame)
        runs += [run for frame in frames for p in frame.paragraphs for run in p.runs]
    return runs


@pytest.mark.slow
def test_deck_has_every_promised_slide_with_the_east_asian_font_on_every_run(pack):
    deck = Presentation(io.BytesIO(build_deck(pack)))
    assert abs(deck.slide_width / deck.slide_height - 16 / 9) < 0.01
    titles = [s.shapes[0].text_frame.text for s in deck.slides]
    pages = math.ceil(88 / COUNTIES_PER_SLIDE)
    assert titles[0] == "示范省禁毒工作专项调查测评"
    assert titles[1].startswith("总览")
    assert [t for t in titles if t.startswith("县区排名")] == \
        [f"县区排名（{k}/{pages}）：第{COUNTIES_PER_SLIDE * (k - 1) + 1}–"
         f"{min(COUNTIES_PER_SLIDE * k, 88)}名" for k in range(1, pages + 1)]
    assert any(t.startswith("挂牌风险") for t in titles)
    assert any(t.startswith("摘帽进度") for t in titles)
    # the consequences decided on this wave, right after the delisting slide
    assert titles[titles.index(next(t for t in titles if t.startswith("摘帽进度"))) + 1] \
        .startswith("挂牌与通报")
    assert titles[-1] == "方法与口径"
    listed = set(pack.listing.status["county_code"])
    high = set(pack.risk.filter(pl.col("band") == "高危")["county_code"])
    names = dict(zip(pack.counties["county_code"], pack.counties["county_name"], strict=False))
    county_slides = [t for t in titles if t.endswith("挂牌整治中") or "· 风险等级" in t]
    assert len(county_slides) == len(listed | high)
    assert {t.split("（")[0] for t in county_slides} == {names[c] for c in listed | high}
    # every county of the ranking is on a ranking slide's picture
    assert sum(len([p for p in s.shapes if p.shape_type == 13]) for s in deck.slides
               if s.shapes[0].text_frame.text.startswith("县区排名")) == pages
    runs = runs_of(deck)
    assert len(runs) > 200
    for run in runs:
        rpr = run._r.find(qn("a:rPr"))
        ea = rpr.find(qn("a:ea")) if rpr is not None else None
        assert ea is not None and ea.get("typeface") == DECK_FONT, run.text
    for slide in deck.slides:
        assert "方法说明" in slide.notes_slide.notes_text_frame.text


@pytest.mark.slow
def test_a_city_deck_shows_only_that_city(built_db, defs):
    wh = Warehouse.open(built_db, read_only=True)
    try:
        pack = meeting_pack(wh, defs, "2025", "9907", draws=2000)
    finally:
        wh.close()
    deck = Presentation(io.BytesIO(build_deck(pack)))
    titles = [s.shapes[0].text_frame.text for s in deck.slides]
    assert [t for t in titles if t.startswith("县区排名")][0].startswith("县区排名（1/1）")
    assert all("· 9907" not in t for t in titles)
    assert pack.ranking()["county_code"].str.starts_with("9907").all()


def test_workbook_opens_with_chinese_headers_formats_and_the_same_numbers(pack):
    tables = meeting_tables(pack)
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes(tables, note=workbook_note(pack))))
    assert book.sheetnames == ["县区排名", "挂牌风险", "分项得分", "摘帽进度", "规则与正式决定", "挂牌与通报",
                               "说明"]
    for table in tables:
        sheet = book[table.title]
        assert sheet.freeze_panes == "A2"
        header = [c.value for c in sheet[1]]
        assert header == table.frame.columns
        for column, kind in table.formats.items():
            index = header.index(column)
            cell = sheet.cell(row=2, column=index + 1)
            if cell.value is not None:
                assert cell.number_format == {"score": "0.00", "percent": "0.0%", "integer": "0",
                                              "decimal3": "0.000"}[kind], (table.title, column)
        for r, row in enumerate(table.frame.iter_rows(), start=2):
            for c, value in enumerate(row, start=1):
                got = sheet.cell(row=r, column=c).value
                if isinstance(value, float):
                    assert (got is None and math.isnan(value)) or abs(got - value) < 1e-9
                else:
                    assert got == value or (got is None and value in (None, ""))
    assert "方法说明" in book["说明"]["A4"].value


HOSTILE = ["=HYPERLINK(\"http://x\",\"点我\")", "+1+2", "-3+4", "@SUM(A1)", "\t=1", "＝1+1",
           "普通文字", "-"]


def test_injected_formulas_are_neutralised_in_csv_and_workbook():
    table = Table("测试", pl.DataFrame({"区县": HOSTILE, "得分": [1.5, -2.0, 3.0, 4.0, 5.0, 6.0,
                                                               7.0, 8.0]}), {"得分": "score"})
    text = csv_bytes(table).decode("utf-8-sig")
    rows = pl.read_csv(io.StringIO(text))
    assert rows["区县"].to_list() == [neutralise(v) for v in HOSTILE]
    assert all(v.startswith("'") for v in rows["区县"].to_list() if v != "普通文字")
    assert rows["得分"].to_list()[:2] == [1.5, -2.0]        # numbers stay numbers
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes([table])))
    cells = [book["测试"].cell(row=r, column=1) for r in range(2, 2 + len(HOSTILE))]
    assert [c.data_type for c in cells] == ["s"] * len(HOSTILE)     # text, never a formula
    assert [c.value for c in cells] == HOSTILE


@pytest.mark.slow
def test_export_command_writes_deck_and_workbook(built_db, tmp_path, capsys):
    pptx, xlsx = tmp_path / "会议.pptx", tmp_path / "表格.xlsx"
    assert main(["export", "--wave", "2025", "--db", str(built_db), "--pptx", str(pptx),
                 "--xlsx", str(xlsx), "--draws", "2000"]) == 0
    out = capsys.readouterr().out
    assert "已生成会议材料" in out and "已生成表格" in out
    assert len(Presentation(str(pptx)).slides) > 8
    assert openpyxl.load_workbook(xlsx).sheetnames[0] == "县区排名"
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("args, message", [
    (["--wave", "2025"], "至少给出 --pptx 或 --xlsx"),
    (["--wave", "2025", "--pptx", "out.ppt"], "扩展名应为 .pptx"),
    (["--wave", "2031", "--pptx", "{tmp}/a.pptx"], "期次 2031 没有调查数据"),
    (["--wave", "2025", "--city", "1234", "--pptx", "{tmp}/a.pptx"], "没有代码为 1234 的市州"),
])
def test_export_command_explains_bad_requests_in_chinese(built_db, tmp_path, capsys, args,
                                                         message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["export", "--db", str(built_db), *args]) in (1, 2)
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.pptx"))


def ranking_tables(deck) -> list:
    return [shape.table for slide in deck.slides
            if slide.shapes[0].text_frame.text.startswith("县区排名")
            for shape in slide.shapes if shape.has_table]


@pytest.mark.slow
def test_deck_ranking_slides_are_the_numbered_table_with_red_and_orange_rows(pack):
    from pipelines.exports.deck import BOTTOM3_FILL, BOTTOM10_FILL

    deck = Presentation(io.BytesIO(build_deck(pack)))
    tables = ranking_tables(deck)
    assert len(tables) == 6                                   # 88 counties, 15 a slide
    header = [cell.text for cell in tables[0].rows[0].cells]
    assert header == ["名次", "区县", "市州", "得分", "95%区间", "较上期名次"]
    body = [[cell for cell in row.cells] for table in tables for row in list(table.rows)[1:]]
    assert [int(row[0].text) for row in body] == sorted(int(row[0].text) for row in body)
    assert len(body) == 88
    risk = pack.risk.sort("rank")
    names = risk["county_name"].to_list()
    assert [row[1].text for row in body] == names
    worst = risk.sort("score").head(10)["county_name"].to_list()
    fills = {row[1].text: row[0].fill.fore_color.rgb for row in body}
    assert [fills[n] for n in worst[:3]] == [BOTTOM3_FILL] * 3
    assert [fills[n] for n in worst[3:10]] == [BOTTOM10_FILL] * 7
    assert sum(f in (BOTTOM3_FILL, BOTTOM10_FILL) for f in fills.values()) == 10
    first = body[0]
    assert first[3].text == f"{risk['score'][0]:.2f}"
    assert first[4].text == f"{risk['ci_low'][0]:.2f}～{risk['ci_high'][0]:.2f}"
    assert all(row[5].text == "持平" or row[5].text[0] in "↑↓—" for row in body)
    assert any(row[5].text.startswith("↓") for row in body)
    sizes = {run.font.size.pt for table in tables for row in table.rows for cell in row.cells
             for p in cell.text_frame.paragraphs for run in p.runs}
    assert sizes == {16}
