"""The command line as an analyst uses it: Chinese messages, exit codes, never a traceback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import polars as pl
import pytest

from pipelines.store.warehouse import Warehouse
from tests.conftest import csv_bytes, sample_wave, sha256_of

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_ingest_then_waves(db_copy, tmp_path):
    file = tmp_path / "2026年调查.csv"
    file.write_bytes(csv_bytes(sample_wave("2025", counties=4)
                               .with_columns(pl.lit("2026").alias("调查期次")), "gb18030"))
    done = cli("ingest", str(file), "--wave", "2026", "--db", str(db_copy),
               "--allow-missing-counties", "--allow-repeat")    # 4 counties of 2025, relabelled
    assert done.returncode == 0, done.stderr
    assert "已导入2026年度调查数据" in done.stdout
    assert "暂未预先计算" in done.stderr   # no indicator table for 2026 yet: said, not an error
    waves = cli("waves", "--db", str(db_copy))
    assert waves.returncode == 0 and "2026年度" in waves.stdout
    again = cli("ingest", str(file), "--wave", "2026", "--db", str(db_copy),
                "--allow-missing-counties", "--allow-repeat")
    assert again.returncode == 0 and "未做任何更改" in again.stdout
    loads = cli("loads", "--wave", "2026", "--db", str(db_copy))
    assert "2026年调查.csv" in loads.stdout and "使用中" in loads.stdout


@pytest.mark.slow
def test_an_ingest_stores_the_newest_waves_results_for_the_dashboard(db_copy, tmp_path):
    """After a publish the first leader to open the dashboard reads stored results: the CLI warms
    the newest wave under the very key the dashboard asks for."""
    from pipelines.results import cache as result_cache
    from pipelines.scheme.definitions import load_definitions

    file = tmp_path / "2025重报.csv"
    file.write_bytes(csv_bytes(sample_wave("2025"), "gb18030"))
    done = cli("ingest", str(file), "--wave", "2025", "--replace", "--db", str(db_copy))
    assert done.returncode == 0, done.stderr
    assert "已替换2025年度调查数据" in done.stdout and "已预先计算2025年度的得分与风险" in done.stdout

    def not_stored():
        raise AssertionError("the dashboard would have to compute this")

    with Warehouse.open(db_copy, read_only=True) as wh:
        version = wh.content_version("2025")
        risk = result_cache.risk(db_copy, not_stored, load_definitions(), version, "2025",
                                 result_cache.dashboard_draws())
    assert risk.height == 88


def test_rejected_file_exits_non_zero_with_rows_and_columns(db_copy, tmp_path):
    frame = sample_wave("2025", counties=2).with_columns(pl.lit("2026").alias("调查期次"))
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("X"))
                               .otherwise(pl.col("Q2")).alias("Q2"))
    file = tmp_path / "bad.csv"
    file.write_bytes(csv_bytes(frame))
    before = sha256_of(db_copy)
    done = cli("ingest", str(file), "--wave", "2026", "--db", str(db_copy))
    assert done.returncode == 1
    assert "文件“bad.csv”，第5行，“Q2”列：答案“X”不是题目“您认为本地毒品问题严重吗”的选项" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sha256_of(db_copy) == before


@pytest.mark.slow
def test_replace_and_rollback(db_copy, tmp_path):
    file = tmp_path / "2025新.csv"
    file.write_bytes(csv_bytes(sample_wave("2025", counties=2)))
    refused = cli("ingest", str(file), "--wave", "2025", "--db", str(db_copy))
    assert refused.returncode == 1 and "--replace" in refused.stderr
    replaced = cli("ingest", str(file), "--wave", "2025", "--db", str(db_copy), "--replace",
                   "--allow-missing-counties")
    assert replaced.returncode == 0 and "已替换" in replaced.stdout
    rolled = cli("rollback", "--wave", "2025", "--db", str(db_copy))
    assert rolled.returncode == 0 and "恢复" in rolled.stdout


@pytest.mark.slow
def test_friendly_errors_for_usage_missing_files_and_a_busy_warehouse(db_copy, tmp_path):
    usage = cli("ingest", "x.csv", "--db", str(db_copy))
    assert usage.returncode == 2 and "参数有误" in usage.stderr
    missing = cli("ingest", str(tmp_path / "none.csv"), "--wave", "2026", "--db", str(db_copy))
    assert missing.returncode == 1 and "无法读取文件" in missing.stderr
    no_db = cli("waves", "--db", str(tmp_path / "nothing.duckdb"))
    assert no_db.returncode == 1 and "不存在" in no_db.stderr
    holder = Warehouse.open(db_copy)  # e.g. the dashboard holding the read-write connection
    try:
        busy = cli("ingest", str(tmp_path / "none.csv"), "--wave", "2026", "--db", str(db_copy))
    finally:
        holder.close()
    assert busy.returncode == 1
    for out in (usage, missing, no_db, busy):
        assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_build_is_idempotent(tmp_path):
    db = tmp_path / "w.duckdb"
    first = cli("build", "--db", str(db))
    assert first.returncode == 0 and "已构建数据仓库" in first.stdout and "5 期" in first.stdout
    second = cli("build", "--db", str(db))
    assert second.returncode == 0 and "已存在" in second.stdout


def test_set_password_stores_a_slow_hash_that_verifies(tmp_path, monkeypatch, capsys):
    import getpass

    from pipelines.cli import main
    from pipelines.present import access

    target = tmp_path / "secrets.toml"
    target.write_text('[auth]\nredirect_uri = "x"\n', encoding="utf-8")
    monkeypatch.setattr(access, "SECRETS_FILE", target)
    monkeypatch.setattr("pipelines.present.access.write_password_hash.__defaults__", (target,))
    answers = iter(["correct horse", "correct horse"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert main(["set-password"]) == 0
    text = target.read_text(encoding="utf-8")
    assert "[auth]" in text and "correct horse" not in text
    stored = text.split('analyst_password_hash = "')[1].split('"')[0]
    assert stored.startswith("pbkdf2_sha256$600000$")
    assert access.verify_password("correct horse", stored)
    assert not access.verify_password("wrong", stored)
    answers = iter(["short", "short"])
    assert main(["set-password"]) == 2


def _as_unprivileged_account(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in a forked child that has dropped to the `nobody` account (tests run as root,
    for whom file modes do not bite); the child inherits this interpreter and its imports."""
    from pipelines import cli as cli_module

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 70
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with os.fdopen(write, "w") as out, contextlib.redirect_stderr(out), \
                    contextlib.redirect_stdout(out):
                try:
                    code = cli_module.main(argv) or 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:
                    traceback.print_exc()
                    code = 71
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as got:
        text = got.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


NOBODY = 65534


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0,
                    reason="需要以 root 运行测试才能切换到无权限账户")
def test_an_account_without_write_rights_cannot_change_the_warehouse(db_copy):
    """The CLI against a server's warehouse by an account that may read but not write it (the
    file and its folder belong to the service account): every data change is refused with a
    Chinese message, and the file is byte for byte unchanged."""
    folder = Path(tempfile.mkdtemp(prefix="ceping-rights-"))
    try:
        folder.chmod(0o755)
        db = folder / "warehouse.duckdb"
        shutil.copy(db_copy, db)
        db.chmod(0o644)
        before = sha256_of(db)
        backup = folder / "backup.duckdb"
        shutil.copy(db_copy, backup)
        backup.chmod(0o644)
        wave_file = folder / "wave.csv"
        wave_file.write_bytes(csv_bytes(sample_wave()))
        wave_file.chmod(0o644)
        attempts = {
            "ingest": ["ingest", str(wave_file), "--wave", "2025", "--replace", "--db", str(db)],
            "rollback": ["rollback", "--wave", "2025", "--db", str(db)],
            "restore": ["restore", str(backup), "--db", str(db)],
        }
        for what, argv in attempts.items():
            code, text = _as_unprivileged_account(argv)
            assert code == 1, (what, code, text)
            assert "没有权限" in text and "Traceback" not in text, (what, text)
        assert sha256_of(db) == before
        assert sorted(p.name for p in folder.iterdir()) == ["backup.duckdb", "warehouse.duckdb",
                                                            "wave.csv"]
    finally:
        shutil.rmtree(folder)
