"""The sample plan against the generator's truth: a history of the sample province is surveyed
afresh (2021–2024), the plan for 2025 is made from it, and new 2025 waves are drawn from the truth
at each allocation (same total, same count draws for every allocation). What is counted: counties
whose published 2025 score puts them on the other side of the bottom-3 / bottom-10 line than their
true composite does (ties at a line in, vetoed counties at 0 both truly and as published),
weighted by the line weights. The true composite is at the true item means and the EXPECTED
counts, so a county's published score misses it by the survey's sampling error and by the
Poisson noise of its count indicators; no allocation of interviews changes the second. Each
simulated wave is therefore also scored

- with the count indicators at their expected values (`survey_part`): the wrong placements the
  survey's sampling error alone makes, the part an allocation changes;
- with the survey at its true item means (`counts_only`): what infinitely many interviews in every
  county would leave, the floor under any allocation.

Run `uv run --locked python -m tests.plan_simulation [waves] [min_per_county] [survey]
[province=h]` for the figures (`survey`: the ranking on the survey components alone; province h:
the independent truth of base seed SEED + h)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.ranking.forecast import history_of
from pipelines.ranking.plan import PlanSettings, bounded_shares, outlook, plan_sample
from pipelines.ranking.ranks import in_bottom
from pipelines.scheme.definitions import Definitions, load_definitions
from pipelines.stats.wave_scores import score_frames
from pipelines.synth.sample import (
    SEED,
    WAVES,
    sample_counties,
    simulate_wave,
    true_indicator_expectations,
)
from tests.simulation import true_composite, true_item_means

TARGET = WAVES[-1]


def paired_reduction(base: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """1 − mean(other) / mean(base) and its simulation error (delta method over paired waves)."""
    ratio = other.mean() / base.mean()
    grad = np.array([-ratio / base.mean(), 1 / base.mean()])
    cov = np.cov(np.vstack([base, other])) / base.size
    return 1 - ratio, float(np.sqrt(grad @ cov @ grad))


@dataclass(frozen=True)
class PlanTrial:
    wrong: dict[str, np.ndarray]         # allocation → wrongly placed counties per simulated wave
    survey_part: dict[str, np.ndarray]   # the same, the count indicators at their expectation
    counts_only: np.ndarray              # per wave: the survey exact, the counts as drawn
    sizes: dict[str, np.ndarray]
    # allocation → per county (survey variance, count variance) of the published score: as the
    # simulation gives it, and as the planner expects it (a / n, b)
    variance: dict[str, tuple[np.ndarray, np.ndarray]]
    expected_variance: dict[str, tuple[np.ndarray, np.ndarray]]

    def reduction(self, measure: str = "wrong") -> tuple[float, float]:
        """Planned against equal allocation on `measure` (wrong | survey_part), or (counts_only)
        what infinitely many interviews would gain over equal allocation: 1 − planned / equal
        and its simulation error."""
        if measure == "counts_only":
            return paired_reduction(self.wrong["equal"], self.counts_only)
        values = getattr(self, measure)
        return paired_reduction(values["equal"], values["planned"])


def survey_only(defs: Definitions) -> Definitions:
    """The scheme with its survey components alone, reweighted to 100 (a ranking on the survey
    only, as some provinces' 满意度测评 are): every point of its sampling error is the survey's."""
    survey = [c for c in defs.scheme.components if c.source == "survey"]
    total = sum(c.weight for c in survey)
    components = tuple(dataclasses.replace(c, weight=c.weight * 100 / total) for c in survey)
    return dataclasses.replace(defs, scheme=dataclasses.replace(defs.scheme,
                                                                components=components))


def at_expectation(indicators: pl.DataFrame, defs: Definitions, base_seed: int) -> pl.DataFrame:
    """The indicator sheet with every count indicator the scheme scores at its expected value
    (the veto rules' counts as drawn)."""
    scored = [c.indicator for c in defs.scheme.components if c.source == "indicator" and c.poisson]
    expected = true_indicator_expectations(TARGET, base_seed) \
        .filter(pl.col("indicator_id").is_in(scored)) \
        .select("county_code", "indicator_id", pl.col("expected_value").alias("expected"))
    return indicators.join(expected, on=["county_code", "indicator_id"], how="left",
                           maintain_order="left") \
        .with_columns(pl.coalesce("expected", "value").alias("value")).drop("expected")


def _wrong(truth: np.ndarray, published: np.ndarray, weights: dict[int, float]) -> float:
    return float(sum(w * np.sum(in_bottom(truth, k) != in_bottom(published, k))
                     for k, w in weights.items()))


def run(waves: int, min_per_county: int = 200, weights: dict[int, float] | None = None,
        seed: int = 0, survey: bool = False, base_seed: int = SEED) -> PlanTrial:
    """`survey`: rank on the survey components alone (`survey_only`); `base_seed`: the province
    (SEED is the bundled one, SEED + h an independent truth)."""
    defs = survey_only(load_definitions()) if survey else load_definitions()
    counties = sample_counties(base_seed)
    codes = counties["county_code"].to_list()
    history = []
    for w, wave in enumerate(WAVES[:-1]):
        sim = simulate_wave(wave, seed=70_000 + 10 * seed + w, base_seed=base_seed)
        history.append(score_frames(sim.responses, sim.indicators, counties, defs, wave=wave,
                                    seed=w))
    weights = weights or {3: 1.0, 10: 1.0}
    settings = PlanSettings(total=300 * len(codes), min_per_county=min_per_county,
                            weights=weights, seed=seed)
    past = history_of(history)
    view = outlook(past)
    planned = plan_sample(past, settings).table["n_planned"].to_numpy()
    equal = bounded_shares(np.ones(len(codes)), view, settings)
    sizes = {"equal": equal, "planned": planned}
    items = true_item_means(defs, TARGET, base_seed)
    wrong: dict[str, list[float]] = {name: [] for name in sizes}
    part: dict[str, list[float]] = {name: [] for name in sizes}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in sizes}
    counts: dict[str, list[np.ndarray]] = {name: [] for name in sizes}
    floor: list[float] = []
    for r in range(waves):
        for name, n in sizes.items():
            sim = simulate_wave(TARGET, seed=80_000 + r, base_seed=base_seed,
                                sizes=dict(zip(codes, n.tolist(), strict=True)),
                                count_seed=90_000 + r)
            drawn = score_frames(sim.responses, sim.indicators, counties, defs, wave=TARGET,
                                 seed=r).composite
            exact = score_frames(sim.responses, at_expectation(sim.indicators, defs, base_seed),
                                 counties, defs, wave=TARGET, seed=r).composite
            vetoed = drawn["veto"].to_numpy()
            true = true_composite(defs, TARGET, items, sim.indicators, counties, base_seed)
            published = drawn["score_before_veto"].to_numpy()
            survey_noise = exact["score_before_veto"].to_numpy()
            count_noise = published - survey_noise     # the count components' draw less their mean

            def zeroed(x: np.ndarray, vetoed: np.ndarray = vetoed) -> np.ndarray:
                return np.where(vetoed, 0.0, x)
            wrong[name].append(_wrong(zeroed(true), zeroed(published), weights))
            part[name].append(_wrong(zeroed(true), zeroed(survey_noise), weights))
            scores[name].append(survey_noise)
            counts[name].append(count_noise)
            if name == "equal":    # the counts are the same draw at every allocation
                floor.append(_wrong(zeroed(true), zeroed(true + count_noise), weights))
    variance = {name: (np.var(scores[name], axis=0, ddof=1), np.var(counts[name], axis=0, ddof=1))
                for name in sizes}
    expected = {name: (view.per_interview / n, view.fixed_var) for name, n in sizes.items()}
    return PlanTrial({name: np.array(v) for name, v in wrong.items()},
                     {name: np.array(v) for name, v in part.items()}, np.array(floor), sizes,
                     variance, expected)


def main(argv: list[str]) -> None:
    waves = int(argv[0]) if argv else 200
    minimum = int(argv[1]) if len(argv) > 1 else 200
    province = next((int(a[9:]) for a in argv if a.startswith("province=")), 0)
    trial = run(waves, minimum, survey="survey" in argv, base_seed=SEED + province)
    for name in trial.wrong:
        x, y = trial.wrong[name], trial.survey_part[name]
        survey, count = trial.variance[name]
        a, b = trial.expected_variance[name]
        print(f"{name:<8} n {trial.sizes[name].min()}–{trial.sizes[name].max()}: "
              f"{x.mean():.2f} ± {x.std(ddof=1) / np.sqrt(x.size):.2f} wrongly placed; "
              f"survey noise alone {y.mean():.2f} ± {y.std(ddof=1) / np.sqrt(y.size):.2f}; "
              f"median variance survey {np.median(survey):.3f} (planner {np.median(a):.3f}), "
              f"counts {np.median(count):.3f} (planner {np.median(b):.3f})")
    c = trial.counts_only
    print(f"counts alone (infinitely many interviews): {c.mean():.2f} ± "
          f"{c.std(ddof=1) / np.sqrt(c.size):.2f} wrongly placed")
    for measure, label in (("wrong", "reduction vs equal"),
                           ("survey_part", "reduction vs equal, survey noise alone"),
                           ("counts_only", "infinitely many interviews vs equal")):
        cut, err = trial.reduction(measure)
        print(f"{label}: {cut:.1%} ± {err:.1%} over {waves} waves")


if __name__ == "__main__":
    main(sys.argv[1:])
