"""The 16:9 meeting deck (会议材料) for one wave and city filter, built with python-pptx.

Slides: cover, overview, ranking (paginated so every county's label is readable), risk, 摘帽
progress, one slide per listed or high-risk county with its levers, and the method. Every text run
carries the East Asian typeface (`a:ea`): python-pptx sets only the Latin one, and PowerPoint would
otherwise draw Chinese in whatever font the viewer's machine maps it to. Speaker notes hold the
method caveats a presenter needs when asked "is this difference real?".
"""

from __future__ import annotations

import io
import math
from datetime import datetime

import polars as pl
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.oxml.ns import qn
from pptx.text.text import TextFrame
from pptx.util import Emu, Inches, Pt

from pipelines.core.clock import beijing, beijing_now
from pipelines.core.waves import wave_display
from pipelines.exports.pack import METHOD_NOTES, MeetingPack
from pipelines.present import charts
from pipelines.present.figures import SOURCE, chart_png
from pipelines.present.leader import deck_ranking_rows, fixes_table
from pipelines.present.tables import (
    PERCENT,
    SCORE,
    Table,
    band_rule,
    consequences_table,
    progress_table,
    risk_order,
)
from pipelines.present.views import component_comparison, county_histories, county_history
from pipelines.ranking.consequences import consequences
from pipelines.ranking.fixes import county_fixes
from pipelines.ranking.ranks import in_bottom

DECK_FONT = "微软雅黑"          # the Chinese office default; LibreOffice substitutes a CJK sans
WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
COUNTIES_PER_SLIDE = 15            # rows per ranking slide: 16 pt, readable from the back
ROWS_PER_CONSEQUENCE_SLIDE = 12   # rows of 0.4 in under the title: what fits above the footer
MAX_COUNTY_SLIDES = 30
NAVY = RGBColor(0x1F, 0x4E, 0x79)
GREY = RGBColor(0x59, 0x59, 0x59)
RED = RGBColor(0xC0, 0x39, 0x2B)
PIXELS_PER_INCH = 144          # chart pictures at 2× the slide's 72 dpi grid: sharp when projected


def set_font(run, size: float | None = None, *, bold: bool | None = None,
             colour: RGBColor | None = None) -> None:
    """Latin and East Asian typeface on one run (python-pptx writes only `a:latin`)."""
    font = run.font
    font.name = DECK_FONT
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    if colour is not None:
        font.color.rgb = colour
    rpr = run._r.get_or_add_rPr()
    for tag in ("a:ea", "a:cs"):
        element = rpr.find(qn(tag))
        if element is None:
            element = rpr.makeelement(qn(tag), {})
            rpr.append(element)
        element.set("typeface", DECK_FONT)


def _write(frame: TextFrame, lines: list[str] | str, size: float, *, bold: bool = False,
           colour: RGBColor | None = None) -> None:
    lines = [lines] if isinstance(lines, str) else lines
    frame.word_wrap = True
    for k, line in enumerate(lines):
        paragraph = frame.paragraphs[0] if k == 0 else frame.add_paragraph()
        run = paragraph.add_run()
        run.text = line
        set_font(run, size, bold=bold, colour=colour)


def _text(slide, left, top, width, height, lines, size=16, **style):
    box = slide.shapes.add_textbox(left, top, width, height)
    _write(box.text_frame, lines, size, **style)
    return box


def _notes(slide, lines: list[str]) -> None:
    frame = slide.notes_slide.notes_text_frame
    frame.clear()
    _write(frame, lines, 12)


def _picture(slide, png: bytes, left, top, width) -> None:
    slide.shapes.add_picture(io.BytesIO(png), left, top, width=width)


def _chart(chart, width_in: float, height_in: float) -> bytes:
    """A chart fitted to a box of the slide (inches), rendered at PIXELS_PER_INCH."""
    return chart_png(chart, int(width_in * 72), int(height_in * 72), scale=PIXELS_PER_INCH / 72,
                     text_size=11)


def _format(value: object, kind: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == PERCENT:
        return f"{value:.1%}"
    if kind == SCORE:
        return f"{value:.2f}"
    return str(value)


def _table(slide, table: Table, left, top, width, *, row_height=None, size=11) -> None:
    row_height = Inches(0.32) if row_height is None else row_height
    frame = table.frame
    shape = slide.shapes.add_table(frame.height + 1, frame.width, left, top, width,
                                   Emu(row_height * (frame.height + 1)))
    grid = shape.table
    for c, name in enumerate(frame.columns):
        cell = grid.cell(0, c)
        cell.text_frame.clear()
        _write(cell.text_frame, name, size, bold=True)
        for r, value in enumerate(frame[name].to_list(), start=1):
            cell = grid.cell(r, c)
            cell.text_frame.clear()
            _write(cell.text_frame, _format(value, table.formats.get(name)), size)


RANKING_WIDTHS = (0.8, 1.4, 1.3, 1.1, 2.2, 1.65)   # inches: 名次 区县 市州 得分 95%区间 较上期
BOTTOM3_FILL = RGBColor(0xF1, 0x94, 0x8A)
BOTTOM10_FILL = RGBColor(0xF8, 0xC4, 0x71)
HEADER_FILL = NAVY
WHITE = RGBColor(0xFF, 0xFF, 0xFF)


def _ranking_table(slide, rows: pl.DataFrame, fills: list[RGBColor | None]) -> None:
    """The numbered ranking table, one county per row, shaded by the line it is under."""
    height = Inches(0.36)
    shape = slide.shapes.add_table(rows.height + 1, rows.width, Inches(0.4), Inches(1.1),
                                   Inches(sum(RANKING_WIDTHS)), Emu(height * (rows.height + 1)))
    grid = shape.table
    for c, width in enumerate(RANKING_WIDTHS):
        grid.columns[c].width = Inches(width)
    for r in range(rows.height + 1):
        grid.rows[r].height = height
    for c, name in enumerate(rows.columns):
        cell = grid.cell(0, c)
        cell.fill.solid()
        cell.fill.fore_color.rgb = HEADER_FILL
        cell.text_frame.clear()
        _write(cell.text_frame, name, 16, bold=True, colour=WHITE)
        for r, value in enumerate(rows[name].to_list(), start=1):
            cell = grid.cell(r, c)
            cell.fill.solid()
            cell.fill.fore_color.rgb = fills[r - 1] or (WHITE if r % 2 else RGBColor(0xF2, 0xF2, 0xF2))
            cell.margin_top = cell.margin_bottom = Inches(0.03)
            cell.text_frame.clear()
            _write(cell.text_frame, "—" if value is None else str(value), 16,
                   bold=fills[r - 1] is BOTTOM3_FILL)


class DeckBuilder:
    """Adds the slides of one meeting pack in order."""

    def __init__(self, pack: MeetingPack, generated: datetime | None = None):
        self.pack = pack
        self.generated = beijing(generated) if generated else beijing_now()
        self.prs = Presentation()
        self.prs.slide_width, self.prs.slide_height = WIDTH, HEIGHT
        self.blank = self.prs.slide_layouts[6]

    def slide(self, title: str, notes: list[str]):
        slide = self.prs.slides.add_slide(self.blank)
        _text(slide, Inches(0.5), Inches(0.25), Inches(12.3), Inches(0.7), title, 26, bold=True,
              colour=NAVY)
        footer = f"{SOURCE} · {self.pack.label} · 生成于{self.generated:%Y-%m-%d %H:%M}（北京时间）"
        if self.pack.is_sample:
            footer += " · 示例数据（虚构省份）"
        _text(slide, Inches(0.5), Inches(7.0), Inches(12.3), Inches(0.35), footer, 10,
              colour=GREY)
        _notes(slide, notes + ["", "方法说明："] + list(METHOD_NOTES))
        return slide

    # -- slides ---------------------------------------------------------------------------

    def cover(self) -> None:
        pack = self.pack
        slide = self.prs.slides.add_slide(self.blank)
        _text(slide, Inches(0.9), Inches(2.2), Inches(11.5), Inches(1.2),
              f"{pack.province}禁毒工作专项调查测评", 40, bold=True, colour=NAVY)
        _text(slide, Inches(0.9), Inches(3.5), Inches(11.5), Inches(0.8),
              f"{wave_display(pack.wave)}结果 · {pack.city_name} · 会议材料", 24)
        lines = [SOURCE, f"生成时间：{self.generated:%Y-%m-%d %H:%M}（北京时间）"]
        if pack.is_sample:
            lines.append("示例数据（虚构省份，仅供演示）")
        _text(slide, Inches(0.9), Inches(5.2), Inches(11.5), Inches(1.2), lines, 14, colour=GREY)
        _notes(slide, ["本材料由测评看板自动生成，数字与看板一致。", "", "方法说明："]
               + list(METHOD_NOTES))

    def overview(self) -> None:
        pack = self.pack
        summary = pack.summary
        bands = dict(summary.band_counts.iter_rows())
        slide = self.slide(f"总览：{pack.label}", [
            f"本页数字均为{pack.city_name}的区县；平均分不含一票否决的县。",
            band_rule(pack.definitions.scheme)])
        change = "" if summary.previous_mean is None or summary.province_mean is None else \
            f"（较上期 {summary.province_mean - summary.previous_mean:+.2f}）"
        listed = pack.in_city(pack.listing.status).height
        mean = "—" if summary.province_mean is None else f"{summary.province_mean:.2f}"
        lines = [f"{pack.city_name}平均分：{mean}{change}",
                 f"挂牌整治中：{listed} 个区县",
                 *[f"{label}：{bands.get(label, 0)} 个区县"
                   for label in [b.label for b in pack.definitions.scheme.listing.bands]],
                 f"较上期显著变化：{pack.in_city(summary.movers).height} 个区县"
                 if summary.movers.height else "较上期显著变化：无可比或无显著变化"]
        _text(slide, Inches(0.5), Inches(1.2), Inches(4.6), Inches(5.5), lines, 18)
        located = pack.risk.join(pack.counties.select("county_code", "city_code"),
                                 on="county_code")
        tiles = pack.in_city(located.join(charts.hex_layout(pack.counties), on="county_code"))
        _picture(slide, _chart(charts.hex_map(tiles, "band",
                                              title="区县风险等级（六边形格按市州分组，非真实地理）"),
                               7.6, 5.5), Inches(5.3), Inches(1.1), Inches(7.6))

    def ranking(self) -> None:
        """The table leaders know from the Excel-made deck (名次, 区县, 市州, 得分, 95%区间,
        较上期名次; bottom 3 red, bottom 10 orange), the interval chart of the same counties
        beside it."""
        pack = self.pack
        table = pack.ranking().sort("rank")
        rows = deck_ranking_rows(table, pack.history)
        scores = pack.risk["score"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        codes = pack.risk["county_code"].to_list()
        k3, k10 = pack.bottoms
        shade = {code: fill for fill, k in ((BOTTOM10_FILL, k10), (BOTTOM3_FILL, k3))
                 for code, inside in zip(codes, in_bottom(scores, k), strict=False) if inside}
        lines = pack.cut_lines()
        pages = max(1, math.ceil(table.height / COUNTIES_PER_SLIDE))
        for page in range(pages):
            part = table.slice(page * COUNTIES_PER_SLIDE, COUNTIES_PER_SLIDE)
            first, last = part["rank"].min(), part["rank"].max()
            slide = self.slide(
                f"县区排名（{page + 1}/{pages}）：第{first}–{last}名",
                [f"红色：全省后{k3}名；橙色：全省后{k10}名。名次为全省名次，较上期名次 ↑ 为上升。",
                 "右图点为综合得分，线段为95%置信区间；虚线为分界线；橙色区间跨越分界线，"
                 "该县是否在线下仅凭本次调查无法确定。"])
            shown = rows.slice(page * COUNTIES_PER_SLIDE, COUNTIES_PER_SLIDE)
            _ranking_table(slide, shown, [shade.get(c) for c in part["county_code"]])
            low, high = part["ci_low"].min(), part["ci_high"].max()
            near = lines.filter(pl.col("score").is_between(low - 1, high + 1)) \
                if low is not None else lines
            _picture(slide, _chart(charts.ranking_chart(part, near, worst_first=False), 4.2, 5.8),
                     Inches(8.95), Inches(1.05), Inches(4.2))

    def risk(self) -> None:
        pack = self.pack
        k3, k10 = pack.bottoms
        table = pack.in_city(pack.risk)
        scheme = pack.definitions.scheme
        slide = self.slide("挂牌风险：本期与下期落入后3名/后10名的概率", [
            band_rule(scheme),
            f"本期概率：该县真实水平在后{k3}/后{k10}名的概率（考虑抽样误差）。",
            f"下期概率：下一期公布得分落入后{k3}/后{k10}名的概率（真实变化 + 下期抽样误差）。"])
        ordered = risk_order(table, scheme).head(12)      # chart and table: the same counties
        _picture(slide, _chart(charts.risk_chart(ordered, top=12), 7.4, 5.7), Inches(0.4),
                 Inches(1.05), Inches(7.4))
        worst = ordered.select(
            pl.col("county_name").alias("区县"), pl.col("rank").alias("名次"),
            pl.col("band").alias("等级"), pl.col("p_bottom3").alias(f"本期后{k3}"),
            pl.col("p_bottom10").alias(f"本期后{k10}"),
            pl.col("p_bottom10_next").alias(f"下期后{k10}"))
        _table(slide, Table("", worst, {f"本期后{k3}": PERCENT, f"本期后{k10}": PERCENT,
                                        f"下期后{k10}": PERCENT}),
               Inches(8.0), Inches(1.2), Inches(4.9), row_height=Inches(0.38))

    def delisting(self) -> None:
        pack = self.pack
        table = progress_table(pack.in_city(pack.progress), pack.counties)
        slide = self.slide("摘帽进度：挂牌整治中的区县", [
            "摘帽须连续若干期不在后10名、工作指标达标并通过验收（详见评分方案）。",
            "预计摘帽为按当前进度的估计，不是决定。"])
        if table.frame.height == 0:
            _text(slide, Inches(0.5), Inches(1.3), Inches(12), Inches(1), "目前没有挂牌整治中的区县。",
                  20)
            return
        shown = Table(table.title, table.frame.drop("已挂牌期数"), table.formats)
        _table(slide, shown, Inches(0.5), Inches(1.2), Inches(12.3), row_height=Inches(0.45),
               size=12)

    def consequences(self) -> None:
        """The consequences decided on this wave (挂牌、通报批评、记零、否决、等级、摘帽), as a
        table leaders read from the back of the room; the full register is in the workbook."""
        pack = self.pack
        register = pack.in_city(consequences(pack.listing, pack.wave)).filter(
            pl.col("wave") == pack.wave)
        slide = self.slide(f"挂牌与通报：{pack.label}", [
            "本期规则判定的各项后果及与正式决定的对照；历次后果的完整清单见 Excel 的“挂牌与通报”表。"])
        if register.height == 0:
            _text(slide, Inches(0.5), Inches(1.3), Inches(12), Inches(1), "本期没有挂牌、通报等后果。", 20)
            return
        table = consequences_table(register.head(ROWS_PER_CONSEQUENCE_SLIDE), pack.counties)
        shown = Table(table.title, table.frame.drop("期次", "类别", "依据"), table.formats)
        _table(slide, shown, Inches(0.5), Inches(1.2), Inches(12.3), row_height=Inches(0.4),
               size=12)
        if register.height > ROWS_PER_CONSEQUENCE_SLIDE:
            _text(slide, Inches(0.5), Inches(6.8), Inches(12), Inches(0.4),
                  f"另有 {register.height - ROWS_PER_CONSEQUENCE_SLIDE} 项见 Excel。", 12)

    def counties(self) -> None:
        """One slide for each county listed now or in the highest risk band."""
        pack = self.pack
        top_band = pack.definitions.scheme.listing.bands[0].label
        listed = set(pack.listing.status["county_code"].to_list())
        chosen = pack.in_city(pack.risk).filter(
            pl.col("county_code").is_in(list(listed)) | (pl.col("band") == top_band))
        # national scale: hundreds qualify; the deck keeps those most likely in the bottom 10 next
        chosen = chosen.sort("p_bottom10_next", descending=True).head(MAX_COUNTY_SLIDES) \
            .sort("rank")
        trails = county_histories(pack.history)
        for row in chosen.iter_rows(named=True):
            self.county(row, trails, row["county_code"] in listed)

    def county(self, row: dict, trails: pl.DataFrame, listed: bool) -> None:
        pack = self.pack
        code = row["county_code"]
        k3, k10 = pack.bottoms
        status = "挂牌整治中" if listed else f"风险等级：{row['band']}"
        slide = self.slide(f"{row['county_name']}（{row['city_name']}）· {status}", [
            "须改进的分项：该分项单独改变多少（原始单位）就能离开后3名/后10名，其他县保持本期水平；"
            "“最多可增”为该分项改善到最好水平时综合得分最多能增加的分数。",
            "名次区间为模拟的95%名次区间。"])
        facts = [f"综合得分 {row['score']:.2f}（95%区间 {row['ci_low']:.2f}～{row['ci_high']:.2f}）",
                 f"全省第{row['rank']}名（95%名次区间 第{row['rank_low']}–{row['rank_high']}名）",
                 f"本期后{k3}/后{k10}概率：{row['p_bottom3']:.0%} / {row['p_bottom10']:.0%}",
                 f"下期后{k3}/后{k10}概率：{row['p_bottom3_next']:.0%} / {row['p_bottom10_next']:.0%}"]
        if row["veto_reason"]:
            facts.append(f"一票否决：{row['veto_reason']}")
        _text(slide, Inches(0.5), Inches(1.1), Inches(6.2), Inches(1.9), facts, 15)
        trail = county_history(trails, code)
        _picture(slide, _chart(charts.history_chart(trail, title="历次综合得分与95%区间"), 6.2, 3.6),
                 Inches(0.5), Inches(3.2), Inches(6.2))
        city = pack.counties.filter(pl.col("county_code") == code)["city_code"][0]
        _picture(slide, _chart(charts.comparison_chart(component_comparison(
            pack.history[-1], code, city), title="分项得分：本县、本市与全省"), 6.0, 3.0),
                 Inches(6.9), Inches(1.0), Inches(6.0))
        needs = fixes_table(county_fixes(pack.history[-1], code, pack.bottoms), pack.bottoms)
        mine = needs.frame.head(4).select("分项", f"单独离开后{k3}名需", f"单独离开后{k10}名需",
                                          pl.col("最多可增综合分").alias("最多可增"))
        _table(slide, Table("", mine, {"最多可增": SCORE}), Inches(6.9),
               Inches(4.3), Inches(6.0), row_height=Inches(0.4), size=12)

    def method(self) -> None:
        slide = self.slide("方法与口径", ["本页供提问时参考。"])
        _text(slide, Inches(0.5), Inches(1.2), Inches(12.3), Inches(5.5),
              [f"{k}. {text}" for k, text in enumerate(METHOD_NOTES, 1)], 16)

    def build(self) -> bytes:
        self.cover()
        self.overview()
        self.ranking()
        self.risk()
        self.delisting()
        self.consequences()
        self.counties()
        self.method()
        out = io.BytesIO()
        self.prs.save(out)
        return out.getvalue()


def build_deck(pack: MeetingPack, generated: datetime | None = None) -> bytes:
    """The meeting deck as .pptx bytes."""
    return DeckBuilder(pack, generated).build()
