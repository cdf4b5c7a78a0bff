"""Design-based ratio means with Taylor-linearised variances and covariances.

The estimator is the one in Lumley's R package `survey` (`svydesign` + `svyby(..., svymean,
na.rm = TRUE)`), checked against it to 1e-6 (tests/fixtures/r_survey/); the design is
encoded in pipelines/stats/design.py:

- the mean of `y` in domain d is the ratio  m = Σ w·y / Σ w  over the domain's rows that answered;
- its influence value for row i is  z_i = w_i·(y_i − m)/Σw  in the domain, 0 elsewhere: a domain is
  estimated as a domain of the full design, never by dropping the other rows' strata and PSUs;
- PSU totals t_hp = Σ z over the PSU; with n_h the stratum's PSU count in the FULL design,
      V = Σ_h f_h · n_h/(n_h − 1) · Σ_p (t_hp − t̄_h)²,   t̄_h = Σ_p t_hp / n_h,
  i.e. with-replacement PSU variance, times f_h = 1 − n_h/N_h when a finite population correction is
  given (N_h: PSUs in the population, or the sampling fraction itself when ≤ 1);
- a stratum with a single PSU in the full design (`lonely_psu`): "adjust" (default) centres it at the
  grand mean, i.e. adds f·t², as R's `options(survey.lonely.psu = "adjust")`; "certainty" adds 0;
  "average" leaves it out and scales the domain's variance by (strata with answering rows) / (those
  of them with several PSUs), as R's "average" (a census stratum, f = 0, counts as one with several);
  a covariance takes the geometric mean of its two variables' factors (the same factor, as R's
  svycontrast on totals, whenever every stratum of the domain answered both);
- a second stage (R's `ids = ~psu + ssu, fpc = ~N_h + M_i`): SSU totals t_hij within each PSU add
      (n_h/N_h) · Σ_i g_i · m_i/(m_i − 1) · Σ_j (t_hij − t̄_hi)²,   g_i = 1 − m_i/M_i,
  (zero without a first-stage fpc: with-replacement PSUs carry the whole variance); a PSU with a
  single SSU follows the lonely rule as a stratum would ("average" adds 0 there, where R gives NaN);
- a row of weight 0 (what R's `subset()` leaves in a design) adds nothing to a total but keeps its
  PSU in n_h; it is not counted in n, in the degrees of freedom or in the design effect's SRS size;
- degrees of freedom = PSUs − strata among the rows that contribute to the estimate (R's `degf` of the
  domain's subset design); intervals are t intervals on those df;
- Kish's effective sample size (Σw)²/Σw², and the design effect against simple random sampling
  without replacement of the same size (R's `deff = TRUE`).

`estimates_frame` adds the interval of a share item (R's `svyciprop`, pipelines/stats/ciprop.py)
where the caller names the share columns.

Everything is vectorised over domains and variables at once (rows sorted once by domain, stratum
and PSU, then segmented sums); nothing loops over counties. `mean_covariance` also returns the
covariance of the means of several variables within each domain, which is what a composite of
correlated items needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core.parallel import map_blocks
from pipelines.scheme.definitions import LonelyPsu, ShareInterval
from pipelines.stats.ciprop import share_interval
from pipelines.stats.design import Design, domain_codes, make_design
from pipelines.stats.tquantiles import t_interval


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


CHUNK_ROWS = 32_768  # rows per block of whole domains: a block's work arrays stay in cache


def mean_covariance(design: Design, values: np.ndarray, domain: np.ndarray, n_domains: int, *,
                    pairs: bool = True) -> MeanEstimates:
    """Ratio means of each column of `values` (NaN = excluded) per domain, with their covariance.

    Every sum is within a domain, so rows are sorted once by (domain, stratum, PSU) and estimated in
    blocks of whole domains (about `CHUNK_ROWS` rows each), variable by variable (J × rows): each
    sum is one segmented reduction over all variables of a block, and the block's work arrays stay
    in cache instead of streaming a million-row array through memory twenty times.
    `pairs=False` fills only the variances (cheaper when no composite is needed).
    """
    y = np.asarray(values, dtype=np.float64).reshape(design.n_rows, -1)
    n_vars = y.shape[1]
    y = np.ascontiguousarray(y.T)           # J × n (a view for Polars' column-major output)
    out = MeanEstimates(np.full((n_domains, n_vars), np.nan),
                        np.full((n_domains, n_vars, n_vars), np.nan),
                        *(np.zeros((n_domains, n_vars)) for _ in range(4)),
                        np.full((n_domains, n_vars), np.nan))
    if design.n_rows == 0:
        return out
    domain = np.asarray(domain, dtype=np.int64)
    order = _design_order(design, domain)
    pick = (lambda a: a) if order is None else (lambda a: a[order])
    weight, stratum, domain = pick(design.weight), pick(design.stratum), pick(domain)
    psu = None if design.psu is None else pick(design.psu)
    ssu = None if design.ssu is None else pick(design.ssu)

    def estimate(block: tuple[int, int]) -> None:
        a, b = block
        first, last = int(domain[a]), int(domain[b - 1])
        rows = slice(a, b) if order is None else order[a:b]
        _Block(weight[a:b], stratum[a:b], None if psu is None else psu[a:b],
               domain[a:b] - first, last - first + 1, design,
               None if ssu is None else ssu[a:b]) \
            .estimate(y[:, rows], pairs, out, slice(first, last + 1))

    map_blocks(estimate, _domain_blocks(domain, CHUNK_ROWS), y.size)  # disjoint rows of out
    return out


@dataclass(frozen=True)
class DomainSizes:
    """Per domain, for a variable that every row answers (a composite's rows are everyone)."""

    n: np.ndarray       # D rows (float, as `MeanEstimates.n`)
    n_eff: np.ndarray   # D (Σw)² / Σw²
    df: np.ndarray      # D PSUs − strata (R: degf of the domain's subset)


def domain_sizes(design: Design, domain: np.ndarray, n_domains: int) -> DomainSizes:
    """What `mean_covariance` reports for a column of ones, from counts alone when the rows are
    sorted by (domain, stratum, PSU), as survey files come (that estimation pass took 30 ms for
    a national wave); any other order takes the pass."""
    domain = np.asarray(domain, dtype=np.int64)
    cell_key, psu_key = _design_keys(design, domain)
    if design.n_rows == 0 or not _ascending(cell_key if psu_key is None else psu_key) \
            or not design.weight.all():           # rows of weight 0 count in no size
        ones = mean_covariance(design, np.ones((design.n_rows, 1)), domain, n_domains,
                               pairs=False)
        return DomainSizes(ones.n[:, 0], ones.n_eff[:, 0], ones.df[:, 0])
    starts = _starts(domain)                 # sorted: each domain's rows are one segment
    present = domain[starts]

    def per_domain(segment_values: np.ndarray) -> np.ndarray:
        out = np.zeros(n_domains)
        out[present] = segment_values
        return out

    weight = design.weight
    n = per_domain(np.diff(np.append(starts, domain.size)))
    weight_sum = per_domain(np.add.reduceat(weight, starts))
    weight_sq_sum = per_domain(np.add.reduceat(weight * weight, starts))
    strata = np.bincount(domain[_starts(cell_key)], minlength=n_domains)
    psus = n if psu_key is None else np.bincount(domain[_starts(psu_key)], minlength=n_domains)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = weight_sum**2 / weight_sq_sum
    return DomainSizes(n, n_eff, (psus - strata).astype(np.float64))


def _design_keys(design: Design, domain: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's (domain, stratum) cell key, and its (domain, PSU) key when there are PSUs: PSU
    codes are numbered in stratum order (make_design), so that key sorts by stratum too."""
    cell_key = domain * design.n_strata + design.stratum
    if design.psu is None:
        return cell_key, None
    return cell_key, domain * (int(design.psu.max()) + 1) + design.psu


def _design_order(design: Design, domain: np.ndarray) -> np.ndarray | None:
    """A stable permutation sorting rows by (domain, stratum, PSU, SSU), or None when they already
    are (the usual case: survey files come grouped by county). SSU codes are numbered in (stratum,
    PSU) order (make_design), so their key sorts by both."""
    cell_key, key = _design_keys(design, domain)
    if key is None:
        return None if _ascending(cell_key) else np.argsort(cell_key, kind="stable")
    if design.ssu is not None:
        key = domain * (int(design.ssu.max()) + 1) + design.ssu
    if _ascending(key):
        return None
    order = np.argsort(key, kind="stable")
    if not _ascending(cell_key[order]):
        order = np.lexsort(tuple(c for c in (design.ssu, design.psu, design.stratum, domain)
                                 if c is not None))
    return order


def _domain_blocks(domain: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Row ranges of about `size` rows that start and end on domain boundaries (sorted rows)."""
    starts = _starts(domain)
    after = np.searchsorted(starts, np.arange(size, domain.size, size))  # first domain at or
    cuts = [0]                                                            # after each mark
    for start in starts[after[after < starts.size]]:
        if start > cuts[-1]:
            cuts.append(int(start))
    cuts.append(domain.size)
    return list(zip(cuts[:-1], cuts[1:], strict=False))


class _Block:
    """Sorted rows of whole domains with the segment starts of each level, so that a sum per
    domain, (domain, stratum) cell or PSU is one `np.add.reduceat` over every variable at once.
    Arrays are variables × entries; sums run along the last axis."""

    def __init__(self, weight: np.ndarray, stratum: np.ndarray, psu: np.ndarray | None,
                 domain: np.ndarray, n_domains: int, design: Design,
                 ssu: np.ndarray | None = None) -> None:
        self.weight, self.n_domains, self.design = weight, n_domains, design
        n_strata = design.n_strata
        self.domain_starts = _starts(domain)
        self.domain_sizes = np.diff(np.append(self.domain_starts, domain.size))
        self.domains = domain[self.domain_starts]
        if psu is None:
            self.psu_starts = None
            psu_domain, psu_stratum = domain, stratum
        else:
            self.psu_starts = _starts(domain * (int(psu.max()) + 1) + psu)
            psu_domain, psu_stratum = domain[self.psu_starts], stratum[self.psu_starts]
        self.cell_starts = _starts(psu_domain * n_strata + psu_stratum)     # among PSUs
        self.cell_stratum = psu_stratum[self.cell_starts]
        cell_domain = psu_domain[self.cell_starts]
        self.cell_domain_starts = _starts(cell_domain)                      # among cells
        self.cell_domains = cell_domain[self.cell_domain_starts]
        self.psu_domain_starts = _starts(psu_domain)                        # among PSUs
        self.psu_domains = psu_domain[self.psu_domain_starts]
        self.ssu_starts = None
        if ssu is not None and psu is not None:
            self.ssu_starts = _starts(domain * (int(ssu.max()) + 1) + ssu)  # among rows
            ssu_domain, ssu_psu = domain[self.ssu_starts], psu[self.ssu_starts]
            self.group_starts = _starts(ssu_domain * (int(psu.max()) + 1) + ssu_psu)  # SSUs
            self.group_psu = ssu_psu[self.group_starts]                     # by (domain, PSU)
            self.group_stratum = stratum[self.ssu_starts][self.group_starts]
            group_domain = ssu_domain[self.group_starts]
            self.group_domain_starts = _starts(group_domain)
            self.group_domains = group_domain[self.group_domain_starts]

    def estimate(self, y: np.ndarray, pairs: bool, out: MeanEstimates, into: slice) -> None:
        """Fill `out`'s rows `into` (this block's domains) from the J × rows values `y`."""
        design = self.design
        n_vars = y.shape[0]
        answered = ~np.isnan(y)
        w = self.weight[None, :]
        wr = np.where(answered, w, 0.0)       # the weight where answered, else 0
        y0 = np.where(answered, y, 0.0)
        counted = answered & (w > 0)          # a row of weight 0 is in the design, not the sample

        # per domain (J × D): Σw, Σw², count, mean over the rows that answered
        weight_sum = self.per_domain(wr)
        counts = self.per_domain(counted.view(np.uint8))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.per_domain(wr * y0) / weight_sum
            inverse_sum = np.where(weight_sum > 0, 1.0 / weight_sum, 0.0)
        resid = y0 - self.to_rows(np.nan_to_num(mean))      # not 0 where unanswered, but
        weighted_resid = wr * resid                         # weighted by 0 there
        influence = weighted_resid * self.to_rows(inverse_sum)
        out.mean[into] = mean.T
        out.n[into] = counts.T
        out.weight_sum[into] = weight_sum.T
        out.weight_sq_sum[into] = self.per_domain(wr * w).T

        # PSU totals of the influence values within each domain, then Σ t and Σ t t' per
        # (domain, stratum) cell
        totals = self.per_psu(influence)
        sums = self.per_cell(totals)
        n_h = design.psus_in_stratum[self.cell_stratum].astype(np.float64)
        f_h = design.fpc_factor[self.cell_stratum]
        scale, centre = _stage_scale(n_h, f_h, design.lonely_psu)
        spread = self._average_spread(answered, n_h, f_h)                   # J × D
        second = self._second_stage(influence)
        cov = np.zeros((self.n_domains, n_vars, n_vars))
        for j in range(n_vars):
            others = slice(j, n_vars) if pairs else slice(j, j + 1)
            cross = self.per_cell(totals[j] * totals[others])
            per_cell = scale * (cross - centre * sums[j] * sums[others])
            block = self.cells_to_domains(per_cell)                         # (J − j) × D
            if spread is not None:
                block = block * np.sqrt(spread[j] * spread[others])
            if second is not None:
                block = block + second(j, others)
            cov[:, j, others] = block.T
            cov[:, others, j] = block.T
        unanswered = (counts == 0).T          # nobody answered: no estimate, not a zero variance
        for j in range(n_vars):
            cov[unanswered[:, j], j, :] = np.nan
            cov[unanswered[:, j], :, j] = np.nan
        out.cov[into] = cov

        # degrees of freedom: PSUs − strata among the contributing rows (R: degf of the subset)
        if self.psu_starts is None:           # every row its own PSU: the PSUs are the counts
            psus, cell_has = counts, self.per_cell(counted.view(np.uint8)) > 0
        else:
            psu_has = self.per_psu(counted.view(np.uint8)) > 0
            psus, cell_has = self.psus_to_domains(psu_has), self.per_cell(psu_has) > 0
        out.df[into] = (psus - self.cells_to_domains(cell_has)).T

        # variance under SRS without replacement of the same size (R's deff):
        # s²·(N̂ − n)/(N̂·n) with s² = Σw(y − m)²/Σw · n/(n − 1) and N̂ = Σw
        ss = self.per_domain(weighted_resid * resid)
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = ss / weight_sum * counts / (counts - 1)
            out.srs_var[into] = np.where(weight_sum >= counts,
                                         s2 * (weight_sum - counts) / (weight_sum * counts),
                                         np.nan).T

    def _average_spread(self, answered: np.ndarray, n_h: np.ndarray,
                        f_h: np.ndarray) -> np.ndarray | None:
        """R's "average" rule: per variable and domain, strata with answering rows over those of
        them that are not lonely (NaN when all are: R gives no variance either)."""
        if self.design.lonely_psu != "average":
            return None
        present = self.per_cell(self.per_psu(answered.view(np.uint8))) > 0
        usable = present & ((n_h > 1) | (f_h < 1e-7))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.cells_to_domains(present) / self.cells_to_domains(usable)

    def _second_stage(self, influence: np.ndarray):
        """The within-PSU variance of a second stage as a function (j, others) → (J − j) × D,
        or None for a one-stage design."""
        design = self.design
        if self.ssu_starts is None or design.ssus_in_psu is None:
            return None
        totals = _sums(influence, self.ssu_starts)                          # J × SSUs
        sums = _sums(totals, self.group_starts)                             # J × (domain, PSU)
        m_i = design.ssus_in_psu[self.group_psu].astype(np.float64)
        g_i = design.ssu_fpc_factor[self.group_psu]
        scale, centre = _stage_scale(m_i, g_i, design.lonely_psu)
        scale = scale * (1 - design.fpc_factor[self.group_stratum])         # × n_h/N_h

        def within(j: int, others: slice) -> np.ndarray:
            cross = _sums(totals[j] * totals[others], self.group_starts)
            per_group = scale * (cross - centre * sums[j] * sums[others])
            return self._scatter(_sums(per_group, self.group_domain_starts), self.group_domains)

        return within

    def per_domain(self, values: np.ndarray) -> np.ndarray:
        return self._scatter(_sums(values, self.domain_starts), self.domains)

    def to_rows(self, per_domain: np.ndarray) -> np.ndarray:
        """Each row's domain value."""
        return np.repeat(per_domain[:, self.domains], self.domain_sizes, axis=-1)

    def per_psu(self, values: np.ndarray) -> np.ndarray:
        return values if self.psu_starts is None else _sums(values, self.psu_starts)

    def per_cell(self, psu_values: np.ndarray) -> np.ndarray:
        return _sums(psu_values, self.cell_starts)

    def cells_to_domains(self, cell_values: np.ndarray) -> np.ndarray:
        return self._scatter(_sums(cell_values, self.cell_domain_starts),
                             self.cell_domains)

    def psus_to_domains(self, psu_values: np.ndarray) -> np.ndarray:
        return self._scatter(_sums(psu_values, self.psu_domain_starts),
                             self.psu_domains)

    def _scatter(self, present: np.ndarray, domains: np.ndarray) -> np.ndarray:
        out = np.zeros((*present.shape[:-1], self.n_domains))
        out[..., domains] = present
        return out


def _stage_scale(n: np.ndarray, f: np.ndarray, lonely_psu: LonelyPsu,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per group of n sampled units with fpc factor f: the scale of Σ(t − centre·Σt)² — n/(n − 1)·f,
    and for a lonely unit f uncentred ("adjust") or 0 ("certainty"; "average" rescales later)."""
    lonely = n <= 1
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(lonely, f if lonely_psu == "adjust" else 0.0, f * n / (n - 1))
    return scale, np.where(lonely, 0.0, 1.0 / n)


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of the segments beginning at `starts` along the last axis, in float64 (booleans count)."""
    return np.add.reduceat(values, starts, axis=-1, dtype=np.float64)


def _ascending(keys: np.ndarray) -> bool:
    return bool(np.all(keys[1:] >= keys[:-1]))


def _starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first entry of each run of equal keys."""
    flags = np.empty(sorted_keys.size, dtype=bool)
    flags[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=flags[1:])
    return np.flatnonzero(flags)


def svymean(frame: pl.DataFrame, value: str | Sequence[str], *, weight: str,
            strata: str | Sequence[str] | None = None, psu: str | None = None,
            fpc: str | None = None, by: str | Sequence[str] | None = None, level: float = 0.95,
            lonely_psu: LonelyPsu = "adjust", ssu: str | None = None,
            ssu_fpc: str | None = None) -> pl.DataFrame:
    """Design-based means of `value` (one or several columns) overall or per `by` domain.

    Returns the `by` columns (and `variable` when several values are given) with
    `mean, se, ci_low, ci_high, df, n, n_eff, deff`. Rows whose value is null or NaN are left out of
    that estimate only.
    """
    values = [value] if isinstance(value, str) else list(value)
    by_cols = [by] if isinstance(by, str) else list(by or [])
    design = make_design(frame, weight=weight, strata=strata, psu=psu, fpc=fpc,
                         lonely_psu=lonely_psu, ssu=ssu, ssu_fpc=ssu_fpc)
    if by_cols:
        domain, keys = domain_codes(frame, by_cols)
    else:
        domain, keys = np.zeros(frame.height, dtype=np.int64), pl.DataFrame()
    n_domains = keys.height if by_cols else 1
    y = frame.select(pl.col(v).cast(pl.Float64).fill_null(np.nan) for v in values).to_numpy()
    est = mean_covariance(design, y, domain, n_domains, pairs=False)
    return estimates_frame(est, keys, values, level)


def estimates_frame(est: MeanEstimates, keys: pl.DataFrame, variables: Sequence[str],
                    level: float = 0.95, variable_column: str | None = None,
                    shares: Sequence[bool] | None = None,
                    share_method: ShareInterval = "logit") -> pl.DataFrame:
    """Long frame (domain keys × variable) of a `MeanEstimates`; the variable names go into
    `variable_column` (by default a `variable` column, only when there are several). Variables
    flagged in `shares` are percentages (0/100 per row): their interval is `share_method`'s."""
    se = est.se
    low, high = t_interval(est.mean, se, est.df, level)
    if shares is not None and any(shares):
        share = np.asarray(shares, dtype=bool)
        p_low, p_high = share_interval(est.mean[:, share] / 100, se[:, share] / 100,
                                       est.df[:, share], est.n[:, share],
                                       est.n_eff[:, share], level, share_method)
        low[:, share], high[:, share] = 100 * p_low, 100 * p_high
    n_domains, n_vars = est.mean.shape
    domain = np.repeat(np.arange(n_domains), n_vars)
    columns = [keys[name].gather(domain) for name in keys.columns] if keys.width else []
    if variable_column is not None or len(variables) > 1:
        columns.append(pl.Series(variable_column or "variable", list(variables), dtype=pl.String)
                       .gather(np.tile(np.arange(n_vars), n_domains)))
    flat = {"mean": est.mean, "se": se, "ci_low": low, "ci_high": high, "df": est.df,
            "n": est.n, "n_eff": est.n_eff, "deff": est.deff}
    columns += [pl.Series(name, np.asarray(array, dtype=np.float64).ravel(), nan_to_null=True)
                for name, array in flat.items()]
    return pl.DataFrame(columns).with_columns(pl.col("df", "n").cast(pl.Int64))
