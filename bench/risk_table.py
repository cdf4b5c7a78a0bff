"""The risk table with 10,000 draws (P(bottom 3/10) now and at the next wave, rank intervals, rank
confidence sets, τ-worst sets, levers) at the three scales, with its two simulations timed on their
own: this wave's 10,000 score draws ranked, and the next-wave forecast's 10,000 draws.

Run: uv run python bench/risk_table.py [runs]      (make bench runs every benchmark)

Scales (pipelines/scaled_province.py, data under bench/.cache/): the sample province (88 counties,
5 waves), a large province (180, 10 waves), national (2,850, 10 waves). The scored history is
computed once, outside the timings. Medians of several runs; peak memory is one whole risk table
(history included) in a fresh process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import scaled_warehouse  # noqa: E402
from bench._measure import median_time, peak_case, peak_memory_mb, record_results, report_peak  # noqa: E402,E501
from pipelines.ranking.forecast import history_of, next_wave_probabilities  # noqa: E402
from pipelines.ranking.ranks import simulate_ranks  # noqa: E402
from pipelines.ranking.risk import risk_table  # noqa: E402
from pipelines.results.wave import scored_history  # noqa: E402
from pipelines.scheme.definitions import load_definitions  # noqa: E402
from pipelines.store.warehouse import Warehouse  # noqa: E402

SCALES = ("sample", "large", "national")
DRAWS = 10_000


def history(scale: str):
    wh = Warehouse.open(scaled_warehouse(scale), read_only=True)
    try:
        return scored_history(wh, load_definitions(), wh.waves()["wave"].max())
    finally:
        wh.close()


def main(runs: int) -> None:
    defs = load_definitions()
    rows: list[dict[str, object]] = []
    print(f"{'scale':<28}{'risk table':>12}{'this wave':>12}{'next wave':>12}{'peak MB':>9}")
    for scale in SCALES:
        scores = history(scale)
        n_runs = runs if scale != "national" else max(3, runs // 2)
        full = median_time(lambda: risk_table(scores, defs, draws=DRAWS), n_runs)
        now = median_time(lambda: simulate_ranks(scores[-1].model.draw(DRAWS, 1)), n_runs)
        past = history_of(scores)
        later = median_time(lambda: next_wave_probabilities(past, draws=DRAWS, seed=2), n_runs)
        label = f"{scale} ({len(scores[-1].model.counties):,} × {len(scores)} waves)"
        peak = peak_memory_mb(__file__, scale)
        print(f"{label:<28}{full:>11.2f}s{now:>11.2f}s{later:>11.2f}s{peak:>9,.0f}", flush=True)
        rows.append({"scale": scale, "counties": len(scores[-1].model.counties), "waves": len(scores),
                     "risk_table_s": full, "this_wave_s": now, "next_wave_s": later, "peak_mb": peak})
    record_results("risk_table", runs, rows)


if __name__ == "__main__":
    if (case := peak_case(sys.argv)) is not None:
        risk_table(history(case), load_definitions(), draws=DRAWS)
        report_peak()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
