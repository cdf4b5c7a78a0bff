"""The full risk table (10,000 draws: P(bottom 3/10) now and next wave, rank intervals, rank
confidence sets, τ-worst sets, levers) for the sample province and at national scale.

Run: uv run python bench/risk_table.py [runs]      (make bench runs every benchmark)

National scale: the sample's five scored waves tiled to 2,904 counties (33 copies of 88). Prints the
median of several runs and, beside it, the time of the 10,000 draws alone (the floor of any
simulation-based table).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.build import build_warehouse  # noqa: E402
from pipelines.definitions import load_definitions  # noqa: E402
from pipelines.risk import risk_table, scored_history  # noqa: E402
from pipelines.scoring import score_frames  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402


def median_time(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def tiled_history(wh: Warehouse, defs, copies: int):
    counties = wh.counties()
    history = []
    for wave in wh.waves()["wave"]:
        def suffix(frame: pl.DataFrame, k: int) -> pl.DataFrame:
            return frame.with_columns(pl.col("county_code") + f"{k:02d}")
        responses = pl.concat([suffix(wh.responses(wave), k) for k in range(copies)])
        indicators = pl.concat([suffix(wh.indicators(wave), k) for k in range(copies)])
        tiled = pl.concat([suffix(counties, k) for k in range(copies)])
        history.append(score_frames(responses, indicators, tiled, defs, wave=wave))
    return history


def main(runs: int = 5) -> None:
    defs = load_definitions()
    with tempfile.TemporaryDirectory() as name:
        db = Path(name) / "sample.duckdb"
        build_warehouse(db)
        wh = Warehouse.open(db, read_only=True)
        sample = scored_history(wh, defs, "2025")
        national = tiled_history(wh, defs, 33)
        wh.close()
    print(f"{'scale':<32}{'risk table':>12}{'draws only':>12}")
    for label, history, n_runs in (("sample province (88)", sample, runs),
                                   ("national (2,904 counties)", national, max(3, runs // 2))):
        full = median_time(lambda: risk_table(history, defs, draws=10_000), n_runs)
        draws = median_time(lambda: history[-1].model.draw(10_000, 1), n_runs)
        print(f"{label:<32}{full:>11.2f}s{draws:>11.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
