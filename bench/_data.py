"""Benchmark data at the three scales of pipelines/scaled_province.py, generated once and kept under
bench/.cache/ (never committed): the files in the bundle's layout and the warehouse built from them
through the ordinary ingest path."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.ingest.build import build_warehouse  # noqa: E402
from pipelines.synth.sample import SAMPLE_DIR  # noqa: E402
from pipelines.synth.scaled import SCALES, generate_scaled  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"


def scaled_files(scale: str) -> Path:
    counties, per_county, waves = SCALES[scale]
    out = CACHE / f"{scale}-files"
    if not (out / "province.toml").exists():
        started = time.perf_counter()
        generate_scaled(out, counties, per_county, waves)
        print(f"[{scale}] generated {counties} counties × {per_county} × {waves} waves in "
              f"{time.perf_counter() - started:.0f}s", file=sys.stderr)
    return out


def geography_warehouse(scale: str) -> Path:
    """A warehouse holding only the scale's counties and margins (no waves): the starting point
    of an ingest benchmark ("sample" is the bundled sample province's geography)."""
    db = CACHE / f"{scale}-geography.duckdb"
    if not db.exists():
        source = SAMPLE_DIR if scale == "sample" else scaled_files(scale)
        geography = CACHE / f"{scale}-geography"
        geography.mkdir(parents=True, exist_ok=True)
        for name in ("counties.csv", "margins.csv", "province.toml"):
            if (source / name).exists():
                shutil.copy(source / name, geography / name)
        build_warehouse(db, geography)
    return db


def wave_file(scale: str, suffix: str) -> Path:
    """The newest survey wave of a scale as a CSV or XLSX file, as an analyst would upload it."""
    path = CACHE / f"{scale}-wave.{suffix}"
    if not path.exists():
        frame = pl.read_parquet(max(scaled_files(scale).glob("survey_*.parquet")))
        started = time.perf_counter()
        if suffix == "csv":
            frame.write_csv(path)
        else:
            frame.write_excel(path, autofit=False)
        print(f"[{scale}] wrote {path.name} in {time.perf_counter() - started:.0f}s",
              file=sys.stderr)
    return path


def scaled_warehouse(scale: str) -> Path:
    """The warehouse of a scale, built from its files through the ordinary ingest path ("sample"
    is the bundled sample province itself)."""
    db = CACHE / f"{scale}.duckdb"
    if not db.exists():
        CACHE.mkdir(exist_ok=True)
        started = time.perf_counter()
        if scale == "sample":
            build_warehouse(db)
        else:
            build_warehouse(db, scaled_files(scale))
        print(f"[{scale}] built {db.name} in {time.perf_counter() - started:.0f}s",
              file=sys.stderr)
    return db
