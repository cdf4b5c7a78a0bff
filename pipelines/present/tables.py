"""The tables a user sees, with Chinese headers, built once for the page, the Excel workbook, the CSV
downloads and the slides, so what is exported is what was shown.

Values stay numeric (probabilities as fractions); each table carries the format of its columns, which
the page (`st.column_config`), the workbook (Excel number formats) and the slides apply.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import polars as pl

from pipelines.core.waves import wave_display_expr
from pipelines.present.views import RAW_SUFFIX
from pipelines.scheme.definitions import Scheme

SCORE, PERCENT, INTEGER, DECIMAL3 = "score", "percent", "integer", "decimal3"


@dataclass(frozen=True)
class Table:
    """A frame with Chinese column names and the display format of its numeric columns."""
    title: str
    frame: pl.DataFrame
    formats: dict[str, str] = field(default_factory=dict)


def score_header(label: str) -> str:
    """A component's 0–100 score: "现有吸毒人员千人比 78.36" read as the rate itself (issue 20)."""
    return f"{label}·得分"


def raw_header(label: str) -> str:
    """The measured value behind a component's score (the rate, the survey mean)."""
    return f"{label}·原始值"


def ranking_table(view: pl.DataFrame, scheme: Scheme) -> Table:
    """名次, score and interval, rank interval, cut-line flag, veto, component scores."""
    # a component not in force for the wave (from_wave/until_wave) has no column
    components = [c for c in scheme.components if c.id in view.columns]
    frame = view.select(
        pl.col("rank").alias("名次"), pl.col("county_name").alias("区县"),
        pl.col("city_name").alias("市州"), pl.col("score").alias("综合得分"),
        pl.col("ci_low").alias("下限"), pl.col("ci_high").alias("上限"),
        (pl.col("rank_low").cast(pl.String) + "–" + pl.col("rank_high").cast(pl.String))
        .alias("名次区间"), pl.col("crosses_line").alias("分界线"),
        pl.col("veto_reason").fill_null("").alias("一票否决"),
        *[column for c in components for column in (
            pl.col(c.id).alias(score_header(c.label)), pl.col(f"{c.id}{RAW_SUFFIX}")
            .alias(raw_header(c.label)))])
    formats = {"名次": INTEGER, "综合得分": SCORE, "下限": SCORE, "上限": SCORE,
               **{score_header(c.label): SCORE for c in components},
               **{raw_header(c.label): DECIMAL3 for c in components}}
    return Table("县区排名", frame, formats)


def band_rule(scheme: Scheme) -> str:
    """The one statement of what 风险等级 means; table captions, chart notes and speaker notes
    quote it, so no view can describe the bands differently from how they are computed
    (pipelines.ranking.ranks.risk_band: this wave's probabilities)."""
    k3, k10 = scheme.listing.province_bottom, scheme.listing.city_bottom
    parts = []
    for band in scheme.listing.bands:
        conditions = [f"本期后{k}名概率 ≥ {p:.0%}" for k, p in
                      ((k3, band.p_bottom3_at_least), (k10, band.p_bottom10_at_least))
                      if p is not None]
        parts.append(f"{band.label}（{'且'.join(conditions) or '其余'}）")
    return (f"风险等级按本期概率划分（该县真实水平落入全省后{k3}名/后{k10}名的概率），依次判断："
            + "、".join(parts) + "；表和图按等级、再按本期概率排序。下期概率只作参考，不改变等级。")


def risk_order(risk: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """Most at risk first, the one order of the risk table, chart and slide: band (scheme
    order), then this wave's P(bottom 3), P(bottom 10), then rank."""
    order = {band.label: k for k, band in enumerate(scheme.listing.bands)}
    return risk.with_columns(pl.col("band").replace_strict(order, default=len(order),
                                                           return_dtype=pl.Int32)
                             .alias("_band_order")) \
        .sort(["_band_order", "p_bottom3", "p_bottom10", "rank"],
              descending=[False, True, True, False], nulls_last=True).drop("_band_order")


def risk_display(risk: pl.DataFrame, scheme: Scheme) -> Table:
    """The risk table, most at risk first (risk_order)."""
    k3, k10 = scheme.listing.province_bottom, scheme.listing.city_bottom
    frame = risk_order(risk, scheme).select(
        pl.col("county_name").alias("区县"), pl.col("city_name").alias("市州"),
        pl.col("rank").alias("名次"), pl.col("score").alias("得分"),
        pl.col("p_bottom3").alias(f"本期后{k3}概率"), pl.col("p_bottom10").alias(f"本期后{k10}概率"),
        pl.col("p_bottom3_next").alias(f"下期后{k3}概率"),
        pl.col("p_bottom10_next").alias(f"下期后{k10}概率"),
        pl.col("p_veto_next").alias("下期一票否决概率"),
        pl.col("band").alias("风险等级"),
        pl.col("gap_bottom3").alias(f"距后{k3}线"), pl.col("gap_bottom10").alias(f"距后{k10}线"),
        pl.col("top_lever").alias("提分杠杆"))
    formats = {"名次": INTEGER, "得分": SCORE, f"距后{k3}线": SCORE, f"距后{k10}线": SCORE,
               **{c: PERCENT for c in frame.columns if c.endswith("概率")}}
    return Table("挂牌风险", frame, formats)


def component_table(components: pl.DataFrame, composite: pl.DataFrame) -> Table:
    """One row per county: each component's 0–100 score and the raw value behind it."""
    names = composite.select("county_code", "county_name", "city_name", "score")
    labels = components["label"].unique(maintain_order=True).to_list()
    wide_score = components.pivot("label", index="county_code", values="score").rename(
        {label: score_header(label) for label in labels})
    wide_raw = components.pivot("label", index="county_code", values="raw").rename(
        {label: raw_header(label) for label in labels})
    frame = names.join(wide_score, on="county_code", how="left") \
        .join(wide_raw, on="county_code", how="left").sort("score", descending=True,
                                                             nulls_last=True)
    frame = frame.rename({"county_code": "区划代码", "county_name": "区县", "city_name": "市州",
                          "score": "综合得分"})
    frame = frame.select("区划代码", "区县", "市州", "综合得分",
                         *[c for label in labels for c in (score_header(label),
                                                           raw_header(label))])
    formats = {"综合得分": SCORE, **{score_header(label): SCORE for label in labels},
               **{raw_header(label): DECIMAL3 for label in labels}}
    return Table("分项得分", frame, formats)


def progress_table(progress: pl.DataFrame, names: pl.DataFrame) -> Table:
    """Every county listed now: since when, conditions met, what is missing, the expected exit."""
    frame = progress.join(names.select("county_code", "county_name"), on="county_code",
                          how="left").select(
        pl.col("county_name").alias("区县"),
        wave_display_expr("listed_in").alias("挂牌期次"),
        pl.col("waves_listed").alias("已挂牌期数"),
        (pl.col("conditions_met").cast(pl.String) + "/" + pl.col("conditions").cast(pl.String))
        .alias("已满足条件"),
        pl.col("missing").alias("未满足"),
        pl.col("p_bottom10_next").alias("下期仍在后10概率"),
        pl.col("expected_exit").alias("预计摘帽"),
        pl.when(pl.col("overdue")).then(pl.lit("逾期未摘帽")).otherwise(pl.lit("")).alias("提示"))
    return Table("摘帽进度", frame, {"已挂牌期数": INTEGER, "下期仍在后10概率": PERCENT})


def comparison_table(comparison: pl.DataFrame, names: pl.DataFrame) -> Table:
    """Each rule verdict beside the official decision."""
    frame = comparison.join(names.select("county_code", "county_name"), on="county_code",
                            how="left").select(
        wave_display_expr("wave").alias("期次"),
        pl.col("county_name").alias("区县"), pl.col("level").alias("层级"),
        pl.col("action").alias("事项"),
        pl.when(pl.col("rules")).then(pl.lit("是")).otherwise(pl.lit("否")).alias("规则判定"),
        pl.when(pl.col("official")).then(pl.lit("有")).otherwise(pl.lit("无")).alias("正式决定"),
        pl.col("note").alias("说明"))
    return Table("规则与正式决定", frame)


def validity_label(from_wave: str | None, until_wave: str | None) -> str:
    """When a rule is in force, in Chinese: 各期 / 自2024年度起 / 至2023年度 / 2022年度–2023年度."""
    from pipelines.core.waves import wave_display

    if from_wave and until_wave:
        return f"{wave_display(from_wave)}–{wave_display(until_wave)}"
    if from_wave:
        return f"自{wave_display(from_wave)}起"
    return f"至{wave_display(until_wave)}" if until_wave else "各期"


def consequences_table(register: pl.DataFrame, names: pl.DataFrame) -> Table:
    """The consequences register (pipelines/ranking/consequences.py): one row per consequence."""
    frame = register.join(names.select("county_code", "county_name"), on="county_code",
                          how="left").select(
        wave_display_expr("wave").alias("期次"), pl.col("county_name").alias("区县"),
        pl.col("level").alias("层级"), pl.col("action").alias("事项"),
        pl.col("tier").alias("类别"), pl.col("status").alias("状态"),
        pl.when(pl.col("deadline").is_null()).then(pl.lit(""))
        .otherwise(wave_display_expr("deadline")).alias("期限"),
        pl.col("reason").alias("依据"), pl.col("official").alias("正式决定"))
    return Table("挂牌与通报", frame)


# -- CSV ---------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def neutralise(text: str) -> str:
    """A cell that a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


_FORMULA_PATTERN = "^[" + "".join(re.escape(c) for c in FORMULA_STARTS) + "]"


def neutralised(column: str) -> pl.Expr:
    """`neutralise` on a text column, as a Polars expression (no per-row Python on a page)."""
    cell = pl.col(column)
    return pl.when(cell.str.contains(_FORMULA_PATTERN)).then(pl.lit("'") + cell) \
        .otherwise(cell).alias(column)


def csv_bytes(table: Table) -> bytes:
    """UTF-8 CSV with a byte-order mark (Excel then reads the Chinese), text cells neutralised;
    numbers stay numbers."""
    frame = table.frame.with_columns(neutralised(c) for c, dtype in table.frame.schema.items()
                                     if dtype == pl.String)
    frame = frame.rename({c: neutralise(c) for c in frame.columns})
    out = io.BytesIO()
    out.write("\ufeff".encode())
    frame.write_csv(out)
    return out.getvalue()


def fixed_decimals(expr: pl.Expr, places: int = 2) -> pl.Expr:
    """A number as text with a fixed number of decimals (91.00, -0.40), vectorised: no per-row
    Python on a page path (tests/test_server_udf.py)."""
    scale = 10 ** places
    scaled = (expr * scale).round(0).cast(pl.Int64)
    whole = scaled.abs() // scale
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if places == 0:
        return pl.format("{}{}", sign, whole)
    fraction = (scaled.abs() % scale).cast(pl.String).str.zfill(places)
    return pl.format("{}{}.{}", sign, whole, fraction)
