"""A file full of phone numbers, ID-card numbers and names: they are dropped before storage and
reported, and nothing of them is found afterwards in the warehouse (any table, the archived file,
the file bytes) or in the exports."""

from __future__ import annotations

import io
import random

import duckdb
import openpyxl
import polars as pl
import pytest

from pipelines.exports.deck import build_deck
from pipelines.exports.pack import meeting_pack, meeting_tables
from pipelines.exports.workbook import workbook_bytes
from pipelines.ingest.load import ingest_bytes
from pipelines.present.tables import csv_bytes as table_csv
from tests.conftest import PARTIAL, csv_bytes, sample_wave

SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚"


def id_number(rng: random.Random) -> str:
    body = f"{rng.randint(110000, 659999)}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}" \
           f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + rng.choice("0123456789X")


def personal_file(rows: int) -> tuple[pl.DataFrame, list[str]]:
    """The sample wave plus six personal columns (three named plainly, three only by content)."""
    rng = random.Random(5)
    frame = sample_wave("2025", counties=6).head(rows).with_columns(pl.lit("2026").alias("调查期次"))
    n = frame.height
    phones = [f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}" for _ in range(n)]
    landlines = [f"+86 0{rng.randint(10, 999)}-{rng.randint(1000000, 99999999)}" for _ in range(n)]
    ids = [id_number(rng) for _ in range(n)]
    ids2 = [id_number(rng) for _ in range(n)]
    names = [rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
             for _ in range(n)]
    names2 = [rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN) for _ in range(n)]
    frame = frame.with_columns(
        pl.Series("联系电话", phones), pl.Series("备用", landlines),
        pl.Series("身份证号码", ids), pl.Series("编号2", ids2),
        pl.Series("受访者姓名", names), pl.Series("访员记录", names2))
    secrets = phones[:50] + ids[:50] + ids2[:50] + [n for n in names + names2 if len(n) == 3][:50]
    return frame, secrets


@pytest.mark.slow
def test_personal_data_is_dropped_reported_and_found_nowhere(wh, defs, tmp_path):
    frame, secrets = personal_file(1200)
    result = ingest_bytes(wh, defs, csv_bytes(frame, "gbk"), "含个人信息.csv", "2026", confirmed=PARTIAL)
    dropped = "\n".join(result.warnings)
    for column in ("联系电话", "备用", "身份证号码", "编号2", "受访者姓名", "访员记录"):
        assert f"“{column}”列" in dropped, column
    assert "疑似姓名" in dropped and "疑似身份证号" in dropped and "疑似电话号码" in dropped

    # every text column of every table, through SQL (the file itself is compressed)
    cur = wh.cursor()
    columns = cur.sql("select table_name, column_name from information_schema.columns "
                      "where data_type = 'VARCHAR'").fetchall()
    probe = secrets[:10] + [s for s in secrets if len(s) == 18][:10]
    for table, column in columns:
        for secret in probe:
            hits = cur.execute(f'select count(*) from "{table}" where "{column}" like ?',
                               [f"%{secret}%"]).fetchall()[0][0]
            assert hits == 0, (table, column, secret)
    _, archived = wh.archived_file(result.load_id)
    text = archived.decode("utf-8")
    assert not [s for s in secrets if s in text]
    assert "调查期次" in text                                   # the rest was archived
    wh.close()
    raw = wh.path.read_bytes()
    assert not [s for s in secrets if s.encode("utf-8") in raw or s.encode("gbk") in raw]

    # exports carry county-level results only
    con = duckdb.connect(str(wh.path), read_only=True)
    con.close()
    from pipelines.store.warehouse import Warehouse

    reopened = Warehouse.open(wh.path, read_only=True)
    try:
        pack = meeting_pack(reopened, defs, "2025", draws=1000)
    finally:
        reopened.close()
    tables = meeting_tables(pack)
    counties = pack.counties.height
    for table in tables:
        assert table.frame.height <= counties * 5       # at most one row per county (and wave)
        assert not set(table.frame.columns) & {"受访者编号", "respondent_id", "年龄", "性别"}
        blob = table_csv(table).decode("utf-8-sig")
        assert not [s for s in secrets if s in blob]
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes(tables)))
    assert max(sheet.max_row for sheet in book) <= counties * 5 + 1
    deck = build_deck(pack)
    assert not [s for s in secrets if s.encode() in deck]


def test_a_place_name_column_is_not_mistaken_for_names(wh, defs):
    frame = sample_wave("2025", counties=3).with_columns(pl.lit("2026").alias("调查期次"))
    frame = frame.with_columns(pl.col("区县名称").alias("所在地"))     # repeats: a place, not a person
    result = ingest_bytes(wh, defs, csv_bytes(frame), "地名.csv", "2026", confirmed=PARTIAL)
    assert not any("所在地" in w and "疑似" in w for w in result.warnings), result.warnings
