"""一票否决: which counties a scheme veto sets to 0, and the reasons recorded.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.scheme.definitions import Component, Scheme

VETO_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
            "==": np.equal}


def vetoes(scheme: Scheme, wide: dict[str, np.ndarray], survey_comps: list[Component],
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


def veto_inputs(scheme: Scheme, wide: dict[str, np.ndarray], county_codes: list[str],
                population: np.ndarray) -> pl.DataFrame:
    """Long rows (county_code, population, rule, subject, op, threshold, value): what each veto
    rule of the scheme looked at this wave, fired or not. A count below its threshold (one cadre
    involved where two veto) is evidence of the county's rate: the next-wave veto model
    (pipelines/ranking/veto_risk.py) reads it. A component rule has no count: value is null."""
    n = len(county_codes)
    frames = []
    for index, veto in enumerate(scheme.vetoes):
        values = np.full(n, np.nan) if veto.subject.startswith("component:") \
            else wide.get(veto.subject, np.full(n, np.nan))
        frames.append(pl.DataFrame({
            "county_code": county_codes, "population": np.asarray(population, dtype=float),
            "rule": np.full(n, index, dtype=np.int64), "subject": [veto.subject] * n,
            "op": [veto.op] * n, "threshold": np.full(n, float(veto.value)),
            "value": np.asarray(values, dtype=float)}, nan_to_null=True))
    schema = {"county_code": pl.String, "population": pl.Float64, "rule": pl.Int64,
              "subject": pl.String, "op": pl.String, "threshold": pl.Float64, "value": pl.Float64}
    return pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)
