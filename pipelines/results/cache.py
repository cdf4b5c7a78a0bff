"""The results the dashboard keeps, one definition of each key: scored history, risk table and
listing of a wave, computed once per data version and then read from the result store."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from pipelines.core.waves import next_wave, wave_months
from pipelines.ranking.ranks import DRAWS
from pipelines.ranking.risk import risk_table
from pipelines.results.wave import listing_result, scored_history
from pipelines.scheme.definitions import Definitions
from pipelines.store.result_store import cached

DRAWS_ENV = "CEPING_DRAWS"     # fewer draws in tests; the risk table's 10,000 by default


def dashboard_draws() -> int:
    """Simulation draws of the dashboard's risk table (the store's key includes them)."""
    return int(os.environ.get(DRAWS_ENV, str(DRAWS)))


def scheme_key(defs: Definitions, wave: str) -> str:
    """Digest of the definitions that can be in force up to `wave` and its next wave (which the
    forecast scores): the questionnaire, the catalogue and the scheme without the rules that
    start later. Any edit of those — also in a scheme outside surveys/, which the code
    fingerprint never reads — changes the key, so no stale result is served; a rule added
    "from 2027" leaves the results of 2025 valid."""
    horizon = wave_months(next_wave(wave))[1]

    def started(rule) -> bool:
        return rule.from_wave is None or wave_months(rule.from_wave)[0] <= horizon

    scheme = dataclasses.replace(
        defs.scheme, components=tuple(c for c in defs.scheme.components if started(c)),
        vetoes=tuple(v for v in defs.scheme.vetoes if started(v)),
        tiers=tuple(t for t in defs.scheme.tiers if started(t)))
    text = repr((defs.questionnaire, defs.indicators, scheme))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def history(db: Path, wh, defs, version: str, wave: str):
    """Every wave up to `wave`, scored (pipelines.results.wave.scored_history)."""
    return cached(db, "history", (version, wave, scheme_key(defs, wave)),
                  lambda: scored_history(wh, defs, wave))


def risk(db: Path, scored: Callable[[], list], defs, version: str, wave: str, draws: int):
    """The risk table of `wave` (pipelines.ranking.risk.risk_table); `scored` gives the history if needed."""
    return cached(db, "risk", (version, wave, draws, scheme_key(defs, wave)),
                  lambda: risk_table(scored(), defs, draws=draws))


def listing(db: Path, wh, defs, scored: Callable[[], list], version: str, wave: str):
    return cached(db, "listing", (version, wave, scheme_key(defs, wave)),
                  lambda: listing_result(wh, defs, scored()))


def warm(db: Path, wh, defs, wave: str, draws: int) -> None:
    """Compute and store what the dashboard's first page needs (after a build or a publish)."""
    version = wh.content_version(wave)          # the key the dashboard uses
    scored = history(db, wh, defs, version, wave)
    risk(db, lambda: scored, defs, version, wave, draws)
    listing(db, wh, defs, lambda: scored, version, wave)


def warm_latest(db: Path, wh, defs) -> str | None:
    """`warm` the newest wave (the dashboard's default view) after a publish, so the first leader
    to open the dashboard does not wait for the scoring and the simulation. Returns the wave, or
    None when there is none yet; a wave that cannot be scored yet (e.g. its indicator table is
    still missing) raises the warehouse's or the estimator's error, for the caller to report."""
    waves = wh.waves()["wave"].to_list()
    if not waves:
        return None
    warm(db, wh, defs, waves[-1], dashboard_draws())
    return waves[-1]
