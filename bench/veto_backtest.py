"""Backtest of the next-wave veto risk: per-county model (pipelines/ranking/veto_risk.py) against
the flat provincial rate, rolling origin (each wave predicted from the waves before it), Brier and
log score; then the expected number of counties listed in the bottom 3 / 10 next wave, in total
and among the counties banded 安全 now, under either veto risk.

Run: uv run python bench/veto_backtest.py [scale]     (scale: sample (default), large, national)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from bench._data import scaled_warehouse  # noqa: E402
from pipelines.ranking.forecast import (  # noqa: E402
    history_of,
    next_wave_probabilities,
    veto_rate,
    veto_risk,
)
from pipelines.ranking.risk import risk_table  # noqa: E402
from pipelines.ranking.veto_risk import backtest_veto_risk, blend_weight  # noqa: E402
from pipelines.results.wave import scored_history  # noqa: E402
from pipelines.scheme.definitions import load_definitions  # noqa: E402
from pipelines.store.warehouse import Warehouse  # noqa: E402

DRAWS = 10_000


def main(scale: str) -> None:
    defs = load_definitions()
    wh = Warehouse.open(scaled_warehouse(scale), read_only=True)
    try:
        scores = scored_history(wh, defs, wh.waves()["wave"].max())
    finally:
        wh.close()
    history = history_of(scores)
    result = backtest_veto_risk(history.vetoed, history.veto_rules, history.waves)
    with pl.Config(tbl_rows=50, float_precision=5):
        print(result)
        print(result.select(pl.exclude("wave")).sum())
    model = veto_risk(history)
    print(f"veto risk per county-wave: flat {veto_rate(history):.4f}; model min {model.min():.4f} "
          f"median {np.median(model):.4f} max {model.max():.4f}; blend weight "
          f"{blend_weight(history.vetoed, history.veto_rules):.1f}")
    rules = defs.scheme.listing
    bottoms = (rules.province_bottom, rules.city_bottom)
    safe = (risk_table(scores, defs, draws=DRAWS)["band"] == "安全").to_numpy()
    seed = defs.scheme.estimation.seed + 1
    for name, vetoes in (("flat", veto_rate(history)), ("county", model)):
        p = next_wave_probabilities(history, draws=DRAWS, seed=seed, bottoms=bottoms,
                                    vetoes=vetoes)
        print(f"{name:>7}: expected listed next wave, bottom {bottoms[0]}: "
              f"{p[bottoms[0]].sum():.2f} (the {safe.sum()} 安全 counties {p[bottoms[0]][safe].sum():.2f})"
              f"; bottom {bottoms[1]}: {p[bottoms[1]].sum():.2f} "
              f"(安全 {p[bottoms[1]][safe].sum():.2f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sample")
