"""Synthetic provinces of any size, for benchmarks and scale tests (`python -m pipelines scaled`).

Same respondent and indicator model as the sample province (pipelines/sample_province.py: ordered
probit answers on a latent county quality, strata by phone mode × urban/rural, post-stratified
weights, Poisson counts), without its scripted story. Counties are grouped in cities of about a
dozen; codes are six digits like real ones, names are invented. The files have the bundle's layout,
so `build_warehouse(db, out_dir)` loads them through the ordinary ingest path (full validation).
Survey waves are written as Parquet (a national wave as CSV would be ~100 MB per wave).

Scales used by bench/ (counties, respondents per county, waves):
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipelines.synth.sample import (
    _CITY_FIRST,
    _COUNTY_FIRST,
    _SECOND,
    _SURVEY_HEADERS,
    _TOWN_FIRST,
    SEXES,
    County,
    _answer,
    _cell_probabilities,
    _draw_respondents,
    _indicators,
    _make_townships,
    _margins,
    _poststratified_weights,
)

SCALES = {"sample": (88, 300, 5), "large": (180, 600, 10), "national": (2850, 400, 10)}
__doc__ += "\n".join(f"- {name}: {c} × {n} × {w}" for name, (c, n, w) in SCALES.items()) + "\n"
SEED = 2850
LAST_WAVE = 2025
CITY_SIZE = 12


def wave_labels(waves: int) -> tuple[str, ...]:
    return tuple(str(year) for year in range(LAST_WAVE - waves + 1, LAST_WAVE + 1))


def make_counties(rng: np.random.Generator, count: int) -> list[County]:
    """`count` counties in cities of CITY_SIZE; codes PPCCNN with PP from 60 up (≤ 90 cities per
    two-digit prefix), unique three-character names."""
    firsts = [a + b for a in _COUNTY_FIRST for b in _SECOND]
    names = [f + t for t in _TOWN_FIRST for f in firsts]
    if count > len(names):
        raise ValueError(f"at most {len(names)} counties")
    order = rng.permutation(len(names))
    counties = []
    for index in range(count):
        city, k = divmod(index, CITY_SIZE)
        city_code = f"{60 + city // 90:02d}{city % 90 + 1:02d}"
        city_name = _CITY_FIRST[city % len(_CITY_FIRST)] + _SECOND[(city // len(_CITY_FIRST))
                                                                  % len(_SECOND)] \
            + _TOWN_FIRST[(city // (len(_CITY_FIRST) * len(_SECOND))) % len(_TOWN_FIRST)] + "市"
        kind = "区" if k < 2 else "县"
        urban_share = float(np.clip({"区": 0.8, "县": 0.42}[kind] + rng.normal(0, 0.07),
                                    0.22, 0.92))
        population = int(np.clip(round(float(np.exp(rng.normal(np.log(420_000), 0.45))), -2),
                                 120_000, 1_600_000))
        counties.append(County(f"{city_code}{k + 1:02d}", names[order[index]] + kind, city_code,
                               city_name, kind, population, round(urban_share, 3),
                               _make_townships(rng, urban_share)))
    return counties


def latent_quality(rng: np.random.Generator, counties: list[County], waves: int) -> np.ndarray:
    """q[c, w] = city effect + county effect + trend · (wave − middle) + wave noise."""
    cities = {code: i for i, code in enumerate(dict.fromkeys(c.city_code for c in counties))}
    city_effect = rng.normal(0, 0.12, size=len(cities))[[cities[c.city_code] for c in counties]]
    county_effect = rng.normal(0, 0.22, size=len(counties))
    trend = rng.normal(0.03, 0.04, size=len(counties))
    years = np.arange(waves) - (waves - 1) / 2
    return (city_effect + county_effect)[:, None] + trend[:, None] * years[None, :] \
        + rng.normal(0, 0.05, size=(len(counties), waves))


def survey_wave(rng: np.random.Generator, counties: list[County], cells: list[dict],
                q: np.ndarray, wave: str, per_county: int, items) -> pl.DataFrame:
    """One wave's respondents (Chinese headers as in the bundle, answers as Q1…Qk)."""
    size = (int(per_county * 0.95), int(per_county * 1.05) + 1)
    parts = [_draw_respondents(rng, county, cells[c], float(q[c]), size)
             for c, county in enumerate(counties)]
    counts = np.array([p["r"].size for p in parts])
    resp = {key: np.concatenate([np.broadcast_to(p[key], p["r"].shape) for p in parts])
            for key in ("mode", "area", "age_group", "sex", "age", "r", "q")}
    weights = np.concatenate([_poststratified_weights(p, cells[c]) for c, p in enumerate(parts)])
    codes = np.repeat(np.array([c.code for c in counties]), counts)
    sequence = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    towns = np.array([county.townships[0][0] for county in counties])
    columns: dict[str, object] = {
        "wave": pl.repeat(wave, int(counts.sum()), eager=True),
        "respondent_id": pl.Series(codes) + "-" + pl.Series(sequence).cast(pl.String)
        .str.zfill(4),
        "county_code": codes,
        "county_name": np.repeat(np.array([c.name for c in counties]), counts),
        "stratum": pl.Series(resp["mode"]) + "-" + pl.Series(resp["area"]),
        "weight": np.round(weights, 3),
        "age": resp["age"],
        "sex": np.array(SEXES)[resp["sex"]],
        "urban_rural": resp["area"],
        "township": np.repeat(towns, counts),
    }
    for number, item in enumerate(items, start=1):
        columns[f"Q{number}"] = pl.Series(_answer(rng, item.id, resp), dtype=pl.Int64) \
            .replace(0, None)
    return pl.DataFrame(columns).rename(_SURVEY_HEADERS)


def generate_scaled(out_dir: Path, counties: int, per_county: int, waves: int,
                    seed: int = SEED, name: str | None = None) -> list[Path]:
    """Write a synthetic province of the given size into `out_dir` (bundle layout)."""
    from pipelines.scheme.definitions import load_definitions

    items = load_definitions().questionnaire.items
    rng = np.random.default_rng(seed)
    geography = make_counties(rng, counties)
    margins = _margins(geography)
    by_county = margins.partition_by("county_code", as_dict=True)
    cells = [_cell_probabilities(by_county[(c.code,)], c.code) for c in geography]
    labels = wave_labels(waves)
    q = latent_quality(rng, geography, waves)
    sheets, _ = _indicators(rng, geography, q, labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def keep(path: Path) -> Path:
        written.append(path)
        return path

    pl.DataFrame({
        "区县代码": [c.code for c in geography], "区县名称": [c.name for c in geography],
        "市州代码": [c.city_code for c in geography], "市州名称": [c.city_name for c in geography],
        "常住人口": [c.population for c in geography],
        "城镇人口比例": [c.urban_share for c in geography],
    }).write_csv(keep(out_dir / "counties.csv"))
    margins.rename({"county_code": "区县代码", "age_group": "年龄组", "sex": "性别",
                    "urban_rural": "城乡", "population": "人口数"}) \
        .write_csv(keep(out_dir / "margins.csv"))
    for w, wave in enumerate(labels):
        sheets[wave].write_csv(keep(out_dir / f"indicators_{wave}.csv"))
        survey_wave(rng, geography, cells, q[:, w], wave, per_county, items) \
            .write_parquet(keep(out_dir / f"survey_{wave}.parquet"))
    title = name or f"规模测试省（{counties}县）"
    keep(out_dir / "province.toml").write_text(
        f'# 合成的规模测试数据（虚构），种子 {seed}\nname = "{title}"\nis_sample = true\n'
        f'waves = [{", ".join(f"{chr(34)}{w}{chr(34)}" for w in labels)}]\n', encoding="utf-8")
    return written
