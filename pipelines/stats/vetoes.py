"""一票否决: which counties a scheme veto sets to 0, and the reasons recorded.
"""

from __future__ import annotations

import numpy as np

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
