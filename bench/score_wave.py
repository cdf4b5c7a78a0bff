"""Full scoring of one wave (every item, component and the composite, with intervals) against the
floor (one grouped aggregation pass over the same columns) and against R's survey package.

Run: uv run python bench/score_wave.py [runs]      (make bench runs every benchmark)

Prints medians of several runs. Scales: the sample province's 2025 wave (88 counties, ~26,500
respondents) and the same wave tiled to ~1.0 million respondents (3,344 counties). R (`svyby` with
`svymean`, na.rm = TRUE) runs on the sample wave for all 9 items, and on slices of the large wave
for one item to show how its time grows; its estimates are compared with ours first.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.build import build_warehouse  # noqa: E402
from pipelines.definitions import load_definitions  # noqa: E402
from pipelines.scoring import POINTS_PREFIX, item_points, score_frames, scored_items  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(county = "character", stratum = "character"))
items <- strsplit(args[2], ",")[[1]]
runs <- as.integer(args[3])
des <- svydesign(ids = ~1, strata = ~stratum, weights = ~weight, data = d)
f <- as.formula(paste("~", paste(items, collapse = "+")))
times <- c()
for (i in seq_len(runs)) {
  t0 <- proc.time()[["elapsed"]]
  res <- lapply(items, function(it) svyby(as.formula(paste0("~", it)), ~county, des, svymean,
                                          na.rm = TRUE))
  times <- c(times, proc.time()[["elapsed"]] - t0)
}
cat(sprintf("TIME %.6f\n", median(times)))
first <- res[[1]]
write.csv(data.frame(county = first$county, mean = first[[items[1]]], se = SE(first)),
          args[4], row.names = FALSE)
"""


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def floor_pass(frame: pl.DataFrame, items: list[str]) -> pl.DataFrame:
    """The least any estimator must do: one grouped pass summing w, w·y and w·y² per item."""
    exprs = []
    for item in items:
        y = pl.col(POINTS_PREFIX + item)
        answered = y.is_not_null()
        w = pl.when(answered).then(pl.col("weight")).otherwise(0.0)
        exprs += [w.sum().alias(f"w_{item}"), (w * y.fill_null(0)).sum().alias(f"wy_{item}"),
                  (w * y.fill_null(0) ** 2).sum().alias(f"wyy_{item}")]
    return frame.group_by("county_code", "stratum").agg(exprs)


def tiled(responses: pl.DataFrame, indicators: pl.DataFrame, counties: pl.DataFrame,
          copies: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The wave repeated `copies` times under new county codes."""
    def suffix(frame: pl.DataFrame, k: int) -> pl.DataFrame:
        return frame.with_columns(pl.col("county_code") + f"{k:02d}")
    return (pl.concat([suffix(responses, k) for k in range(copies)]),
            pl.concat([suffix(indicators, k) for k in range(copies)]),
            pl.concat([suffix(counties, k) for k in range(copies)]))


def r_svyby(frame: pl.DataFrame, items: list[str], runs: int, tmp: Path) -> tuple[float, pl.DataFrame]:
    extract = frame.select(pl.col("county_code").alias("county"),
                           (pl.col("county_code") + "|" + pl.col("stratum")).alias("stratum"),
                           "weight", *[pl.col(POINTS_PREFIX + i).alias(i) for i in items])
    data, out, script = tmp / "extract.csv", tmp / "r_out.csv", tmp / "svyby.R"
    extract.write_csv(data)
    script.write_text(R_SCRIPT)
    done = subprocess.run(["Rscript", str(script), str(data), ",".join(items), str(runs), str(out)],
                          capture_output=True, text=True, check=True)
    seconds = float(done.stdout.split("TIME")[1])
    return seconds, pl.read_csv(out, schema_overrides={"county": pl.String})


def main(runs: int = 5) -> None:
    defs = load_definitions()
    items = scored_items(defs.scheme)
    have_r = shutil.which("Rscript") is not None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        build_warehouse(tmp / "sample.duckdb")
        wh = Warehouse.open(tmp / "sample.duckdb", read_only=True)
        responses, indicators, counties = (wh.responses("2025"), wh.indicators("2025"),
                                           wh.counties())
        wh.close()
        print(f"{'scale':<34}{'ours':>10}{'floor':>10}{'ours/floor':>12}{'R svyby':>12}"
              f"{'R/ours':>10}")
        for label, copies in (("sample province (88 × ~300)", 1), ("tiled wave (3,344 × ~300)", 38)):
            resp, ind, cty = tiled(responses, indicators, counties, copies)
            scored = item_points(resp, defs)
            ours, _ = median_time(lambda: score_frames(resp, ind, cty, defs), runs)
            floor, _ = median_time(lambda: floor_pass(scored, items), runs)
            r_text, ratio_text = "–", "–"
            if have_r and copies == 1:
                r_seconds, r_out = r_svyby(scored, items, 3, tmp)
                check = score_frames(resp, ind, cty, defs).items.filter(
                    pl.col("item_id") == items[0]).join(r_out, left_on="county_code",
                                                        right_on="county")
                gap = max((check["mean"] - check["mean_right"]).abs().max(),
                          (check["se"] - check["se_right"]).abs().max())
                assert gap < 1e-6, f"R and ours disagree by {gap}"
                r_text, ratio_text = f"{r_seconds:.2f}s", f"{r_seconds / ours:,.0f}×"
            print(f"{label + f' n={resp.height:,}':<34}{ours * 1000:>8.0f}ms{floor * 1000:>8.0f}ms"
                  f"{ours / floor:>11.1f}×{r_text:>12}{ratio_text:>10}")
        if have_r:
            print("\nR svyby, one item, slices of the tiled wave (growth with counties × respondents):")
            resp, ind, cty = tiled(responses, indicators, counties, 38)
            scored = item_points(resp, defs)
            for n_counties in (88, 176, 352, 704):
                keep = cty["county_code"].head(n_counties)
                part = scored.filter(pl.col("county_code").is_in(keep.to_list()))
                seconds, _ = r_svyby(part, items[:1], 1, tmp)
                ours, _ = median_time(lambda: score_frames(
                    resp.filter(pl.col("county_code").is_in(keep.to_list())),
                    ind, cty.filter(pl.col("county_code").is_in(keep.to_list())), defs), 3)
                print(f"  {n_counties:>5} counties, {part.height:>8,} rows: R {seconds:7.2f}s for one "
                      f"item; ours {ours * 1000:6.0f}ms for all items + composite")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
