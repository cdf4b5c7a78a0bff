"""Backup and restore round trip, refusals, and the audit log of every data change."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.ingest.load import ingest_bytes
from pipelines.store.backup import backup, restore
from pipelines.store.warehouse import Warehouse, WarehouseError
from tests.conftest import PARTIAL, csv_bytes, sample_wave, sha256_of

TABLES = ("meta", "cities", "counties", "margins", "raw_files", "loads", "waves", "responses",
          "indicators", "decisions", "inspections")


def contents(path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.sql(f"select * from {t} order by all").pl() for t in TABLES}
    finally:
        con.close()


def test_backup_and_restore_round_trip(db_copy, tmp_path, defs):
    before = contents(db_copy)
    out = tmp_path / "备份.duckdb"
    assert main(["backup", "--db", str(db_copy), str(out)]) == 0
    target = tmp_path / "restored.duckdb"
    assert main(["restore", "--db", str(target), str(out)]) == 0
    after = contents(target)
    for table in TABLES:
        if table == "meta":
            continue
        assert after[table].equals(before[table]), table
    # the restored warehouse takes new loads (its load-id sequence continues)
    wh = Warehouse.open(target)
    try:
        survey = sample_wave("2025", counties=5).with_columns(pl.lit("2026").alias("调查期次"))
        result = ingest_bytes(wh, defs, csv_bytes(survey), "2026.csv", "2026", loaded_by="测试",
                              confirmed=PARTIAL)
        assert result.load_id == before["loads"]["load_id"].max() + 1
        actions = wh.audit_log()["action"].to_list()
        assert actions[:2] == ["发布调查数据", "恢复备份"]
    finally:
        wh.close()


def test_restore_keeps_the_previous_warehouse(db_copy, tmp_path, wh):
    wh.record_decision("990101", "2025", "省", "挂牌整治", None, None, "测试")
    wh.close()
    out = tmp_path / "b.duckdb"
    backup(db_copy, out)
    previous = sha256_of(db_copy)
    summary, kept = restore(out, db_copy)
    assert summary.waves == 5 and kept is not None and sha256_of(kept) == previous


def test_refusals_are_explained_and_change_nothing(db_copy, tmp_path, capsys):
    out = tmp_path / "b.duckdb"
    out.write_bytes(b"x")
    assert main(["backup", "--db", str(db_copy), str(out)]) == 1
    assert "已存在" in capsys.readouterr().err and out.read_bytes() == b"x"
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database at all")
    before = sha256_of(db_copy)
    assert main(["restore", "--db", str(db_copy), str(junk)]) == 1
    assert "无法打开" in capsys.readouterr().err and sha256_of(db_copy) == before


def hold(db) -> subprocess.Popen:
    """Another process holding the warehouse read-write, as the running dashboard does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(db)], stdout=subprocess.PIPE,
        text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_no_change_from_the_command_line_while_the_dashboard_holds_the_warehouse(
        db_copy, tmp_path, capsys):
    survey = tmp_path / "2026.csv"
    survey.write_bytes(csv_bytes(sample_wave("2025", counties=3)
                                 .with_columns(pl.lit("2026").alias("调查期次"))))
    holder = hold(db_copy)
    try:
        for args in (["ingest", str(survey), "--wave", "2026"], ["rollback", "--wave", "2025"]):
            assert main([*args, "--db", str(db_copy)]) == 1
            assert "正被另一个程序" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    wh = Warehouse.open(db_copy, read_only=True)
    try:
        assert "2026" not in wh.waves()["wave"].to_list()
    finally:
        wh.close()


@pytest.mark.slow
def test_restore_refuses_while_the_dashboard_holds_the_warehouse(db_copy, tmp_path):
    out = tmp_path / "b.duckdb"
    backup(db_copy, out)
    holder = hold(db_copy)
    try:
        with pytest.raises(WarehouseError, match="正被另一个程序"):
            restore(out, db_copy)
        with pytest.raises(WarehouseError):
            backup(db_copy, tmp_path / "c.duckdb")
        assert not (tmp_path / "c.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()


def test_every_data_change_is_audited(db_copy, defs):
    wh = Warehouse.open(db_copy)
    try:
        survey = sample_wave("2025", counties=5)
        data = csv_bytes(survey)
        ingest_bytes(wh, defs, data, "2025再调查.csv", "2025", replace=True, loaded_by="张三",
                     confirmed=PARTIAL)
        wh.rollback_wave("2025", "survey", by="李四")
        wh.record_decision("990101", "2025", "省", "挂牌整治", "2026-01-05", "禁毒〔2026〕1号", "王五")
        wh.record_inspection("990101", "2025", True, "2026-02-01", "", "王五")
        wh.save_header_map("某中心", "survey", {"访问序号": "respondent_id"}, by="张三")
        log = wh.audit_log()
    finally:
        wh.close()
    top = log.head(5)
    assert top["action"].to_list() == ["保存列对应关系", "录入验收结果", "录入正式决定", "回滚调查数据",
                                       "替换调查数据"]
    assert top["by_user"].to_list() == ["张三", "王五", "王五", "李四", "张三"]
    import hashlib
    assert top["sha256"][4] == hashlib.sha256(data).hexdigest()
    assert (log["at"].diff().drop_nulls().dt.total_microseconds() <= 0).all()   # newest first
    assert main(["audit", "--db", str(db_copy), "--format", "csv"]) == 0


def test_audit_command_on_a_missing_warehouse(tmp_path, capsys):
    assert main(["audit", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "不存在" in capsys.readouterr().err
    time.sleep(0)
