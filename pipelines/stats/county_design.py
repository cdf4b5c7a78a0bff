"""The county design of a survey file (strata nested in counties; PSUs, or respondents when
the file has none) and integer codes of string columns looked up once per run of equal cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def county_design_columns(responses: pl.DataFrame,
                           county: np.ndarray | None = None) -> tuple[pl.DataFrame, str | None]:
    """Strata are nested in counties (`__stratum`: an integer code per county × stratum; `county`
    is each row's county index when the caller has it); PSUs are used when the file has them, else
    respondents."""
    if county is None:
        county, _ = dense_codes(responses["county_code"])
    stratum, _ = dense_codes(responses["stratum"].fill_null(""))
    frame = responses.with_columns(
        pl.Series("__stratum", county * (int(stratum.max(initial=0)) + 1) + stratum))
    has_psu = _has(frame, "psu")
    if has_psu:
        frame = frame.with_columns(pl.col("psu").fill_null(pl.col("respondent_id")))
        if _has(frame, "ssu"):
            frame = frame.with_columns(pl.col("ssu").fill_null(pl.col("respondent_id")))
    return frame, "psu" if has_psu else None


def stage_columns(frame: pl.DataFrame) -> dict[str, str | None]:
    """`make_design`'s finite population and second-stage arguments for the columns a survey
    file declared (questionnaire columns psu_population, ssu, ssu_population): a province whose
    bureau samples townships, then villages, and gives their numbers gets R's two-stage
    variance (svydesign(ids = ~psu + ssu, fpc = ~psu_population + ssu_population))."""
    second = _has(frame, "psu") and _has(frame, "ssu")
    return {"fpc": "psu_population" if _has(frame, "psu_population") else None,
            "ssu": "ssu" if second else None,
            "ssu_fpc": "ssu_population" if second and _has(frame, "ssu_population") else None}


def _has(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].null_count() < frame.height


def dense_codes(series: pl.Series) -> tuple[np.ndarray, list[str]]:
    """0..k−1 per distinct value of a string column without nulls, in order of first appearance
    (deterministic), and the values in code order."""
    runs = series.rle()
    values = runs.struct.field("value").unique(maintain_order=True)
    return _codes_of_runs(runs, values), values.to_list()


def category_codes(series: pl.Series, categories: Sequence[str]) -> np.ndarray:
    """Each cell's index in `categories` (−1 for a value not among them, or null)."""
    return _codes_of_runs(series.rle(), pl.Series(categories, dtype=pl.String))


def _codes_of_runs(runs: pl.Series, categories: pl.Series) -> np.ndarray:
    """Codes looked up once per run of equal adjacent cells (`Series.rle`): survey rows come
    grouped by county and by stratum within it, so a national wave's 1.1 million cells are a few
    thousand runs, where looking up every cell hashed a million strings (25–40 ms a column)."""
    codes = runs.struct.field("value").cast(pl.Enum(categories), strict=False).to_physical()
    return np.repeat(codes.cast(pl.Int64).fill_null(-1).to_numpy(),
                     runs.struct.field("len").to_numpy())
