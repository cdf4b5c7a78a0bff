"""Issue 18, values, headers and counties as bureaus write them: each messy file lands exactly as
its clean form (the stored warehouse rows are compared), or is refused with the exact message and
the warehouse unchanged.

Reference: the clean CSV of the same rows, checked with `check_bytes` (it writes nothing);
never the code's own output for the messy file.
"""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from pipelines.ingest.load import check_bytes, ingest_bytes
from pipelines.ingest.validation import Confirmations
from tests.conftest import csv_bytes, sample_indicators
from tests.test_app import navigation_not_pages_directory  # noqa: F401 (a fixture, used by name)
from tests.test_ingest import NEW_WAVE, rejected, small_wave
from tests.test_ingest_real_files import rows_of, xlsx_bytes

PARTIAL = Confirmations(allow_missing_counties=True)   # the test waves hold 3 of 88 counties
FORMATS = ["csv", "xlsx"]
SORT = ["respondent_id"]
INDICATOR_SORT = ["county_code", "indicator_id"]


def as_file(frame: pl.DataFrame, fmt: str) -> tuple[bytes, str]:
    if fmt == "csv":
        return csv_bytes(frame), "调查.csv"
    return xlsx_bytes({"数据": rows_of(frame)}), "调查.xlsx"


def reference(wh, defs, frame: pl.DataFrame, kind: str = "survey") -> pl.DataFrame:
    checked = check_bytes(wh, defs, csv_bytes(frame), "clean.csv", NEW_WAVE, kind,
                          confirmed=PARTIAL)
    return checked.rows


def stored(wh, kind: str = "survey") -> pl.DataFrame:
    if kind == "survey":
        rows = wh.responses(NEW_WAVE)
        return rows.drop([c for c in ("load_id",) if c in rows.columns]).sort(SORT)
    return wh.indicators(NEW_WAVE).select("county_code", "indicator_id", "value") \
        .sort(INDICATOR_SORT)


def lands_like(wh, defs, clean: pl.DataFrame, messy: pl.DataFrame, fmt: str,
               kind: str = "survey") -> list[str]:
    """Load `messy` as `fmt`; its stored rows must equal the clean file's; returns warnings."""
    expected = reference(wh, defs, clean, kind)
    data, name = as_file(messy, fmt)
    if kind == "indicators":
        name = name.replace("调查", "指标")
    result = ingest_bytes(wh, defs, data, name, NEW_WAVE, kind, confirmed=PARTIAL)
    got = stored(wh, kind)
    if kind == "survey":
        expected = expected.select(got.columns).sort(SORT)
    else:
        expected = expected.select(got.columns).sort(INDICATOR_SORT)
    assert got.equals(expected)
    return result.warnings


def replace_cells(frame: pl.DataFrame, column: str, mapping: dict[str, str]) -> pl.DataFrame:
    return frame.with_columns(pl.col(column).replace(mapping))


# ---------------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize("fmt", FORMATS)
def test_answers_written_as_labels_land_as_their_codes(wh, defs, fmt):
    """满意 is 1 in Q1; 没有 is 5 in Q2, 2 in Q3 and 3 in Q4; 很满意 is a configured synonym."""
    clean = small_wave()
    labels = {item.id: {str(a.code): a.label for a in item.answers}
              for item in defs.questionnaire.items}
    messy = clean
    for n, item in enumerate(defs.questionnaire.items, start=1):
        messy = replace_cells(messy, f"Q{n}", labels[item.id])
    messy = messy.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 0)
                               .then(pl.col("Q1").replace({"满意": "很满意"}))
                               .otherwise(pl.col("Q1")).alias("Q1"),
                               pl.when(pl.int_range(pl.len()) % 5 == 0)
                               .then(pl.col("Q8").replace({"比较安全": "2.比较安全"}))
                               .otherwise(pl.col("Q8")).alias("Q8"))
    assert set(messy["Q2"].drop_nulls()) >= {"没有"} and set(messy["Q3"].drop_nulls()) >= {"没有"}
    warnings = lands_like(wh, defs, clean, messy, fmt)
    q1 = next(w for w in warnings if w.startswith("题目“对本地禁毒工作的满意程度”的答案写的是选项文字"))
    assert "很满意→1、满意→1、比较满意→2" in q1
    assert any(w.startswith("题目“您身边是否发现有吸毒、贩毒现象”") and "没有→2" in w for w in warnings)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_answer_label_is_refused_with_its_item(wh, defs, fmt):
    messy = small_wave().with_columns(pl.col("Q1").replace({"1": "满意"}))
    messy = messy.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("挺好"))
                               .otherwise(pl.col("Q1")).alias("Q1"))
    data, name = as_file(messy, fmt)
    report = rejected(wh, defs, data, name, confirmed=PARTIAL)
    assert ("第4行，“Q1”列：答案“挺好”不是题目“对本地禁毒工作的满意程度”的选项（1=满意、2=比较满意、"
            "3=一般、4=不太满意、5=不满意、9=说不清）") in report


def test_a_word_two_answers_of_one_item_could_mean_is_refused(wh, defs):
    """The same synonym configured for two labels of one item: ambiguous, never guessed."""
    q = defs.questionnaire
    synonyms = q.answer_synonyms | {"比较满意": ("还行",), "一般": ("还行",)}
    ambiguous = dataclasses.replace(defs, questionnaire=dataclasses.replace(
        q, answer_synonyms=synonyms))
    messy = small_wave().with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("还行"))
                                      .otherwise(pl.col("Q1")).alias("Q1"))
    report = rejected(wh, ambiguous, csv_bytes(messy), "调查.csv", confirmed=PARTIAL)
    assert ("第2行，“Q1”列：答案“还行”在题目“对本地禁毒工作的满意程度”中可对应多个选项"
            "（2=比较满意、3=一般），无法确定") in report


def test_a_code_and_a_label_that_disagree_are_refused(wh, defs):
    messy = small_wave().with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("1.不满意"))
                                      .otherwise(pl.col("Q1")).alias("Q1"))
    report = rejected(wh, defs, csv_bytes(messy), "调查.csv", confirmed=PARTIAL)
    assert "第2行，“Q1”列：答案“1.不满意”中的代码 1 与文字“不满意”不一致" in report


@pytest.mark.parametrize("fmt", FORMATS)
def test_demographic_words_full_width_digits_and_thousands_separators(wh, defs, fmt):
    clean = small_wave()
    full_width = str.maketrans("0123456789.", "０１２３４５６７８９．")
    messy = replace_cells(clean, "性别", {"男": "男性", "女": "女性"})
    messy = replace_cells(messy, "城乡", {"城镇": "城区", "农村": "乡村"})
    messy = messy.with_columns(
        pl.col("年龄").map_elements(lambda v: v.translate(full_width), return_dtype=pl.String),
        pl.col("Q2").map_elements(lambda v: v.translate(full_width), return_dtype=pl.String),
        (pl.col("权重").cast(pl.Float64) * 1000).cast(pl.String).alias("权重"))
    clean = clean.with_columns((pl.col("权重").cast(pl.Float64) * 1000).cast(pl.String)
                               .alias("权重"))
    messy = messy.with_columns(pl.col("权重").map_elements(
        lambda v: f"{float(v):,}" if float(v) >= 1000 else v, return_dtype=pl.String),
        pl.when(pl.int_range(pl.len()) % 4 == 1).then(pl.col("年龄") + "岁")
        .otherwise(pl.col("年龄")).alias("年龄"))
    assert messy["权重"].str.contains(",").any()
    lands_like(wh, defs, clean, messy, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_in_scientific_notation_are_refused_in_those_words(wh, defs, fmt):
    messy = small_wave().with_columns(pl.when(pl.int_range(pl.len()) == 1)
                                      .then(pl.lit("1.23457E+17"))
                                      .otherwise(pl.col("受访者编号")).alias("受访者编号"))
    data, name = as_file(messy, fmt)
    report = rejected(wh, defs, data, name, confirmed=PARTIAL)
    assert "第3行，“受访者编号”列：受访者编号“1.23457E+17”是科学计数法" in report
    assert "编号已丢失精度" in report


def test_xlsx_ids_stored_as_numbers_past_15_digits_are_refused(wh, defs):
    """Excel holds an 18-digit id typed as a number as a float: the reader sees 1.2E+17."""
    frame = small_wave()
    rows = rows_of(frame.with_columns(pl.col("受访者编号").str.replace("-", "")))
    for i, row in enumerate(rows[1:]):
        row[1] = float(f"5301021988{i:08d}")
    report = rejected(wh, defs, xlsx_bytes({"数据": rows}), "调查.xlsx", confirmed=PARTIAL)
    assert "是科学计数法：Excel 把编号当作数字" in report


def test_ids_that_lost_their_last_digits_are_refused(wh, defs):
    frame = small_wave().with_columns(
        (pl.lit("12345678901") + pl.int_range(pl.len()).cast(pl.String).str.zfill(4)
         + pl.lit("000")).alias("受访者编号"))
    report = rejected(wh, defs, csv_bytes(frame), "调查.csv", confirmed=PARTIAL)
    assert "Excel 把编号当作数字，只保留了15位有效数字，编号末尾几位已丢失精度" in report


def test_leading_zeros_of_ids_are_kept(wh, defs):
    frame = small_wave().with_columns((pl.lit("00") + pl.int_range(pl.len()).cast(pl.String)
                                       .str.zfill(5)).alias("受访者编号"))
    ingest_bytes(wh, defs, csv_bytes(frame), "调查.csv", NEW_WAVE, confirmed=PARTIAL)
    assert sorted(wh.responses(NEW_WAVE)["respondent_id"]) == sorted(frame["受访者编号"])


def indicator_frame() -> pl.DataFrame:
    return sample_indicators("2025").with_columns(pl.lit(NEW_WAVE).alias("年度"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_indicator_percent_text_thousands_and_dashes(wh, defs, fmt):
    clean = indicator_frame().with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("外流贩毒人员"))
        .alias("外流贩毒人员"),
        (pl.col("破获毒品刑事案件").cast(pl.Int64) * 100).cast(pl.String).alias("破获毒品刑事案件"))
    dashes = ["—", "/", "－"] + clean["外流贩毒人员"].to_list()[3:]
    messy = clean.with_columns(
        (pl.col("社会面管控率") + "%").alias("社会面管控率"),
        pl.col("破获毒品刑事案件").map_elements(lambda v: f"{int(v):,}", return_dtype=pl.String),
        pl.Series("外流贩毒人员", dashes))
    assert messy["破获毒品刑事案件"].str.contains(",").any()
    warnings = lands_like(wh, defs, clean, messy, fmt, "indicators")
    assert "指标“外流贩毒人员”有 3 个区县为空" in warnings


def test_a_dash_where_the_indicator_allows_no_missing_is_refused(wh, defs):
    messy = indicator_frame().with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("—"))
        .otherwise(pl.col("国家工作人员涉毒人数")).alias("国家工作人员涉毒人数"))
    report = rejected(wh, defs, csv_bytes(messy), "指标.csv", kind="indicators")
    assert ("第2行，“国家工作人员涉毒人数”列：指标“国家工作人员涉毒人数”不允许为空（实际为“—”）"
            "：该指标必须逐县填报，没有发生请填 0") in report


def test_wu_in_a_yes_no_indicator_is_no(wh, defs):
    clean = indicator_frame()
    messy = replace_cells(clean, "发现非法种植毒品原植物", {"0": "无", "1": "有"})
    lands_like(wh, defs, clean, messy, "csv", "indicators")


# ---------------------------------------------------------------------------------------------
# headers


@pytest.mark.parametrize("header, target", [
    ("社会面管控率(%)", "social_control_rate"), ("社会面管控率（%）", "social_control_rate"),
    ("外流贩毒人员（人）", "outflow_traffickers"), ("外流贩毒人员 (人)", "outflow_traffickers")])
def test_indicator_headers_with_units(defs, header, target):
    from pipelines.core.headers import build_alias_index, lookup_header
    from pipelines.ingest.validation import header_targets

    assert lookup_header(header, build_alias_index(header_targets(defs, "indicators"))) == target


@pytest.mark.parametrize("header, target", [
    ("1.对本地禁毒工作的满意程度", "q_satisfaction"), ("１．对本地禁毒工作的满意程度", "q_satisfaction"),
    ("（2）您认为本地毒品问题严重吗", "q_seriousness"), ("权数", "weight"), ("权重系数", "weight"),
    ("加权系数", "weight"), ("权 重", "weight"), ("权重（最终）", "weight")])
def test_survey_headers_numbered_spaced_and_synonyms(defs, header, target):
    from pipelines.core.headers import build_alias_index, lookup_header
    from pipelines.ingest.validation import header_targets

    assert lookup_header(header, build_alias_index(header_targets(defs, "survey"))) == target


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_with_such_headers_lands_like_the_clean_one(wh, defs, fmt):
    clean = small_wave()
    messy = clean.rename({"权重": "权数", "Q1": "1.对本地禁毒工作的满意程度", "年龄": "年龄（岁）"})
    lands_like(wh, defs, clean, messy, fmt)


# ---------------------------------------------------------------------------------------------
# counties


def county_table(wh) -> pl.DataFrame:
    return wh.counties().select("county_code", "county_name", "city_name")


@pytest.mark.parametrize("fmt", FORMATS)
def test_county_name_variants_without_a_code_column(wh, defs, fmt):
    from opencc import OpenCC

    clean = small_wave()
    names = county_table(wh).filter(pl.col("county_code").is_in(clean["区县代码"].unique()
                                                                .to_list()))
    to_traditional = OpenCC("s2t").convert
    variants = {}
    for i, (_code, name, city) in enumerate(names.iter_rows()):
        variants[name] = [name[:-1], to_traditional(name), city + name][i % 3]
    variants[names["county_name"][0]] = "\u3000" + names["county_name"][0][:-1] + "\u3000"
    messy = replace_cells(clean, "区县名称", variants).drop("区县代码")
    warnings = lands_like(wh, defs, clean, messy, fmt)
    assert any("区县名称写法与区县名单不同，已按唯一对应的区县识别" in w for w in warnings)


@pytest.mark.parametrize("fmt", FORMATS)
def test_twelve_digit_codes_and_a_variant_name_the_code_wins(wh, defs, fmt):
    clean = small_wave()
    first = clean["区县名称"][0]
    full_width = str.maketrans("0123456789", "０１２３４５６７８９")
    messy = clean.with_columns((pl.col("区县代码") + "000000").alias("区县代码"),
                               pl.col("区县名称").replace({first: first[:-1]}))
    messy = messy.with_columns(pl.when(pl.int_range(pl.len()) % 3 == 0)
                               .then(pl.col("区县代码").str.slice(0, 6).map_elements(
                                   lambda v: v.translate(full_width), return_dtype=pl.String))
                               .otherwise(pl.col("区县代码")).alias("区县代码"))
    warnings = lands_like(wh, defs, clean, messy, fmt)
    assert any(f"“{first[:-1]}”→{first}（" in w and "已按代码导入" in w for w in warnings)


def test_a_name_of_another_county_beside_a_code_is_refused(wh, defs):
    clean = small_wave()
    other = county_table(wh).filter(~pl.col("county_code").is_in(clean["区县代码"].to_list()))
    messy = clean.with_columns(pl.when(pl.int_range(pl.len()) == 0)
                               .then(pl.lit(other["county_name"][0]))
                               .otherwise(pl.col("区县名称")).alias("区县名称"))
    report = rejected(wh, defs, csv_bytes(messy), "调查.csv", confirmed=PARTIAL)
    assert f"第2行，“区县名称”列：区县名称“{other['county_name'][0]}”与代码" in report


def test_an_ambiguous_county_name_is_refused(wh, defs):
    """Two counties whose names differ only in the suffix: the bare name fits both."""
    counties = county_table(wh)
    code_a, code_b = counties["county_code"][0], counties["county_code"][1]
    wh.cursor().execute("update counties set county_name = '双名县' where county_code = ?",
                        [code_a])
    wh.cursor().execute("update counties set county_name = '双名区' where county_code = ?",
                        [code_b])
    messy = small_wave().drop("区县代码").with_columns(pl.lit("双名").alias("区县名称"))
    report = rejected(wh, defs, csv_bytes(messy), "调查.csv", confirmed=PARTIAL)
    assert (f"区县名称“双名”可能是多个区县（双名县（{code_a}）、双名区（{code_b}）），无法确定"
            ) in report


# ---------------------------------------------------------------------------------------------
# completeness


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_counties_are_named_and_refused_unless_confirmed(wh, defs, fmt):
    frame = small_wave()
    absent = county_table(wh).filter(~pl.col("county_code").is_in(frame["区县代码"].unique()
                                                                  .to_list()))
    data, name = as_file(frame, fmt)
    report = rejected(wh, defs, data, name)
    first = f"{absent['county_name'][0]}（{absent['county_code'][0]}）"
    assert f"本期调查缺少 {absent.height} 个区县的数据：{first}、" in report
    assert "请勾选“允许缺少区县导入”（命令行加 --allow-missing-counties）" in report
    result = ingest_bytes(wh, defs, data, name, NEW_WAVE, confirmed=PARTIAL)
    assert result.rows == frame.height
    assert any(w.startswith(f"本期调查缺少 {absent.height} 个区县（已确认按缺少导入）：{first}")
               for w in result.warnings)


def test_a_complete_wave_needs_no_confirmation(wh, defs):
    from tests.conftest import sample_wave

    frame = sample_wave("2025").with_columns(pl.lit(NEW_WAVE).alias("调查期次"),
                                             (pl.lit("N") + pl.col("受访者编号")).alias("受访者编号"))
    result = ingest_bytes(wh, defs, csv_bytes(frame), "全省.csv", NEW_WAVE)
    assert result.rows == frame.height and not any("缺少" in w for w in result.warnings)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_repeating_a_stored_wave_is_refused_unless_confirmed(wh, defs, fmt):
    """The 2025 rows (ids, counties, answers) uploaded again as 2026."""
    from tests.conftest import sample_wave

    frame = sample_wave("2025", counties=3).with_columns(pl.lit(NEW_WAVE).alias("调查期次"))
    data, name = as_file(frame, fmt)
    report = rejected(wh, defs, data, name, confirmed=PARTIAL)
    assert (f"本文件有 {frame.height} 行（共 {frame.height} 行）与已导入的2025年度调查数据完全相同"
            "（受访者编号、区县和全部答案一致）") in report
    assert "命令行加 --allow-repeat" in report
    confirmed = Confirmations(allow_missing_counties=True, allow_repeat=True)
    assert ingest_bytes(wh, defs, data, name, NEW_WAVE, confirmed=confirmed).rows == frame.height


def test_same_ids_with_other_answers_are_not_a_repeat(wh, defs):
    """Contractors number respondents per county and wave: the ids recur, the interviews don't."""
    from tests.conftest import sample_wave

    ids = sample_wave("2025", counties=3).select("受访者编号", "区县代码")
    answers = sample_wave("2024", counties=3).drop("受访者编号", "区县代码", "区县名称")
    n = min(ids.height, answers.height)
    frame = pl.concat([ids.head(n), answers.head(n)], how="horizontal").with_columns(
        pl.lit(NEW_WAVE).alias("调查期次"))
    stored_ids = set(wh.responses("2025")["respondent_id"])
    assert len(set(frame["受访者编号"]) & stored_ids) > 0.9 * frame.height
    assert ingest_bytes(wh, defs, csv_bytes(frame), "新一期.csv", NEW_WAVE,
                        confirmed=PARTIAL).rows == frame.height


def test_replacing_a_wave_with_its_own_rows_is_not_a_repeat(wh, defs):
    from tests.conftest import sample_wave

    frame = sample_wave("2025")
    result = ingest_bytes(wh, defs, csv_bytes(frame.head(frame.height - 1)), "更正.csv", "2025",
                          replace=True)
    assert result.status == "replaced"


def test_cli_flags_confirm_missing_counties_and_repeats(db_copy, tmp_path, capsys):
    from pipelines.cli import main
    from tests.conftest import sample_wave

    path = tmp_path / "2026.csv"
    path.write_bytes(csv_bytes(sample_wave("2025", counties=2).with_columns(
        pl.lit(NEW_WAVE).alias("调查期次"))))
    assert main(["ingest", str(path), "--wave", NEW_WAVE, "--db", str(db_copy)]) == 1
    assert "--allow-missing-counties" in capsys.readouterr().err
    assert main(["ingest", str(path), "--wave", NEW_WAVE, "--db", str(db_copy),
                 "--allow-missing-counties", "--allow-repeat"]) == 0


# ---------------------------------------------------------------------------------------------
# the page


def test_indicator_preview_does_not_flag_values_that_stayed_zero():
    from pipelines.ingest.preview import indicator_preview

    def sheet(values):
        return pl.DataFrame({"county_code": ["1", "2", "3", "4", "5"],
                             "indicator_id": ["x"] * 5, "value": values},
                            schema_overrides={"value": pl.Float64})

    flagged = indicator_preview(sheet([0.0, 5.0, 20.0, 11.0, None]),
                                sheet([0.0, 0.0, 10.0, 10.0, 3.0]))
    assert flagged["county_code"].to_list() == ["2", "3"]
    assert flagged["flag"].to_list() == ["由0变为非0", "变化超过50%"]
    assert flagged["change"][1] == pytest.approx(1.0)


def test_proposed_wave_is_the_incomplete_one():
    from pipelines.present.upload import proposed_wave

    waves = pl.DataFrame({"wave": ["2025", "2026"], "survey_load_id": [1, 3],
                          "indicators_load_id": [2, None]})
    assert proposed_wave(waves, "indicators") == "2026"
    assert proposed_wave(waves, "survey") == "2027"
    assert proposed_wave(waves.head(1), "indicators") == "2026"
    assert proposed_wave(waves.head(0), "survey") == ""


@pytest.mark.usefixtures("navigation_not_pages_directory")
def test_page_checkboxes_confirm_and_the_indicator_sheet_gets_the_incomplete_wave(
        monkeypatch, db_copy):
    from pipelines.present.access import hash_password
    from tests.test_app import PASSWORD, run_app, sign_in

    hashed = hash_password(PASSWORD, rounds=1000)
    at = sign_in(run_app(monkeypatch, db_copy, hashed))
    at.switch_page("pages/data.py").run()
    assert at.text_input(key="upload_wave_survey").value == "2026"
    survey = small_wave().drop("权重")
    at.file_uploader[0].upload("三县.csv", csv_bytes(survey), "text/csv").run()
    assert any("未通过校验" in e.value for e in at.error)
    assert any("按等权重导入" in p for p in problems_shown(at))
    at.checkbox(key="confirm_equal_weights_0").check().run()
    assert any("允许缺少区县导入" in p for p in problems_shown(at))
    at.checkbox(key="confirm_missing_counties_0").check().run()
    assert not at.exception
    assert any("校验通过" in s.value for s in at.success), [e.value for e in at.error]
    next(b for b in at.button if b.label == "发布").click().run()
    assert any("已导入" in s.value for s in at.success), [e.value for e in at.error]
    loads = wh_loads(db_copy)
    assert "等权重" in loads and "已确认按缺少导入" in loads
    # an analyst coming back to the page for the indicator sheet: 2026 waits for it
    again = sign_in(run_app(monkeypatch, db_copy, hashed))
    again.switch_page("pages/data.py").run()
    again.radio[0].set_value("indicators").run()
    assert again.text_input(key="upload_wave_indicators").value == "2026"
    again.radio[0].set_value("survey").run()
    assert again.text_input(key="upload_wave_survey").value == "2027"


def wh_loads(db) -> str:
    from pages import _shared  # the app's own connection (one read-write connection per process)

    warehouse = _shared._open_warehouse(str(db))
    return "\n".join(warehouse.cursor().sql("select warnings from loads where wave = '2026'")
                     .fetchall()[0])


def problems_shown(at) -> list[str]:
    return next(d.value for d in at.dataframe if "问题" in d.value.columns)["问题"].tolist()


# ---------------------------------------------------------------------------------------------
# privacy: the id column


@pytest.mark.parametrize("form", ["{area}-{local}", "{area}{local}", "+86-{area}-{local}"])
def test_landlines_in_the_id_column_are_refused_saying_so(wh, defs, form):
    frame = small_wave()
    areas = ["010", "021", "0871", "0755", "0371"]
    ids = [form.format(area=areas[i % 5], local=f"{6512 + i % 3000:04d}{i:04d}")
           for i in range(frame.height)]
    report = rejected(wh, defs, csv_bytes(frame.with_columns(pl.Series("受访者编号", ids))),
                      "固话.csv", confirmed=PARTIAL)
    assert "受访者编号列中多数是固定电话号码（区号加号码" in report


@pytest.mark.parametrize("ids", ["{i:010d}", "0{i:010d}", "0000{i:07d}", "531{i:07d}"])
def test_ids_with_leading_zeros_are_not_taken_for_landlines(wh, defs, ids):
    frame = small_wave()
    frame = frame.with_columns(pl.Series("受访者编号", [ids.format(i=i) for i in range(frame.height)]))
    ingest_bytes(wh, defs, csv_bytes(frame), "编号.csv", NEW_WAVE, confirmed=PARTIAL)
    assert sorted(wh.responses(NEW_WAVE)["respondent_id"]) == sorted(frame["受访者编号"])
