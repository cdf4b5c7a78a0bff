"""Design-based estimation: ratio means with Taylor-linearised variances, and raking.

The estimator is the one in Lumley's R package `survey` (`svydesign` + `svyby(..., svymean,
na.rm = TRUE)`), checked against it to 1e-6 (tests/fixtures/r_survey/):

- the mean of `y` in domain d is the ratio  m = Σ w·y / Σ w  over the domain's rows that answered;
- its influence value for row i is  z_i = w_i·(y_i − m)/Σw  in the domain, 0 elsewhere: a domain is
  estimated as a domain of the full design, never by dropping the other rows' strata and PSUs;
- PSU totals t_hp = Σ z over the PSU; with n_h the stratum's PSU count in the FULL design,
      V = Σ_h f_h · n_h/(n_h − 1) · Σ_p (t_hp − t̄_h)²,   t̄_h = Σ_p t_hp / n_h,
  i.e. with-replacement PSU variance, times f_h = 1 − n_h/N_h when a finite population correction is
  given (N_h: PSUs in the population, or the sampling fraction itself when ≤ 1);
- a stratum with a single PSU in the full design (`lonely_psu`): "adjust" (default) centres it at the
  grand mean, i.e. adds f·t², as R's `options(survey.lonely.psu = "adjust")`; "certainty" adds 0;
- degrees of freedom = PSUs − strata among the rows that contribute to the estimate (R's `degf` of the
  domain's subset design); intervals are t intervals on those df;
- Kish's effective sample size (Σw)²/Σw², and the design effect against simple random sampling
  without replacement of the same size (R's `deff = TRUE`).

Everything is vectorised over domains and variables at once (NumPy bincounts); nothing loops over
counties. `mean_covariance` also returns the covariance of the means of several variables within each
domain, which is what a composite of correlated items needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

LONELY_PSU_RULES = ("adjust", "certainty")


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
    lonely_psu: str = "adjust"

    @property
    def n_rows(self) -> int:
        return self.weight.size

    @property
    def n_strata(self) -> int:
        return self.psus_in_stratum.size


def domain_codes(frame: pl.DataFrame,
                 columns: Sequence[str]) -> tuple[np.ndarray, pl.DataFrame]:
    """Integer code per row for the combination of `columns`, and the key frame in code order."""
    keys = frame.select(columns)
    if keys.width == 1:
        codes, uniques = _factorize(keys.to_series())
        return codes, pl.DataFrame({columns[0]: uniques})
    indexed = keys.with_row_index("__row")
    unique = keys.unique(maintain_order=False).sort(columns, nulls_last=True) \
        .with_row_index("__code")
    joined = indexed.join(unique, on=list(columns), how="left", nulls_equal=True).sort("__row")
    return joined["__code"].to_numpy().astype(np.int64), unique.drop("__code")


def _factorize(series: pl.Series) -> tuple[np.ndarray, pl.Series]:
    uniques = series.unique().sort(nulls_last=True)
    codes = series.to_frame("v").join(uniques.to_frame("v").with_row_index("c"), on="v",
                                      how="left", nulls_equal=True, maintain_order="left")["c"]
    return codes.to_numpy().astype(np.int64), uniques


def make_design(frame: pl.DataFrame, *, weight: str, strata: str | Sequence[str] | None = None,
                psu: str | None = None, fpc: str | None = None,
                lonely_psu: str = "adjust") -> Design:
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


@dataclass(frozen=True)
class MeanEstimates:
    """Means of J variables in D domains, their sampling covariance and per-estimate counts."""

    mean: np.ndarray        # D × J (NaN where nobody in the domain answered)
    cov: np.ndarray         # D × J × J (diagonal only filled when `pairs=False`)
    n: np.ndarray           # D × J rows that contribute
    weight_sum: np.ndarray  # D × J
    weight_sq_sum: np.ndarray
    df: np.ndarray          # D × J
    srs_var: np.ndarray     # D × J  variance under SRS without replacement (for deff)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.einsum("djj->dj", self.cov))

    @property
    def n_eff(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.weight_sum**2 / self.weight_sq_sum

    @property
    def deff(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("djj->dj", self.cov) / self.srs_var


def mean_covariance(design: Design, values: np.ndarray, domain: np.ndarray, n_domains: int, *,
                    pairs: bool = True) -> MeanEstimates:
    """Ratio means of each column of `values` (NaN = excluded) per domain, with their covariance.

    `pairs=False` fills only the variances (cheaper when no composite is needed).
    """
    y = np.asarray(values, dtype=np.float64).reshape(design.n_rows, -1)
    n_vars = y.shape[1]
    answered = ~np.isnan(y)
    w = design.weight
    wr = w[:, None] * answered
    mean = np.empty((n_domains, n_vars))
    weight_sum = np.empty_like(mean)
    weight_sq = np.empty_like(mean)
    counts = np.empty_like(mean)
    influence = np.empty_like(y)
    y0 = np.where(answered, y, 0.0)
    for j in range(n_vars):
        weight_sum[:, j] = np.bincount(domain, wr[:, j], n_domains)
        weight_sq[:, j] = np.bincount(domain, wr[:, j] * w, n_domains)
        counts[:, j] = np.bincount(domain, answered[:, j], n_domains)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[:, j] = np.bincount(domain, wr[:, j] * y0[:, j], n_domains) / weight_sum[:, j]
            influence[:, j] = np.where(
                answered[:, j], wr[:, j] * (y0[:, j] - mean[domain, j]) / weight_sum[domain, j], 0.0)

    # PSU totals of the influence values within each domain
    n_strata = design.n_strata
    if design.psu is None:
        totals, total_domain, total_stratum = influence, domain, design.stratum
        group = None
    else:
        n_psu = int(design.psu.max()) + 1
        unique_keys, group = _dense(domain.astype(np.int64) * n_psu + design.psu)
        totals = np.column_stack([np.bincount(group, influence[:, j], unique_keys.size)
                                  for j in range(n_vars)])
        total_domain = unique_keys // n_psu
        psu_stratum = np.empty(n_psu, dtype=np.int64)
        psu_stratum[design.psu] = design.stratum
        total_stratum = psu_stratum[unique_keys % n_psu]

    # per (domain, stratum): Σ t and Σ t t'
    cells, cell = _dense(total_domain.astype(np.int64) * n_strata + total_stratum)
    cell_domain, cell_stratum = cells // n_strata, cells % n_strata
    n_h = design.psus_in_stratum[cell_stratum].astype(np.float64)
    f_h = design.fpc_factor[cell_stratum]
    lonely = n_h <= 1
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(lonely, f_h if design.lonely_psu == "adjust" else 0.0,
                         f_h * n_h / (n_h - 1))
    centre = np.where(lonely, 0.0, 1.0 / n_h)
    sums = np.column_stack([np.bincount(cell, totals[:, j], cells.size) for j in range(n_vars)])
    cov = np.zeros((n_domains, n_vars, n_vars))
    index_pairs = [(j, k) for j in range(n_vars) for k in range(j, n_vars)] if pairs \
        else [(j, j) for j in range(n_vars)]
    for j, k in index_pairs:
        cross = np.bincount(cell, totals[:, j] * totals[:, k], cells.size)
        per_cell = scale * (cross - centre * sums[:, j] * sums[:, k])
        cov[:, j, k] = cov[:, k, j] = np.bincount(cell_domain, per_cell, n_domains)
    for j in range(n_vars):  # nobody answered: no estimate, not a zero variance
        cov[counts[:, j] == 0, j, :] = np.nan
        cov[counts[:, j] == 0, :, j] = np.nan

    # degrees of freedom: PSUs − strata among the contributing rows (R: degf of the subset)
    df = np.empty((n_domains, n_vars))
    for j in range(n_vars):
        rows_per_psu = np.bincount(group, answered[:, j], total_domain.size) if group is not None \
            else answered[:, j]
        has = rows_per_psu > 0
        cell_has = np.bincount(cell[has], minlength=cells.size) > 0
        df[:, j] = (np.bincount(total_domain[has], minlength=n_domains)
                    - np.bincount(cell_domain[cell_has], minlength=n_domains))
    srs_var = _srs_variance(wr, y0, mean, domain, weight_sum, counts)
    return MeanEstimates(mean, cov, counts, weight_sum, weight_sq, df, srs_var)


def _dense(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and each entry's index among them (sort-based: NumPy's hash-based
    `unique` is several times slower on a million int64 keys)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.empty(ordered.size, dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    index = np.empty(keys.size, dtype=np.int64)
    index[order] = np.cumsum(starts) - 1
    return ordered[starts], index


def _srs_variance(wr: np.ndarray, y0: np.ndarray, mean: np.ndarray, domain: np.ndarray,
                  weight_sum: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Variance of the mean under SRS without replacement of the same size, as R's deff uses:
    s²·(N̂ − n)/(N̂·n) with s² = Σw(y − m)²/Σw · n/(n − 1) and N̂ = Σw."""
    out = np.empty_like(mean)
    n_domains = mean.shape[0]
    for j in range(mean.shape[1]):
        resid = np.where(wr[:, j] > 0, y0[:, j] - mean[domain, j], 0.0)
        ss = np.bincount(domain, wr[:, j] * resid**2, n_domains)
        n, big_n = counts[:, j], weight_sum[:, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = ss / big_n * n / (n - 1)
            out[:, j] = np.where(big_n >= n, s2 * (big_n - n) / (big_n * n), np.nan)
    return out


def t_interval(mean: np.ndarray, se: np.ndarray, df: np.ndarray,
               level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """mean ± t_{df} · se; NaN where df < 1 (no variance estimate is possible)."""
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        q = stats.t.ppf(0.5 + level / 2, np.where(df >= 1, df, np.nan))
    return mean - q * se, mean + q * se


def svymean(frame: pl.DataFrame, value: str | Sequence[str], *, weight: str,
            strata: str | Sequence[str] | None = None, psu: str | None = None,
            fpc: str | None = None, by: str | Sequence[str] | None = None, level: float = 0.95,
            lonely_psu: str = "adjust") -> pl.DataFrame:
    """Design-based means of `value` (one or several columns) overall or per `by` domain.

    Returns the `by` columns (and `variable` when several values are given) with
    `mean, se, ci_low, ci_high, df, n, n_eff, deff`. Rows whose value is null or NaN are left out of
    that estimate only.
    """
    values = [value] if isinstance(value, str) else list(value)
    by_cols = [by] if isinstance(by, str) else list(by or [])
    design = make_design(frame, weight=weight, strata=strata, psu=psu, fpc=fpc,
                         lonely_psu=lonely_psu)
    if by_cols:
        domain, keys = domain_codes(frame, by_cols)
    else:
        domain, keys = np.zeros(frame.height, dtype=np.int64), pl.DataFrame()
    n_domains = keys.height if by_cols else 1
    y = frame.select(pl.col(v).cast(pl.Float64).fill_null(np.nan) for v in values).to_numpy()
    est = mean_covariance(design, y, domain, n_domains, pairs=False)
    return estimates_frame(est, keys, values, level)


def estimates_frame(est: MeanEstimates, keys: pl.DataFrame, variables: Sequence[str],
                    level: float = 0.95, variable_column: str | None = None) -> pl.DataFrame:
    """Long frame (domain keys × variable) of a `MeanEstimates`; the variable names go into
    `variable_column` (by default a `variable` column, only when there are several)."""
    se = est.se
    low, high = t_interval(est.mean, se, est.df, level)
    n_domains, n_vars = est.mean.shape
    columns: dict[str, object] = {}
    if keys.width:
        for name in keys.columns:
            columns[name] = np.repeat(keys[name].to_numpy(), n_vars)
    if variable_column is not None or len(variables) > 1:
        columns[variable_column or "variable"] = np.tile(np.array(variables, dtype=object),
                                                         n_domains)
    flat = {"mean": est.mean, "se": se, "ci_low": low, "ci_high": high, "df": est.df,
            "n": est.n, "n_eff": est.n_eff, "deff": est.deff}
    for name, array in flat.items():
        columns[name] = array.ravel()
    out = pl.DataFrame(columns)
    if keys.width:
        out = out.with_columns(pl.col(c).cast(keys[c].dtype) for c in keys.columns)
    return out.with_columns(pl.col(pl.Float64).fill_nan(None)) \
        .with_columns(pl.col("df", "n").cast(pl.Int64))


# -- raking ------------------------------------------------------------------------------------


def rake(frame: pl.DataFrame, *, weight: str, margins: Mapping[str, pl.DataFrame],
         by: str | Sequence[str] | None = None, population: str = "population",
         tol: float = 1e-10, max_iter: int = 200) -> pl.Series:
    """Iterative proportional fitting of `weight` to population `margins`, per `by` domain.

    `margins` maps a column of `frame` to a frame of (`by` columns, that column, `population`).
    Raises EstimationError (Chinese) when a sample category has no population figure, a populated
    category has no respondent, the margins of a domain disagree on its total, or the iteration does
    not converge. Returns the raked weights (same order as `frame`).
    """
    by_cols = [by] if isinstance(by, str) else list(by or [])
    w = frame[weight].cast(pl.Float64).to_numpy().copy()
    indexed = frame.with_row_index("__row")
    cells: list[tuple[np.ndarray, np.ndarray]] = []
    domain_totals: list[pl.DataFrame] = []
    for variable, table in margins.items():
        keys = [*by_cols, variable]
        missing = [c for c in [*keys, population] if c not in table.columns]
        if missing:
            raise EstimationError(f"边际表 {variable} 缺少列：{'、'.join(missing)}")
        table = table.select(*keys, pl.col(population).cast(pl.Float64))
        table = table.group_by(keys).agg(pl.col(population).sum()).sort(keys) \
            .with_row_index("__cell")
        joined = indexed.select("__row", *keys).join(table, on=keys, how="left",
                                                      maintain_order="left")
        unmatched = joined.filter(pl.col("__cell").is_null())
        if unmatched.height:
            example = unmatched.row(0, named=True)
            where = "，".join(f"{k}={example[k]}" for k in keys)
            raise EstimationError(f"样本中的类别（{where}）在边际表 {variable} 中没有人口数，"
                                  f"共 {unmatched.height} 名受访者")
        cell = joined["__cell"].to_numpy().astype(np.int64)
        present = np.bincount(cell, minlength=table.height) > 0
        target = table[population].to_numpy()
        empty = (~present) & (target > 0)
        if empty.any():
            example = table.filter(pl.Series(empty)).row(0, named=True)
            where = "，".join(f"{k}={example[k]}" for k in keys)
            raise EstimationError(f"边际表 {variable} 的类别（{where}）有人口但样本中没有受访者，"
                                  f"无法加权（共 {int(empty.sum())} 个空类别）；请合并类别")
        cells.append((cell, target))
        domain_totals.append(
            table.group_by(by_cols).agg(pl.col(population).sum().alias(variable)) if by_cols
            else pl.DataFrame({"__all": [0], variable: [float(target.sum())]}))
    if len(domain_totals) > 1:
        on = by_cols or ["__all"]
        merged = domain_totals[0]
        for extra in domain_totals[1:]:
            merged = merged.join(extra, on=on, how="full", coalesce=True)
        names = list(margins)
        spread = merged.select(*on, pl.max_horizontal(names).alias("hi"),
                               pl.min_horizontal(names).alias("lo"))
        bad = spread.filter(((pl.col("hi") - pl.col("lo")).abs() > 1e-6 * pl.col("hi").abs())
                            | pl.col("hi").is_null() | pl.col("lo").is_null())
        if bad.height:
            example = bad.row(0, named=True)
            where = "，".join(f"{k}={example[k]}" for k in by_cols) or "全体"
            raise EstimationError(f"各边际表的总人口不一致（{where}：{example['lo']:g} 与 "
                                  f"{example['hi']:g}），无法同时满足")
    for _ in range(max_iter):
        worst = 0.0
        for cell, target in cells:
            current = np.bincount(cell, weights=w, minlength=target.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                factor = np.where(current > 0, target / current, 1.0)
            w *= factor[cell]
            worst = max(worst, float(np.max(np.abs(factor[current > 0] - 1.0), initial=0.0)))
        if worst < tol:
            return pl.Series(weight, w)
    raise EstimationError(f"加权迭代 {max_iter} 次仍未收敛（最大调整 {worst:.2e}），请检查边际表")
