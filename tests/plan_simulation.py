"""The sample plan against the generator's truth: a history of the sample province is surveyed
afresh (2021–2024), the plan for 2025 is made from it, and new 2025 waves are drawn from the truth
at each allocation (same total). What is counted: counties whose published 2025 score puts them on
the other side of the bottom-3 / bottom-10 line than their true composite does (ties at a line in,
vetoed counties at 0 both truly and as published), weighted by the line weights.

Run `uv run --locked python -m tests.plan_simulation [waves] [min_per_county] [survey]
[province=h]` for the figure (`survey`: the ranking on the survey components alone; province h:
the independent truth of base seed SEED + h)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from pipelines.ranking.forecast import history_of
from pipelines.ranking.plan import PlanSettings, bounded_shares, outlook, plan_sample
from pipelines.ranking.ranks import in_bottom
from pipelines.scheme.definitions import Definitions, load_definitions
from pipelines.stats.wave_scores import score_frames
from pipelines.synth.sample import SEED, WAVES, sample_counties, simulate_wave
from tests.simulation import true_composite, true_item_means

TARGET = WAVES[-1]


@dataclass(frozen=True)
class PlanTrial:
    wrong: dict[str, np.ndarray]    # allocation → wrongly placed counties per simulated wave
    sizes: dict[str, np.ndarray]

    def reduction(self) -> tuple[float, float]:
        """1 − planned / equal and its simulation error (delta method over paired waves)."""
        a, b = self.wrong["equal"], self.wrong["planned"]
        ratio = b.mean() / a.mean()
        grad = np.array([-ratio / a.mean(), 1 / a.mean()])
        cov = np.cov(np.vstack([a, b])) / a.size
        return 1 - ratio, float(np.sqrt(grad @ cov @ grad))


def survey_only(defs: Definitions) -> Definitions:
    """The scheme with its survey components alone, reweighted to 100 (a ranking on the survey
    only, as some provinces' 满意度测评 are): every point of its sampling error is the survey's."""
    survey = [c for c in defs.scheme.components if c.source == "survey"]
    total = sum(c.weight for c in survey)
    components = tuple(dataclasses.replace(c, weight=c.weight * 100 / total) for c in survey)
    return dataclasses.replace(defs, scheme=dataclasses.replace(defs.scheme,
                                                                components=components))


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
    planned = plan_sample(past, settings).table["n_planned"].to_numpy()
    equal = bounded_shares(np.ones(len(codes)), outlook(past), settings)
    sizes = {"equal": equal, "planned": planned}
    items = true_item_means(defs, TARGET, base_seed)
    wrong: dict[str, list[float]] = {name: [] for name in sizes}
    for r in range(waves):
        for name, n in sizes.items():
            sim = simulate_wave(TARGET, seed=80_000 + r, base_seed=base_seed,
                                sizes=dict(zip(codes, n.tolist(), strict=True)),
                                count_seed=90_000 + r)
            scores = score_frames(sim.responses, sim.indicators, counties, defs, wave=TARGET,
                                  seed=r)
            vetoed = scores.composite["veto"].to_numpy()
            truth = np.where(vetoed, 0.0, true_composite(defs, TARGET, items, sim.indicators,
                                                         counties, base_seed))
            published = scores.composite["score"].to_numpy()
            wrong[name].append(sum(w * np.sum(in_bottom(truth, k) != in_bottom(published, k))
                                   for k, w in weights.items()))
    return PlanTrial({name: np.array(v) for name, v in wrong.items()}, sizes)


def main(argv: list[str]) -> None:
    waves = int(argv[0]) if argv else 200
    minimum = int(argv[1]) if len(argv) > 1 else 200
    province = next((int(a[9:]) for a in argv if a.startswith("province=")), 0)
    trial = run(waves, minimum, survey="survey" in argv, base_seed=SEED + province)
    for name, x in trial.wrong.items():
        print(f"{name:<8} n {trial.sizes[name].min()}–{trial.sizes[name].max()}: "
              f"{x.mean():.2f} ± {x.std(ddof=1) / np.sqrt(x.size):.2f} wrongly placed")
    cut, err = trial.reduction()
    print(f"reduction vs equal: {cut:.1%} ± {err:.1%} over {waves} waves")


if __name__ == "__main__":
    main(sys.argv[1:])
