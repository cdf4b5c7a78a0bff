"""Full scoring of one wave (every item, component and the composite, with intervals) at the three
scales, beside the floor (one grouped aggregation pass over the same columns), a straightforward
pandas implementation of the item estimates and R's survey package — each checked against ours
before its time is shown.

Run: uv run python bench/score_wave.py [runs]      (make bench runs every benchmark)

Scales (pipelines/scaled_province.py, data kept under bench/.cache/): sample province 88 × 300,
large province 180 × 600, national 2,850 × 400 (1.14 million respondents); the newest wave of each.
- pandas: per item, group-by means and Taylor-linearised SEs by stratum (what an analyst would write
  by hand; items only, no composite).
- R: `svyby(~item, ~county, design, svymean, na.rm = TRUE)` for every item, then the survey part of
  the composite per county by `svycontrast` on `svytotal`s (the delta method, as our linearisation).
  All items at the sample scale; one item on slices of the national wave to show how R's time grows
  with counties × respondents (a whole national wave would take R hours).
Medians of several runs (ours and the floor alternately, with the median of the per-round ratios);
peak memory is one run in a fresh process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import scaled_warehouse  # noqa: E402
from bench._measure import (  # noqa: E402
    median_time,
    paired_median_times,
    peak_case,
    peak_memory_mb,
    record_results,
    report_peak,
)
from pipelines.scheme.definitions import Definitions, load_definitions  # noqa: E402
from pipelines.stats.points import POINTS_PREFIX, item_points, scored_items  # noqa: E402
from pipelines.stats.wave_scores import score_frames  # noqa: E402
from pipelines.store.warehouse import Warehouse  # noqa: E402

SCALES = ("sample", "large", "national")
R_SCRIPT = r"""
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(county = "character", stratum = "character"))
items <- strsplit(args[2], ",")[[1]]
contrast <- if (nchar(args[3]) > 0) parse(text = args[3])[[1]] else NULL
for (it in items) {
  d[[paste0("num_", it)]] <- ifelse(is.na(d[[it]]), 0, d[[it]])
  d[[paste0("den_", it)]] <- ifelse(is.na(d[[it]]), 0, 1)
}
des <- svydesign(ids = ~1, strata = ~stratum, weights = ~weight, data = d)
t0 <- proc.time()[["elapsed"]]
res <- lapply(items, function(it) svyby(as.formula(paste0("~", it)), ~county, des, svymean,
                                        na.rm = TRUE))
t_items <- proc.time()[["elapsed"]] - t0
out <- data.frame(county = res[[1]]$county, mean = res[[1]][[items[1]]], se = SE(res[[1]]))
if (!is.null(contrast)) {
  t0 <- proc.time()[["elapsed"]]
  tf <- as.formula(paste("~", paste(c(paste0("num_", items), paste0("den_", items)), collapse = "+")))
  comp <- t(sapply(sort(unique(d$county)), function(cty) {
    con <- svycontrast(svytotal(tf, subset(des, county == cty)), contrast)
    c(coef(con)[[1]], SE(con)[[1]])
  }))
  t_comp <- proc.time()[["elapsed"]] - t0
  out$part <- comp[match(out$county, rownames(comp)), 1]
  out$part_se <- comp[match(out$county, rownames(comp)), 2]
} else t_comp <- NA
cat(sprintf("TIME %.6f %.6f\n", t_items, t_comp))
write.csv(out, args[4], row.names = FALSE)
"""


def wave_frames(scale: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    wh = Warehouse.open(scaled_warehouse(scale), read_only=True)
    try:
        wave = wh.waves()["wave"].max()
        return wh.responses(wave), wh.indicators(wave), wh.counties()
    finally:
        wh.close()


def floor_pass(frame: pl.DataFrame, items: list[str]) -> pl.DataFrame:
    """The least any estimator must do: one grouped pass summing w, w·y and w·y² per item."""
    exprs = []
    for item in items:
        y = pl.col(POINTS_PREFIX + item)
        w = pl.when(y.is_not_null()).then(pl.col("weight")).otherwise(0.0)
        exprs += [w.sum().alias(f"w_{item}"), (w * y.fill_null(0)).sum().alias(f"wy_{item}"),
                  (w * y.fill_null(0) ** 2).sum().alias(f"wyy_{item}")]
    return frame.group_by("county_code", "stratum").agg(exprs)


def pandas_items(df: pd.DataFrame, items: list[str]) -> dict[str, pd.DataFrame]:
    """Item means and linearised SEs per county, written the plain pandas way (strata nested in
    counties, every respondent its own PSU, a lonely respondent's stratum "adjusted")."""
    n_h = df.groupby("stratum")["weight"].transform("size")
    out = {}
    for item in items:
        y = df[item]
        answered = y.notna()
        w = df["weight"].where(answered, 0.0)
        total_w = w.groupby(df["county"]).transform("sum")
        mean = (w * y.fillna(0)).groupby(df["county"]).transform("sum") / total_w
        z = (w * (y.fillna(0) - mean) / total_w).where(answered, 0.0)
        cells = pd.DataFrame({"county": df["county"], "stratum": df["stratum"], "z": z,
                              "z2": z * z, "n": n_h}).groupby(["county", "stratum"]) \
            .agg(z=("z", "sum"), z2=("z2", "sum"), n=("n", "first"))
        var = np.where(cells["n"] > 1, cells["n"] / (cells["n"] - 1)
                       * (cells["z2"] - cells["z"] ** 2 / cells["n"]), cells["z2"])
        se = np.sqrt(pd.Series(var, index=cells.index).groupby(level=0).sum())
        out[item] = pd.DataFrame({"mean": mean.groupby(df["county"]).first(), "se": se})
    return out


def survey_part_contrast(defs: Definitions, items: list[str]) -> str:
    """R expression of the composite's survey part in the num_/den_ totals of each item."""
    terms = []
    for comp in defs.scheme.components:
        if comp.source != "survey":
            continue
        total = sum(comp.item_weights)
        for item, weight in zip(comp.items, comp.item_weights, strict=False):
            terms.append(f"{comp.weight / 100 * weight / total!r} * num_{item} / den_{item}")
    return " + ".join(terms)


def r_survey(scored: pl.DataFrame, items: list[str], contrast: str,
             tmp: Path) -> tuple[float, float, pl.DataFrame]:
    extract = scored.select(pl.col("county_code").alias("county"),
                            (pl.col("county_code") + "|" + pl.col("stratum")).alias("stratum"),
                            "weight", *[pl.col(POINTS_PREFIX + i).alias(i) for i in items])
    data, out, script = tmp / "extract.csv", tmp / "r_out.csv", tmp / "svyby.R"
    extract.write_csv(data)
    script.write_text(R_SCRIPT)
    done = subprocess.run(["Rscript", str(script), str(data), ",".join(items), contrast, str(out)],
                          capture_output=True, text=True, check=True)
    t_items, t_comp = done.stdout.split("TIME")[1].split()
    reference = pl.read_csv(out, schema_overrides={"county": pl.String})
    return float(t_items), float(t_comp.replace("NA", "nan")), reference


def gap(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.nanmax(np.abs(np.asarray(ours, float) - np.asarray(theirs, float))))


def main(runs: int) -> None:
    defs = load_definitions()
    items = scored_items(defs.scheme)
    have_r = shutil.which("Rscript") is not None
    contrast = survey_part_contrast(defs, items)
    rows: list[dict[str, object]] = []
    print(f"{'scale':<30}{'ours':>9}{'floor':>9}{'÷floor':>8}{'pandas':>9}{'÷ours':>7}"
          f"{'R svyby+contrast':>18}{'÷ours':>8}{'peak MB':>9}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for scale in SCALES:
            responses, indicators, counties = wave_frames(scale)
            scored = item_points(responses, defs)
            n_runs = runs if responses.height < 500_000 else max(3, runs // 2)
            result = score_frames(responses, indicators, counties, defs)
            # alternately, so that the ratio compares the two at the same machine speed
            ours, floor, over_floor = paired_median_times(
                lambda: score_frames(responses, indicators, counties, defs),
                lambda: floor_pass(scored, items), n_runs)
            df = scored.select(pl.col("county_code").alias("county"),
                               (pl.col("county_code") + "|" + pl.col("stratum")).alias("stratum"),
                               "weight", *[pl.col(POINTS_PREFIX + i).alias(i) for i in items]) \
                .to_pandas()
            by_pandas = pandas_items(df, items)
            check = result.items.filter(pl.col("item_id") == items[-1]).sort("county_code")
            theirs = by_pandas[items[-1]].sort_index()
            assert gap(check["mean"], theirs["mean"]) < 1e-9 and gap(check["se"], theirs["se"]) \
                < 1e-9, "pandas and ours disagree"
            pandas_s = median_time(lambda: pandas_items(df, items), max(1, n_runs // 2))
            r_text = r_ratio = "–"
            r_seconds: float | None = None
            if have_r and scale == "sample":
                t_items, t_comp, r_out = r_survey(scored, items, contrast, tmp)
                first = result.items.filter(pl.col("item_id") == items[0]) \
                    .join(r_out, left_on="county_code", right_on="county")
                part = pl.DataFrame({"county": result.model.counties,
                                     "est": result.model.survey_mean @ result.model.survey_weights(),
                                     "se": np.sqrt(result.model.survey_part_variance())}) \
                    .join(r_out, on="county")
                worst = max(gap(first["mean"], first["mean_right"]),
                            gap(first["se"], first["se_right"]), gap(part["est"], part["part"]),
                            gap(part["se"], part["part_se"]))
                assert worst < 1e-6, f"R and ours disagree by {worst}"
                r_seconds = t_items + t_comp
                r_text = f"{t_items:.2f}+{t_comp:.2f}s"
                r_ratio = f"{(t_items + t_comp) / ours:,.0f}×"
            peak = peak_memory_mb(__file__, scale)
            label = f"{scale} ({counties.height:,} × {responses.height:,})"
            print(f"{label:<30}{ours * 1000:>7.0f}ms{floor * 1000:>7.0f}ms{over_floor:>7.1f}×"
                  f"{pandas_s:>8.2f}s{pandas_s / ours:>6.1f}×{r_text:>18}{r_ratio:>8}{peak:>9,.0f}",
                  flush=True)
            rows.append({"scale": scale, "counties": counties.height, "respondents": responses.height,
                         "ours_s": ours, "floor_s": floor, "ours_over_floor": over_floor,
                         "pandas_s": pandas_s, "r_s": r_seconds, "peak_mb": peak})
        record_results("score_wave", runs, rows)
        if have_r:
            print("\nR svyby, one item, on slices of the national wave (R's time grows with "
                  "counties × respondents):")
            responses, indicators, counties = wave_frames("national")
            for n_counties in (50, 100, 200, 400):
                keep = counties["county_code"].head(n_counties).to_list()
                part = responses.filter(pl.col("county_code").is_in(keep))
                sub = counties.filter(pl.col("county_code").is_in(keep))
                r_seconds, _, _ = r_survey(item_points(part, defs), items[:1], "", tmp)
                ours = median_time(lambda: score_frames(part, indicators, sub, defs), 3)
                print(f"  {n_counties:>4} counties, {part.height:>8,} rows: R {r_seconds:7.2f}s for "
                      f"one item; ours {ours * 1000:5.0f}ms for every item, component and the "
                      f"composite ({r_seconds / ours:,.0f}×)", flush=True)


def peak_run(scale: str) -> None:
    responses, indicators, counties = wave_frames(scale)
    score_frames(responses, indicators, counties, load_definitions())
    report_peak()


if __name__ == "__main__":
    if (case := peak_case(sys.argv)) is not None:
        peak_run(case)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
