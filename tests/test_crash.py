"""Crash safety: the ingest (and the recording of decisions) is killed with SIGKILL at many points;
the reopened warehouse is consistent, earlier waves are intact, no partial wave is visible, and the
load can be retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.store.warehouse import Warehouse
from tests.conftest import csv_bytes, sample_wave

KILL_POINTS = 8
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def big_wave(copies: int = 8) -> pl.DataFrame:
    """The 2025 wave repeated with fresh respondent ids (~210,000 rows), labelled 2026."""
    base = sample_wave("2025").with_columns(pl.lit("2026").alias("调查期次"))
    return pl.concat([base.with_columns((pl.col("受访者编号") + f"-{k}").alias("受访者编号"))
                      for k in range(copies)])


def state(db: Path) -> dict:
    wh = Warehouse.open(db)
    try:
        cur = wh.cursor()
        return {
            "waves": cur.sql("select wave, survey_load_id, indicators_load_id from waves "
                             "order by wave").fetchall(),
            "loads": cur.sql("select load_id, status from loads order by load_id").fetchall(),
            "responses": cur.sql("select load_id, count(*) from responses group by load_id "
                                 "order by load_id").fetchall(),
            "orphans": cur.sql("select count(*) from responses r where not exists (select 1 "
                               "from loads l where l.load_id = r.load_id)").fetchall()[0][0],
            "decisions": cur.sql("select count(*) from decisions").fetchall()[0][0],
            "decision_audits": cur.sql("select count(*) from audit where action = '录入正式决定'"
                                       ).fetchall()[0][0] if _has_audit(cur) else 0,
        }
    finally:
        wh.close()


def _has_audit(cur) -> bool:
    return cur.sql("select count(*) from information_schema.tables where table_name = 'audit'"
                   ).fetchall()[0][0] > 0


def ingest_process(db: Path, file: Path, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines", "ingest", str(file), "--wave",
                             "2026", "--db", str(db)], cwd=ROOT, stdout=stdout,
                            stderr=subprocess.DEVNULL, text=True)


def test_ingest_killed_at_any_point_leaves_the_warehouse_consistent(db_copy, tmp_path):
    file = tmp_path / "2026.csv"
    file.write_bytes(csv_bytes(big_wave()))
    before = state(db_copy)
    pristine = db_copy.read_bytes()
    # how long one load takes here up to its commit, on a scratch copy: the CLI says 已导入 as
    # soon as the transaction is in, then goes on to precompute results (not part of the load)
    scratch = tmp_path / "scratch.duckdb"
    scratch.write_bytes(db_copy.read_bytes())
    started = time.perf_counter()
    probe = ingest_process(scratch, file, stdout=subprocess.PIPE)
    committed = next(line for line in probe.stdout if "已导入" in line)
    duration = time.perf_counter() - started
    assert committed and probe.wait(timeout=300) == 0
    survived = completed = 0
    rows = big_wave().height
    for k in range(KILL_POINTS):
        process = ingest_process(db_copy, file)
        time.sleep(duration * (0.15 + 0.8 * k / (KILL_POINTS - 1)))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        code = process.wait(timeout=60)
        after = state(db_copy)
        surveys = {wave: survey for wave, survey, _ in after["waves"]}
        if "2026" in surveys:
            # committed before the kill landed: the whole wave, never part of it
            load_id = surveys["2026"]
            assert dict(after["responses"])[load_id] == rows, k
            assert after["waves"][:-1] == before["waves"] and after["orphans"] == 0
            completed += 1
            Path(f"{db_copy}.wal").unlink(missing_ok=True)
            db_copy.write_bytes(pristine)
            continue
        assert code != 0
        survived += 1
        assert after["waves"] == before["waves"], k          # no partial wave, earlier intact
        assert after["loads"] == before["loads"], k
        assert after["responses"] == before["responses"], k
        assert after["orphans"] == 0
    assert survived >= KILL_POINTS // 2
    # the load can be retried and completes
    assert ingest_process(db_copy, file).wait(timeout=300) == 0
    final = state(db_copy)
    assert len(final["waves"]) == len(before["waves"]) + 1
    assert dict(final["responses"])[max(dict(final["responses"]))] == rows
    print(f"kill points: {survived} mid-load, {completed} after commit, of {KILL_POINTS} "
          f"(load {duration:.1f}s)")


RECORDER = """
import sys
from pipelines.store.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
print("ready", flush=True)
k = 0
while True:
    wh.record_decision("990101", "2025", "省", "挂牌整治", None, f"第{k}号", "测试")
    k += 1
"""


def test_killing_while_decisions_are_recorded_loses_nothing_committed(db_copy):
    loaded = state(db_copy)["decisions"]          # the bundle's decisions (loaded at build)
    for k in range(4):
        process = subprocess.Popen([sys.executable, "-c", RECORDER, str(db_copy)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.2 * k)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        after = state(db_copy)
        # each decision and its audit row are one transaction: never one without the other
        assert after["decisions"] - loaded == after["decision_audits"] > 0
        assert after["orphans"] == 0
