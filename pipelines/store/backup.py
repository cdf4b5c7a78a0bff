"""Backup and restore of the warehouse (`python -m pipelines backup OUT` / `restore IN`).

A backup is a fresh DuckDB file copied table by table from a read-only attachment of the
warehouse (`COPY FROM DATABASE`), so it is consistent even if the file has an unreplayed WAL, and
written under a temporary name then renamed. A restore first checks that the file is a warehouse of
this system, keeps the current warehouse beside it as `<name>.before-restore-<time>` (nothing is
lost), and refuses while another process (the dashboard) holds the warehouse.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.store.warehouse import (
    Warehouse,
    WarehouseError,
    current_user,
    disk_full_message,
    is_disk_full,
)


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    waves: int
    loads: int
    sha256: str


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _summary(path: Path) -> BackupSummary:
    """Open a file as a warehouse and count what it holds (raises WarehouseError if it is not one)."""
    wh = Warehouse.open(path, read_only=True)
    try:
        if not wh.is_initialised():
            raise WarehouseError(f"{path} 不是本系统的数据仓库（缺少省份信息）")
        cur = wh.cursor()
        waves = cur.sql("select count(*) from waves").fetchall()[0][0]
        loads = cur.sql("select count(*) from loads").fetchall()[0][0]
    except duckdb.Error as exc:
        raise WarehouseError(f"{path} 不是本系统的数据仓库：{exc}") from None
    finally:
        wh.close()
    return BackupSummary(path, waves, loads, sha256_of(path))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup(db: Path, out: Path) -> BackupSummary:
    """Copy the warehouse `db` into a new file `out` (which must not exist)."""
    db, out = Path(db), Path(out)
    if not db.exists():
        raise WarehouseError(f"数据仓库 {db} 不存在")
    if out.exists():
        raise WarehouseError(f"备份文件 {out} 已存在：请换一个文件名（不会覆盖已有文件）")
    if not out.parent.exists():
        raise WarehouseError(f"目录 {out.parent} 不存在")
    _summary(db)                                     # a warehouse of this system, readable
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.sql(f"attach '{_sql_path(db)}' as source (read_only)")
        con.sql(f"attach '{_sql_path(partial)}' as target")
        con.sql("copy from database source to target")
        _continue_sequence(con, "target")
        con.sql("detach target")
    except (duckdb.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise WarehouseError("备份失败：" + disk_full_message(out).replace(
                "数据仓库保持原样", "没有留下不完整的备份文件")) from None
        if "lock" in str(exc).lower():
            raise WarehouseError(f"数据仓库 {db} 正被另一个程序（例如看板）写入，请稍后或关闭看板后再备份") \
                from None
        raise WarehouseError(f"备份失败：{exc}") from None
    finally:
        con.close()
    os.replace(partial, out)
    return _summary(out)


def _continue_sequence(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """A copied sequence restarts at its start value: move it past the loads already there."""
    top = con.sql(f"select coalesce(max(load_id), 0) from {catalog}.loads").fetchall()[0][0]
    con.sql(f"drop sequence if exists {catalog}.load_ids")
    con.sql(f"create sequence {catalog}.load_ids start {int(top) + 1}")


def restore(backup_file: Path, db: Path) -> tuple[BackupSummary, Path | None]:
    """Make `backup_file` the warehouse at `db`; returns the restored summary and where the
    previous warehouse was kept (None when there was none)."""
    backup_file, db = Path(backup_file), Path(db)
    if not backup_file.exists():
        raise WarehouseError(f"备份文件 {backup_file} 不存在")
    summary = _summary(backup_file)
    kept = None
    if db.exists():
        try:                                         # refuses while the dashboard holds it
            Warehouse.open(db).close()
        except WarehouseError as exc:
            raise WarehouseError(f"无法恢复：{exc}") from None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = db.with_name(f"{db.name}.before-restore-{stamp}")
    partial = db.with_name(f".{db.name}.restoring-{os.getpid()}")
    try:
        if kept is not None:
            shutil.copy2(db, kept)
        shutil.copy2(backup_file, partial)
        wh = Warehouse.open(partial)
        try:
            wh.record_audit("恢复备份", current_user(), detail=f"由备份文件 {backup_file.name} 恢复",
                            sha256=summary.sha256)
        finally:
            wh.close()
    except (OSError, duckdb.Error, WarehouseError) as exc:
        # nothing was replaced yet: remove the half-made copies, the warehouse stays as it was
        for path in (partial, partial.with_name(partial.name + ".wal"), kept):
            if path is not None:
                path.unlink(missing_ok=True)
        if is_disk_full(exc) or "磁盘空间不足" in str(exc):
            raise WarehouseError("无法恢复：" + disk_full_message(db)) from None
        raise
    os.replace(partial, db)
    return summary, kept
