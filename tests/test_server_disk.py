"""A full disk, an interrupted restore and a withdrawn wave (issue 19, items 7 and 8).

The full-disk cases run on a small tmpfs of their own (root only: skipped elsewhere); before the
fix DuckDB's own rollback of the failed write hid the cause behind "cannot rollback - no
transaction is active"."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.store.backup import backup, restore
from pipelines.store.leftovers import clean_leftovers
from pipelines.store.warehouse import Warehouse, WarehouseError
from tests.conftest import csv_bytes, sample_wave


def _wave_2026(folder: Path, counties: int | None = None) -> Path:
    file = folder / "2026.csv"
    frame = sample_wave("2025", counties=counties).with_columns(pl.lit("2026").alias("调查期次"))
    file.write_bytes(csv_bytes(frame))
    return file


def _state(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    with Warehouse.open(db, read_only=True) as wh:
        return wh.waves().drop("updated_at"), wh.loads().drop("loaded_at")


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs; yields (folder, fill) where fill() leaves only `kb` free."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("mounting a small tmpfs needs root")

    def fill(kb: int = 256) -> Path:
        free = shutil.disk_usage(mount).free // 1024
        filler = mount / "filler"
        with filler.open("wb") as out:
            out.truncate(0)
            out.write(b"\0" * max(0, (free - kb)) * 1024)
        return filler
    try:
        yield mount, fill
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_says_so_in_chinese_and_changes_nothing(built_db, tmp_path, small_disk,
                                                             capsys):
    mount, fill = small_disk
    db = mount / "warehouse.duckdb"
    shutil.copy(built_db, db)
    before = _state(db)
    wave = _wave_2026(tmp_path)
    filler = fill(256)
    assert main(["ingest", str(wave), "--wave", "2026", "--allow-repeat", "--db", str(db)]) == 1
    message = capsys.readouterr().err
    assert "磁盘空间不足" in message and "cannot rollback" not in message, message
    filler.unlink()
    waves, loads = _state(db)
    assert waves.equals(before[0]) and loads.equals(before[1])   # earlier waves intact
    assert main(["ingest", str(wave), "--wave", "2026", "--allow-repeat", "--db", str(db)]) == 0  # freed


@pytest.mark.slow
def test_a_restore_onto_a_full_disk_leaves_no_half_copies(built_db, tmp_path, small_disk):
    mount, fill = small_disk
    db = mount / "warehouse.duckdb"
    shutil.copy(built_db, db)
    saved = tmp_path / "备份.duckdb"
    backup(db, saved)
    fill(256)
    with pytest.raises(WarehouseError, match="磁盘空间不足"):
        restore(saved, db)
    assert sorted(p.name for p in mount.iterdir()) == ["filler", "warehouse.duckdb"]


def test_a_killed_restore_is_cleaned_and_its_safety_copy_reported(db_copy, capsys):
    dead = subprocess.run(["true"]).returncode or 999_999   # a pid with no process
    partial = db_copy.with_name(f".{db_copy.name}.restoring-{dead}")
    partial.write_bytes(b"half a warehouse")
    live = db_copy.with_name(f".{db_copy.name}.restoring-{os.getpid()}")   # a restore running now
    live.write_bytes(b"in progress")
    kept = db_copy.with_name(f"{db_copy.name}.before-restore-20261203-080000")
    shutil.copy(db_copy, kept)
    assert main(["waves", "--db", str(db_copy)]) == 0
    notice = capsys.readouterr().err
    assert "已清理" in notice and partial.name in notice and kept.name in notice
    assert not partial.exists() and live.exists() and kept.exists()
    assert clean_leftovers(db_copy).removed == []            # nothing left to clean


@pytest.mark.slow
def test_a_withdrawn_wave_leaves_the_dashboard_but_stays_in_history(db_copy, tmp_path, capsys):
    file = _wave_2026(tmp_path)
    assert main(["ingest", str(file), "--wave", "2026", "--allow-repeat", "--db", str(db_copy)]) == 0
    assert main(["withdraw", "--wave", "2026", "--reason", "文件有误", "--db", str(db_copy)]) == 0
    with Warehouse.open(db_copy, read_only=True) as wh:
        shown = wh.waves().filter(pl.col("survey_load_id").is_not_null())["wave"].to_list()
        assert "2026" not in shown and "2025" in shown
        load = wh.loads("2026").row(0, named=True)
        assert load["status"] == "withdrawn"
        audit = wh.audit_log().row(0, named=True)
        assert audit["action"] == "撤回调查数据" and "文件有误" in audit["detail"]
    capsys.readouterr()
    assert main(["score", "--wave", "2026", "--db", str(db_copy)]) == 1
    assert main(["withdraw", "--wave", "2026", "--reason", "再次", "--db", str(db_copy)]) == 1
    assert "无可撤回" in capsys.readouterr().err
    assert main(["ingest", str(file), "--wave", "2026", "--allow-repeat", "--db", str(db_copy)]) == 0  # again
    with Warehouse.open(db_copy, read_only=True) as wh:
        assert wh.waves().filter(pl.col("wave") == "2026")["survey_load_id"].item() is not None


def test_a_withdrawal_needs_a_reason(db_copy):
    with Warehouse.open(db_copy) as wh, pytest.raises(WarehouseError, match="原因"):
        wh.withdraw_wave("2025", reason="  ")
