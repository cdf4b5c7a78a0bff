"""测评看板's public API for pages, notebooks and scripts: files → ingest → store → stats → ranking →
results → present → exports (docs/architecture.md). Names load on first use, so importing
the package stays cheap for the dashboard's first paint."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # core
    "IngestError": "pipelines.core.problems",
    "beijing_expr": "pipelines.core.clock",
    "beijing_text": "pipelines.core.clock",
    "keep_freed_memory": "pipelines.core.allocator",
    "run_slot": "pipelines.core.slots",
    "next_wave": "pipelines.core.waves",
    "safe_file_name": "pipelines.core.limits",
    "wave_display": "pipelines.core.waves",
    "wave_display_expr": "pipelines.core.waves",
    # scheme
    "Definitions": "pipelines.scheme.definitions",
    "load_definitions": "pipelines.scheme.definitions",
    # stats
    "Funnel": "pipelines.stats.funnel",
    "WaveScores": "pipelines.stats.wave_scores",
    "funnel": "pipelines.stats.funnel",
    "score_frames": "pipelines.stats.wave_scores",
    "survey_score_by": "pipelines.stats.townships",
    "svymean": "pipelines.stats.means",
    # ranking
    "ListingResult": "pipelines.ranking.listing",
    "component_levers": "pipelines.ranking.ranks",
    "consequences": "pipelines.ranking.consequences",
    "county_fixes": "pipelines.ranking.fixes",
    "delisting_progress": "pipelines.ranking.risk",
    "risk_table": "pipelines.ranking.risk",
    "WhatIf": "pipelines.ranking.risk",
    "PlanError": "pipelines.ranking.plan",
    "PlanSettings": "pipelines.ranking.plan",
    "SamplePlan": "pipelines.ranking.plan",
    "plan_for_scores": "pipelines.ranking.plan",
    "what_if": "pipelines.ranking.risk",
    # store
    "Warehouse": "pipelines.store.warehouse",
    "WarehouseError": "pipelines.store.warehouse",
    # results
    "listing_result": "pipelines.results.wave",
    "is_complete": "pipelines.results.release",
    "release_differences": "pipelines.results.release",
    "release_wave": "pipelines.results.release",
    "score_wave": "pipelines.results.wave",
    "scored_history": "pipelines.results.wave",
    "township_scores": "pipelines.results.wave",
    # present
    "chart_png": "pipelines.present.figures",
    "component_comparison": "pipelines.present.views",
    "county_histories": "pipelines.present.views",
    "county_history": "pipelines.present.views",
    "cut_line_scores": "pipelines.present.views",
    "figure_png": "pipelines.present.figures",
    "ranking_view": "pipelines.present.views",
    "sensitivity": "pipelines.present.views",
    # ingest
    "Confirmations": "pipelines.ingest.validation",
    "DECISION_TYPES": "pipelines.ingest.decisions",
    "read_decisions": "pipelines.ingest.decisions",
    "build_warehouse": "pipelines.ingest.build",
    "check_bytes": "pipelines.ingest.load",
    "column_mapping": "pipelines.ingest.load",
    "detect_layout": "pipelines.ingest.load",
    "LayoutChoice": "pipelines.ingest.sheets",
    "sheet_names": "pipelines.ingest.load",
    "UPLOAD_TYPES": "pipelines.ingest.readers",
    "header_targets": "pipelines.ingest.validation",
    "indicator_preview": "pipelines.ingest.preview",
    "ingest_bytes": "pipelines.ingest.load",
    "ingest_file": "pipelines.ingest.load",
    "read_table": "pipelines.ingest.readers",
    "survey_preview": "pipelines.ingest.preview",
    "target_label": "pipelines.ingest.validation",
    # exports
    "build_deck": "pipelines.exports.deck",
    "meeting_pack": "pipelines.exports.pack",
    "meeting_tables": "pipelines.exports.pack",
    "workbook_bytes": "pipelines.exports.workbook",
    "workbook_note": "pipelines.exports.pack",
}
_MODULE_EXPORTS: dict[str, str] = {
    "charts": "pipelines.present.charts",        # Altair charts of every page and export
    "result_cache": "pipelines.results.cache",   # a wave's results, computed once per data version
}

__all__ = sorted([*_EXPORTS, *_MODULE_EXPORTS])


def __getattr__(name: str) -> Any:
    """Import the name's module on first use (PEP 562) and keep the value."""
    if name in _MODULE_EXPORTS:
        value = import_module(_MODULE_EXPORTS[name])
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
