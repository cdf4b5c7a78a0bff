"""Raking (iterative proportional fitting) of survey weights to population margins, with Chinese
errors for margins that cannot be met.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from pipelines.stats.design import EstimationError


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


def rake_to_county_margins(frame: pl.DataFrame, margins: pl.DataFrame) -> pl.DataFrame:
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
