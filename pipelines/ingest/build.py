"""Building the warehouse from `surveys/` (the bundled sample province by default).

The build writes to a temporary file next to the target and renames it at the end, so neither the
dashboard nor a script ever sees a half-built warehouse. Survey waves and indicator sheets go
through the same ingest path as an analyst's upload.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.ingest.load import ingest_file, read_counties_file
from pipelines.scheme.definitions import Definitions, load_definitions
from pipelines.store.warehouse import DECISION_INSERT, Warehouse, WarehouseError, current_user, now
from pipelines.synth.sample import SAMPLE_DIR

SYSTEM_USER = "系统初始化"


@dataclass(frozen=True)
class BuildResult:
    path: Path
    built: bool  # False: the warehouse already existed
    waves: int
    seconds: float


def wave_files(source: Path) -> dict[str, dict[str, Path]]:
    """wave → {"survey": path, "indicators": path} from the file-naming convention."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(source.iterdir()):
        match = re.fullmatch(r"(survey|indicators)_(\w+?)\.(csv|xlsx|parquet)(\.gz)?", path.name)
        if match:
            found.setdefault(match[2], {})[match[1]] = path
    return found


def build_warehouse(db: Path, source: Path = SAMPLE_DIR, defs: Definitions | None = None, *,
                    progress: bool = False) -> BuildResult:
    """Build `db` from `source` unless it already holds a province."""
    import time

    started = time.perf_counter()
    db = Path(db)
    if db.exists():
        wh = Warehouse.open(db, read_only=True)
        try:
            if wh.is_initialised():
                return BuildResult(db, False, wh.waves().height, time.perf_counter() - started)
        finally:
            wh.close()
        raise WarehouseError(f"{db} 已存在但不是本系统的数据仓库：请移走该文件后重试")
    defs = defs or load_definitions()
    province = tomllib.loads((source / "province.toml").read_text(encoding="utf-8"))
    tmp = db.with_name(f".{db.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    wh = Warehouse.open(tmp)
    try:
        wh.create_schema(defs.questionnaire)
        _load_province(wh, source, province)
        files = wave_files(source)
        for wave in sorted(files):
            for kind in ("survey", "indicators"):
                if kind in files[wave]:
                    ingest_file(wh, defs, files[wave][kind], wave, kind, loaded_by=SYSTEM_USER,
                                progress=progress)
        _load_decisions(wh, source)
        wh.mark_existing_released("由 surveys/ 中已公布的文件建库，视为已发布")
        waves = wh.waves().height
        wh.cursor().sql("checkpoint")
    except BaseException:
        wh.close()
        tmp.unlink(missing_ok=True)
        raise
    wh.close()
    os.replace(tmp, db)
    return BuildResult(db, True, waves, time.perf_counter() - started)


def _load_province(wh: Warehouse, source: Path, province: dict) -> None:
    counties = read_counties_file(source / "counties.csv")
    cur = wh.cursor()
    cur.register("county_rows", counties)
    cur.sql("insert into cities select distinct city_code, city_name from county_rows "
            "order by city_code")
    cur.sql("insert into counties select county_code, county_name, city_code, population, "
            "urban_share from county_rows")
    cur.unregister("county_rows")
    margins_path = source / "margins.csv"
    if margins_path.exists():
        margins = pl.read_csv(margins_path, infer_schema=False).select(
            pl.col("区县代码").alias("county_code"), pl.col("年龄组").alias("age_group"),
            pl.col("性别").alias("sex"), pl.col("城乡").alias("urban_rural"),
            pl.col("人口数").cast(pl.Int64).alias("population"))
        cur.register("margin_rows", margins)
        cur.sql("insert into margins select * from margin_rows")
        cur.unregister("margin_rows")
    for key, value in (("province", province["name"]),
                       ("is_sample", "true" if province.get("is_sample") else "false"),
                       ("built_at", now().isoformat()), ("built_by", current_user()),
                       ("data_version", "1")):
        cur.execute("insert or replace into meta values (?, ?)", [key, value])


def _load_decisions(wh: Warehouse, source: Path) -> None:
    """Official 挂牌/摘帽 decisions and inspection results recorded for the province."""
    cur = wh.cursor()
    stamp = now()
    if (path := source / "decisions.csv").exists():
        rows = pl.read_csv(path, infer_schema=False)
        for r in rows.iter_rows(named=True):
            cur.execute(f"insert into decisions ({DECISION_INSERT}) values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [r["区县代码"], r["期次"], r["层级"], r["决定"], r["决定日期"], r["文号"],
                         SYSTEM_USER, stamp])
    if (path := source / "inspections.csv").exists():
        rows = pl.read_csv(path, infer_schema=False)
        for r in rows.iter_rows(named=True):
            cur.execute("insert into inspections values (?, ?, ?, ?, ?, ?, ?)",
                        [r["区县代码"], r["期次"], r["验收日期"], r["结论"] == "合格", r["说明"],
                         SYSTEM_USER, stamp])
