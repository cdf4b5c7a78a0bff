"""County scores from the scheme: answer codes → item points → components → 100-point composite.

Uncertainty, in the order a reader would check it:
- item and survey-component means are design-based (pipelines/estimation.py);
- the survey part of the composite is linear in the item means, so its variance is b'Σb with Σ the
  covariance of the county's item means from one per-respondent linearisation (items answered by the
  same respondent are correlated, and each item has its own denominator) — R: `svycontrast`;
- work indicators are administrative figures without sampling error, except those the scheme marks
  `poisson = true`: a count whose true rate is uncertain; replicates draw the county's expected count
  from its Jeffreys posterior Gamma(count + ½, 1) (not centred on the count: 0 found is not a rate
  of 0);
- a relative normalisation (min–max or z-score across counties) makes a county's points depend on the
  others' values, so every replicate re-normalises all counties (`ScoreModel.draw`). The composite's
  variance is b'Σb for the survey components used as they are, plus the replicate variance of the
  components that are random or relative (independent of the survey: different data); when a survey
  component is itself normalised, the whole composite is taken from the replicates;
- intervals are t intervals on the county's design degrees of freedom (PSUs − strata) while the
  composite is linear in the survey means; with random components they are percentile intervals
  of replicates (survey part at evenly spaced t quantiles), which keeps the skew of a small count
  (simulated coverage of the sample composite: tests/test_coverage.py);
- a veto (一票否决) sets the score to 0 with no uncertainty and records why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipelines.core.parallel import draw_blocks, map_blocks
from pipelines.scheme.definitions import Component, Definitions, Scheme
from pipelines.stats.estimation import (
    domain_codes,
    domain_sizes,
    estimates_frame,
    make_design,
    mean_covariance,
    rake,
    t_interval,
    t_quantiles,
)

POINTS_PREFIX = "p_"
VETO_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
            "==": np.equal}


# -- item scoring ------------------------------------------------------------------------------


def item_points(responses: pl.DataFrame, defs: Definitions) -> pl.DataFrame:
    """Add `p_<item>` (Float64 points; null = not part of that item's estimate) for each scored item.

    Blank answers are item non-response; 说不清 answers are excluded or scored as the scheme says.
    """
    item_ids = [item.id for item in defs.questionnaire.items if item.id in defs.scheme.items]
    points = item_point_matrix(responses, defs, item_ids)
    return responses.with_columns(pl.Series(POINTS_PREFIX + item_id, points[:, j], nan_to_null=True)
                                  for j, item_id in enumerate(item_ids))


def item_point_matrix(responses: pl.DataFrame, defs: Definitions,
                      item_ids: Sequence[str]) -> np.ndarray:
    """Rows × items points (NaN = not part of that item's estimate), by a lookup table per item:
    answer codes are small integers, so indexing a table is one pass where a replace is a join."""
    by_id = {item.id: item for item in defs.questionnaire.items}
    columns = [by_id[item_id].column for item_id in item_ids]
    if not columns:
        return np.empty((responses.height, 0))
    codes = responses.select(pl.col(columns).cast(pl.Int32, strict=False).fill_null(2**30)) \
        .to_numpy()                                       # a blank answer is no known code
    out = np.empty(codes.shape[::-1])               # items × rows, as mean_covariance sums them
    for j, item_id in enumerate(item_ids):
        item, scoring = by_id[item_id], defs.scheme.items[item_id]
        mapping = {int(code): float(points) for code, points in scoring.points.items()}
        if scoring.dont_know == "score":
            for answer in item.answers:
                if answer.dont_know:
                    mapping[int(answer.code)] = float(scoring.dont_know_points or 0.0)
        low, high = min(mapping, default=0), max(mapping, default=0)
        table = np.full(high - low + 3, np.nan)       # both ends: any other answer
        table[np.fromiter(mapping, dtype=np.int64) - low + 1] = list(mapping.values())
        np.take(table, codes[:, j] - (low - 1), mode="clip", out=out[j])
    return out.T


def scored_items(scheme: Scheme) -> list[str]:
    """Items that survey components use, in a stable order."""
    seen: dict[str, None] = {}
    for comp in scheme.components:
        for item_id in comp.items:
            seen.setdefault(item_id, None)
    return list(seen)


# -- normalisation -----------------------------------------------------------------------------


def normalise(raw: np.ndarray, comp: Component, reference: np.ndarray | None = None) -> np.ndarray:
    """0–100 points of a component from its raw values; the last axis runs over counties, so a
    relative normalisation uses the counties of the same replicate (or of `reference`, to move one
    county while holding the others' yardstick). NaN (no data) stays NaN."""
    x = np.asarray(raw, dtype=np.float64)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    sign = -1.0 if comp.direction == "lower" else 1.0
    method = comp.normalisation
    with np.errstate(invalid="ignore", divide="ignore"):
        if method is None:
            out = x if sign > 0 else 100.0 - x
        elif method == "goalposts":
            span = comp.hi - comp.lo
            out = (x - comp.lo) / span * 100 if sign > 0 else (comp.hi - x) / span * 100
            out = np.clip(out, 0.0, 100.0)
        elif method == "minmax":
            lo = np.nanmin(ref, axis=-1, keepdims=True)
            hi = np.nanmax(ref, axis=-1, keepdims=True)
            span = hi - lo
            share = np.clip(np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 1.0),
                            0.0, 1.0)
            out = np.where(np.isnan(x), np.nan, (share if sign > 0 else 1 - share) * 100)
            if np.all(span <= 0):
                out = np.where(np.isnan(x), np.nan, 100.0)
        elif method == "zscore":
            mean = np.nanmean(ref, axis=-1, keepdims=True)
            sd = np.nanstd(ref, axis=-1, keepdims=True)
            z = np.where(sd > 0, (x - mean) / np.where(sd > 0, sd, 1.0), 0.0)
            out = np.where(np.isnan(x), np.nan, np.clip(50 + 10 * sign * z, 0.0, 100.0))
        else:  # guarded by definitions.py
            raise ValueError(method)
    return out


# -- the sampling model of all county scores ---------------------------------------------------


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

    def survey_part_variance(self) -> np.ndarray:
        """C: variance of the survey part b'Σb when its components are used as they are."""
        b = self.survey_weights()
        return np.einsum("k,ckl,l->c", b, self.survey_cov, b)

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
        known = ~np.isnan(count)
        # single precision: 7 digits are far finer than the draws' spread, and the float32
        # generator is about 1.5 times faster
        draws = rng.standard_gamma(np.where(known, count, 0.0) + 0.5, size=(n_draws, count.size),
                                   dtype=np.float32)
        if comp.normalisation in (None, "goalposts"):
            # points are affine in the count, clipped: done in place, without float64 copies
            scale, shift = _affine_points(comp, self.exposure[:, k], known)
            draws *= scale
            draws += shift
            if comp.normalisation == "goalposts":
                np.clip(draws, 0.0, comp.weight, out=draws)
            return draws
        raw = np.where(known, draws / self.exposure[:, k], np.nan)
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
        sd = np.sqrt(self.survey_part_variance())
        centre = self.survey_mean @ self.survey_weights() + base

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


# -- scoring a wave ----------------------------------------------------------------------------


@dataclass
class WaveScores:
    """The scores of one wave; frames are one row per county (× item or component)."""

    wave: str
    items: pl.DataFrame
    components: pl.DataFrame
    composite: pl.DataFrame
    model: ScoreModel
    level: float


def _county_design_columns(responses: pl.DataFrame,
                           county: np.ndarray | None = None) -> tuple[pl.DataFrame, str | None]:
    """Strata are nested in counties (`__stratum`: an integer code per county × stratum; `county`
    is each row's county index when the caller has it); PSUs are used when the file has them, else
    respondents."""
    if county is None:
        county, _ = _dense_codes(responses["county_code"])
    stratum, _ = _dense_codes(responses["stratum"].fill_null(""))
    frame = responses.with_columns(
        pl.Series("__stratum", county * (int(stratum.max(initial=0)) + 1) + stratum))
    has_psu = "psu" in frame.columns and frame["psu"].null_count() < frame.height
    if has_psu:
        frame = frame.with_columns(pl.col("psu").fill_null(pl.col("respondent_id")))
    return frame, "psu" if has_psu else None


def _dense_codes(series: pl.Series) -> tuple[np.ndarray, list[str]]:
    """0..k−1 per distinct value of a string column without nulls, in order of first appearance
    (deterministic), and the values in code order."""
    runs = series.rle()
    values = runs.struct.field("value").unique(maintain_order=True)
    return _codes_of_runs(runs, values), values.to_list()


def _category_codes(series: pl.Series, categories: Sequence[str]) -> np.ndarray:
    """Each cell's index in `categories` (−1 for a value not among them, or null)."""
    return _codes_of_runs(series.rle(), pl.Series(categories, dtype=pl.String))


def _codes_of_runs(runs: pl.Series, categories: pl.Series) -> np.ndarray:
    """Codes looked up once per run of equal adjacent cells (`Series.rle`): survey rows come
    grouped by county and by stratum within it, so a national wave's 1.1 million cells are a few
    thousand runs, where looking up every cell hashed a million strings (25–40 ms a column)."""
    codes = runs.struct.field("value").cast(pl.Enum(categories), strict=False).to_physical()
    return np.repeat(codes.cast(pl.Int64).fill_null(-1).to_numpy(),
                     runs.struct.field("len").to_numpy())


def score_frames(responses: pl.DataFrame, indicators: pl.DataFrame, counties: pl.DataFrame,
                 defs: Definitions, *, wave: str = "", margins: pl.DataFrame | None = None,
                 replicates: int | None = None, seed: int | None = None) -> WaveScores:
    """Score one wave from its response rows, long indicator rows (county_code, indicator_id,
    value) and the county list (county_code, county_name, city_code, city_name, population)."""
    scheme = defs.scheme
    settings = scheme.estimation
    level = scheme.confidence_level
    replicates = replicates or settings.replicates
    seed = settings.seed if seed is None else seed
    county_codes = counties["county_code"].to_list()
    n_counties = len(county_codes)

    domain_codes = _category_codes(responses["county_code"], county_codes)
    if (domain_codes < 0).any():
        unknown = responses["county_code"].filter(pl.Series(domain_codes < 0)).unique().to_list()
        raise ValueError(f"调查数据中有不在区县名单中的代码：{'、'.join(map(str, unknown[:5]))}")
    frame, psu = _county_design_columns(responses, domain_codes)
    if settings.rake_to_margins and margins is not None and margins.height:
        frame = _rake_to_county_margins(frame, margins)
    design = make_design(frame, weight="weight", strata="__stratum", psu=psu,
                         lonely_psu=settings.lonely_psu)

    item_ids = scored_items(scheme)
    y = item_point_matrix(frame, defs, item_ids)
    est = mean_covariance(design, y, domain_codes, n_counties, pairs=True)
    everyone = domain_sizes(design, domain_codes, n_counties)

    items_frame = estimates_frame(est, pl.DataFrame({"county_code": county_codes}), item_ids,
                                  level, variable_column="item_id")

    survey_comps = [c for c in scheme.components if c.source == "survey"]
    combine = np.zeros((len(survey_comps), len(item_ids)))
    for k, comp in enumerate(survey_comps):
        weights = np.array(comp.item_weights) / sum(comp.item_weights)
        for item_id, wt in zip(comp.items, weights, strict=False):
            combine[k, item_ids.index(item_id)] = wt
    survey_mean = est.mean @ combine.T
    survey_cov = np.einsum("kj,cjl,ml->ckm", combine, est.cov, combine)

    indicator_comps = [c for c in scheme.components if c.source == "indicator"]
    wide = _indicator_matrix(indicators, county_codes)
    population = counties["population"].cast(pl.Float64).to_numpy()
    indicator_raw = np.full((n_counties, len(indicator_comps)), np.nan)
    indicator_count = np.full_like(indicator_raw, np.nan)
    exposure = np.ones_like(indicator_raw)
    for k, comp in enumerate(indicator_comps):
        values = wide.get(comp.indicator, np.full(n_counties, np.nan))
        if comp.per_100k_population:
            exposure[:, k] = population / 100_000
        indicator_raw[:, k] = values / exposure[:, k]
        if comp.poisson:
            indicator_count[:, k] = values

    veto_reason = _vetoes(scheme, wide, survey_comps, survey_mean, n_counties)
    vetoed = np.array([bool(r) for r in veto_reason])
    model = ScoreModel(county_codes, scheme.components, survey_mean, survey_cov, indicator_raw,
                       indicator_count, exposure, vetoed, [c.id for c in survey_comps],
                       [c.id for c in indicator_comps])

    points = model.fixed_points()                                   # C × K
    replicate_points = _replicate_points(model, replicates, seed)
    replicate_var = {key: column_variances(draws) for key, draws in replicate_points.items()}
    df = everyone.df
    components_frame = _components_frame(model, points, replicate_points, replicate_var, df,
                                         level)
    raw_score = points.sum(axis=1)
    score_se = _composite_se(model, replicate_var)
    low, high = _composite_interval(model, points, replicate_points, raw_score, score_se, df,
                                    level)
    score = np.where(vetoed, 0.0, raw_score)
    composite = counties.select("county_code", "county_name", "city_code", "city_name").with_columns(
        pl.Series("score", score), pl.Series("se", np.where(vetoed, 0.0, score_se)),
        pl.Series("ci_low", np.where(vetoed, 0.0, low)),
        pl.Series("ci_high", np.where(vetoed, 0.0, high)),
        pl.Series("n", everyone.n).cast(pl.Int64),
        pl.Series("n_eff", everyone.n_eff),
        pl.Series("df", df).cast(pl.Int64),
        pl.Series("veto", vetoed),
        pl.Series("veto_reason", veto_reason, dtype=pl.String),
        pl.Series("score_before_veto", raw_score),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
    wide_components = components_frame.pivot("component_id", index="county_code", values="score")
    composite = composite.join(wide_components, on="county_code", how="left",
                               maintain_order="left")
    return WaveScores(wave, items_frame, components_frame, composite, model, level)


def _rake_to_county_margins(frame: pl.DataFrame, margins: pl.DataFrame) -> pl.DataFrame:
    """Rake the weights of every county to its age-group, sex and urban/rural margins at once."""
    groups = margins["age_group"].unique().sort().to_list()
    bounds = [(g, *map(int, g.split("-"))) for g in groups]
    age_group = pl.lit(None, dtype=pl.String)
    for label, lo, hi in reversed(bounds):
        age_group = pl.when(pl.col("age").is_between(lo, hi)).then(pl.lit(label)).otherwise(age_group)
    frame = frame.with_columns(age_group.alias("age_group"))
    tables = {var: margins.group_by("county_code", var).agg(pl.col("population").sum())
              for var in ("age_group", "sex", "urban_rural")}
    return frame.with_columns(rake(frame, weight="weight", margins=tables, by="county_code"))


def _indicator_matrix(indicators: pl.DataFrame, county_codes: Sequence[str]) -> dict[str, np.ndarray]:
    """indicator id → values in county order (NaN where missing; the first row of a repeated
    county × indicator counts)."""
    if indicators.height == 0:
        return {}
    county = indicators["county_code"].cast(pl.Enum(list(county_codes)), strict=False) \
        .to_physical().fill_null(-1).to_numpy().astype(np.int64)
    names = indicators["indicator_id"].cast(pl.String).fill_null("")
    indicator, labels = _dense_codes(names)
    value = indicators["value"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    known = county >= 0
    n = len(county_codes)
    key = indicator[known] * n + county[known]
    _, first = np.unique(key, return_index=True)
    wide = np.full((int(indicator.max()) + 1, n), np.nan)
    wide.reshape(-1)[key[first]] = value[known][first]
    return {label: wide[code] for code, label in enumerate(labels) if label}


def _vetoes(scheme: Scheme, wide: dict[str, np.ndarray], survey_comps: list[Component],
            survey_mean: np.ndarray, n_counties: int) -> list[str | None]:
    reasons: list[list[str]] = [[] for _ in range(n_counties)]
    for veto in scheme.vetoes:
        if veto.subject.startswith("component:"):
            comp_id = veto.subject.removeprefix("component:")
            index = [c.id for c in survey_comps].index(comp_id) if comp_id in \
                [c.id for c in survey_comps] else None
            values = survey_mean[:, index] if index is not None else np.full(n_counties, np.nan)
        else:
            values = wide.get(veto.subject, np.full(n_counties, np.nan))
        with np.errstate(invalid="ignore"):
            fired = VETO_OPS[veto.op](values, veto.value) & ~np.isnan(values)
        for c in np.flatnonzero(fired):
            reasons[c].append(veto.reason)
    return ["；".join(r) if r else None for r in reasons]


def _replicate_points(model: ScoreModel, n_draws: int, seed: int,
                      chunk: int = 500) -> dict[object, np.ndarray]:
    """Replicate points (n × C) of every component that is random or relative to random values,
    keyed by component index; key "survey" holds the survey part when it needs replicates.
    Blocks of replicates are drawn in threads, each from its own child of `seed`."""
    survey = [k for k, c in enumerate(model.components) if c.source == "survey"]
    relative_survey = [k for k in survey if model.components[k].normalisation is not None]
    indicator_comps = [c for c in model.components if c.source == "indicator"]
    random_indicators = {i: model.component_index(indicator_comps[i].id)
                         for i in model.random_indicators()}
    keys: list[object] = [*relative_survey, "survey"] if model.random_survey() else []
    keys += list(random_indicators.values())
    out = {key: np.empty((n_draws, len(model.counties))) for key in keys}

    def fill(block: tuple[slice, np.random.Generator]) -> None:
        rows, rng = block
        size = rows.stop - rows.start
        if model.random_survey():
            points = model.points(model.draw_survey(size, rng), model.indicator_raw[None])
            for k in relative_survey:
                out[k][rows] = points[..., k]
            out["survey"][rows] = points[..., survey].sum(axis=-1)
        for i, k in random_indicators.items():
            out[k][rows] = model.draw_indicator_points(i, size, rng)

    if keys:
        map_blocks(fill, draw_blocks(n_draws, seed, chunk),
                   n_draws * len(model.counties) * len(keys))
    return out


def column_variances(draws: np.ndarray) -> np.ndarray:
    """`draws.var(axis=0, ddof=1)` (the same sums in the same order), blocks of counties in
    threads: NumPy reduces on one core, 28 ms for a national wave's 2,000 × 2,850 replicates."""
    blocks = [slice(start, start + 512) for start in range(0, draws.shape[1], 512)]
    if len(blocks) < 2:
        return draws.var(axis=0, ddof=1)
    return np.concatenate(map_blocks(lambda columns: draws[:, columns].var(axis=0, ddof=1),
                                     blocks, draws.size))


def column_quantiles(draws: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """np.quantile(draws, probs, axis=0) (linear interpolation), county by county."""
    return block_quantiles(lambda columns: np.ascontiguousarray(draws[:, columns].T),
                           draws.shape[1], probs, draws.size)


def block_quantiles(rows_of: Callable[[slice], np.ndarray], n_columns: int,
                    probs: Sequence[float], elements: int) -> np.ndarray:
    """Quantiles (as np.quantile; NaN for a county with a NaN draw) of each row of
    `rows_of(columns)`: a fresh counties × draws array for a block of counties, which is reordered
    in place. Blocks run in threads and are built where they are used, so no replicates × counties
    temporary is made. Each quantile takes one partition at its lower order statistic (NumPy's
    vectorised select is several times faster for one kth than for a list) and the minimum of the
    rest as the next one."""

    def block(columns: slice) -> np.ndarray:
        rows = rows_of(columns)
        n = rows.shape[1]
        out = []
        for p in probs:
            position = p * (n - 1)
            below = int(np.floor(position))
            rows.partition(below, axis=1)              # any order of a row is the same sample
            low = rows[:, below]
            high = rows[:, below + 1:].min(axis=1) if below + 1 < n else low
            out.append(low + (position - below) * (high - low))
        quantiles = np.stack(out)
        quantiles[:, np.isnan(rows).any(axis=1)] = np.nan
        return quantiles

    blocks = [slice(start, start + 512) for start in range(0, n_columns, 512)]
    if not blocks:
        return np.empty((len(probs), 0))
    return np.concatenate(map_blocks(block, blocks, elements), axis=1)


def _composite_se(model: ScoreModel, replicate_var: dict[object, np.ndarray]) -> np.ndarray:
    """Survey part (b'Σb, or its replicates) plus the independent random indicator parts."""
    if "survey" in replicate_var:
        variance = replicate_var["survey"]
    else:
        variance = model.survey_part_variance()
    for key, var in replicate_var.items():
        if key != "survey" and model.components[key].source == "indicator":
            variance = variance + var
    return np.sqrt(variance)


def _composite_interval(model: ScoreModel, points: np.ndarray,
                        replicate_points: dict[object, np.ndarray], score: np.ndarray,
                        se: np.ndarray, df: np.ndarray,
                        level: float) -> tuple[np.ndarray, np.ndarray]:
    """A t interval when the composite is linear in the survey means; otherwise the percentile
    interval of replicates: the survey part at t quantiles (or its own replicates), plus the random
    components' replicates, plus the fixed points (summed block by block of counties)."""
    if not replicate_points:
        return t_interval(score, se, df, level)
    fixed = [k for k, c in enumerate(model.components)
             if c.source != "survey" and k not in replicate_points]
    shift = points[:, fixed].sum(axis=1)
    random = [draws for k, draws in replicate_points.items()
              if k == "survey" or model.components[k].source != "survey"]
    n_draws = random[0].shape[0]
    grid = None
    if "survey" not in replicate_points:
        # The survey part's t distribution is sampled at n evenly spaced quantiles (stratified
        # sampling: its empirical distribution is exact, with no Monte Carlo noise), each paired
        # with one replicate of the random components, which are independent draws: the sum's
        # percentiles estimate those of the convolution without t draws.
        shift = shift + model.survey_mean @ model.survey_weights()
        survey_se = np.sqrt(model.survey_part_variance())
        distinct_df, county_df = np.unique(np.where(df >= 1, df, 1), return_inverse=True)
        grid = t_quantiles(distinct_df[:, None], (np.arange(n_draws)[None, :] + 0.5) / n_draws)

    def rows_of(columns: slice) -> np.ndarray:
        rows = np.ascontiguousarray(random[0][:, columns].T)
        for draws in random[1:]:
            rows += draws[:, columns].T
        rows += shift[columns, None]
        if grid is not None:
            rows += survey_se[columns, None] * grid[county_df[columns]]
        return rows

    tail = (1 - level) / 2
    low, high = block_quantiles(rows_of, shift.size, (tail, 1 - tail), n_draws * shift.size)
    return low, high


def _components_frame(model: ScoreModel, points: np.ndarray,
                      replicate_points: dict[object, np.ndarray],
                      replicate_var: dict[object, np.ndarray], df: np.ndarray,
                      level: float) -> pl.DataFrame:
    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "raw", "score", "se", "ci_low", "ci_high", "points", "points_se")}
    s = i = 0
    for k, comp in enumerate(model.components):
        weight = comp.weight / 100
        score = points[:, k] / weight
        if k in replicate_points:
            se = np.sqrt(replicate_var[k]) / weight
        elif comp.source == "survey":
            se = np.sqrt(model.survey_cov[:, s, s])
        else:
            se = np.zeros_like(score)
        if comp.source == "survey":
            raw = model.survey_mean[:, s]
            low, high = t_interval(score, se, df, level)
            s += 1
        else:
            raw = model.indicator_raw[:, i]
            if k in replicate_points:
                tail = (1 - level) / 2
                low, high = column_quantiles(replicate_points[k], (tail, 1 - tail)) / weight
            else:
                low, high = score, score
            i += 1
        values_of = (raw, score, se, low, high, points[:, k], se * weight)
        for name, values in zip(columns, values_of, strict=False):
            columns[name].append(np.asarray(values, dtype=np.float64))
    n_counties, comps = len(model.counties), model.components
    county = np.tile(np.arange(n_counties), len(comps))
    component = np.repeat(np.arange(len(comps)), n_counties)
    return pl.DataFrame([
        pl.Series("county_code", model.counties, dtype=pl.String).gather(county),
        *(pl.Series(name, [getattr(c, name.removeprefix("component_")) for c in comps],
                    dtype=pl.String).gather(component)
          for name in ("component_id", "label", "source")),
        pl.Series("weight", np.array([c.weight for c in comps])).gather(component),
        *(pl.Series(name, np.concatenate(parts), nan_to_null=True)
          for name, parts in columns.items()),
    ])


def survey_score_by(responses: pl.DataFrame, defs: Definitions, by: str,
                    level: float | None = None) -> pl.DataFrame:
    """The survey part of the composite, rescaled to 0–100, for each `by` domain (e.g. the
    townships of one county) as domains of the county's design; small domains get wide intervals.
    Survey components are taken as they are (relative normalisations need all counties)."""
    scheme = defs.scheme
    level = level or scheme.confidence_level
    frame, psu = _county_design_columns(responses.filter(pl.col(by).is_not_null()))
    design = make_design(frame, weight="weight", strata="__stratum", psu=psu,
                         lonely_psu=scheme.estimation.lonely_psu)
    domain, keys = domain_codes(frame, [by])
    item_ids = scored_items(scheme)
    y = item_point_matrix(frame, defs, item_ids)
    est = mean_covariance(design, y, domain, keys.height, pairs=True)
    coefficients = np.zeros(len(item_ids))
    survey = [c for c in scheme.components if c.source == "survey"]
    total_weight = sum(c.weight for c in survey)
    for comp in survey:
        shares = np.array(comp.item_weights) / sum(comp.item_weights)
        for item_id, wt in zip(comp.items, shares, strict=False):
            coefficients[item_ids.index(item_id)] += comp.weight / total_weight * wt
    score = est.mean @ coefficients
    se = np.sqrt(np.einsum("j,djk,k->d", coefficients, est.cov, coefficients))
    everyone = domain_sizes(design, domain, keys.height)
    low, high = t_interval(score, se, everyone.df, level)
    return keys.with_columns(pl.Series("score", score), pl.Series("se", se),
                             pl.Series("ci_low", low), pl.Series("ci_high", high),
                             pl.Series("n", everyone.n).cast(pl.Int64)) \
        .with_columns(pl.col(pl.Float64).fill_nan(None)).sort("score", nulls_last=True)
