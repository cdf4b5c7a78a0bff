"""A component's raw values → 0–100 points (as is, goalposts, min–max, z-score, step points,
points per unit); relative methods use the other counties of the same replicate. A deduction
component gives the same share negative (−100…0), so its weight is the most it can take off.
"""

from __future__ import annotations

import numpy as np

from pipelines.scheme.definitions import Component


def normalise(raw: np.ndarray, comp: Component, reference: np.ndarray | None = None) -> np.ndarray:
    """0–100 points of a component from its raw values; the last axis runs over counties, so a
    relative normalisation uses the counties of the same replicate (or of `reference`, to move one
    county while holding the others' yardstick). NaN (no data) stays NaN."""
    x = np.asarray(raw, dtype=np.float64)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    sign = -1.0 if comp.direction == "lower" else 1.0
    method = comp.normalisation
    with np.errstate(invalid="ignore", divide="ignore"):
        if method is None:
            out = x if sign > 0 else 100.0 - x
        elif method == "goalposts":
            span = comp.hi - comp.lo
            out = (x - comp.lo) / span * 100 if sign > 0 else (comp.hi - x) / span * 100
            out = np.clip(out, 0.0, 100.0)
        elif method == "minmax":
            lo = np.nanmin(ref, axis=-1, keepdims=True)
            hi = np.nanmax(ref, axis=-1, keepdims=True)
            span = hi - lo
            share = np.clip(np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 1.0),
                            0.0, 1.0)
            out = np.where(np.isnan(x), np.nan, (share if sign > 0 else 1 - share) * 100)
            if np.all(span <= 0):
                out = np.where(np.isnan(x), np.nan, 100.0)
        elif method == "zscore":
            mean = np.nanmean(ref, axis=-1, keepdims=True)
            sd = np.nanstd(ref, axis=-1, keepdims=True)
            z = np.where(sd > 0, (x - mean) / np.where(sd > 0, sd, 1.0), 0.0)
            out = np.where(np.isnan(x), np.nan, np.clip(50 + 10 * sign * z, 0.0, 100.0))
        elif method == "steps":      # ≥95 → 3 points, ≥98 → 5 (≤ for "lower"), of `weight`
            points = np.zeros_like(x)
            for threshold, value in comp.steps:
                reached = x >= threshold if sign > 0 else x <= threshold
                points = np.where(reached, np.maximum(points, value), points)
            out = np.where(np.isnan(x), np.nan, points / comp.weight * 100)
        elif method == "per_unit":   # 0.5 points per case, at most `weight`
            out = np.clip(x * comp.per_unit, 0.0, comp.weight) / comp.weight * 100
        else:  # guarded by definitions.py
            raise ValueError(method)
    # a deduction takes its points off: the same 0–100 share of its weight, negative
    return -out if comp.role == "deduction" else out
