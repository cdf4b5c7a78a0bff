"""Results are keyed on what went into them, never on load ids: a restore rewinds the ids, and the
next publish must not be served the result of the publish the restore undid."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.results import cache as result_cache
from pipelines.results.wave import scored_history
from pipelines.store.warehouse import Warehouse
from tests.conftest import csv_bytes, sample_indicators, sample_wave


def _publish(db, tmp_path, survey_from: str, tag: str) -> None:
    survey = tmp_path / f"survey-{tag}.csv"
    survey.write_bytes(csv_bytes(sample_wave(survey_from).with_columns(
        pl.lit("2026").alias("调查期次"))))
    sheet = tmp_path / f"indicators-{tag}.csv"
    sheet.write_bytes(csv_bytes(sample_indicators("2025").with_columns(pl.lit("2026").alias("年度"))))
    assert main(["ingest", str(sheet), "--wave", "2026", "--kind", "indicators", "--db", str(db)]) == 0
    assert main(["ingest", str(survey), "--wave", "2026", "--db", str(db),   # warms 2026
                 "--allow-repeat"]) == 0      # an earlier wave's rows, relabelled


@pytest.mark.slow
def test_restore_then_republish_gives_the_new_scores(db_copy, tmp_path, defs, monkeypatch):
    monkeypatch.setenv("CEPING_DRAWS", "500")
    saved = tmp_path / "backup.duckdb"
    assert main(["backup", "--db", str(db_copy), str(saved)]) == 0
    _publish(db_copy, tmp_path, "2025", "a")           # stored results for the first 2026
    assert main(["restore", "--db", str(db_copy), str(saved)]) == 0
    _publish(db_copy, tmp_path, "2024", "b")           # same load ids, other answers
    with Warehouse.open(db_copy, read_only=True) as wh:
        version = wh.content_version("2026")
        shown = result_cache.history(db_copy, wh, defs, version, "2026")[-1].composite
        truth = scored_history(wh, defs, "2026")[-1].composite   # fresh, with 记零 applied
        risk = result_cache.risk(db_copy, lambda: None, defs, version, "2026", 500)
    assert shown["score"].to_list() == truth["score"].to_list()
    assert risk["score"].sort().to_list() == truth["score"].drop_nulls().sort().to_list()


def test_content_version_changes_with_content_not_with_ids(db_copy, tmp_path):
    saved = tmp_path / "backup.duckdb"
    assert main(["backup", "--db", str(db_copy), str(saved)]) == 0
    with Warehouse.open(db_copy) as wh:
        before = wh.content_version("2025")
        wh.record_decision("990101", "2025", "省", "挂牌整治", None, None, "测试")
        after_decision = wh.content_version("2025")
    assert after_decision != before
    assert main(["restore", "--db", str(db_copy), str(saved)]) == 0
    with Warehouse.open(db_copy) as wh:
        assert wh.content_version("2025") == before         # same content, same results
        wh.record_decision("990102", "2025", "省", "挂牌整治", None, None, "测试")
        assert wh.content_version("2025") not in (before, after_decision)
