"""Validation of survey files and indicator sheets, before anything is written.

Each rule is one vectorised check over the whole file; it reports the first offending rows (file row
numbers, header = row 1) and counts all of them. The output of a clean file is a typed frame in the
warehouse's canonical columns.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import polars as pl

from pipelines.core.headers import build_alias_index, match_headers
from pipelines.core.problems import ProblemList
from pipelines.core.waves import normalise_wave_cell
from pipelines.ingest.counties import CountyNames, county_codes
from pipelines.ingest.privacy import id_column_problem, numbers_in_text, personal_data_columns
from pipelines.ingest.readers import FIRST_DATA_ROW, RawTable
from pipelines.ingest.values import (
    SCIENTIFIC_ID,
    AnswerReader,
    mangled_id_problem,
    missing_marks,
    numbers,
    plain_text,
    read_per_distinct,
    scientific_ids,
)
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


def _map_headers(raw: RawTable, defs: Definitions, kind: str, problems: ProblemList,
                 warnings: list[str]) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(header → field for the kept headers, unmatched headers that are not personal data,
    personal-data headers dropped); two headers for one field are a problem."""
    targets = header_targets(defs, kind)
    mapped, unmatched, duplicates = match_headers(raw.frame.columns, build_alias_index(targets))
    for target, headers in duplicates.items():
        problems.add(f"多个列都对应“{target_label(defs, target)}”：{'、'.join(headers)}，请只保留一列")
    dropped = _drop_personal_data(raw.frame, mapped, warnings)
    mapped = {h: t for h, t in mapped.items() if h not in dropped}
    return mapped, [h for h in unmatched if h not in dropped], dropped


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
    mapped, ignored, dropped = _map_headers(raw, defs, "survey", problems, warnings)
    for header in ignored:
        warnings.append(f"“{header}”列不在问卷定义中，已忽略（不保存，也不进入归档副本）")
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
    if "ssu" in header_of and "psu" not in header_of:
        problems.add("有“二阶段抽样单元”列时必须同时有“初级抽样单元”列（两阶段抽样的第一阶段）")
    if raw.frame.height == 0:
        problems.add("文件只有表头，没有数据行")
    if "respondent_id" in header_of:
        ids = raw.frame.get_column(header_of["respondent_id"])
        for why in (id_column_problem(ids), mangled_id_problem(ids)):
            if why:
                problems.add(why, column=header_of["respondent_id"])
    problems.raise_if_any()

    frame = _with_rows(raw.frame.select([pl.col(h).alias(t) for h, t in mapped.items()]),
                       raw)
    checks = _RowChecks(problems)
    _screen_kept_text(frame, header_of, checks)
    out: dict[str, pl.Expr] = {}
    parsed: list[pl.Expr] = []   # every parsed column in one with_columns, evaluated in parallel

    # respondent id: present, not mangled by Excel, unique (full-width digits read as digits)
    frame = frame.with_columns(plain_text(frame["respondent_id"].cast(pl.String)))
    rid, rid_header = pl.col("respondent_id"), header_of["respondent_id"]
    checks.add(rid.is_null(), rid_header, lambda r: "受访者编号为空")
    checks.add(scientific_ids("respondent_id"), rid_header,
               lambda r: SCIENTIFIC_ID.format(r["respondent_id"]))
    checks.add_repeats("respondent_id", rid_header,
                       lambda r: f"受访者编号“{r['respondent_id']}”重复（{r['__first']}行已出现）")

    # county: code and/or name, both must be known and agree
    frame = _resolve_county(frame, header_of, counties, checks, warnings)
    out["county_code"] = pl.col("__county_code")

    # wave column must agree with the wave being loaded
    if "wave" in header_of:
        parsed.append(_normalised_waves(frame["wave"]).alias("__wave"))
        checks.add(pl.col("__wave").is_null() | (pl.col("__wave") != wave), header_of["wave"],
                   lambda r: f"调查期次“{r['wave'] or ''}”与本次导入的期次“{wave}”不符")

    # weight: positive finite number; absent column = equal weights
    if "weight" in header_of:
        h = header_of["weight"]
        parsed.append(numbers(frame["weight"]).alias("__weight"))
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
        parsed.append(numbers(frame["age"], units=("周岁", "岁")).alias("__age"))
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
        lookup = {_code_key(v): canon for canon, variants in codes.items()
                  for v in (canon, *variants)}
        parsed.append(_per_distinct(frame[col_id], lambda v, m=lookup: m.get(_code_key(v)),
                                    pl.String).alias(f"__{col_id}"))
        allowed = "、".join(codes)
        checks.add(pl.col(col_id).is_not_null() & pl.col(f"__{col_id}").is_null(),
                   header_of[col_id],
                   lambda r, c=col_id, a=allowed: f"“{r[c]}”不是有效取值（应为{a}）")
        out[col_id] = pl.col(f"__{col_id}")

    # finite population at each stage: a positive number in every row (or a fraction ≤ 1)
    for col_id in ("psu_population", "ssu_population"):
        if col_id not in header_of:
            continue
        h, value = header_of[col_id], pl.col(f"__{col_id}")
        parsed.append(pl.col(col_id).cast(pl.Float64, strict=False).alias(f"__{col_id}"))
        checks.add(pl.col(col_id).is_null(), h, lambda r, c=col_id: f"{q.columns[c].label}为空")
        checks.add(pl.col(col_id).is_not_null() & value.is_null(), h,
                   lambda r, c=col_id: f"{q.columns[c].label}“{r[c]}”不是数字")
        checks.add(value.is_not_null() & (value.is_nan() | (value <= 0)), h,
                   lambda r, c=col_id: f"{q.columns[c].label}必须为正数（总体单元数或抽样比），"
                                       f"实际为 {r[c]}")
        out[col_id] = value

    # optional columns absent from the file are stored as missing
    for col_id, dtype in (("stratum", pl.String), ("psu", pl.String), ("ssu", pl.String),
                          ("psu_population", pl.Float64), ("ssu_population", pl.Float64),
                          ("township", pl.String), ("mode", pl.String), ("age", pl.Int16),
                          ("sex", pl.String), ("urban_rural", pl.String)):
        if col_id not in out:
            out[col_id] = pl.col(col_id) if col_id in header_of else pl.lit(None, dtype=dtype)

    # answers: integer codes of the questionnaire; blank = item non-response
    for item in q.items:
        parsed.append(_answer_checks(item, header_of[item.column], checks, frame[item.column],
                                     q.answer_synonyms, warnings))
        out[item.column] = pl.col(f"__{item.column}").cast(pl.Int16, strict=False)

    frame = frame.with_columns(parsed)
    checks.report(frame)
    problems.raise_if_any()
    typed = frame.select(
        pl.lit(wave).alias("wave"), pl.col("respondent_id"),
        *[expr.alias(name) for name, expr in out.items()],
    ).with_columns(pl.col("weight").cast(pl.Float64))
    return Validated(typed, warnings, dropped, mapped, ignored)


_SCREENED = ("stratum", "psu", "ssu", "township", "mode", "county_name", "wave")


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


def _code_key(text: str) -> str:
    """A coded cell's comparison form: NFKC, no white space, case-folded (男性, Ｍ, male)."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def _answer_checks(item: Item, header: str, checks: _RowChecks, cells: pl.Series,
                   synonyms: dict[str, tuple[str, ...]], warnings: list[str],
                   ) -> pl.Series | pl.Expr:
    """The parsed answer column `__<column>` (the column itself when the reader parsed it as
    integers; else each distinct cell read as a code or an answer label) and its rules."""
    parsed = f"__{item.column}"
    if cells.dtype.is_integer():
        allowed = "、".join(f"{a.code}={a.label}" for a in item.answers)
        checks.add(pl.col(parsed).is_not_null() & ~pl.col(parsed).is_in(list(item.codes)),
                   header, lambda r: f"答案代码 {r[item.column]} 不在问卷规定的代码中（{allowed}）")
        return pl.col(item.column).alias(parsed)
    reader = AnswerReader(item, synonyms)
    codes, problems = read_per_distinct(cells, reader.read, pl.Int16)
    if (note := reader.note()) is not None:
        warnings.append(note)
    if problems:
        checks.add(pl.col(item.column).is_in(list(problems)), header,
                   lambda r: problems[r[item.column]])
    return codes.alias(parsed)


def _resolve_county(frame: pl.DataFrame, header_of: dict[str, str], counties: pl.DataFrame,
                    checks: _RowChecks, warnings: list[str]) -> pl.DataFrame:
    """Add `__county_code`; add the rules for unknown codes/names and code–name disagreements.
    A valid code wins over a variant of its county's name (reported, not refused)."""
    names = CountyNames(counties)
    if "county_code" in header_of:
        h = header_of["county_code"]
        code = county_codes(frame["county_code"])
        frame = frame.with_columns(code.alias("__county_code"), code.replace_strict(
            counties["county_code"], counties["county_name"], default=None,
            return_dtype=pl.String).alias("__known_name"))
        checks.add(pl.col("__county_code").is_null(), h, lambda r: "区县代码为空")
        checks.add(pl.col("__county_code").is_not_null() & pl.col("__known_name").is_null(), h,
                   lambda r: f"未知的区县代码“{r['county_code']}”（不在本省区县名单中）")
        if "county_name" in header_of:
            _check_name_against_code(frame, header_of["county_name"], names, checks, warnings)
        return frame
    h = header_of["county_name"]
    matches = {cell: names.match(cell)
               for cell in frame["county_name"].drop_nulls().unique().to_list()}
    frame = frame.with_columns(frame["county_name"].replace_strict(
        {cell: m.code for cell, m in matches.items()}, default=None,
        return_dtype=pl.String).alias("__county_code"))
    problems = {cell: _name_problem(cell, m, names) for cell, m in matches.items()
                if m.code is None}
    if problems:
        checks.add(pl.col("county_name").is_in(list(problems)), h,
                   lambda r: problems[r["county_name"]])
    checks.add(pl.col("county_name").is_null(), h, lambda r: "区县名称为空")
    _report_variants({cell: m.code for cell, m in matches.items() if m.how == "variant"},
                     names, "已按唯一对应的区县识别", warnings)
    return frame


def _name_problem(cell: str, match, names: CountyNames) -> str:
    if match.how == "ambiguous":
        return (f"区县名称“{cell}”可能是多个区县（{'、'.join(map(names.label, match.candidates))}），"
                "无法确定：请写出全称（如加上市州名），或加上区县代码列")
    return f"未知的区县名称“{cell}”（不在本省区县名单中）"


def _check_name_against_code(frame: pl.DataFrame, header: str, names: CountyNames,
                             checks: _RowChecks, warnings: list[str]) -> None:
    """Names that disagree with their row's valid code are refused; a name that is a variant
    of the code's county (or could be it, among others) is reported."""
    differ = frame.filter(pl.col("__known_name").is_not_null() & pl.col("county_name").is_not_null()
                          & (pl.col("county_name") != pl.col("__known_name")))
    if not differ.height:
        return
    variants, bad = {}, []
    for cell, code in differ.select("county_name", "__county_code").unique().iter_rows():
        m = names.match(cell)
        if m.code == code or code in m.candidates:
            variants[cell] = code
        else:
            bad.append(f"{cell}\x00{code}")
    if bad:
        checks.add(pl.concat_str("county_name", pl.lit("\x00"), "__county_code").is_in(bad),
                   header, lambda r: f"区县名称“{r['county_name']}”与代码 {r['__county_code']}"
                                     f"（{r['__known_name']}）不符")
    _report_variants(variants, names, "与区县代码一致，已按代码导入", warnings)


def _report_variants(variants: dict[str, str], names: CountyNames, how: str,
                     warnings: list[str]) -> None:
    """One notice listing the name variants read (the analyst sees what was matched)."""
    if variants:
        shown = "、".join(f"“{cell}”→{names.label(code)}" for cell, code
                          in sorted(variants.items())[:ROWS_PER_RULE])
        more = f"等 {len(variants)} 种" if len(variants) > ROWS_PER_RULE else ""
        warnings.append(f"区县名称写法与区县名单不同，{how}：{shown}{more}")


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
    mapped, unmatched, dropped = _map_headers(raw, defs, "indicators", problems, warnings)
    ignored = []
    for header in unmatched:
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
    if "ssu" in header_of and "psu" not in header_of:
        problems.add("有“二阶段抽样单元”列时必须同时有“初级抽样单元”列（两阶段抽样的第一阶段）")
    if raw.frame.height == 0:
        problems.add("文件只有表头，没有数据行")
    problems.raise_if_any()

    frame = _with_rows(raw.frame.select([pl.col(h).alias(t) for t, h in header_of.items()]), raw)
    checks = _RowChecks(problems)
    frame = _resolve_county(frame, header_of, counties, checks, warnings)
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
        cells = frame.get_column(ind_id)
        # —, /, 无 … mean no value (for a 是/否 indicator 无 is 否)
        marked = missing_marks(cells, keep=FLAG_VALUES if ind.kind == "flag" else ())
        cells = cells.set(marked, None) if marked.any() else cells
        parsed = (plain_text(cells).replace_strict(FLAG_VALUES, default=None,
                                                   return_dtype=pl.Float64)
                  if ind.kind == "flag" else numbers(cells, percent=True))
        frame = frame.with_columns(parsed.alias(f"__{ind_id}"), marked.alias(f"__marked_{ind_id}"))
        v = pl.col(f"__{ind_id}")
        blank = pl.col(ind_id).is_null() | pl.col(f"__marked_{ind_id}")
        if not ind.allow_missing:
            checks.add(blank, h, lambda r, i=ind_id, lab=ind.label: f"指标“{lab}”不允许为空"
                       f"（实际为“{r[i] or ''}”）：该指标必须逐县填报，没有发生请填 0")
        checks.add(~blank & (v.is_null() | ~v.is_finite()), h,
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
        missing = frame.filter(blank).height
        if missing and ind.allow_missing:
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
