"""Answer codes → item points by the scheme's tables (blank = item non-response; 说不清 as the
scheme says).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from pipelines.scheme.definitions import Definitions, Scheme

POINTS_PREFIX = "p_"


def item_points(responses: pl.DataFrame, defs: Definitions) -> pl.DataFrame:
    """Add `p_<item>` (Float64 points; null = not part of that item's estimate) for each scored item.

    Blank answers are item non-response; 说不清 answers are excluded or scored as the scheme says.
    """
    item_ids = [item.id for item in defs.questionnaire.items if item.id in defs.scheme.items]
    points = item_point_matrix(responses, defs, item_ids)
    return responses.with_columns(pl.Series(POINTS_PREFIX + item_id, points[:, j], nan_to_null=True)
                                  for j, item_id in enumerate(item_ids))


def item_point_matrix(responses: pl.DataFrame, defs: Definitions,
                      item_ids: Sequence[str]) -> np.ndarray:
    """Rows × items points (NaN = not part of that item's estimate), by a lookup table per item:
    answer codes are small integers, so indexing a table is one pass where a replace is a join."""
    by_id = {item.id: item for item in defs.questionnaire.items}
    columns = [by_id[item_id].column for item_id in item_ids]
    if not columns:
        return np.empty((responses.height, 0))
    codes = responses.select(pl.col(columns).cast(pl.Int32, strict=False).fill_null(2**30)) \
        .to_numpy()                                       # a blank answer is no known code
    out = np.empty(codes.shape[::-1])               # items × rows, as mean_covariance sums them
    for j, item_id in enumerate(item_ids):
        mapping = answer_points(defs, item_id)
        low, high = min(mapping, default=0), max(mapping, default=0)
        table = np.full(high - low + 3, np.nan)       # both ends: any other answer
        table[np.fromiter(mapping, dtype=np.int64) - low + 1] = list(mapping.values())
        np.take(table, codes[:, j] - (low - 1), mode="clip", out=out[j])
    return out.T


def answer_points(defs: Definitions, item_id: str) -> dict[int, float]:
    """Points per answer code that counts in the item's mean (说不清 too when the scheme scores it)."""
    item, scoring = defs.questionnaire.item(item_id), defs.scheme.items[item_id]
    mapping = {int(code): float(points) for code, points in scoring.points.items()}
    if scoring.dont_know == "score":
        for answer in item.answers:
            if answer.dont_know:
                mapping[int(answer.code)] = float(scoring.dont_know_points or 0.0)
    return mapping


def is_share_item(defs: Definitions, item_id: str) -> bool:
    """Every counted answer scores 0 or 100, so the item's mean is a percentage (知晓率, 身边涉毒
    现象): its interval must stay within 0–100 (pipelines/stats/ciprop.py)."""
    return set(answer_points(defs, item_id).values()) == {0.0, 100.0}


def scored_items(scheme: Scheme) -> list[str]:
    """Items that survey components use, in a stable order."""
    seen: dict[str, None] = {}
    for comp in scheme.components:
        for item_id in comp.items:
            seen.setdefault(item_id, None)
    return list(seen)
