"""A sampling design as integer codes (weights, strata, PSUs, finite population correction,
the lonely-PSU rule), encoded and checked once so that every estimate reuses it; domain codes.
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
                lonely_psu: LonelyPsu = "adjust") -> Design:
    """Encode the design columns of `frame`. PSU labels are taken as nested within strata."""
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
    fpc_factor = np.ones(n_strata)
    if fpc is not None:
        population = frame[fpc].cast(pl.Float64).to_numpy()
        per_stratum = np.full(n_strata, np.nan)
        per_stratum[stratum] = population
        if np.any(np.bincount(stratum, weights=(population != per_stratum[stratum]),
                              minlength=n_strata)):
            raise EstimationError(f"有限总体校正列 {fpc} 在同一层内取值不一致")
        if np.all(per_stratum <= 1):  # sampling fractions
            fpc_factor = 1 - per_stratum
        else:
            if np.any(per_stratum < psus_in_stratum):
                raise EstimationError(f"有限总体校正列 {fpc} 小于该层的样本PSU数")
            fpc_factor = np.where(np.isinf(per_stratum), 1.0,
                                  (per_stratum - psus_in_stratum) / per_stratum)
    return Design(w, stratum, psu_codes, psus_in_stratum, fpc_factor, lonely_psu)
