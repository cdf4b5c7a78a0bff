"""Ingest: each validation rule has a bad file that triggers it; a rejected file changes nothing."""

from __future__ import annotations

import io

import polars as pl
import pytest

from pipelines.core.problems import IngestError
from pipelines.ingest.load import ingest_bytes
from pipelines.ingest.validation import ROWS_PER_RULE
from pipelines.store.warehouse import Warehouse
from tests.conftest import PARTIAL, csv_bytes, sample_indicators, sample_wave, sha256_of

NEW_WAVE = "2026"


def small_wave(counties: int = 3) -> pl.DataFrame:
    """The first counties of the 2025 sample as a new wave's file, with new respondent ids of
    the same length (990101_0001): the same rows with 2025's ids would repeat the stored wave."""
    return sample_wave("2025", counties=counties).with_columns(
        pl.lit(NEW_WAVE).alias("调查期次"), pl.col("受访者编号").str.replace("-", "_"))


def rejected(wh, defs, data: bytes, name: str, wave: str = NEW_WAVE, kind: str = "survey",
             **options) -> str:
    """Load must fail, the warehouse file must be byte-for-byte unchanged; returns the report."""
    before = sha256_of(wh.path)
    versions = wh.data_version()
    with pytest.raises(IngestError) as caught:
        ingest_bytes(wh, defs, data, name, wave, kind, **options)
    assert wh.data_version() == versions
    assert sha256_of(wh.path) == before
    report = caught.value.report()
    assert "Traceback" not in report and "未导入" in report
    return report


# ---------------------------------------------------------------------------------------------
# accepted formats


@pytest.mark.parametrize("encoding, label", [("gb18030", "GBK/GB18030"), ("utf-8-sig", "UTF-8"),
                                             ("utf-8", "UTF-8")])
def test_csv_encodings_with_chinese_headers_are_detected(wh, defs, encoding, label):
    frame = small_wave()
    result = ingest_bytes(wh, defs, csv_bytes(frame, encoding), "第2026期.csv", NEW_WAVE, confirmed=PARTIAL)
    assert result.status == "loaded" and result.rows == frame.height
    loads = wh.loads(NEW_WAVE)
    assert loads["status"].to_list() == ["active"]
    stored = wh.cursor().sql("select count(*) n, count(distinct county_code) c, "
                             "sum(weight) w from current_responses where wave = '2026'").pl()
    assert stored["n"][0] == frame.height and stored["c"][0] == 3
    assert stored["w"][0] == pytest.approx(frame["权重"].cast(pl.Float64).sum())
    encoding_seen = wh.cursor().sql("select encoding from loads where wave = '2026'").pl()
    assert encoding_seen["encoding"][0] == label


@pytest.mark.parametrize("cell", [" 女", "女\t", "\u3000女", "女\u00a0", "\u2003女\u3000"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_csv_cells_are_trimmed_and_blank_cells_are_missing(cell, line_end):
    """Reference: the cells as written, trimmed of white space, blank ones missing; whether the
    file holds white space decides only whether trimming runs, never the result."""
    from pipelines.ingest.readers import read_table

    rows = [("编号", "性别", "城乡"), ("1", cell, "城镇"), ("2", "男", "  "), ("3", "女", "")]
    text = line_end.join(",".join(row) for row in rows) + line_end
    plain = line_end.join(",".join(v.strip() for v in row) for row in rows) + line_end
    for content in (text, plain):
        frame = read_table(content.encode("utf-8"), "空白.csv").frame
        assert frame["性别"].to_list() == ["女", "男", "女"], repr(content)
        assert frame["城乡"].to_list() == ["城镇", None, None], repr(content)


def test_xlsx_is_accepted(wh, defs):
    frame = small_wave()
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    assert ingest_bytes(wh, defs, buffer.getvalue(), "调查.xlsx", NEW_WAVE,
                        confirmed=PARTIAL).rows == frame.height


def test_parquet_is_accepted(wh, defs):
    frame = small_wave().with_columns(pl.col("权重").cast(pl.Float64), pl.col("年龄").cast(pl.Int64))
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    result = ingest_bytes(wh, defs, buffer.getvalue(), "调查.parquet", NEW_WAVE, confirmed=PARTIAL)
    assert result.rows == frame.height


def test_english_headers_and_names_only_are_accepted(wh, defs):
    frame = small_wave().drop("区县代码").rename({"受访者编号": "respondent_id", "权重": "weight",
                                                  "区县名称": "county"})
    result = ingest_bytes(wh, defs, csv_bytes(frame), "english.csv", NEW_WAVE, confirmed=PARTIAL)
    assert result.rows == frame.height


def test_missing_weight_column_means_equal_weights(wh, defs):
    from pipelines.ingest.validation import Confirmations

    result = ingest_bytes(wh, defs, csv_bytes(small_wave().drop("权重")), "无权重.csv", NEW_WAVE,
                          confirmed=Confirmations(equal_weights=True, allow_missing_counties=True))
    assert any("等权重" in w for w in result.warnings)
    weights = wh.cursor().sql("select distinct weight from current_responses "
                              "where wave = '2026'").pl()
    assert weights["weight"].to_list() == [1.0]


# ---------------------------------------------------------------------------------------------
# rejected files: one rule each


def _set(frame: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    """Set one cell; `row` is the file row number (header = 1)."""
    index = row - 2
    return frame.with_columns(pl.when(pl.int_range(pl.len()) == index).then(pl.lit(value))
                              .otherwise(pl.col(column)).alias(column))


def test_truncated_file_names_the_row(wh, defs):
    data = csv_bytes(small_wave())
    cut = data[: int(len(data) * 0.6)]
    report = rejected(wh, defs, cut, "截断.csv", confirmed=PARTIAL)
    last_row = cut.count(b"\n") + 1
    assert f"第{last_row}行" in report and "截断" in report


def test_a_long_line_beside_a_short_one_names_both_rows(wh, defs):
    """The delimiter total adds up, so only the parser's refusal of the long line catches it."""
    data = csv_bytes(small_wave())
    assert b'"' not in data               # the unquoted fast path
    lines = data.split(b"\n")
    lines[2] += b",extra"                 # file row 3: one field too many
    lines[3] = lines[3].rsplit(b",", 1)[0]  # file row 4: one field too few
    report = rejected(wh, defs, b"\n".join(lines), "错行.csv", confirmed=PARTIAL)
    assert "第3行" in report and "第4行" in report and "比表头" in report


def test_truncated_xlsx_is_rejected(wh, defs):
    buffer = io.BytesIO()
    small_wave().write_excel(buffer)
    report = rejected(wh, defs, buffer.getvalue()[:5000], "截断.xlsx", confirmed=PARTIAL)
    assert "XLSX 文件无法读取" in report


def test_empty_and_header_only_files(wh, defs):
    assert "文件为空" in rejected(wh, defs, b"", "empty.csv", confirmed=PARTIAL)
    header_only = csv_bytes(small_wave().head(0))
    assert "没有数据行" in rejected(wh, defs, header_only, "header.csv", confirmed=PARTIAL)


def test_duplicate_respondent_ids(wh, defs):
    frame = _set(small_wave(), 10, "受访者编号", small_wave()["受访者编号"][0])
    report = rejected(wh, defs, csv_bytes(frame, "gb18030"), "重复.csv", confirmed=PARTIAL)
    assert "第10行" in report and "“受访者编号”列" in report and "重复（第2行已出现）" in report


def test_unknown_county_code_and_mismatched_name(wh, defs):
    frame = _set(small_wave(), 5, "区县代码", "110101")
    frame = _set(frame, 7, "区县名称", "不存在县")
    report = rejected(wh, defs, csv_bytes(frame), "区县.csv", confirmed=PARTIAL)
    assert "第5行" in report and "未知的区县代码“110101”" in report
    assert "第7行" in report and "区县名称“不存在县”与代码" in report


def test_answer_codes_outside_the_questionnaire(wh, defs):
    frame = _set(small_wave(), 4, "Q1", "7")
    frame = _set(frame, 6, "Q3", "是")
    report = rejected(wh, defs, csv_bytes(frame), "代码.csv", confirmed=PARTIAL)
    assert "第4行，“Q1”列：答案代码 7 不在问卷规定的代码中" in report
    assert "第6行，“Q3”列：答案“是”不是题目“您身边是否发现有吸毒、贩毒现象”的选项" in report


@pytest.mark.parametrize("value, expected", [("", "权重为空"), ("0", "权重必须为正数"),
                                             ("-1.5", "权重必须为正数"), ("abc", "不是数字"),
                                             ("inf", "权重必须为正数"), ("NaN", "权重必须为正数")])
def test_bad_weights(wh, defs, value, expected):
    frame = _set(small_wave(), 3, "权重", value or None)
    report = rejected(wh, defs, csv_bytes(frame), "权重.csv", confirmed=PARTIAL)
    assert "第3行" in report and expected in report


def test_wrong_types_and_codes_in_respondent_columns(wh, defs):
    frame = _set(small_wave(), 3, "年龄", "三十")
    frame = _set(frame, 4, "年龄", "130")
    frame = _set(frame, 5, "性别", "未知")
    report = rejected(wh, defs, csv_bytes(frame), "类型.csv", confirmed=PARTIAL)
    assert "年龄“三十”不是整数" in report and "年龄 130 超出" in report
    assert "第5行，“性别”列：“未知”不是有效取值" in report


def test_wrong_wave_label(wh, defs):
    report = rejected(wh, defs, csv_bytes(small_wave()), "期次.csv", wave="2025年", confirmed=PARTIAL)
    assert "格式不对" in report
    frame = _set(small_wave(), 2, "调查期次", "2024")
    report = rejected(wh, defs, csv_bytes(frame), "期次.csv", confirmed=PARTIAL)
    assert "第2行" in report and "调查期次“2024”与本次导入的期次“2026”不符" in report


def test_missing_columns(wh, defs):
    report = rejected(wh, defs, csv_bytes(small_wave().drop("Q5", "受访者编号")), "缺列.csv",
                      confirmed=PARTIAL)
    assert "缺少必需的列“受访者编号”" in report and "缺少题目“吸毒是违法行为吗”的列" in report


def test_two_headers_for_one_column(wh, defs):
    frame = small_wave().with_columns(pl.col("权重").alias("weight"))
    assert "多个列都对应“权重”" in rejected(wh, defs, csv_bytes(frame), "双列.csv", confirmed=PARTIAL)


def test_all_problems_reported_with_a_cap(wh, defs):
    frame = small_wave().with_columns(pl.lit("8").alias("Q1"))  # every row bad
    report = rejected(wh, defs, csv_bytes(frame), "很多错误.csv", confirmed=PARTIAL)
    assert f"共发现 {frame.height} 个问题" in report
    assert report.count("答案代码 8") == ROWS_PER_RULE  # examples, not hundreds of lines
    assert f"另有 {frame.height - ROWS_PER_RULE} 个问题未列出" in report


def test_unsupported_file_type(wh, defs):
    assert "不支持的文件类型" in rejected(wh, defs, b"%PDF-1.7 ...", "report.pdf", confirmed=PARTIAL)


# ---------------------------------------------------------------------------------------------
# personal data, idempotence, replace


def test_phone_column_is_dropped_and_never_stored(wh, defs):
    frame = small_wave().with_columns(
        (pl.lit("139") + pl.int_range(pl.len()).cast(pl.String).str.zfill(8)).alias("联系电话"),
        (pl.lit("0871-6") + pl.int_range(pl.len()).cast(pl.String).str.zfill(6)).alias("备注"))
    result = ingest_bytes(wh, defs, csv_bytes(frame), "带电话.csv", NEW_WAVE, confirmed=PARTIAL)
    assert sum("疑似电话号码" in w for w in result.warnings) == 2
    columns = wh.cursor().sql("select column_name from information_schema.columns").pl()
    assert "联系电话" not in columns["column_name"].to_list()
    load_id = result.load_id
    _, archived = wh.archived_file(load_id)
    assert b"13900000001" not in archived and "0871-6".encode() not in archived
    assert "调查期次".encode() in archived  # the rest of the file is archived
    wh.close()
    raw = wh.path.read_bytes()
    assert b"13900000001" not in raw and b"0871-6000001" not in raw


def test_loading_the_same_file_twice_is_a_no_op(wh, defs):
    data = csv_bytes(small_wave())
    first = ingest_bytes(wh, defs, data, "a.csv", NEW_WAVE, confirmed=PARTIAL)
    before = sha256_of(wh.path)
    second = ingest_bytes(wh, defs, data, "a (1).csv", NEW_WAVE, confirmed=PARTIAL)
    assert second.status == "unchanged" and second.load_id == first.load_id
    assert "未做任何更改" in second.summary()
    assert sha256_of(wh.path) == before


def test_existing_wave_needs_replace_and_the_old_version_stays_recoverable(wh, defs):
    original = wh.active_load("2025", "survey")
    original_n = wh.waves().filter(pl.col("wave") == "2025")["respondents"][0]
    report = rejected(wh, defs, csv_bytes(small_wave().with_columns(pl.lit("2025").alias("调查期次"))),
                      "新2025.csv", wave="2025", confirmed=PARTIAL)
    assert "已存在" in report and "--replace" in report
    replacement = small_wave(2).with_columns(pl.lit("2025").alias("调查期次"))
    result = ingest_bytes(wh, defs, csv_bytes(replacement), "新2025.csv", "2025", replace=True,
                          confirmed=PARTIAL)
    assert result.status == "replaced"
    assert wh.waves().filter(pl.col("wave") == "2025")["respondents"][0] == replacement.height
    statuses = dict(wh.loads("2025").filter(pl.col("kind") == "survey")
                    .select("load_id", "status").iter_rows())
    assert statuses[original] == "superseded"
    assert wh.rollback_wave("2025") == original
    assert wh.waves().filter(pl.col("wave") == "2025")["respondents"][0] == original_n


def test_audit_records_file_checksum_user_and_counts(wh, defs):
    import hashlib

    data = csv_bytes(small_wave())
    ingest_bytes(wh, defs, data, "审计.csv", NEW_WAVE, loaded_by="分析员甲", confirmed=PARTIAL)
    row = wh.loads(NEW_WAVE).row(0, named=True)
    assert row["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert row["loaded_by"] == "分析员甲" and row["n_rows"] == small_wave().height
    assert wh.archived_file(row["load_id"])[1] == data


def test_archives_are_compressed_and_read_back_from_older_warehouses_too(wh, defs, tmp_path):
    """Archives are stored Zstandard-compressed; one stored LZ4-compressed (as by the previous
    version) and a warehouse from before compression (no codec column, archives as received)
    still give their files back."""
    import duckdb
    import pyarrow as pa

    data = csv_bytes(small_wave())
    load_id = ingest_bytes(wh, defs, data, "压缩.csv", NEW_WAVE, confirmed=PARTIAL).load_id
    stored, codec = wh.cursor().execute(
        "select octet_length(content), codec from raw_files f join loads l "
        "on f.sha256 = l.archive_sha256 where l.load_id = ?", [load_id]).fetchall()[0]
    assert codec == "zstd" and stored < len(data) and wh.archived_file(load_id)[1] == data
    wh.cursor().execute("update raw_files set content = ?, codec = 'lz4' where sha256 = "
                        "(select archive_sha256 from loads where load_id = ?)",
                        [pa.compress(data, codec="lz4", asbytes=True), load_id])
    assert wh.archived_file(load_id)[1] == data

    older = tmp_path / "older.duckdb"                     # the tables as they were before
    with duckdb.connect(str(older)) as con:
        con.sql("create table raw_files (sha256 varchar primary key, size_bytes bigint not null, "
                "content blob not null, sanitized boolean not null)")
        con.sql("create table loads (load_id integer, source_name varchar, archive_sha256 varchar)")
        con.execute("insert into raw_files values ('x', ?, ?, false)", [len(data), data])
        con.sql("insert into loads values (7, '旧.csv', 'x')")
    with Warehouse.open(older, read_only=True) as old:
        assert old.archived_file(7) == ("旧.csv", data)


# ---------------------------------------------------------------------------------------------
# indicator sheets


def indicators_2026() -> pl.DataFrame:
    return sample_indicators("2025").with_columns(pl.lit("2026").alias("年度"))


def test_indicator_sheet_is_accepted_as_xlsx(wh, defs):
    buffer = io.BytesIO()
    indicators_2026().write_excel(buffer)
    result = ingest_bytes(wh, defs, buffer.getvalue(), "指标.xlsx", NEW_WAVE, "indicators")
    assert result.rows == 88 * 20
    value = wh.cursor().sql("select value from current_indicators where wave = '2026' and "
                            "indicator_id = 'social_control_rate' order by county_code limit 1").pl()
    assert value["value"][0] == float(indicators_2026()["社会面管控率"][0])


@pytest.mark.parametrize("mutate, expected", [
    (lambda f: f.with_columns(pl.lit("1").alias("禁毒满意指数")), "未知的指标名称"),
    (lambda f: f.filter(pl.col("区县代码") != "990305"), "缺少区县 990305"),
    (lambda f: _set(f, 4, "外流贩毒人员", "-2"), "人数/件数不能为负数"),
    (lambda f: _set(f, 5, "社会面管控率", "103.5"), "比率应在 0–100% 之间"),
    (lambda f: _set(f, 6, "年度", "2025"), "统计期“2025”与本次导入的期次“2026”不符"),
    (lambda f: _set(f, 7, "发现非法种植毒品原植物", "也许"), "不是有效的是/否取值"),
    (lambda f: _set(f, 8, "区县代码", "990101"), "区县 990101 重复出现"),
])
def test_bad_indicator_sheets(wh, defs, mutate, expected):
    report = rejected(wh, defs, csv_bytes(mutate(indicators_2026()), "gb18030"), "指标.csv",
                      kind="indicators")
    assert expected in report


# ---------------------------------------------------------------------------------------------
# fast paths: answer codes read as integers, ids checked for order, canonical spellings kept;
# each gives exactly what reading every cell as text gives


def _checked_as_text(wh, defs, data: bytes, name: str, renames=None):
    """The reference: every cell read as text, then checked (what the code did before)."""
    from pipelines.ingest.load import _apply_renames
    from pipelines.ingest.readers import read_table
    from pipelines.ingest.validation import validate_survey

    raw = _apply_renames(read_table(data, name), renames)
    return validate_survey(raw, name, NEW_WAVE, defs, wh.counties())


def _outcome(run):
    try:
        validated = run()
    except IngestError as exc:
        return "rejected", exc.report()
    return "accepted", validated.frame, validated.warnings


def _same_outcome(wh, defs, data: bytes, name: str, renames=None):
    from pipelines.ingest.load import _read_and_validate

    fast = _outcome(lambda: _read_and_validate(wh, defs, data, name, NEW_WAVE, "survey",
                                               renames, PARTIAL)[1])
    slow = _outcome(lambda: _checked_as_text(wh, defs, data, name, renames))
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "rejected":
        assert fast[1] == slow[1]
    else:
        assert fast[1].equals(slow[1]) and fast[1].schema == slow[1].schema
        # the reference checks the file alone; the load adds its note on the missing counties
        assert [w for w in fast[2] if not w.startswith("本期调查缺少")] == slow[2]
    return fast


def test_answer_columns_of_whole_numbers_are_read_as_integers(defs):
    from pipelines.ingest.load import _integer_headers
    from pipelines.ingest.readers import read_table

    data = csv_bytes(small_wave())
    frame = read_table(data, "整数.csv", _integer_headers(defs, None)).frame
    assert frame.schema["Q1"] == pl.Int16 and frame.schema["年龄"] == pl.Int16
    assert frame.schema["受访者编号"] == pl.String and frame.schema["权重"] == pl.String
    assert read_table(data, "整数.csv").frame.schema["Q1"] == pl.String


CELLS = ["3", "03", "+3", " 3", "3 ", "\t3", "\u30003", "3.0", "3.5", "1e0", "40000", "-0",
         "", " ", "是", "７", "7", "07", "+7", "-1", "99999999999999999999", "nan", "inf"]


@pytest.mark.parametrize("column", ["Q1", "Q9", "年龄"])
@pytest.mark.parametrize("cell", CELLS)
def test_integer_reading_changes_no_result_nor_message(wh, defs, column, cell):
    """Whatever the cell, the load gives what reading it as text gives: the same rows, or the
    same report quoting the cell as written."""
    frame = _set(small_wave(), 5, column, cell or None)
    for data in (csv_bytes(frame), csv_bytes(frame).replace(b"\n", b"\r\n")):
        _same_outcome(wh, defs, data, "单元格.csv")


def test_integer_reading_follows_the_analysts_renames(wh, defs):
    """A header that would be an answer column but that the analyst takes for another field
    keeps its cells as text ("0012", not 12)."""
    frame = small_wave().with_columns(
        (pl.lit("00") + pl.int_range(pl.len()).cast(pl.String)).alias("年龄")).drop("受访者编号")
    renames = {"年龄": "respondent_id"}
    outcome = _same_outcome(wh, defs, csv_bytes(frame), "改名.csv", renames)
    assert outcome[0] == "accepted"
    assert outcome[1]["respondent_id"][:2].to_list() == ["000", "001"]
    assert outcome[1]["age"].null_count() == outcome[1].height


def test_sanitised_archive_keeps_answer_cells_as_written(wh, defs):
    frame = small_wave().with_columns(
        pl.lit("03").alias("Q2"),
        (pl.lit("139") + pl.int_range(pl.len()).cast(pl.String).str.zfill(8)).alias("联系电话"))
    result = ingest_bytes(wh, defs, csv_bytes(frame), "带电话.csv", NEW_WAVE, confirmed=PARTIAL)
    _, archived = wh.archived_file(result.load_id)
    stored = pl.read_csv(archived, infer_schema=False)
    assert stored["Q2"].unique().to_list() == ["03"] and "联系电话" not in stored.columns


@pytest.mark.parametrize("order", ["shuffled", "descending"])
def test_respondent_ids_out_of_order_are_checked_in_full(wh, defs, order):
    frame = small_wave()
    frame = frame.sample(fraction=1.0, shuffle=True, seed=3) if order == "shuffled" \
        else frame.reverse()
    assert _same_outcome(wh, defs, csv_bytes(frame), "乱序.csv")[0] == "accepted"
    repeated = _set(frame, 9, "受访者编号", frame["受访者编号"][40])
    outcome = _same_outcome(wh, defs, csv_bytes(repeated), "乱序.csv")
    assert outcome[0] == "rejected" and "第42行，“受访者编号”列" in outcome[1]
    assert "重复（第9行已出现）" in outcome[1]


def test_adjacent_repeated_ids_are_found_on_the_fast_path(wh, defs):
    frame = _set(small_wave(), 3, "受访者编号", small_wave()["受访者编号"][0])
    outcome = _same_outcome(wh, defs, csv_bytes(frame), "相邻.csv")
    assert outcome[0] == "rejected" and "第3行，“受访者编号”列" in outcome[1]
    assert "重复（第2行已出现）" in outcome[1]


@pytest.mark.parametrize("quoted", [False, True])
def test_gbk_body_under_an_ascii_header_is_decoded(wh, defs, quoted):
    """The header line is ASCII (valid UTF-8), the cells GBK: Polars refuses the bytes further
    on and the file is decoded as GBK."""
    frame = small_wave().drop("区县代码").rename({"受访者编号": "respondent_id", "权重": "weight",
                                                  "区县名称": "county", "调查期次": "wave",
                                                  "性别": "sex", "城乡": "urban_rural",
                                                  "年龄": "age", "抽样层": "stratum",
                                                  "乡镇(街道)": "township"})
    assert all(h.isascii() for h in frame.columns)
    text = frame.write_csv(line_terminator="\n", quote_style="always" if quoted else "necessary")
    result = ingest_bytes(wh, defs, text.encode("gb18030"), "gbk.csv", NEW_WAVE, confirmed=PARTIAL)
    assert result.rows == frame.height
    assert wh.cursor().sql("select encoding from loads where wave = '2026'").fetchall() \
        == [("GBK/GB18030",)]
