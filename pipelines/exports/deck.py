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
from pipelines.present.tables import (
    PERCENT,
    SCORE,
    Table,
    band_rule,
    progress_table,
    risk_order,
)
from pipelines.present.views import component_comparison, county_histories, county_history
from pipelines.ranking.ranks import component_levers

DECK_FONT = "微软雅黑"          # the Chinese office default; LibreOffice substitutes a CJK sans
WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
COUNTIES_PER_SLIDE = 22
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
        pack = self.pack
        table = pack.ranking().sort("rank")
        lines = pack.cut_lines()
        pages = max(1, math.ceil(table.height / COUNTIES_PER_SLIDE))
        k3, k10 = pack.bottoms
        for page in range(pages):
            part = table.slice(page * COUNTIES_PER_SLIDE, COUNTIES_PER_SLIDE)
            first, last = part["rank"].min(), part["rank"].max()
            slide = self.slide(
                f"县区排名（{page + 1}/{pages}）：第{first}–{last}名",
                [f"点为综合得分，线段为95%置信区间；虚线为全省后{k3}名、后{k10}名分界线。",
                 "橙色区间跨越分界线：该县是否在线下，仅凭本次调查无法确定。"])
            low, high = part["ci_low"].min(), part["ci_high"].max()
            shown = lines.filter(pl.col("score").is_between(low - 1, high + 1)) \
                if low is not None else lines
            _picture(slide, _chart(charts.ranking_chart(part, shown), 12.3, 5.7),
                     Inches(0.5), Inches(1.05), Inches(12.3))

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
        levers = component_levers(pack.history[-1])
        trails = county_histories(pack.history)
        for row in chosen.iter_rows(named=True):
            self.county(row, levers, trails, row["county_code"] in listed)

    def county(self, row: dict, levers: pl.DataFrame, trails: pl.DataFrame,
               listed: bool) -> None:
        pack = self.pack
        code = row["county_code"]
        k3, k10 = pack.bottoms
        status = "挂牌整治中" if listed else f"风险等级：{row['band']}"
        slide = self.slide(f"{row['county_name']}（{row['city_name']}）· {status}", [
            "提分杠杆：分项改善一个县际标准差时综合得分可增加的分数，用于比较不同单位的分项。",
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
        mine = levers.filter(pl.col("county_code") == code).sort(
            "points_per_sd", descending=True).head(4).select(
            pl.col("label").alias("提分杠杆（分项）"),
            pl.col("points_per_sd").alias("改善一个标准差可增分"))
        _table(slide, Table("", mine, {"改善一个标准差可增分": SCORE}), Inches(6.9),
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
        self.counties()
        self.method()
        out = io.BytesIO()
        self.prs.save(out)
        return out.getvalue()


def build_deck(pack: MeetingPack, generated: datetime | None = None) -> bytes:
    """The meeting deck as .pptx bytes."""
    return DeckBuilder(pack, generated).build()
