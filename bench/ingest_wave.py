"""Ingest time of one sample survey wave (read + validate + write), median of several runs.

Run: uv run python bench/ingest_wave.py [runs]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.build import build_warehouse  # noqa: E402
from pipelines.definitions import load_definitions  # noqa: E402
from pipelines.ingest import ingest_file  # noqa: E402
from pipelines.sample_province import SAMPLE_DIR  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402


def main(runs: int = 5) -> None:
    defs = load_definitions()
    with tempfile.TemporaryDirectory() as tmp:
        province = Path(tmp) / "province"
        province.mkdir()
        for name in ("counties.csv", "province.toml"):
            shutil.copy(SAMPLE_DIR / name, province / name)
        empty = Path(tmp) / "empty.duckdb"
        build_warehouse(empty, province)
        for wave in ("2021", "2025"):  # GBK and UTF-8 waves
            path = SAMPLE_DIR / f"survey_{wave}.csv.gz"
            seconds, rows = [], 0
            for run in range(runs):
                db = Path(tmp) / f"run{run}.duckdb"
                shutil.copy(empty, db)
                wh = Warehouse.open(db)
                started = time.perf_counter()
                rows = ingest_file(wh, defs, path, wave).rows
                seconds.append(time.perf_counter() - started)
                wh.close()
            median = statistics.median(seconds)
            print(f"survey_{wave}.csv.gz  rows={rows}  median={median:.3f}s  "
                  f"({rows / median:,.0f} rows/s; runs: {', '.join(f'{s:.3f}' for s in seconds)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
