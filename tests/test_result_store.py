"""Results kept beside the warehouse: computed once, reused after a restart, missed when the data
version changes, recomputed when damaged."""

from __future__ import annotations

import polars as pl

from pipelines.cli import main
from pipelines.store import result_store


def test_a_result_is_computed_once_and_reused(tmp_path):
    db = tmp_path / "w.duckdb"
    calls = []

    def compute():
        calls.append(1)
        return pl.DataFrame({"x": [1.5, 2.5]})

    first = result_store.cached(db, "risk", (1, "2025"), compute)
    again = result_store.cached(db, "risk", (1, "2025"), compute)
    assert calls == [1] and again.equals(first)
    result_store.cached(db, "risk", (2, "2025"), compute)        # a publish bumps the version
    assert len(calls) == 2
    for path in result_store.store_dir(db).glob("*.pkl"):
        path.write_bytes(b"damaged")
    assert result_store.cached(db, "risk", (1, "2025"), compute).equals(first)
    assert len(calls) == 3
    assert not list(result_store.store_dir(db).glob("*.partial"))


def test_old_results_are_pruned(tmp_path):
    db = tmp_path / "w.duckdb"
    for version in range(result_store.KEEP + 5):
        result_store.cached(db, "history", (version, "2025"), lambda: version)
    assert len(list(result_store.store_dir(db).glob("*.pkl"))) == result_store.KEEP


def test_build_stores_what_the_first_page_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    db = tmp_path / "warehouse.duckdb"
    assert main(["build", "--db", str(db)]) == 0
    assert "已预先计算2025年度的得分与风险" in capsys.readouterr().out
    kinds = sorted(p.name.split("-")[0] for p in result_store.store_dir(db).glob("*.pkl"))
    assert kinds == ["history", "listing", "risk"]
