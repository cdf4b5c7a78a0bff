"""The next wave's sample plan (抽样方案) at the three scales: the whole `plan_for_scores` (forecast,
4,000 draws of the true levels, the greedy allocation, and the four allocations scored on the
rank-based objective), with the allocation on its own. The issue's targets: a province under 5 s,
national under 60 s.

Run: uv run python bench/plan.py [runs]      (make bench runs every benchmark)

Scales (pipelines/synth/scaled.py, data under bench/.cache/): the sample province (88 counties,
5 waves), a large province (180, 10 waves), national (2,850, 10 waves). The scored history is
computed once, outside the timings; the total is 300 interviews a county, at least 200 each.
Medians of several runs; peak memory is one whole plan (history included) in a fresh process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import scaled_warehouse  # noqa: E402
from bench._measure import median_time, peak_case, peak_memory_mb, report_peak  # noqa: E402
from pipelines.ranking.forecast import history_of  # noqa: E402
from pipelines.ranking.plan import PlanSettings, allocate, outlook, plan_for_scores  # noqa: E402
from pipelines.results.wave import scored_history  # noqa: E402
from pipelines.scheme.definitions import load_definitions  # noqa: E402
from pipelines.store.warehouse import Warehouse  # noqa: E402

SCALES = ("sample", "large", "national")


def inputs(scale: str):
    wh = Warehouse.open(scaled_warehouse(scale), read_only=True)
    try:
        scores = scored_history(wh, load_definitions(), wh.waves()["wave"].max())
        return scores, wh.counties()
    finally:
        wh.close()


def settings_for(scores) -> PlanSettings:
    return PlanSettings(total=300 * scores[-1].composite.height, min_per_county=200)


def main(runs: int) -> None:
    print(f"{'scale':<28}{'plan':>10}{'allocation':>12}{'peak MB':>9}")
    for scale in SCALES:
        scores, counties = inputs(scale)
        settings = settings_for(scores)
        n_runs = runs if scale != "national" else max(3, runs // 2)
        whole = median_time(lambda: plan_for_scores(scores, counties, settings), n_runs)
        view = outlook(history_of(scores))
        alone = median_time(lambda: allocate(view, settings), n_runs)
        label = f"{scale} ({scores[-1].composite.height:,} × {len(scores)} waves)"
        print(f"{label:<28}{whole:>9.2f}s{alone:>11.2f}s{peak_memory_mb(__file__, scale):>9,.0f}",
              flush=True)


if __name__ == "__main__":
    if (case := peak_case(sys.argv)) is not None:
        scores, counties = inputs(case)
        plan_for_scores(scores, counties, settings_for(scores))
        report_peak()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
