"""Generator of the bundled sample province 示范省 (`python -m pipelines sample`).

Deterministic from a seed; writes `surveys/sample/`. The files are bundled so a first run needs no
generation, and a test regenerates them and compares bytes.

The model (documented because later tests check intervals and risks against its truth):
- latent county quality q[c, w] = city effect + county effect + county trend · (year − 2023)
  + wave noise; a few counties follow scripted paths (listed, delisted, one relapse) and in every
  wave the counties around the bottom-3 and bottom-10 cut lines are pulled within a sliver of each
  other, so that ranking there is genuinely uncertain.
- each respondent has a cell (age group × sex × urban/rural) and a personal effect r ~ N(0, σ_r²)
  shared by all items (so items correlate within a respondent); an ordinal item answers by an ordered
  probit on η = a_item + b_item·q + cell effect + r + ε. Marginally y* − η ~ N(0, 1 + σ_r²), which
  makes the population share of every answer code exact (written to truth/answer_shares.csv.gz).
- 说不清 depends on the cell only (older, rural: more), item non-response is missing completely at
  random, so the weighted estimator of the answering population's mean is unbiased.
- strata: mode (手机/固话) × urban/rural with a fixed allocation that over-samples urban phones;
  design weights are post-stratified to the county's age × sex × urban/rural margins.
- official decisions follow the published ranking (scored by pipelines/stats/wave_scores.py from the very
  files written here): bottom 3 → listed; a listed county outside the bottom 10 is inspected and
  delisted when the 摘帽 targets are met (an inspection can fail).
"""

from __future__ import annotations

import functools
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr  # the standard normal CDF (scipy.stats takes a second to import)

from pipelines.scheme.definitions import SURVEYS_DIR

SEED = 20251123
WAVES = ("2021", "2022", "2023", "2024", "2025")
PROVINCE_CODE = "99"  # not assigned in GB/T 2260: every sample code is visibly fictional
PROVINCE_NAME = "示范省"
CITY_SIZES = (12, 11, 10, 10, 10, 9, 9, 9, 8)
AGE_GROUPS = ("18-29", "30-39", "40-49", "50-65")
AGE_RANGES = ((18, 29), (30, 39), (40, 49), (50, 65))
SEXES = ("男", "女")
AREAS = ("城镇", "农村")
SIGMA_R = 0.6  # respondent effect shared across items
SAMPLE_DIR = SURVEYS_DIR / "sample"

# Invented names from rare characters; checked against the national list of county-level names.
_CITY_FIRST = "澄霁沅滢溆潆淇澈沣"
_COUNTY_FIRST = "檀萤鹭蘅苓芷箬璟珂翎漪蓼樾栎蔺荇茈蘩莼菡楸榧椿桉棣楝枳槭芃蕖"
_SECOND = "屿坞畈渚坳汊矶埠塬峪垭墩汀"
_TOWN_FIRST = "杉枫柚橙梓榴荷莲菱蒲葭苇芦蓉"
_TOWN_SECOND = "湄滩汭洄涧溪泮沚岙岗塆垄"

# Item response model of the sample questionnaire: answer codes from worst to best, cut points of
# the latent scale, loading on county quality, 说不清 base rate. Knowledge items: code 1 is right.
_ORDINAL = {
    "satisfaction": ((5, 4, 3, 2, 1), (-2.6, -2.0, -1.2, -0.1), 1.0, 0.04),
    "seriousness": ((1, 2, 3, 4, 5), (-2.4, -1.7, -0.8, 0.2), 0.9, 0.06),
    "seen_nearby": ((1, 2), (-1.9,), 0.8, 0.05),
    "publicity": ((3, 2, 1), (-1.5, 0.0), 0.7, 0.0),
    "safety": ((5, 4, 3, 2, 1), (-2.8, -2.1, -1.3, -0.2), 0.8, 0.03),
    "knows_report": ((2, 1), (-1.0,), 0.6, 0.0),
}
_KNOWLEDGE = {"know_law": (1.9, 0.4, 0.03, (2,)), "know_addiction": (1.4, 0.4, 0.05, (2,)),
              "know_day": (0.2, 0.5, 0.12, (2, 3))}
# cell effects on the latent scale: age group (young → old), rural, female
_AGE_EFFECT = np.array([-0.10, 0.0, 0.08, 0.15])
_AGE_KNOWLEDGE = np.array([0.25, 0.15, 0.0, -0.25])
_RURAL_EFFECT, _FEMALE_EFFECT = 0.05, 0.03
_RURAL_KNOWLEDGE = -0.2
_DK_AGE = np.array([-0.4, -0.2, 0.1, 0.5])
_MISSING_RATE = 0.012
_DONT_KNOW_CODE = 9  # 说不清 / 不知道 in the sample questionnaire


@dataclass(frozen=True)
class County:
    code: str
    name: str
    city_code: str
    city_name: str
    kind: str  # 区 / 县 / 市
    population: int
    urban_share: float
    townships: tuple[tuple[str, str], ...]  # (name, 城镇/农村)


# ---------------------------------------------------------------------------------------------
# geography


def _make_geography(rng: np.random.Generator) -> list[County]:
    pairs = [f + s for f in _COUNTY_FIRST for s in _SECOND]
    names = [pairs[i] for i in rng.permutation(len(pairs))]
    counties: list[County] = []
    used = 0
    for city_index, size in enumerate(CITY_SIZES):
        city_code = f"{PROVINCE_CODE}{city_index + 1:02d}"
        city_name = _CITY_FIRST[city_index] + _SECOND[(city_index * 5) % len(_SECOND)] + "市"
        for k in range(size):
            kind = "区" if k < 2 else ("市" if k == 2 and city_index % 2 == 0 else "县")
            base_share = {"区": 0.80, "市": 0.60, "县": 0.42}[kind]
            urban_share = float(np.clip(base_share + rng.normal(0, 0.07), 0.22, 0.92))
            population = int(round(float(np.exp(rng.normal(np.log(420_000), 0.45))), -2))
            population = int(np.clip(population, 120_000, 1_600_000))
            townships = _make_townships(rng, urban_share)
            counties.append(County(f"{city_code}{k + 1:02d}", names[used] + kind, city_code,
                                   city_name, kind, population, round(urban_share, 3), townships))
            used += 1
    return counties


def _make_townships(rng: np.random.Generator, urban_share: float) -> tuple[tuple[str, str], ...]:
    count = int(rng.integers(6, 13))
    n_urban = max(1, int(round(count * urban_share * 0.7)))
    combos = [f + s for f in _TOWN_FIRST for s in _TOWN_SECOND]
    picks = rng.choice(len(combos), size=count, replace=False)
    towns = []
    for i, pick in enumerate(picks):
        area = "城镇" if i < n_urban else "农村"
        suffix = "街道" if area == "城镇" else ("镇" if i % 3 else "乡")
        towns.append((combos[pick] + suffix, area))
    return tuple(towns)


def _margins(counties: list[County]) -> pl.DataFrame:
    """Adult population (18–65) by county × age group × sex × urban/rural."""
    age_mix = {"城镇": np.array([0.27, 0.27, 0.24, 0.22]), "农村": np.array([0.18, 0.22, 0.27, 0.33])}
    sex_mix = np.array([0.51, 0.49])
    rows = []
    for county in counties:
        adults = county.population * 0.66
        for area, share in (("城镇", county.urban_share), ("农村", 1 - county.urban_share)):
            for a, age_group in enumerate(AGE_GROUPS):
                for s, sex in enumerate(SEXES):
                    rows.append((county.code, age_group, sex, area,
                                 int(round(adults * share * age_mix[area][a] * sex_mix[s]))))
    return pl.DataFrame(rows, schema=["county_code", "age_group", "sex", "urban_rural",
                                      "population"], orient="row")


# ---------------------------------------------------------------------------------------------
# latent quality and its story


def _latent_quality(rng: np.random.Generator, counties: list[County]) -> np.ndarray:
    """q[c, w]; scripted paths for the listed counties and tight clusters at the cut lines."""
    n, waves = len(counties), len(WAVES)
    city_index = np.array([int(c.city_code[2:]) - 1 for c in counties])
    city_effect = rng.normal(0, 0.12, size=len(CITY_SIZES))[city_index]
    county_effect = rng.normal(0, 0.22, size=n)
    trend = rng.normal(0.03, 0.04, size=n)
    years = np.arange(waves) - 2
    q = (city_effect + county_effect)[:, None] + trend[:, None] * years[None, :] \
        + rng.normal(0, 0.05, size=(n, waves))
    # scripted paths (index order chosen so that each sits in a different city)
    script = {
        5: (-1.00, -0.95, -0.30, -0.10, 0.00),    # listed 2021, out of the bottom 10 in 2023
        27: (-0.98, -0.45, -0.25, -0.05, 0.02),   # listed 2021, climbs out in 2022
        50: (-0.96, -0.92, -0.88, -0.28, -0.12),  # listed 2021, delisted 2024
        70: (-0.60, -0.97, -0.27, -0.20, -0.99),  # listed 2022, delisted 2023, relapses 2025
    }
    for index, path in script.items():
        q[index] = path
    for w in range(waves):
        order = np.argsort(q[:, w], kind="stable")
        # around the bottom-3 and bottom-10 lines: places 2–5 and 9–12 within a sliver
        _tighten(q, w, order[1:5], spread=0.012, rng=rng, keep=script)
        _tighten(q, w, order[8:12], spread=0.010, rng=rng, keep=script)
    return q


def _tighten(q: np.ndarray, w: int, members: np.ndarray, spread: float, rng: np.random.Generator,
             keep: dict) -> None:
    """Pull the free counties among `members` to within `spread` of their mean."""
    free = [i for i in members if i not in keep]
    if len(free) < 2:
        return
    centre = float(np.mean(q[free, w]))
    offsets = np.linspace(-spread, spread, len(free))
    rng.shuffle(offsets)
    q[free, w] = centre + offsets


# ---------------------------------------------------------------------------------------------
# respondents


def _cell_probabilities(margins: pl.DataFrame, county: str) -> dict[str, np.ndarray]:
    """Population shares by (area) → array[age, sex]."""
    sub = margins.filter(pl.col("county_code") == county)
    out = {}
    for area in AREAS:
        grid = np.zeros((len(AGE_GROUPS), len(SEXES)))
        for row in sub.filter(pl.col("urban_rural") == area).iter_rows(named=True):
            grid[AGE_GROUPS.index(row["age_group"]), SEXES.index(row["sex"])] = row["population"]
        out[area] = grid
    return out


def _draw_respondents(rng: np.random.Generator, county: County, cells: dict[str, np.ndarray],
                      q: float, size: tuple[int, int] = (285, 321)) -> dict[str, np.ndarray]:
    n = int(rng.integers(*size))
    urban_sample_share = min(0.9, county.urban_share + 0.15)
    n_mobile = int(round(n * 0.8))
    counts = {("手机", "城镇"): int(round(n_mobile * urban_sample_share))}
    counts[("手机", "农村")] = n_mobile - counts[("手机", "城镇")]
    n_land = n - n_mobile
    counts[("固话", "城镇")] = int(round(n_land * urban_sample_share))
    counts[("固话", "农村")] = n_land - counts[("固话", "城镇")]
    tilt = {"手机": np.array([1.35, 1.15, 0.9, 0.65]), "固话": np.array([0.45, 0.75, 1.2, 1.7])}
    mode, area, age_group, sex = [], [], [], []
    for (m, a), k in counts.items():
        grid = cells[a] * tilt[m][:, None]
        p = (grid / grid.sum()).ravel()
        picks = rng.choice(p.size, size=k, p=p)
        mode += [m] * k
        area += [a] * k
        age_group += list(picks // len(SEXES))
        sex += list(picks % len(SEXES))
    age_group_arr = np.array(age_group)
    lo = np.array([r[0] for r in AGE_RANGES])[age_group_arr]
    hi = np.array([r[1] for r in AGE_RANGES])[age_group_arr]
    return {
        "mode": np.array(mode), "area": np.array(area), "age_group": age_group_arr,
        "sex": np.array(sex), "age": rng.integers(lo, hi + 1),
        "r": rng.normal(0, SIGMA_R, size=n), "q": q,
    }


def _poststratified_weights(resp: dict[str, np.ndarray], cells: dict[str, np.ndarray]) -> np.ndarray:
    """Weight = N_cell / n_cell; a (sex, area) group with an empty age cell is weighted as a whole."""
    weights = np.zeros(resp["r"].size)
    for area in AREAS:
        for s in range(len(SEXES)):
            in_group = (resp["area"] == area) & (resp["sex"] == s)
            sample_counts = np.array([np.sum(in_group & (resp["age_group"] == a))
                                      for a in range(len(AGE_GROUPS))])
            pop = cells[area][:, s]
            if np.all(sample_counts > 0):
                for a in range(len(AGE_GROUPS)):
                    weights[in_group & (resp["age_group"] == a)] = pop[a] / sample_counts[a]
            elif in_group.any():
                weights[in_group] = pop.sum() / in_group.sum()
    return weights


def _dont_know_probability(base: float, age_group: np.ndarray, rural: np.ndarray) -> np.ndarray:
    if base <= 0:
        return np.zeros(np.shape(age_group))
    logit = np.log(base / (1 - base)) + _DK_AGE[age_group] + 0.3 * rural
    return 1 / (1 + np.exp(-logit))


def _linear_predictor(item: str, q: float, age_group: np.ndarray, rural: np.ndarray,
                      female: np.ndarray) -> np.ndarray:
    if item in _KNOWLEDGE:
        intercept, loading, _, _ = _KNOWLEDGE[item]
        return intercept + loading * q + _AGE_KNOWLEDGE[age_group] + _RURAL_KNOWLEDGE * rural
    loading = _ORDINAL[item][2]
    return loading * q + _AGE_EFFECT[age_group] + _RURAL_EFFECT * rural + _FEMALE_EFFECT * female


def _answer(rng: np.random.Generator, item: str, resp: dict[str, np.ndarray]) -> np.ndarray:
    """Answer codes for one item (0 = blank / item non-response)."""
    n = resp["r"].size
    rural = (resp["area"] == "农村").astype(float)
    eta = _linear_predictor(item, resp["q"], resp["age_group"], rural, resp["sex"].astype(float))
    latent = eta + resp["r"] + rng.normal(0, 1, size=n)
    if item in _KNOWLEDGE:
        _, _, dk_base, wrong_codes = _KNOWLEDGE[item]
        codes = np.where(latent > 0, 1, np.array(wrong_codes)[rng.integers(0, len(wrong_codes), n)])
    else:
        order, cuts, _, dk_base = _ORDINAL[item]
        codes = np.array(order)[np.searchsorted(np.array(cuts), latent)]
    dont_know = rng.random(n) < _dont_know_probability(dk_base, resp["age_group"], rural)
    codes = np.where(dont_know, _DONT_KNOW_CODE, codes)
    missing = rng.random(n) < _MISSING_RATE
    return np.where(missing, 0, codes)


def _true_answer_shares(item: str, q: float, cells: dict[str, np.ndarray]) -> dict[int, float]:
    """Exact population share of each answer code (given the county's margins)."""
    scale = np.sqrt(1 + SIGMA_R**2)
    shares: dict[int, float] = {}
    total = sum(grid.sum() for grid in cells.values())
    for area, grid in cells.items():
        rural = 1.0 if area == "农村" else 0.0
        for a in range(len(AGE_GROUPS)):
            for s in range(len(SEXES)):
                weight = grid[a, s] / total
                eta = float(_linear_predictor(item, q, np.array(a), np.array(rural),
                                              np.array(float(s))))
                if item in _KNOWLEDGE:
                    _, _, dk_base, wrong_codes = _KNOWLEDGE[item]
                    p_right = ndtr(eta / scale)
                    probs = {1: p_right}
                    for code in wrong_codes:
                        probs[code] = (1 - p_right) / len(wrong_codes)
                else:
                    order, cuts, _, dk_base = _ORDINAL[item]
                    cdf = np.concatenate([[0.0], ndtr((np.array(cuts) - eta) / scale), [1.0]])
                    probs = dict(zip(order, np.diff(cdf), strict=False))
                p_dk = float(_dont_know_probability(dk_base, np.array(a), np.array(rural)))
                for code, p in probs.items():
                    shares[code] = shares.get(code, 0.0) + weight * (1 - p_dk) * float(p)
                if dk_base > 0:
                    shares[9] = shares.get(9, 0.0) + weight * p_dk
    return shares


# ---------------------------------------------------------------------------------------------
# indicators and decisions


def _indicators(rng: np.random.Generator, counties: list[County], q: np.ndarray,
                waves: tuple[str, ...] = WAVES) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Observed indicator sheets per wave and the expected values behind the counts (the scripted
    veto events only in the sample province's own waves)."""
    n = len(counties)
    pop = np.array([c.population for c in counties], dtype=float)
    base_users = np.exp(rng.normal(np.log(2.4), 0.35, size=n))
    base_new = pop / 10_000 * np.exp(rng.normal(np.log(1.6), 0.3, size=n))
    lam_previous = base_new * np.exp(-0.8 * q[:, 0]) * 1.05
    previous_new = rng.poisson(lam_previous)
    sheets, truth = {}, []
    for w, wave in enumerate(waves):
        qw = q[:, w]
        users = base_users * np.exp(-0.55 * qw - 0.04 * w) * np.exp(rng.normal(0, 0.05, n))
        lam_new = base_new * np.exp(-0.8 * qw - 0.05 * w)
        new_users = rng.poisson(lam_new)
        change = _change_pct(new_users, previous_new)
        true_change = 100 * (lam_new / lam_previous - 1)
        previous_new, lam_previous = new_users, lam_new
        lam_outflow = pop / 100_000 * 0.9 * np.exp(-1.2 * qw)
        lam_cases = pop / 100_000 * 6 * np.exp(-0.3 * qw)
        lam_violent = np.full(n, 0.25) * np.exp(-0.8 * qw)
        lam_cadres, lam_students = np.full(n, 0.12), np.full(n, 0.08)

        def rate(centre: float, slope: float, sd: float, lo: float, hi: float) -> np.ndarray:
            return np.round(np.clip(centre + slope * qw + rng.normal(0, sd, n), lo, hi), 1)  # noqa: B023

        registered = users * pop / 1000
        sheet = {
            "区县代码": [c.code for c in counties],
            "区县名称": [c.name for c in counties],
            "年度": [wave] * n,
            "现有吸毒人员千人比": np.round(users, 2),
            "新发现吸毒人员": new_users,
            "新发现吸毒人员同比变化": change,
            "社会面管控率": rate(94.0, 6.0, 1.8, 70, 100),
            "戒断三年未复吸率": rate(55.0, 16.0, 5.0, 20, 90),
            "社区戒毒社区康复执行率": rate(88.0, 12.0, 3.5, 50, 100),
            "强制隔离戒毒出所人员管控率": rate(68.0, 14.0, 6.0, 30, 100),
            "戒毒康复人员就业安置率": rate(89.0, 8.0, 3.0, 60, 100),
            "社区戒毒社区康复人员报到率": rate(93.0, 6.0, 2.5, 70, 100),
            "外流贩毒人员": rng.poisson(lam_outflow),
            "破获毒品刑事案件": rng.poisson(lam_cases),
            "缴获毒品(千克)": np.round(rng.gamma(1.5, 2.0, n), 2),
            "发现非法种植毒品原植物": (rng.random(n) < 0.006).astype(int),
            "国家工作人员涉毒人数": rng.poisson(lam_cadres),
            "在校学生涉毒人数": rng.poisson(lam_students),
            "吸毒人员肇事肇祸案事件": rng.poisson(lam_violent),
            "污水毒品监测指数": np.round(np.exp(rng.normal(0, 0.3, n) - 0.5 * qw), 3),
            "禁毒宣传覆盖率": rate(92.0, 5.0, 2.5, 60, 100),
            "禁毒专业民警": np.maximum(1, np.round(registered / 150 * rng.normal(1, 0.15, n))
                                      ).astype(int),
            "禁毒社工": np.maximum(1, np.round(registered / 20 * rng.normal(0.9, 0.15, n))
                                   ).astype(int),
        }
        sheets[wave] = pl.DataFrame(sheet)
        # every noisy indicator of the catalogue (indicators.toml `noise`): a count's expected
        # value; a change's true value 100·(λ/λ_previous − 1), from which `simulate_wave` also
        # recovers the previous period's expected count
        for indicator, expected in (("new_users", lam_new), ("new_users_change", true_change),
                                    ("outflow_traffickers", lam_outflow),
                                    ("cases_solved", lam_cases),
                                    ("cadres_involved", lam_cadres),
                                    ("students_involved", lam_students),
                                    ("violent_incidents", lam_violent)):
            truth += [(wave, c.code, indicator, round(float(e), 6)) for c, e in zip(counties,
                                                                                      expected, strict=False)]
    if waves == WAVES:  # scripted veto events, so the engine has real cases to show
        sheets["2023"] = _set_cell(sheets["2023"], counties[41].code, "国家工作人员涉毒人数", 2)
        sheets["2024"] = _set_cell(sheets["2024"], counties[63].code, "发现非法种植毒品原植物", 1)
    truth_frame = pl.DataFrame(truth, schema=["wave", "county_code", "indicator_id",
                                              "expected_value"], orient="row")
    return sheets, truth_frame


def _change_pct(count: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """A county office's year-on-year change in %, to one decimal (a previous 0 counts as 1)."""
    return np.round((count - previous) / np.maximum(previous, 1) * 100, 1)


def _set_cell(frame: pl.DataFrame, county_code: str, column: str, value: int) -> pl.DataFrame:
    return frame.with_columns(pl.when(pl.col("区县代码") == county_code).then(value)
                              .otherwise(pl.col(column)).alias(column))


def _indicators_long(sheet: pl.DataFrame) -> pl.DataFrame:
    """An indicator sheet (Chinese headers) as long rows: county_code, indicator_id, value."""
    from pipelines.scheme.definitions import load_definitions

    header_to_id = {}
    for indicator in load_definitions().indicators.indicators:
        for alias in (indicator.label, *indicator.aliases):
            header_to_id.setdefault(alias, indicator.id)
    return sheet.drop("区县名称", "年度").unpivot(index="区县代码", variable_name="header") \
        .with_columns(pl.col("header").replace_strict(header_to_id, default=None)
                      .alias("indicator_id"), pl.col("value").cast(pl.Float64)) \
        .rename({"区县代码": "county_code"}).drop("header").drop_nulls("indicator_id") \
        .select("county_code", "indicator_id", "value")


def _published_scores(survey: pl.DataFrame, sheet: pl.DataFrame, county_frame: pl.DataFrame,
                      questionnaire) -> pl.DataFrame:
    """The wave's published scores, as the scoring pipeline computes them from the files."""
    from pipelines.scheme.definitions import load_definitions
    from pipelines.stats.wave_scores import score_frames

    responses = survey.rename({f"Q{n}": item.column
                               for n, item in enumerate(questionnaire.items, start=1)})
    counties = county_frame.select(
        pl.col("区县代码").alias("county_code"), pl.col("区县名称").alias("county_name"),
        pl.col("市州代码").alias("city_code"), pl.col("市州名称").alias("city_name"),
        pl.col("常住人口").alias("population"))
    scores = score_frames(responses, _indicators_long(sheet), counties, load_definitions())
    return scores.composite.select("county_code", "score")


def _delisting_targets_met(sheets: dict[str, pl.DataFrame], code: str, wave: str,
                           listed_in: str) -> bool:
    """The sample scheme's 摘帽 targets, written out plainly (the engine reads them from the
    scheme; a test checks that both agree on the sample's decisions)."""
    def value(column: str, at: str) -> float:
        sheet = sheets[at]
        return float(sheet.filter(pl.col("区县代码") == code)[column][0])
    return (value("社区戒毒社区康复执行率", wave) >= 75
            and value("强制隔离戒毒出所人员管控率", wave) >= 55
            and value("戒毒康复人员就业安置率", wave) >= 85
            and value("社区戒毒社区康复人员报到率", wave) >= 85
            and value("吸毒人员肇事肇祸案事件", wave) <= 0
            and value("现有吸毒人员千人比", wave) <= value("现有吸毒人员千人比", listed_in) * 0.9)


def _decisions(published: dict[str, pl.DataFrame], sheets: dict[str, pl.DataFrame],
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Official 挂牌/摘帽 decisions and inspections, as the province takes them on the PUBLISHED
    ranking: bottom 3 → listed (重新挂牌 if delisted before); a listed county outside the bottom 10
    is inspected, and delisted when the inspection finds the targets met."""
    listed: dict[str, str] = {}
    ever_delisted: set[str] = set()
    decisions, inspections = [], []
    for wave in WAVES:
        ranking = published[wave].sort("score", "county_code")["county_code"].to_list()
        bottom3, bottom10 = set(ranking[:3]), set(ranking[:10])
        year = int(wave) + 1
        for code in sorted(listed):
            if code in bottom10 or listed[code] == wave:
                continue
            passed = _delisting_targets_met(sheets, code, wave, listed[code])
            inspections.append((code, wave, f"{year}-03-05", "合格" if passed else "不合格",
                                "验收组现场检查" if passed else "指标未达到摘帽目标"))
            if passed:
                decisions.append((code, wave, "省", "摘帽", f"{year}-03-20",
                                  f"示禁毒委〔{year}〕{len(decisions) + 1}号"))
                ever_delisted.add(code)
                del listed[code]
        for code in sorted(bottom3 - listed.keys()):
            action = "重新挂牌" if code in ever_delisted else "挂牌整治"
            decisions.append((code, wave, "省", action, f"{year}-03-20",
                              f"示禁毒委〔{year}〕{len(decisions) + 1}号"))
            listed[code] = wave
    return (pl.DataFrame(decisions, schema=["区县代码", "期次", "层级", "决定", "决定日期", "文号"],
                         orient="row"),
            pl.DataFrame(inspections, schema=["区县代码", "期次", "验收日期", "结论", "说明"],
                         orient="row"))


# ---------------------------------------------------------------------------------------------
# writing


# Survey files vary as real ones do: older waves GBK from Excel, then UTF-8 with BOM, then UTF-8;
# header spellings differ per wave (all are aliases in questionnaire.toml).
_WAVE_FORMAT = {
    "2021": ("gb18030", {"respondent_id": "样本编号", "county_code": "县区代码", "weight": "设计权重"}),
    "2022": ("gb18030", {}),
    "2023": ("utf-8-sig", {"township": "乡镇街道"}),
    "2024": ("utf-8", {}),
    "2025": ("utf-8", {}),
}
_SURVEY_HEADERS = {"wave": "调查期次", "respondent_id": "受访者编号", "county_code": "区县代码",
                   "county_name": "区县名称", "stratum": "抽样层", "weight": "权重", "age": "年龄",
                   "sex": "性别", "urban_rural": "城乡", "township": "乡镇(街道)"}


def generate(out_dir: Path = SAMPLE_DIR, seed: int = SEED) -> list[Path]:
    """Write the sample province into `out_dir`; returns the files written."""
    from pipelines.scheme.definitions import load_definitions

    questionnaire = load_definitions().questionnaire
    rng = np.random.default_rng(seed)
    counties = _make_geography(rng)
    margins = _margins(counties)
    q = _latent_quality(rng, counties)
    sheets, indicator_truth = _indicators(rng, counties, q)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(exist_ok=True)
    written: list[Path] = []

    def write_csv(frame: pl.DataFrame, name: str, encoding: str = "utf-8") -> None:
        path = out_dir / name
        text = frame.write_csv(line_terminator="\n", float_precision=None)
        data = text.encode(encoding)
        if name.endswith(".gz"):
            buffer = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0,
                               compresslevel=9) as handle:
                handle.write(data)
            data = buffer.getvalue()
        path.write_bytes(data)
        written.append(path)

    county_frame = pl.DataFrame({
        "区县代码": [c.code for c in counties], "区县名称": [c.name for c in counties],
        "市州代码": [c.city_code for c in counties], "市州名称": [c.city_name for c in counties],
        "常住人口": [c.population for c in counties],
        "城镇人口比例": [c.urban_share for c in counties],
    })
    write_csv(county_frame, "counties.csv")
    write_csv(margins.rename({"county_code": "区县代码", "age_group": "年龄组", "sex": "性别",
                              "urban_rural": "城乡", "population": "人口数"}), "margins.csv")
    for wave, sheet in sheets.items():
        write_csv(sheet, f"indicators_{wave}.csv")

    share_rows = []
    published: dict[str, pl.DataFrame] = {}
    for w, wave in enumerate(WAVES):
        frames = []
        encoding, renames = _WAVE_FORMAT[wave]
        for c_index, county in enumerate(counties):
            cells = _cell_probabilities(margins, county.code)
            resp = _draw_respondents(rng, county, cells, float(q[c_index, w]))
            weights = _poststratified_weights(resp, cells)
            area_towns = {a: [t for t, ta in county.townships if ta == a] or
                          [county.townships[0][0]] for a in AREAS}
            towns = [area_towns[a][k % len(area_towns[a])] for a, k in
                     zip(resp["area"], rng.integers(0, 1000, resp["r"].size), strict=False)]
            n = resp["r"].size
            columns = {
                "wave": [wave] * n,
                "respondent_id": [f"{county.code}-{i + 1:04d}" for i in range(n)],
                "county_code": [county.code] * n,
                "county_name": [county.name] * n,
                "stratum": [f"{m}-{a}" for m, a in zip(resp["mode"], resp["area"], strict=False)],
                "weight": np.round(weights, 3),
                "age": resp["age"],
                "sex": [SEXES[s] for s in resp["sex"]],
                "urban_rural": resp["area"],
                "township": towns,
            }
            for number, item in enumerate(questionnaire.items, start=1):
                codes = _answer(rng, item.id, resp)
                columns[f"Q{number}"] = pl.Series(codes, dtype=pl.Int64).replace(0, None)
                for code, share in sorted(_true_answer_shares(item.id, float(q[c_index, w]),
                                                              cells).items()):
                    share_rows.append((wave, county.code, item.id, code, round(share, 10)))
            frames.append(pl.DataFrame(columns))
        survey = pl.concat(frames)
        published[wave] = _published_scores(survey, sheets[wave], county_frame, questionnaire)
        headers = {k: renames.get(k, v) for k, v in _SURVEY_HEADERS.items()}
        write_csv(survey.rename(headers), f"survey_{wave}.csv.gz", encoding)

    decisions, inspections = _decisions(published, sheets)
    write_csv(decisions, "decisions.csv")
    write_csv(inspections, "inspections.csv")

    write_csv(pl.DataFrame(share_rows, schema=["wave", "county_code", "item_id", "answer_code",
                                               "share"], orient="row"),
              "truth/answer_shares.csv.gz")
    write_csv(indicator_truth, "truth/indicator_expectations.csv")
    write_csv(pl.DataFrame({"wave": np.repeat(WAVES, len(counties)),
                            "county_code": [c.code for c in counties] * len(WAVES),
                            "latent_quality": np.round(q.T.ravel(), 6)}), "truth/latent_quality.csv")
    (out_dir / "province.toml").write_text(
        f'# 示例省份（虚构）：由 python -m pipelines sample 生成，种子 {seed}\n'
        f'name = "{PROVINCE_NAME}"\nis_sample = true\nwaves = {list(WAVES)!r}\n'.replace("'", '"'),
        encoding="utf-8")
    written.append(out_dir / "province.toml")
    return written


# ---------------------------------------------------------------------------------------------
# fresh waves from the same truth (for simulation tests of interval coverage and risk calibration)


@dataclass(frozen=True)
class SimulatedWave:
    responses: pl.DataFrame   # warehouse layout: county_code, stratum, weight, …, q_<item>
    indicators: pl.DataFrame  # long: county_code, indicator_id, value


@functools.lru_cache(maxsize=2)
def _truth(base_seed: int):
    """The bundle's geography, cell shares, latent quality and indicator sheets (same draws)."""
    rng = np.random.default_rng(base_seed)
    counties = _make_geography(rng)
    margins = _margins(counties)
    q = _latent_quality(rng, counties)
    sheets, indicator_truth = _indicators(rng, counties, q)
    cells = {c.code: _cell_probabilities(margins, c.code) for c in counties}
    return counties, cells, q, sheets, indicator_truth


def simulate_wave(wave: str, seed: int, *, base_seed: int = SEED,
                  sizes: dict[str, int] | None = None,
                  count_seed: int | None = None) -> SimulatedWave:
    """A new survey of `wave` drawn from the sample province's ground truth (same latent quality,
    margins and design as the bundle, new respondents), and its indicator sheet with every noisy
    indicator of the catalogue redrawn (`_redrawn_indicators`). The bundle itself is not touched.
    `sizes`: the number of interviews per county code (a sample plan); otherwise the bundle's
    285–320. `count_seed`: draw the counts from their own stream, so that waves of different sizes
    can share them (common random numbers when comparing sample plans); otherwise after the
    answers."""
    from pipelines.scheme.definitions import load_definitions

    defs = load_definitions()
    questionnaire = defs.questionnaire
    counties, cells_by_county, q, sheets, indicator_truth = _truth(base_seed)
    w = WAVES.index(wave)
    sim = np.random.default_rng(seed)
    frames = []
    for c_index, county in enumerate(counties):
        cells = cells_by_county[county.code]
        size = (285, 321) if sizes is None else (sizes[county.code], sizes[county.code] + 1)
        resp = _draw_respondents(sim, county, cells, float(q[c_index, w]), size)
        n = resp["r"].size
        columns: dict[str, object] = {
            "wave": [wave] * n,
            "respondent_id": [f"{county.code}-{i + 1:04d}" for i in range(n)],
            "county_code": [county.code] * n,
            "stratum": [f"{m}-{a}" for m, a in zip(resp["mode"], resp["area"], strict=False)],
            "weight": np.round(_poststratified_weights(resp, cells), 3),
            "sex": [SEXES[s] for s in resp["sex"]],
            "urban_rural": resp["area"],
            "age": resp["age"],
        }
        for item in questionnaire.items:
            codes = _answer(sim, item.id, resp)
            columns[item.column] = pl.Series(codes, dtype=pl.Int16).replace(0, None)
        frames.append(pl.DataFrame(columns))
    responses = pl.concat(frames)

    long = _indicators_long(sheets[wave])
    counts = sim if count_seed is None else np.random.default_rng(count_seed)
    redrawn = _redrawn_indicators(counts, indicator_truth.filter(pl.col("wave") == wave),
                                  defs.indicators)
    long = long.join(redrawn.select("county_code", "indicator_id", pl.col("value").alias("new")),
                     on=["county_code", "indicator_id"], how="left") \
        .with_columns(pl.coalesce("new", "value").alias("value")).drop("new")
    return SimulatedWave(responses, long.select("county_code", "indicator_id", "value"))


def _redrawn_indicators(sim: np.random.Generator, expected: pl.DataFrame,
                        catalogue) -> pl.DataFrame:
    """Every noisy indicator of the catalogue redrawn: a poisson count from its expected value; a
    poisson_change from its redrawn count and a redrawn previous count (expected count ÷ (1 + true
    change/100)), both periods' noise as in a real sheet. Long rows: county_code, indicator_id,
    value."""
    def expectation(indicator_id: str) -> pl.DataFrame:
        return expected.filter(pl.col("indicator_id") == indicator_id).sort("county_code")

    frames, counts = [], {}
    for ind in catalogue.indicators:
        part = expectation(ind.id)
        if ind.noise == "poisson" and part.height:
            counts[ind.id] = sim.poisson(part["expected_value"].to_numpy()).astype(float)
            frames.append(part.with_columns(pl.Series("value", counts[ind.id])))
    for ind in catalogue.indicators:
        part = expectation(ind.id)
        if ind.noise == "poisson_change" and part.height and ind.count in counts:
            lam = expectation(ind.count)["expected_value"].to_numpy()
            previous = sim.poisson(lam / (1 + part["expected_value"].to_numpy() / 100))
            frames.append(part.with_columns(
                pl.Series("value", _change_pct(counts[ind.count], previous).astype(float))))
    return pl.concat(frames).select("county_code", "indicator_id", "value")


def sample_counties(base_seed: int = SEED) -> pl.DataFrame:
    """The county list of the province a base seed generates (warehouse layout)."""
    counties = _truth(base_seed)[0]
    return pl.DataFrame({
        "county_code": [c.code for c in counties], "county_name": [c.name for c in counties],
        "city_code": [c.city_code for c in counties], "city_name": [c.city_name for c in counties],
        "population": [c.population for c in counties]})


def true_answer_shares(wave: str, base_seed: int = SEED) -> pl.DataFrame:
    """Exact population share of every answer code (what truth/answer_shares.csv.gz holds for the
    bundle), for the province of any base seed: independent truths for simulation studies."""
    from pipelines.scheme.definitions import load_definitions

    counties, cells, q, _, _ = _truth(base_seed)
    w = WAVES.index(wave)
    rows = []
    for c_index, county in enumerate(counties):
        for item in load_definitions().questionnaire.items:
            for code, share in sorted(_true_answer_shares(item.id, float(q[c_index, w]),
                                                          cells[county.code]).items()):
                rows.append((wave, county.code, item.id, code, share))
    return pl.DataFrame(rows, schema=["wave", "county_code", "item_id", "answer_code", "share"],
                        orient="row")


def true_indicator_expectations(wave: str, base_seed: int = SEED) -> pl.DataFrame:
    return _truth(base_seed)[4].filter(pl.col("wave") == wave)
