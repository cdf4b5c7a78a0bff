"""Benchmark data at the three scales of pipelines/scaled_province.py, generated once and kept under
bench/.cache/ (never committed): the files in the bundle's layout and the warehouse built from them
through the ordinary ingest path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.build import build_warehouse  # noqa: E402
from pipelines.scaled_province import SCALES, generate_scaled  # noqa: E402

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


def scaled_warehouse(scale: str) -> Path:
    """The warehouse of a scale ("sample" is the bundled sample province itself)."""
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
