"""A sampling design as integer codes (weights, strata, PSUs, an optional second stage of
secondary units within PSUs, finite population corrections at both stages, the lonely-PSU rule),
encoded and checked once so that every estimate reuses it; domain codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.scheme.definitions import LONELY_PSU_RULES, LonelyPsu


class EstimationError(ValueError):
    """A design or data problem, worded for the user (Chinese)."""


@dataclass(frozen=True)
class Design:
    """A sampling design encoded as integer codes, one entry per row."""

    weight: np.ndarray            # float64, ≥ 0
    stratum: np.ndarray           # int64 codes 0..H−1
    psu: np.ndarray | None        # int64 codes 0..P−1 (None: every row is its own PSU)
    psus_in_stratum: np.ndarray   # n_h, per stratum code, in the full design
    fpc_factor: np.ndarray        # f_h per stratum code (1 without fpc)
    lonely_psu: LonelyPsu = "adjust"
    ssu: np.ndarray | None = None               # int64 codes of second-stage units (in stratum,
    ssus_in_psu: np.ndarray | None = None       # PSU order); m_i per PSU code, full design;
    ssu_fpc_factor: np.ndarray | None = None    # 1 − m_i/M_i per PSU code (1 without fpc)

    @property
    def n_rows(self) -> int:
        return self.weight.size

    @property
    def n_strata(self) -> int:
        return self.psus_in_stratum.size


def domain_codes(frame: pl.DataFrame,
                 columns: Sequence[str]) -> tuple[np.ndarray, pl.DataFrame]:
    """Integer code per row for the combination of `columns`, and the key frame in code order."""
    if len(columns) == 1:
        codes, uniques = _factorize(frame.get_column(columns[0]))
        return codes, pl.DataFrame({columns[0]: uniques})
    keys = frame.select(columns)
    indexed = keys.with_row_index("__row")
    unique = keys.unique(maintain_order=False).sort(columns, nulls_last=True) \
        .with_row_index("__code")
    joined = indexed.join(unique, on=list(columns), how="left", nulls_equal=True).sort("__row")
    return joined["__code"].to_numpy().astype(np.int64), unique.drop("__code")


def _factorize(series: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Codes in sorted order of the values (nulls last), and the values in code order."""
    if series.dtype.is_integer() and series.len() and not series.null_count():
        values = series.to_numpy().astype(np.int64, copy=False)
        low, span = int(values.min()), int(values.max()) - int(values.min()) + 1
        if span <= 4 * values.size:          # small range: a presence table, no sort or join
            present = np.zeros(span, dtype=bool)
            present[values - low] = True
            code_of = np.cumsum(present) - 1
            return code_of[values - low], pl.Series(series.name, np.flatnonzero(present) + low,
                                                    dtype=series.dtype)
    uniques = series.unique().sort(nulls_last=True)
    codes = series.to_frame("v").join(uniques.to_frame("v").with_row_index("c"), on="v",
                                      how="left", nulls_equal=True, maintain_order="left")["c"]
    return codes.to_numpy().astype(np.int64), uniques


def make_design(frame: pl.DataFrame, *, weight: str, strata: str | Sequence[str] | None = None,
                psu: str | None = None, fpc: str | None = None,
                lonely_psu: LonelyPsu = "adjust", ssu: str | None = None,
                ssu_fpc: str | None = None) -> Design:
    """Encode the design columns of `frame`. PSU labels are taken as nested within strata, SSU
    labels (a second stage, R's `ids = ~psu + ssu`) within PSUs; `ssu_fpc` is the second stage's
    population (SSUs in the PSU) or sampling fraction, as R's `fpc = ~fpc + ssu_fpc`."""
    if lonely_psu not in LONELY_PSU_RULES:
        raise EstimationError(f"单一PSU层的处理规则应为 {'/'.join(LONELY_PSU_RULES)} 之一")
    w = frame[weight].cast(pl.Float64).to_numpy()
    if np.isnan(w).any() or not np.isfinite(w).all() or (w < 0).any():
        raise EstimationError(f"权重列 {weight} 含空值、非有限值或负数")
    n = frame.height
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    if strata_cols:
        stratum, _ = domain_codes(frame, strata_cols)
    else:
        stratum = np.zeros(n, dtype=np.int64)
    n_strata = int(stratum.max()) + 1 if n else 0
    if psu is not None:
        psu_codes, _ = domain_codes(frame.with_columns(pl.Series("__stratum", stratum)),
                              ["__stratum", psu])
        first = np.full(int(psu_codes.max()) + 1 if n else 0, -1, dtype=np.int64)
        first[psu_codes] = stratum
        psus_in_stratum = np.bincount(first, minlength=n_strata)
    else:
        psu_codes = None
        psus_in_stratum = np.bincount(stratum, minlength=n_strata)
    fpc_factor = np.ones(n_strata) if fpc is None else \
        _fpc_factor(frame, fpc, stratum, psus_in_stratum, "层", "PSU")
    if ssu is None:
        return Design(w, stratum, psu_codes, psus_in_stratum, fpc_factor, lonely_psu)
    if psu_codes is None:
        raise EstimationError("指定了第二阶段抽样单元（SSU）时必须同时指定初级抽样单元（PSU）列")
    ssu_codes, _ = domain_codes(frame.with_columns(pl.Series("__stratum", stratum),
                                                   pl.Series("__psu", psu_codes)),
                                ["__stratum", "__psu", ssu])
    n_psus = int(psu_codes.max()) + 1
    psu_of_ssu = np.full(int(ssu_codes.max()) + 1, -1, dtype=np.int64)
    psu_of_ssu[ssu_codes] = psu_codes
    ssus_in_psu = np.bincount(psu_of_ssu, minlength=n_psus)
    ssu_fpc_factor = np.ones(n_psus) if ssu_fpc is None else \
        _fpc_factor(frame, ssu_fpc, psu_codes, ssus_in_psu, "PSU", "SSU")
    return Design(w, stratum, psu_codes, psus_in_stratum, fpc_factor, lonely_psu,
                  ssu_codes, ssus_in_psu, ssu_fpc_factor)


def _fpc_factor(frame: pl.DataFrame, column: str, group: np.ndarray, sampled: np.ndarray,
                group_name: str, unit_name: str) -> np.ndarray:
    """1 − n/N per group (stratum at stage 1, PSU at stage 2) from a column holding the number
    of units in the population (∞ allowed) or, when every value is ≤ 1, the sampling fraction."""
    population = frame[column].cast(pl.Float64).to_numpy()
    if np.isnan(population).any():
        raise EstimationError(f"有限总体校正列 {column} 含空值")
    per_group = np.full(sampled.size, np.nan)
    per_group[group] = population
    if np.any(np.bincount(group, weights=(population != per_group[group]),
                          minlength=sampled.size)):
        raise EstimationError(f"有限总体校正列 {column} 在同一{group_name}内取值不一致")
    if np.all(per_group <= 1):  # sampling fractions
        return 1 - per_group
    if np.any(per_group < sampled):
        raise EstimationError(f"有限总体校正列 {column} 小于该{group_name}的样本{unit_name}数")
    return np.where(np.isinf(per_group), 1.0, (per_group - sampled) / per_group)
