"""Altair charts shared by the pages and the exports: one theme, a named CJK font, explicit sorts.

Every function takes plain frames (from pipelines/) and returns an Altair chart; pages pass them to
`st.altair_chart(..., theme=None)` so the screen matches an exported PNG.
"""

from __future__ import annotations

import math

import altair as alt
import pandas  # noqa: F401  Altair imports pandas lazily; two sessions doing it at once in the

#               server's threads saw a half-initialised module ("no attribute 'Timestamp'")
import polars as pl

from pipelines.present.tables import fixed_decimals

FONT = "Noto Sans CJK SC"
BAND_COLOURS = {"高危": "#c0392b", "预警": "#e67e22", "关注": "#f1c40f", "安全": "#27ae60"}
SCORE_COLOUR = "#1f4e79"
CUT_COLOURS = {"后3名分界线": "#c0392b", "后10名分界线": "#e67e22"}


@alt.theme.register("ceping", enable=True)
def _theme() -> alt.theme.ThemeConfig:
    return {"config": {
        "font": FONT,
        "title": {"font": FONT, "fontSize": 16, "anchor": "start"},
        "axis": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 12, "titleFontSize": 13},
        "legend": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 12},
        "header": {"labelFont": FONT, "titleFont": FONT},
        "text": {"font": FONT},
        "view": {"stroke": None},
        "background": "white",
    }}


def _two(expr: pl.Expr) -> pl.Expr:
    """Two decimals as text (85.30), as scores are printed everywhere."""
    return fixed_decimals(expr, 2)


def _percent_text(expr: pl.Expr) -> pl.Expr:
    """A probability as the pages print it: 0% and 100% whole, else one decimal (45.6%)."""
    whole = (expr >= 0.995) | (expr < 0.005)
    return pl.when(whole).then(pl.format("{}%", fixed_decimals(expr * 100, 0))) \
        .otherwise(pl.format("{}%", fixed_decimals(expr * 100, 1)))


def _frame(table: pl.DataFrame) -> alt.Data:
    return alt.Data(values=table.to_dicts())


TOP_LEGEND = alt.Legend(orient="top", direction="vertical")   # never over the marks, narrow or not
# the dashboard fits a chart's title, legends and axis INSIDE its height: rows get what is left
CHROME_PX = 120
ROW_PX = 26   # per county: a city's 11 counties get ~290 px, each name on its own line


def ranking_chart(table: pl.DataFrame, lines: pl.DataFrame, title: str = "", *,
                  worst_first: bool = True) -> alt.LayerChart:
    """Every measured county's score with its 95% interval and, beside it, score and rank; the
    lowest on top (where the eye lands, by the cut lines) unless `worst_first` is off; intervals
    crossing a cut line in orange. Vetoed counties (score 0 by rule) are left out, so the axis
    spans the measured scores; pages and slides list them apart (`vetoed_names`)."""
    measured = table.filter(~pl.col("veto")) if "veto" in table.columns else table
    data = measured.select("county_name", "score", "ci_low", "ci_high", "rank", "crosses_line") \
        .with_columns(pl.format("{}（第{}名）", _two(pl.col("score")), pl.col("rank")).alias("label"))
    order = measured.sort("score", descending=not worst_first)["county_name"].to_list()
    y = alt.Y("county_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=120))
    low = min([v for v in [data["ci_low"].min(), lines["score"].min() if lines.height else None]
               if v is not None], default=0.0)
    high = data["ci_high"].max() if data.height else 100.0
    room = (high - low) * 0.22 + 0.5                # the score labels right of the intervals
    x = alt.X("ci_low:Q", title="综合得分（95%置信区间）",
              scale=alt.Scale(zero=False, nice=False, domain=[low - 0.3, high + room]))
    colour = alt.Color("crosses_line:N", title="区间", scale=alt.Scale(
        domain=["跨越分界线", "不跨越"], range=["#e67e22", SCORE_COLOUR]), legend=TOP_LEGEND)
    base = alt.Chart(_frame(data)).encode(y=y)
    bars = base.mark_rule(strokeWidth=2).encode(x=x, x2="ci_high:Q", color=colour)
    points = base.mark_point(filled=True, size=40).encode(
        x="score:Q", color=colour,
        tooltip=[alt.Tooltip("county_name:N", title="区县"), alt.Tooltip("rank:Q", title="名次"),
                 alt.Tooltip("score:Q", title="得分", format=".2f"),
                 alt.Tooltip("ci_low:Q", title="下限", format=".2f"),
                 alt.Tooltip("ci_high:Q", title="上限", format=".2f")])
    labels = base.mark_text(align="left", dx=6, color="#333333").encode(x="ci_high:Q",
                                                                        text="label:N")
    rules = alt.Chart(_frame(lines)).mark_rule(strokeDash=[6, 3], strokeWidth=1.5).encode(
        x="score:Q", color=alt.Color("line:N", title="分界线", scale=alt.Scale(
            domain=list(CUT_COLOURS), range=list(CUT_COLOURS.values())), legend=TOP_LEGEND))
    height = max(200, ROW_PX * measured.height + CHROME_PX)
    return alt.layer(alt.layer(bars, points, labels), rules).resolve_scale(color="independent") \
        .properties(title=title, height=height, width="container")


def vetoed_names(table: pl.DataFrame) -> list[str]:
    """The counties `ranking_chart` leaves out: vetoed (score 0 by rule)."""
    if "veto" not in table.columns:
        return []
    return table.filter(pl.col("veto"))["county_name"].to_list()


def risk_chart(table: pl.DataFrame, top: int = 20, title: str = "") -> alt.LayerChart:
    """P(bottom 3) and P(bottom 10), this wave and next, for the first `top` counties in the
    order given, each bar with its percentage: pass tables.risk_order(...) so the chart lists
    them as the table does."""
    worst = table.head(top)
    order = worst["county_name"].to_list()
    long = worst.select("county_name", "p_bottom3", "p_bottom10", "p_bottom3_next",
                        "p_bottom10_next").unpivot(index="county_name").with_columns(
        pl.col("variable").replace_strict({
            "p_bottom3": "本期·后3名", "p_bottom10": "本期·后10名",
            "p_bottom3_next": "下期·后3名", "p_bottom10_next": "下期·后10名"}).alias("which"))
    which = ["本期·后3名", "本期·后10名", "下期·后3名", "下期·后10名"]
    long = long.with_columns(_percent_text(pl.col("value")).alias("text"))
    base = alt.Chart(_frame(long)).encode(
        y=alt.Y("county_name:N", sort=order, title=None),
        x=alt.X("value:Q", title="概率", scale=alt.Scale(domain=[0, 1.12]),
                axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1])),
        yOffset=alt.YOffset("which:N", sort=which),
        tooltip=[alt.Tooltip("county_name:N", title="区县"), alt.Tooltip("which:N", title="项目"),
                 alt.Tooltip("value:Q", title="概率", format=".1%")])
    bars = base.mark_bar().encode(color=alt.Color(
        "which:N", title=None, sort=which,
        scale=alt.Scale(domain=which, range=["#c0392b", "#e67e22", "#8e44ad", "#3498db"])))
    numbers = base.mark_text(align="left", dx=3, fontSize=11, color="#333333").encode(
        text="text:N").transform_filter(alt.datum.value >= 0.005)   # no stack of "0%" labels
    return alt.layer(bars, numbers).properties(title=title,
                                               height=max(200, 52 * worst.height + CHROME_PX),
                                               width="container")


def funnel_chart(points: pl.DataFrame, limits: pl.DataFrame, target: float,
                 title: str = "") -> alt.LayerChart:
    long = limits.unpivot(index="n_eff").with_columns(
        pl.col("variable").str.replace(r"^(lo|hi)_", "").alias("level"),
        pl.col("variable").str.slice(0, 2).alias("side"))
    long = long.with_columns(pl.col("level").replace_strict(
        {"95": "95%控制限", "998": "99.8%控制限"}).alias("level"),
        (pl.col("level") + pl.col("side")).alias("series"))
    lines = alt.Chart(_frame(long)).mark_line(strokeDash=[4, 3]).encode(
        x=alt.X("n_eff:Q", title="样本量（按抽样设计折算）"), y=alt.Y("value:Q", title="综合得分",
                                                    scale=alt.Scale(zero=False)),
        detail="series:N", color=alt.Color("level:N", title="控制限", scale=alt.Scale(
            domain=["95%控制限", "99.8%控制限"], range=["#e67e22", "#c0392b"])))
    centre = alt.Chart(_frame(pl.DataFrame({"target": [target]}))).mark_rule(
        color="#7f8c8d").encode(y="target:Q")
    dots = alt.Chart(_frame(points.with_columns(
        pl.when(pl.col("outside_998") != "").then(pl.lit("超出99.8%限"))
        .when(pl.col("outside_95") != "").then(pl.lit("超出95%限"))
        .otherwise(pl.lit("限内")).alias("status")))).mark_circle(size=60).encode(
        x="n_eff:Q", y="score:Q",
        color=alt.Color("status:N", title="位置", scale=alt.Scale(
            domain=["限内", "超出95%限", "超出99.8%限"], range=[SCORE_COLOUR, "#e67e22", "#c0392b"])),
        tooltip=[alt.Tooltip("county_name:N", title="区县"),
                 alt.Tooltip("score:Q", title="得分", format=".2f"),
                 alt.Tooltip("n_eff:Q", title="折算样本量", format=".0f")])
    return alt.layer(lines, centre, dots).resolve_scale(color="independent").properties(
        title=title, height=420, width="container")


def history_chart(history: pl.DataFrame, title: str = "") -> alt.LayerChart:
    """Score across waves with its interval (columns wave_label, score, ci_low, ci_high,
    veto_reason). A vetoed wave is a marked gap: the line and band stop before it and resume
    after it, and the wave carries 一票否决（记0分）; drawing the 0 would squash the scale, and a
    line straight through it hid the veto."""
    order = history["wave_label"].to_list()
    is_veto = pl.col("veto_reason").is_not_null() & (pl.col("veto_reason") != "")
    history = history.with_columns(is_veto.cum_sum().fill_null(0).alias("segment"))
    vetoed = history.filter(is_veto)
    measured = history.filter(~is_veto)
    x = alt.X("wave_label:N", title=None, sort=order, scale=alt.Scale(domain=order),
              axis=alt.Axis(labelAngle=0))
    base = alt.Chart(_frame(measured)).encode(x=x, detail="segment:N")
    band = base.mark_area(opacity=0.2, color=SCORE_COLOUR).encode(
        y=alt.Y("ci_low:Q", title="综合得分", scale=alt.Scale(zero=False)), y2="ci_high:Q")
    # each wave's interval as a bar too: a wave alone between vetoes has no band to show it
    whiskers = base.mark_rule(color=SCORE_COLOUR, opacity=0.5, strokeWidth=2).encode(
        y="ci_low:Q", y2="ci_high:Q")
    line = base.mark_line(point=alt.OverlayMarkDef(size=60, filled=True),
                          color=SCORE_COLOUR).encode(
        y="score:Q", tooltip=[alt.Tooltip("wave_label:N", title="期次"),
                              alt.Tooltip("score:Q", title="得分", format=".2f"),
                              alt.Tooltip("rank:Q", title="名次")])
    layers = [band, whiskers, line]
    if vetoed.height:
        marks = alt.Chart(_frame(vetoed.select("wave_label", "veto_reason"))).encode(x=x)
        layers += [marks.mark_rule(color="#c0392b", strokeDash=[4, 3]).encode(
                       tooltip=[alt.Tooltip("veto_reason:N", title="一票否决")]),
                   marks.mark_text(color="#c0392b", dy=4, baseline="top", fontWeight="bold")
                   .encode(y=alt.value(0), text=alt.value("一票否决（记0分）"))]
    return alt.layer(*layers).properties(title=title, height=260, width="container")


def comparison_chart(table: pl.DataFrame, title: str = "") -> alt.LayerChart:
    """Component scores of a county beside its city and the province (label, who, score), as
    horizontal bars so long component names stay readable; the county's own bars carry their
    values (all three would overlap)."""
    order = table["label"].unique(maintain_order=True).to_list()
    who = ["本县", "本市平均", "全省平均"]
    base = alt.Chart(_frame(table.with_columns(pl.col("score").round(1).alias("text")))).encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
        yOffset=alt.YOffset("who:N", sort=who),
        x=alt.X("score:Q", title="分项得分（0–100）", scale=alt.Scale(domain=[0, 110]),
                axis=alt.Axis(values=[0, 20, 40, 60, 80, 100])),
        tooltip=[alt.Tooltip("label:N", title="分项"), alt.Tooltip("who:N", title=""),
                 alt.Tooltip("score:Q", title="得分", format=".1f")])
    bars = base.mark_bar().encode(color=alt.Color(
        "who:N", title=None, sort=who,
        scale=alt.Scale(domain=who, range=[SCORE_COLOUR, "#7fb3d5", "#bdc3c7"])))
    numbers = base.mark_text(align="left", dx=3, fontSize=12, color="#333333").encode(
        text=alt.Text("text:Q", format=".1f")).transform_filter(alt.datum.who == "本县")
    return alt.layer(bars, numbers).properties(title=title,
                                               height=max(300, 42 * len(order) + CHROME_PX),
                                               width="container")


def interval_chart(table: pl.DataFrame, label: str, title: str = "",
                   x_title: str = "得分（95%置信区间）") -> alt.LayerChart:
    """Point and interval per row (columns: label column, mean/score, ci_low, ci_high)."""
    value = "mean" if "mean" in table.columns else "score"
    order = table.sort(value, descending=True)[label].to_list()
    base = alt.Chart(_frame(table.select(label, value, "ci_low", "ci_high"))).encode(
        y=alt.Y(f"{label}:N", sort=order, title=None))
    rules = base.mark_rule(color=SCORE_COLOUR, strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title=x_title, scale=alt.Scale(zero=False)), x2="ci_high:Q")
    points = base.mark_point(filled=True, size=50, color=SCORE_COLOUR).encode(
        x=f"{value}:Q", tooltip=[alt.Tooltip(f"{label}:N", title=""),
                                 alt.Tooltip(f"{value}:Q", title="得分", format=".1f"),
                                 alt.Tooltip("ci_low:Q", title="下限", format=".1f"),
                                 alt.Tooltip("ci_high:Q", title="上限", format=".1f")])
    return alt.layer(rules, points).properties(title=title,
                                               height=max(160, 26 * table.height + CHROME_PX),
                                               width="container")


def hex_layout(counties: pl.DataFrame) -> pl.DataFrame:
    """A generated hex-tile layout: each city a compact block of hexagons, cities side by side in
    rows, so neighbours in the picture are counties of the same city (not real geography)."""
    rows = []
    cities = counties["city_code"].unique(maintain_order=True).to_list()
    per_row = math.ceil(math.sqrt(len(cities)))
    sizes = counties.group_by("city_code").len()["len"]
    cell = math.ceil(math.sqrt(int(sizes.max()))) if sizes.len() else 1   # one grid for all cities
    cell_rows = math.ceil(int(sizes.max()) / cell) * 0.87 if sizes.len() else 1
    for index, city in enumerate(cities):
        members = counties.filter(pl.col("city_code") == city)["county_code"].to_list()
        width = math.ceil(math.sqrt(len(members)))
        origin_x, origin_y = (index % per_row) * (cell + 1.5), (index // per_row) * (cell_rows + 1.6)
        for k, code in enumerate(members):
            r, c = divmod(k, width)
            rows.append((code, origin_x + c + (0.5 if r % 2 else 0.0), origin_y + r * 0.87))
    return pl.DataFrame(rows, schema=["county_code", "hx", "hy"], orient="row")


HEXAGON = "M0,-1L0.866,-0.5L0.866,0.5L0,1L-0.866,0.5L-0.866,-0.5Z"


def hex_map(table: pl.DataFrame, colour: str, title: str = "") -> alt.LayerChart:
    """County tiles coloured by score (quantitative) or risk band (the `band` column), each named,
    each city's name above its block. Both axes share one scale (`_equal_units`), so tiles touch
    without overlapping at any chart size, on screen and in a 16:9 picture."""
    if colour == "band":
        encoding = alt.Color("band:N", title="风险等级", scale=alt.Scale(
            domain=list(BAND_COLOURS), range=list(BAND_COLOURS.values())),
            legend=alt.Legend(orient="top", direction="horizontal"))
        dark = pl.col("band").is_in(["高危", "预警"])
    else:
        encoding = alt.Color("score:Q", title="综合得分", scale=alt.Scale(scheme="blues"),
                             legend=alt.Legend(orient="top", direction="horizontal"))
        dark = pl.col("score") >= pl.col("score").median()
    tiles = table.select("county_name", "city_name", "hx", "hy", "score", "band", "rank") \
        .with_columns(pl.col("county_name").str.replace(r"^(.{2,})[县区市]$", "$1").alias("short"),
                      pl.when(dark).then(pl.lit("white")).otherwise(pl.lit("#1a1a1a")).alias("ink"))
    x_domain, y_domain, unit = _equal_units(table)
    x = alt.X("hx:Q", axis=None, scale=alt.Scale(domain=x_domain, nice=False, zero=False))
    y = alt.Y("hy:Q", axis=None, scale=alt.Scale(domain=y_domain, nice=False, zero=False,
                                                 reverse=True))
    tooltip = [alt.Tooltip("county_name:N", title="区县"), alt.Tooltip("city_name:N", title="市州"),
               alt.Tooltip("score:Q", title="得分", format=".2f"),
               alt.Tooltip("rank:Q", title="名次"), alt.Tooltip("band:N", title="风险等级")]
    base = alt.Chart(_frame(tiles)).encode(x=x, y=y, tooltip=tooltip)
    hexes = base.mark_point(shape=HEXAGON, filled=True, opacity=1, stroke="white", strokeWidth=1,
                            size=alt.ExprRef(expr=f"pow(2 * 0.96 * 0.577 * {unit}, 2)")) \
        .encode(color=encoding)
    names = base.mark_text(fontSize=alt.ExprRef(expr=f"min(20, max(7, {unit} / 3.4))")).encode(
        text="short:N", color=alt.Color("ink:N", scale=None))
    cities = table.group_by("city_name", maintain_order=True).agg(
        pl.col("hx").mean(), (pl.col("hy").min() - 0.95).alias("hy"))
    labels = alt.Chart(_frame(cities)).mark_text(
        fontWeight="bold", color="#333333",
        fontSize=alt.ExprRef(expr=f"min(22, max(9, {unit} / 2.6))")).encode(
        x="hx:Q", y="hy:Q", text="city_name:N")
    return alt.layer(hexes, names, labels).properties(title=title, height=420, width="container")


def _equal_units(table: pl.DataFrame) -> tuple[alt.ExprRef, alt.ExprRef, str]:
    """Scale domains (as expressions of the plot's width and height) that give both axes the same
    pixels per layout unit, and that unit: a hexagon stays a hexagon whatever the box's shape, and
    the whole layout (plus a tile and the city names of margin) fits inside it."""
    lo_x, hi_x = float(table["hx"].min()), float(table["hx"].max())
    lo_y, hi_y = float(table["hy"].min()), float(table["hy"].max())
    span_x, span_y = hi_x - lo_x + 1.6, hi_y - lo_y + 2.6        # top margin for city names
    cx, cy = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2 - 0.5
    # a plot not yet laid out has width 0 (a phone's stacked columns): keep the domain finite
    unit = f"max(0.01, min(max(width, 1) / {span_x:.3f}, max(height, 1) / {span_y:.3f}))"
    return (alt.ExprRef(expr=f"[{cx:.3f} - width / 2 / ({unit}), {cx:.3f} + width / 2 / ({unit})]"),
            alt.ExprRef(expr=f"[{cy:.3f} - height / 2 / ({unit}), {cy:.3f} + height / 2 / ({unit})]"),
            unit)


CODE_PROPERTIES = ("county_code", "adcode", "code", "区划代码", "区县代码")


def geo_map(table: pl.DataFrame, geojson: dict, colour: str, title: str = "") -> alt.Chart:
    """County boundaries from a user-supplied GeoJSON file (features carry the 6-digit code in one
    of CODE_PROPERTIES), coloured like `hex_map`; counties missing from the table stay grey."""
    values = {r["county_code"]: r for r in table.select(
        "county_code", "county_name", "score", "band", "rank").iter_rows(named=True)}
    features = []
    for feature in geojson.get("features", []):
        props = feature.get("properties") or {}
        code = next((str(props[k]) for k in CODE_PROPERTIES if k in props), None)
        row = values.get(code, {})
        features.append({**feature, "properties": {**props, "county_code": code,
                                                   "county_name": row.get("county_name", code),
                                                   "score": row.get("score"),
                                                   "band": row.get("band"),
                                                   "rank": row.get("rank")}})
    if colour == "band":
        encoding = alt.Color("properties.band:N", title="风险等级", scale=alt.Scale(
            domain=list(BAND_COLOURS), range=list(BAND_COLOURS.values())))
    else:
        encoding = alt.Color("properties.score:Q", title="综合得分", scale=alt.Scale(scheme="blues"))
    return alt.Chart(alt.Data(values=features)).mark_geoshape(stroke="white", strokeWidth=0.5) \
        .encode(color=encoding, tooltip=[
            alt.Tooltip("properties.county_name:N", title="区县"),
            alt.Tooltip("properties.score:Q", title="得分", format=".2f"),
            alt.Tooltip("properties.rank:Q", title="名次"),
            alt.Tooltip("properties.band:N", title="风险等级")]) \
        .project("mercator").properties(title=title, height=420, width="container")
