"""The sampling model of all county scores (`ScoreModel`): point estimates, survey covariance and
indicator counts, from which replicates and the ranking simulation redraw every composite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.core.parallel import draw_blocks, map_blocks
from pipelines.scheme.definitions import Component
from pipelines.stats.contrast import contrast
from pipelines.stats.normalise import normalise


@dataclass
class ScoreModel:
    """Everything needed to redraw every county's composite from its sampling distribution."""

    counties: list[str]
    components: tuple[Component, ...]
    survey_mean: np.ndarray         # C × Ks raw survey-component scores (0–100)
    survey_cov: np.ndarray          # C × Ks × Ks
    indicator_raw: np.ndarray       # C × Ki raw indicator values (rates where per 100k)
    indicator_count: np.ndarray     # C × Ki counts behind Poisson components (NaN otherwise)
    exposure: np.ndarray            # C population / 100k where per 100k, else 1
    vetoed: np.ndarray              # C bool
    survey_ids: list[str] = field(default_factory=list)
    indicator_ids: list[str] = field(default_factory=list)
    # C × Ki previous-period counts behind a change component (NaN otherwise, or where unknown)
    indicator_baseline: np.ndarray | None = None

    def _survey_components(self) -> list[Component]:
        return [c for c in self.components if c.source == "survey"]

    def _indicator_components(self) -> list[Component]:
        return [c for c in self.components if c.source == "indicator"]

    def random_survey(self) -> bool:
        """A normalised survey component: the composite must come from replicates."""
        return any(c.normalisation is not None for c in self._survey_components())

    def random_indicators(self) -> list[int]:
        return [k for k, c in enumerate(self._indicator_components()) if c.poisson]

    def points(self, survey_raw: np.ndarray, indicator_raw: np.ndarray) -> np.ndarray:
        """Points per component (… × C × K, component order of the scheme)."""
        survey = self._survey_components()
        indicator = self._indicator_components()
        out = []
        s = i = 0
        for comp in self.components:
            if comp.source == "survey":
                out.append(normalise(survey_raw[..., s], comp) * comp.weight / 100)
                s += 1
            else:
                out.append(normalise(indicator_raw[..., i], comp) * comp.weight / 100)
                i += 1
        assert s == len(survey) and i == len(indicator)
        return np.stack(np.broadcast_arrays(*out), axis=-1)

    def survey_weights(self) -> np.ndarray:
        """b: points per unit of each raw survey component (weight / 100)."""
        return np.array([c.weight for c in self._survey_components()]) / 100

    def survey_part(self) -> tuple[np.ndarray, np.ndarray]:
        """C points and C variances b'Σb of the survey part when its components are used as
        they are (R: `svycontrast` of the survey components)."""
        mean, cov = contrast(self.survey_mean, self.survey_cov, self.survey_weights())
        return mean[:, 0], cov[:, 0, 0]

    def survey_part_variance(self) -> np.ndarray:
        """C: variance of the survey part b'Σb when its components are used as they are."""
        return self.survey_part()[1]

    def fixed_points(self) -> np.ndarray:
        """C × K points at the point estimates."""
        return self.points(self.survey_mean, self.indicator_raw)

    def draw_survey(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """n × C × Ks draws of the survey components (multivariate normal per county)."""
        root = _psd_sqrt(self.survey_cov)
        noise = rng.standard_normal((n_draws, *self.survey_mean.shape))
        return self.survey_mean[None] + np.einsum("ckl,ncl->nck", root, noise)

    def draw_indicator_points(self, k: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """n × C points of indicator component k: the expected count is drawn from its Jeffreys
        posterior Gamma(count + ½) for every county, then all counties are normalised together.
        Not centred on the observed count: a small count's uncertainty is skewed, and percentile
        intervals of these draws keep that (a count of 0 is not proof of a rate of 0)."""
        comp = self._indicator_components()[k]
        count = self.indicator_count[:, k]
        if comp.change_of is not None:
            return self._draw_change_points(k, comp, n_draws, rng)
        known = ~np.isnan(count)
        # single precision: 7 digits are far finer than the draws' spread, and the float32
        # generator is about 1.5 times faster
        draws = rng.standard_gamma(np.where(known, count, 0.0) + 0.5, size=(n_draws, count.size),
                                   dtype=np.float32)
        if comp.normalisation in (None, "goalposts") and comp.role != "deduction":
            # points are affine in the count, clipped: done in place, without float64 copies
            scale, shift = _affine_points(comp, self.exposure[:, k], known)
            draws *= scale
            draws += shift
            if comp.normalisation == "goalposts":
                np.clip(draws, 0.0, comp.weight, out=draws)
            return draws
        raw = np.where(known, draws / self.exposure[:, k], np.nan)
        return normalise(raw, comp) * comp.weight / 100

    def _draw_change_points(self, k: int, comp: Component, n_draws: int,
                            rng: np.random.Generator) -> np.ndarray:
        """n × C points of a change in % of a count, 100·(λ₁/λ₀ − 1), with both periods' expected
        counts drawn from their Jeffreys posteriors: for large counts its variance is the delta
        method's 100²·(N₁/N₀)²·(1/N₁ + 1/N₀), for small ones it keeps the ratio's skew. A county
        whose previous count is unknown keeps its reported change."""
        count = self.indicator_count[:, k]
        baseline = (np.full_like(count, np.nan) if self.indicator_baseline is None
                    else self.indicator_baseline[:, k])
        known = ~np.isnan(count) & ~np.isnan(baseline)
        # single precision, in place, as for a count (`draw_indicator_points`)
        shape = (n_draws, count.size)
        change = rng.standard_gamma(np.where(known, count, 0.0) + 0.5, size=shape,
                                    dtype=np.float32)
        change /= rng.standard_gamma(np.where(known, baseline, 0.0) + 0.5, size=shape,
                                     dtype=np.float32)
        change -= 1
        change *= 100
        raw = np.where(known, change, self.indicator_raw[None, :, k].astype(np.float32))
        return normalise(raw, comp) * comp.weight / 100

    def component_index(self, comp_id: str) -> int:
        return [c.id for c in self.components].index(comp_id)

    def draw(self, n_draws: int, seed: int, *, chunk: int = 1000) -> np.ndarray:
        """n × C composite scores from the sampling distribution, every replicate re-normalising
        the relative components; vetoed counties score 0 in every draw. Blocks of draws are made
        in threads, each from its own child of `seed`."""
        steady = [k for k, c in enumerate(self.components)
                  if c.source == "indicator" and not c.poisson]
        base = self.fixed_points()[:, steady].sum(axis=1)
        out = np.empty((n_draws, len(self.counties)))
        vetoed = np.flatnonzero(self.vetoed)
        survey_part, survey_variance = self.survey_part()
        sd = np.sqrt(survey_variance)
        centre = survey_part + base

        def fill(block: tuple[slice, np.random.Generator]) -> None:
            rows, rng = block
            size = rows.stop - rows.start
            total = out[rows]                           # a view: filled in place
            if self.random_survey():
                survey = self.points(self.draw_survey(size, rng), self.indicator_raw[None])
                total[:] = survey[..., [k for k, c in enumerate(self.components)
                                        if c.source == "survey"]].sum(axis=-1) + base
            else:
                rng.standard_normal(out=total)
                total *= sd
                total += centre
            for k in self.random_indicators():
                total += self.draw_indicator_points(k, size, rng)
            total[:, vetoed] = 0.0

        map_blocks(fill, draw_blocks(n_draws, seed, chunk), out.size)
        return out


def _affine_points(comp: Component, exposure: np.ndarray,
                   known: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """(scale per county, shift): a count's points before clipping, count × scale + shift, for a
    component normalised by fixed goalposts or not at all (`normalise` × weight / 100, with the
    rate count / exposure); NaN scale where the count is unknown."""
    per_point = comp.weight / 100
    if comp.normalisation == "goalposts":
        per_point *= 100 / (comp.hi - comp.lo)
        origin = comp.lo if comp.direction != "lower" else comp.hi
    else:
        origin = 0.0 if comp.direction != "lower" else 100.0
    sign = -1.0 if comp.direction == "lower" else 1.0
    scale = np.where(known, sign * per_point / exposure, np.nan).astype(np.float32)
    return scale, np.float32(-sign * origin * per_point)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A square root L (L L' = cov) of each stacked covariance matrix, tolerating singular ones."""
    values, vectors = np.linalg.eigh(np.nan_to_num(cov))
    return vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
