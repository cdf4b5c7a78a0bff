"""Ingest of one survey wave with full validation (read, decode, validate, screen personal data,
archive, write in one transaction) at the three scales: rows per second, median of several runs, the
part of it spent writing into DuckDB (compressed archive, rows, commit), and the peak memory of one
run in a fresh process.

Run: uv run python bench/ingest_wave.py [runs]      (make bench runs every benchmark)

Files: the bundled sample province's waves (GBK and UTF-8 CSV, gzip), and the newest wave of the
large province (180 × 600) and of the national scale (2,850 × 400) written as CSV and — where it fits
in one sheet (Excel's limit is 1,048,576 rows) — as XLSX. Each run loads into a copy of a warehouse
holding only the scale's geography. Generated data are kept under bench/.cache/.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import geography_warehouse, wave_file  # noqa: E402
from bench._measure import median_time, peak_case, peak_memory_mb, record_results, report_peak  # noqa: E402,E501
from pipelines.ingest.load import ingest_file  # noqa: E402
from pipelines.scheme.definitions import load_definitions  # noqa: E402
from pipelines.store.warehouse import Warehouse  # noqa: E402
from pipelines.synth.sample import SAMPLE_DIR  # noqa: E402

CASES = {  # name → (scale of the geography, wave, file)
    "sample-2021-gbk-csv.gz": ("sample", "2021", lambda: SAMPLE_DIR / "survey_2021.csv.gz"),
    "sample-2025-csv.gz": ("sample", "2025", lambda: SAMPLE_DIR / "survey_2025.csv.gz"),
    "large-csv": ("large", "2025", lambda: wave_file("large", "csv")),
    "large-xlsx": ("large", "2025", lambda: wave_file("large", "xlsx")),
    "national-csv": ("national", "2025", lambda: wave_file("national", "csv")),
}


WRITES: list[float] = []   # seconds in Warehouse.write_load (DuckDB: archive, rows, commit)


def _timed_write_load(original):
    def write_load(self, record, rows, **options):
        started = time.perf_counter()
        try:
            return original(self, record, rows, **options)
        finally:
            WRITES.append(time.perf_counter() - started)
    return write_load


Warehouse.write_load = _timed_write_load(Warehouse.write_load)


def load_once(case: str, tmp: Path) -> int:
    scale, wave, file = CASES[case]
    empty = geography_warehouse(scale)
    db = tmp / "run.duckdb"
    db.unlink(missing_ok=True)
    shutil.copy(empty, db)
    wh = Warehouse.open(db)
    try:
        return ingest_file(wh, load_definitions(), file(), wave).rows
    finally:
        wh.close()


def main(runs: int) -> None:
    print(f"{'file':<26}{'rows':>11}{'MB':>7}{'median':>9}{'rows/s':>11}{'of which write':>15}"
          f"{'peak MB':>9}")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for case, (_, _, file) in CASES.items():
            rows = load_once(case, tmp)  # also generates the file on first use
            WRITES.clear()
            seconds = median_time(lambda: load_once(case, tmp), runs if rows < 500_000
                                  else max(3, runs // 2), warm_up=False)
            writing = statistics.median(WRITES)
            peak = peak_memory_mb(__file__, case)
            size = file().stat().st_size / 2**20
            print(f"{case:<26}{rows:>11,}{size:>7.0f}{seconds:>8.2f}s{rows / seconds:>11,.0f}"
                  f"{writing:>14.2f}s{peak:>9,.0f}", flush=True)
            results.append({"file": case, "rows": rows, "mb": size, "seconds": seconds,
                            "rows_per_s": rows / seconds, "write_s": writing, "peak_mb": peak})
    record_results("ingest_wave", runs, results)


if __name__ == "__main__":
    if (case := peak_case(sys.argv)) is not None:
        with tempfile.TemporaryDirectory() as name:
            load_once(case, Path(name))
        report_peak()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
