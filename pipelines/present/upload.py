"""What the upload page proposes before the analyst types anything."""

from __future__ import annotations

import polars as pl

from pipelines.core.waves import next_wave

_LOADED = {"survey": ("survey_load_id", "indicators_load_id"),
           "indicators": ("indicators_load_id", "survey_load_id")}


def proposed_wave(waves: pl.DataFrame, kind: str) -> str:
    """The 期次 an upload of `kind` most likely belongs to: the newest wave that has the other
    kind of data and lacks this one (a wave whose survey is in waits for its indicator sheet),
    else the wave after the newest one."""
    this, other = _LOADED[kind]
    incomplete = waves.filter(pl.col(this).is_null() & pl.col(other).is_not_null())["wave"]
    if incomplete.len():
        return incomplete.sort()[-1]
    known = waves["wave"].sort()
    return next_wave(known[-1]) if known.len() else ""
