"""Validation of survey files and indicator sheets, before anything is written.

Each rule is one vectorised check over the whole file; it reports the first offending rows (file row
numbers, header = row 1) and counts all of them. The output of a clean file is a typed frame in the
warehouse's canonical columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pipelines.core.headers import build_alias_index, match_headers
from pipelines.core.problems import ProblemList
from pipelines.core.waves import normalise_wave_cell
from pipelines.ingest.privacy import id_column_problem, numbers_in_text, personal_data_columns
from pipelines.ingest.readers import FIRST_DATA_ROW, RawTable
from pipelines.scheme.definitions import Definitions, Item

ROW = "__row"
SHEET = "__sheet"


def _normalised_waves(cells: pl.Series) -> pl.Series:
    """Wave labels as written (2025, 2025年, 2025年度 …) → canonical (a column of a million cells
    usually holds one distinct value)."""
    return _per_distinct(cells, normalise_wave_cell, pl.String)
ROWS_PER_RULE = 20
FLAG_VALUES = {"1": 1.0, "0": 0.0, "是": 1.0, "否": 0.0, "有": 1.0, "无": 0.0, "没有": 0.0}


@dataclass(frozen=True)
class Confirmations:
    """What the analyst confirmed for a file that would otherwise be refused (never assumed)."""

    equal_weights: bool = False          # no weight column: every respondent weighs 1
    allow_missing_counties: bool = False  # the province's counties absent from the wave
    allow_repeat: bool = False            # the file repeats an earlier wave's respondents


NOTHING_CONFIRMED = Confirmations()


@dataclass
class Validated:
    """A clean file: canonical rows plus what the analyst should know."""

    frame: pl.DataFrame
    warnings: list[str] = field(default_factory=list)
    dropped_columns: dict[str, str] = field(default_factory=dict)  # header → personal-data kind
    mapping: dict[str, str] = field(default_factory=dict)  # header → canonical column
    ignored_columns: list[str] = field(default_factory=list)  # not in the definitions: not kept


def _with_rows(frame: pl.DataFrame, raw: RawTable | None = None) -> pl.DataFrame:
    """The row number each row has in the file as the analyst sees it (a spreadsheet's reader
    knows them: title rows above the header, skipped rows, several sheets)."""
    if raw is not None and raw.row_numbers is not None:
        frame = frame.with_columns(raw.row_numbers.cast(pl.Int64).alias(ROW))
        if raw.sheet_names is not None:
            frame = frame.with_columns(raw.sheet_names.alias(SHEET))
        return frame
    return frame.with_row_index(ROW, offset=FIRST_DATA_ROW).with_columns(pl.col(ROW).cast(pl.Int64))


def _report(problems: ProblemList, frame: pl.DataFrame, mask: pl.Expr, column: str | None,
            message) -> None:
    """Add a problem for each row where `mask` holds; `message(row_dict)` words it."""
    hits = frame.filter(mask)
    if hits.height:
        for row in hits.head(ROWS_PER_RULE).iter_rows(named=True):
            problems.add(message(row), row=row[ROW], column=column, sheet=row.get(SHEET))
        problems.total += hits.height - min(hits.height, ROWS_PER_RULE)


def _report_repeats(problems: ProblemList, frame: pl.DataFrame, key: str, column: str,
                    message) -> None:
    """Report every row whose `key` already appeared (`_RowChecks` calls it only when some
    did); `__first` in the row is that first row."""
    indexed = frame.with_row_index("__pos")
    first_pos = indexed.filter(pl.col(key).is_not_null()).group_by(key).agg(
        pl.col("__pos").min().alias("__first_pos"))
    with_first = indexed.join(first_pos, on=key, how="left", maintain_order="left")
    at = pl.col("__first_pos").fill_null(0)
    first = pl.format("第{}", pl.col(ROW).gather(at))
    if SHEET in frame.columns:   # rows of several sheets: say which sheet the first one is on
        first = pl.format("工作表“{}”第{}", pl.col(SHEET).gather(at), pl.col(ROW).gather(at))
    with_first = with_first.with_columns(first.alias("__first"))
    _report(problems, with_first, pl.col("__pos") != pl.col("__first_pos"), column, message)


class _RowChecks:
    """Row rules collected while a file's columns are parsed, then counted together in one pass
    over the final frame (Polars evaluates the masks in parallel, where one filter per rule walked
    the whole frame each time) and reported in the order they were added: only a rule that fails
    filters out the rows it names."""

    def __init__(self, problems: ProblemList) -> None:
        self.problems = problems
        self.rules: list[tuple[str, object, str | None, object]] = []

    def add(self, mask: pl.Expr, column: str | None, message) -> None:
        self.rules.append(("mask", mask, column, message))

    def add_repeats(self, key: str, column: str, message) -> None:
        self.rules.append(("repeats", key, column, message))

    def report(self, frame: pl.DataFrame) -> None:
        if not self.rules:
            return
        counts = frame.select(
            (what.sum() if kind == "mask" else _out_of_order(what)).alias(f"r{i}")
            for i, (kind, what, _, _) in enumerate(self.rules)).row(0)
        for (kind, what, column, message), count in zip(self.rules, counts, strict=False):
            if not count:
                continue
            if kind == "mask":
                _report(self.problems, frame, what, column, message)
            elif _has_repeats(frame.get_column(what)):
                _report_repeats(self.problems, frame, what, column, message)
        self.rules.clear()


def _out_of_order(key: str) -> pl.Expr:
    """How often a filled value of `key` is not above the one before it: none means the values
    strictly increase, so none repeats (files usually list respondents in id order; this is one
    comparison per row, where counting distinct ids hashes a million strings)."""
    values = pl.col(key).drop_nulls()
    return (values.shift(-1) <= values).sum()


def _has_repeats(cells: pl.Series) -> bool:
    """Whether a filled value repeats. Distinct hashes mean distinct values, so only a file with
    a repeated hash (a repeated value, or rarely a collision) is counted exactly."""
    values = cells.drop_nulls()
    return values.hash().n_unique() < values.len() and values.n_unique() < values.len()


def _drop_personal_data(raw: pl.DataFrame, mapped: dict[str, str], warnings: list[str],
                        ) -> dict[str, str]:
    safe = {h for h, target in mapped.items() if target not in ("county_name",)}
    dropped = personal_data_columns(raw, keep=safe)
    for header, kind in dropped.items():
        warnings.append(f"“{header}”列疑似{kind}，已删除，不会保存（含归档副本）")
    return dropped


# ---------------------------------------------------------------------------------------------
# survey files


def header_targets(defs: Definitions, kind: str) -> dict[str, tuple[str, ...]]:
    """Canonical field → its header aliases, for a survey file or an indicator sheet."""
    if kind == "survey":
        q = defs.questionnaire
        targets = {cid: col.aliases for cid, col in q.columns.items()}
        return targets | {item.column: item.aliases + (item.id,) for item in q.items}
    catalogue = defs.indicators
    targets = {"county_code": catalogue.county_aliases,
               "county_name": catalogue.county_name_aliases, "period": catalogue.period_aliases}
    return targets | {ind.id: ind.aliases + (ind.label,) for ind in catalogue.indicators}


def integer_fields(defs: Definitions) -> set[str]:
    """The survey fields whose cells are whole numbers: answer codes and the age."""
    return {item.column for item in defs.questionnaire.items} | {"age"}


def target_label(defs: Definitions, target: str) -> str:
    """The Chinese name of a canonical field (questionnaire column, item or indicator)."""
    q = defs.questionnaire
    if target in q.columns:
        return q.columns[target].label
    for item in q.items:
        if item.column == target:
            return item.label
    names = {"county_code": "区县代码", "county_name": "区县名称", "period": "统计期"}
    if target in names:
        return names[target]
    try:
        return defs.indicators.get(target).label
    except KeyError:
        return target


def validate_survey(raw: RawTable, file_name: str, wave: str, defs: Definitions,
                    counties: pl.DataFrame, confirmed: Confirmations = NOTHING_CONFIRMED,
                    ) -> Validated:
    """Check a survey file against the questionnaire and the province's counties."""
    q = defs.questionnaire
    problems = ProblemList(file_name)
    warnings: list[str] = []
    targets = header_targets(defs, "survey")
    mapped, unmatched, duplicates = match_headers(raw.frame.columns, build_alias_index(targets))
    for target, headers in duplicates.items():
        problems.add(f"多个列都对应“{target_label(defs, target)}”：{'、'.join(headers)}，请只保留一列")
    dropped = _drop_personal_data(raw.frame, mapped, warnings)
    ignored = [h for h in unmatched if h not in dropped]
    for header in ignored:
        warnings.append(f"“{header}”列不在问卷定义中，已忽略（不保存，也不进入归档副本）")
    mapped = {h: t for h, t in mapped.items() if h not in dropped}
    header_of = {t: h for h, t in mapped.items()}

    for col in q.columns.values():
        if col.required and col.id not in header_of:
            problems.add(f"缺少必需的列“{col.label}”（可用列名：{'、'.join(col.aliases[:4])}）")
    if "county_code" not in header_of and "county_name" not in header_of:
        problems.add("缺少区县列：需要“区县代码”或“区县名称”")
    for item in q.items:
        if item.column not in header_of:
            problems.add(f"缺少题目“{item.label}”的列（可用列名：{'、'.join(item.aliases[:3])}）")
    if "weight" not in header_of and not confirmed.equal_weights:
        problems.add("文件没有权重列（可用列名：" + "、".join(q.columns["weight"].aliases[:6])
                     + "）。如权重列另有名称，请在列对应中指定；如确认本期按等权重（每人权重为1）"
                     "计算，请勾选“按等权重导入”（命令行加 --equal-weights）")
    if raw.frame.height == 0:
        problems.add("文件只有表头，没有数据行")
    if "respondent_id" in header_of and (why := id_column_problem(
            raw.frame.get_column(header_of["respondent_id"]))):
        problems.add(why, column=header_of["respondent_id"])
    problems.raise_if_any()

    frame = _with_rows(raw.frame.select([pl.col(h).alias(t) for h, t in mapped.items()]),
                       raw)
    checks = _RowChecks(problems)
    _screen_kept_text(frame, header_of, checks)
    out: dict[str, pl.Expr] = {}
    parsed: list[pl.Expr] = []   # every parsed column in one with_columns, evaluated in parallel

    # respondent id: present and unique
    rid, rid_header = pl.col("respondent_id"), header_of["respondent_id"]
    checks.add(rid.is_null(), rid_header, lambda r: "受访者编号为空")
    checks.add_repeats("respondent_id", rid_header,
                       lambda r: f"受访者编号“{r['respondent_id']}”重复（{r['__first']}行已出现）")

    # county: code and/or name, both must be known and agree
    frame = _resolve_county(frame, header_of, counties, checks)
    out["county_code"] = pl.col("__county_code")

    # wave column must agree with the wave being loaded
    if "wave" in header_of:
        parsed.append(_normalised_waves(frame["wave"]).alias("__wave"))
        checks.add(pl.col("__wave").is_null() | (pl.col("__wave") != wave), header_of["wave"],
                   lambda r: f"调查期次“{r['wave'] or ''}”与本次导入的期次“{wave}”不符")

    # weight: positive finite number; absent column = equal weights
    if "weight" in header_of:
        h = header_of["weight"]
        parsed.append(pl.col("weight").cast(pl.Float64, strict=False).alias("__weight"))
        checks.add(pl.col("weight").is_null(), h, lambda r: "权重为空")
        checks.add(pl.col("weight").is_not_null() & pl.col("__weight").is_null(), h,
                   lambda r: f"权重“{r['weight']}”不是数字")
        checks.add(pl.col("__weight").is_not_null()
                   & (~pl.col("__weight").is_finite() | (pl.col("__weight") <= 0)), h,
                   lambda r: f"权重必须为正数，实际为 {r['weight']}")
        out["weight"] = pl.col("__weight")
    else:
        warnings.append("文件没有权重列，已按分析人员确认的等权重（每人权重为1）处理")
        out["weight"] = pl.lit(1.0)

    # age: integer within the questionnaire's range (blank allowed)
    if "age" in header_of:
        h = header_of["age"]
        parsed.append(pl.col("age").cast(pl.Float64, strict=False).alias("__age"))
        checks.add(pl.col("age").is_not_null() & (pl.col("__age").is_null()
                                                  | (pl.col("__age") % 1 != 0)), h,
                   lambda r: f"年龄“{r['age']}”不是整数")
        checks.add((pl.col("__age") < q.min_age) | (pl.col("__age") > q.max_age), h,
                   lambda r: f"年龄 {r['age']} 超出 {q.min_age}–{q.max_age} 岁的范围")
        out["age"] = pl.col("__age").cast(pl.Int16, strict=False)

    # coded columns (sex, urban/rural): any listed spelling
    for col_id in ("sex", "urban_rural"):
        if col_id not in header_of:
            continue
        codes = q.columns[col_id].codes
        lookup = {v.casefold(): canon for canon, variants in codes.items()
                  for v in (canon, *variants)}
        parsed.append(_per_distinct(frame[col_id], lambda v, m=lookup: m.get(v.lower()),
                                    pl.String).alias(f"__{col_id}"))
        allowed = "、".join(codes)
        checks.add(pl.col(col_id).is_not_null() & pl.col(f"__{col_id}").is_null(),
                   header_of[col_id],
                   lambda r, c=col_id, a=allowed: f"“{r[c]}”不是有效取值（应为{a}）")
        out[col_id] = pl.col(f"__{col_id}")

    # optional columns absent from the file are stored as missing
    for col_id, dtype in (("stratum", pl.String), ("psu", pl.String), ("township", pl.String),
                          ("mode", pl.String), ("age", pl.Int16), ("sex", pl.String),
                          ("urban_rural", pl.String)):
        if col_id not in out:
            out[col_id] = pl.col(col_id) if col_id in header_of else pl.lit(None, dtype=dtype)

    # answers: integer codes of the questionnaire; blank = item non-response
    for item in q.items:
        parsed.append(_answer_checks(item, header_of[item.column], checks,
                                     frame.schema[item.column].is_integer()))
        out[item.column] = pl.col(f"__{item.column}").cast(pl.Int16, strict=False)

    frame = frame.with_columns(parsed)
    checks.report(frame)
    problems.raise_if_any()
    typed = frame.select(
        pl.lit(wave).alias("wave"), pl.col("respondent_id"),
        *[expr.alias(name) for name, expr in out.items()],
    ).with_columns(pl.col("weight").cast(pl.Float64))
    return Validated(typed, warnings, dropped, mapped, ignored)


_SCREENED = ("stratum", "psu", "township", "mode", "county_name", "wave")


def _screen_kept_text(frame: pl.DataFrame, header_of: dict[str, str], checks: _RowChecks) -> None:
    """A kept text cell must not hold a phone or ID-card number (it would be stored and
    archived); the rule is counted on the distinct spellings (a column holds a few)."""
    for target in _SCREENED:
        if target not in header_of or frame.schema[target] != pl.String:
            continue
        values = frame.get_column(target).drop_nulls().unique()
        hits = values.filter(numbers_in_text(values))
        if hits.len():
            checks.add(pl.col(target).is_in(hits.implode()), header_of[target],
                       lambda r: "单元格中含有电话号码或身份证号码，个人信息不能导入：请删除后重新导出")


def _per_distinct(cells: pl.Series, fn, dtype: pl.DataType) -> pl.Series:
    """`fn` of each cell, computed once per distinct value: a coded column of a million cells
    holds a handful of spellings."""
    mapping = {value: fn(value) for value in cells.drop_nulls().unique().to_list()}
    if all(value == canonical for value, canonical in mapping.items()) and cells.dtype == dtype:
        return cells             # every spelling already the canonical one
    return cells.replace_strict(mapping, default=None, return_dtype=dtype)


def _answer_checks(item: Item, header: str, checks: _RowChecks, read_as_integers: bool,
                   ) -> pl.Expr:
    """The parsed answer column `__<column>` (Float64, or the column itself when the reader
    parsed it as integers) and its rules."""
    parsed = f"__{item.column}"
    allowed = "、".join(f"{a.code}={a.label}" for a in item.answers)

    def not_a_code(row: dict) -> str:
        return f"答案代码 {row[item.column]} 不在问卷规定的代码中（{allowed}）"

    if read_as_integers:
        checks.add(pl.col(parsed).is_not_null() & ~pl.col(parsed).is_in(list(item.codes)),
                   header, not_a_code)
        return pl.col(item.column).alias(parsed)
    checks.add(pl.col(item.column).is_not_null()
               & (pl.col(parsed).is_null() | (pl.col(parsed) % 1 != 0)), header,
               lambda r: f"答案“{r[item.column]}”不是整数代码")
    checks.add(pl.col(parsed).is_not_null() & (pl.col(parsed) % 1 == 0)
               & ~pl.col(parsed).is_in([float(c) for c in item.codes]), header, not_a_code)
    return pl.col(item.column).cast(pl.Float64, strict=False).alias(parsed)


def _resolve_county(frame: pl.DataFrame, header_of: dict[str, str], counties: pl.DataFrame,
                    checks: _RowChecks) -> pl.DataFrame:
    """Add `__county_code`; add the rules for unknown codes/names and code–name disagreements."""
    if "county_code" in header_of:
        h = header_of["county_code"]
        code = pl.col("county_code").str.strip_suffix(".0")
        frame = frame.with_columns(code.alias("__county_code"), code.replace_strict(
            counties["county_code"], counties["county_name"], default=None,
            return_dtype=pl.String).alias("__known_name"))
        checks.add(pl.col("__county_code").is_null(), h, lambda r: "区县代码为空")
        checks.add(pl.col("__county_code").is_not_null() & pl.col("__known_name").is_null(), h,
                   lambda r: f"未知的区县代码“{r['county_code']}”（不在本省区县名单中）")
        if "county_name" in header_of:
            checks.add(pl.col("__known_name").is_not_null() & pl.col("county_name").is_not_null()
                       & (pl.col("county_name") != pl.col("__known_name")),
                       header_of["county_name"],
                       lambda r: f"区县名称“{r['county_name']}”与代码 {r['__county_code']}"
                                 f"（{r['__known_name']}）不符")
        return frame
    h = header_of["county_name"]
    by_name = counties.select(pl.col("county_name").alias("__name_key"),
                              pl.col("county_code").alias("__county_code"))
    frame = frame.join(by_name, left_on="county_name", right_on="__name_key", how="left",
                       maintain_order="left")
    checks.add(pl.col("__county_code").is_null(), h,
               lambda r: f"未知的区县名称“{r['county_name'] or ''}”（不在本省区县名单中）")
    return frame


# ---------------------------------------------------------------------------------------------
# indicator sheets


def validate_indicators(raw: RawTable, file_name: str, wave: str, defs: Definitions,
                        counties: pl.DataFrame, history: pl.DataFrame | None = None,
                        ) -> Validated:
    """Check a county × indicator sheet; output is long: county_code, indicator_id, value.
    `history` (indicator_id, median over earlier waves) guards the scale of rate columns."""
    catalogue = defs.indicators
    problems = ProblemList(file_name)
    warnings: list[str] = []
    targets = header_targets(defs, "indicators")
    mapped, unmatched, duplicates = match_headers(raw.frame.columns, build_alias_index(targets))
    for target, headers in duplicates.items():
        problems.add(f"多个列都对应同一指标“{target}”：{'、'.join(headers)}")
    dropped = _drop_personal_data(raw.frame, mapped, warnings)
    ignored = []
    for header in unmatched:
        if header in dropped:
            continue
        if _mostly_numbers(raw.frame.get_column(header)):
            problems.add("未知的指标名称：不在指标目录（surveys/indicators.toml）中；如是已有指标的"
                         "另一种写法，请在列对应中指定，或在指标目录中加入别名", column=header)
        else:     # 备注, 填报人 …: text the catalogue does not keep
            ignored.append(header)
            warnings.append(f"“{header}”列不是指标（文字列），已忽略（不保存，也不进入归档副本）")
    header_of = {t: h for h, t in mapped.items() if h not in dropped}
    if "county_code" not in header_of and "county_name" not in header_of:
        problems.add("缺少区县列：需要“区县代码”或“区县名称”")
    indicator_ids = [ind.id for ind in catalogue.indicators if ind.id in header_of]
    if not indicator_ids and not unmatched:
        problems.add("表中没有任何指标列")
    if raw.frame.height == 0:
        problems.add("文件只有表头，没有数据行")
    problems.raise_if_any()

    frame = _with_rows(raw.frame.select([pl.col(h).alias(t) for t, h in header_of.items()]), raw)
    checks = _RowChecks(problems)
    frame = _resolve_county(frame, header_of, counties, checks)
    if "period" in header_of:
        frame = frame.with_columns(_normalised_waves(frame["period"]).alias("__period"))
        checks.add(pl.col("__period").is_null() | (pl.col("__period") != wave),
                   header_of["period"],
                   lambda r: f"统计期“{r['period'] or ''}”与本次导入的期次“{wave}”不符")
    else:
        warnings.append(f"表中没有期次列，按导入时选择的期次“{wave}”处理")

    code_header = header_of.get("county_code", header_of.get("county_name"))
    checks.add_repeats("__county_code", code_header,
                       lambda r: f"区县 {r['__county_code']} 重复出现（{r['__first']}行已有）")
    checks.report(frame)
    present = set(frame.get_column("__county_code").drop_nulls().to_list())
    for row in counties.filter(~pl.col("county_code").is_in(list(present))).iter_rows(named=True):
        problems.add(f"缺少区县 {row['county_code']}（{row['county_name']}）的指标行")

    values = []
    for ind_id in indicator_ids:
        ind = catalogue.get(ind_id)
        h = header_of[ind_id]
        text = pl.col(ind_id).str.replace(r"[%％]$", "")
        parsed = (text.replace_strict(FLAG_VALUES, default=None, return_dtype=pl.Float64)
                  if ind.kind == "flag" else text.cast(pl.Float64, strict=False))
        frame = frame.with_columns(parsed.alias(f"__{ind_id}"))
        v = pl.col(f"__{ind_id}")
        checks.add(pl.col(ind_id).is_not_null() & (v.is_null() | ~v.is_finite()), h,
                   lambda r, i=ind_id, k=ind.kind: f"“{r[i]}”不是有效的"
                   + ("是/否取值" if k == "flag" else "数值"))
        if ind.kind == "count":
            checks.add(v < 0, h, lambda r, i=ind_id: f"人数/件数不能为负数：{r[i]}")
            checks.add((v >= 0) & (v % 1 != 0), h,
                       lambda r, i=ind_id: f"人数/件数应为整数：{r[i]}")
        elif ind.kind == "rate":
            checks.add((v < 0) | (v > 100), h,
                       lambda r, i=ind_id: f"比率应在 0–100% 之间，实际为 {r[i]}")
        elif ind.kind in ("per_thousand", "amount", "index"):
            checks.add(v < 0, h, lambda r, i=ind_id: f"不能为负数：{r[i]}")
        elif ind.kind == "change_pct":
            checks.add(v < -100, h,
                       lambda r, i=ind_id: f"同比变化不能低于 -100%：{r[i]}")
        if ind.kind == "rate" and (why := _rate_scale_problem(
                frame.get_column(f"__{ind_id}"), frame.get_column(ind_id), ind_id, history)):
            problems.add(why, column=h)
        missing = frame.filter(pl.col(ind_id).is_null()).height
        if missing:
            warnings.append(f"指标“{ind.label}”有 {missing} 个区县为空")
        values.append(frame.select(pl.col("__county_code").alias("county_code"),
                                   pl.lit(ind_id).alias("indicator_id"), v.alias("value")))
    checks.report(frame)
    problems.raise_if_any()
    long = pl.concat(values).with_columns(pl.lit(wave).alias("wave")).select(
        "wave", "county_code", "indicator_id", "value")
    return Validated(long, warnings, dropped, {h: t for t, h in header_of.items()}, ignored)


def _mostly_numbers(cells: pl.Series) -> bool:
    """Whether most filled cells of an unknown column are numbers (an indicator's values)."""
    values = cells.drop_nulls().cast(pl.String).str.replace_all(r"[,%％\s]", "")
    return values.len() > 0 and float(values.cast(pl.Float64, strict=False).is_not_null().mean()
                                      or 0.0) > 0.5


def _rate_scale_problem(values: pl.Series, cells: pl.Series, ind_id: str,
                        history: pl.DataFrame | None) -> str | None:
    """A percent rate whose every value is a fraction (≤ 1, none written with %) while earlier
    waves (or, without any, the unit) say percent: most likely Excel's 91.9% as 0.919. It is
    refused, never loaded 100× off or guessed."""
    filled = values.drop_nulls()
    if filled.len() == 0 or filled.max() > 1 or filled.max() <= 0:
        return None
    if cells.drop_nulls().cast(pl.String).str.contains("[%％]").any():
        return None
    earlier = None
    if history is not None and history.height:
        hit = history.filter(pl.col("indicator_id") == ind_id)
        earlier = hit["median"][0] if hit.height else None
    if earlier is not None and earlier <= 1:
        return None
    basis = (f"往期该指标的中位数为 {earlier:.1f}" if earlier is not None
             else "指标目录中该指标的单位为 %")
    return (f"本列所有数值都在 0–1 之间（如 {filled[0]}），而{basis}：看起来是小数形式的比率"
            "（0.919 表示 91.9%），直接导入会小100倍。请把本列改为百分数（乘以100，或在 Excel 中"
            "设为百分比格式后另存）再导入")
