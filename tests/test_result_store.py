"""Results kept beside the warehouse: computed once, reused after a restart, missed when the data
version changes, recomputed when damaged; stored as JSON and Arrow, so nothing planted in the
folder can run, and every result kind comes back equal to what was computed."""

from __future__ import annotations

import json
import pickle

import numpy as np
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.results import cache as result_cache
from pipelines.store import result_codec, result_store


def _parts(db):
    return [p for p in result_store.store_dir(db).rglob("*") if p.is_file()]


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
    for path in _parts(db):
        if path.suffix == ".arrow":
            path.write_bytes(b"damaged")
    assert result_store.cached(db, "risk", (1, "2025"), compute).equals(first)
    assert len(calls) == 3
    assert not [p for p in result_store.store_dir(db).iterdir() if "partial" in p.name]


def test_old_results_are_pruned(tmp_path):
    db = tmp_path / "w.duckdb"
    for version in range(result_store.KEEP + 5):
        result_store.cached(db, "history", (version, "2025"), lambda v=version: v)
    assert len(list(result_store.store_dir(db).iterdir())) == result_store.KEEP


class _Payload:
    """Unpickling this runs a command (what a planted file would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_planted_file_in_the_results_folder_never_runs(tmp_path):
    db = tmp_path / "w.duckdb"
    marker = tmp_path / "ran"
    folder = result_store._folder(db, "risk", (1, "2025"))
    folder.parent.mkdir()
    evil = pickle.dumps(_Payload(marker))
    # where the pickling store looked, and every file the new layout holds
    folder.with_suffix(".pkl").write_bytes(evil)
    folder.parent.joinpath(folder.name + ".pkl").write_bytes(evil)
    folder.mkdir()
    (folder / "p0.arrow").write_bytes(evil)
    (folder / result_codec.MANIFEST).write_text(json.dumps(
        {"format": 1, "tree": {"t": "obj", "cls": "_Payload", "f": {}}, "digests": {}}))
    got = result_store.cached(db, "risk", (1, "2025"), lambda: pl.DataFrame({"x": [1]}))
    assert got.equals(pl.DataFrame({"x": [1]}))
    assert not marker.exists()
    assert not list(folder.parent.glob("*.pkl"))            # foreign pickles are removed


@pytest.mark.parametrize("tree", [
    {"t": "frame", "file": "../../etc/passwd"},               # outside the folder
    {"t": "frame", "file": "p0.arrow"},                       # not in the digests
    {"t": "obj", "cls": "Path", "f": {}},                     # a class not on the list
    {"t": "array", "dtype": "object", "shape": [1], "file": "p0.arrow"},
])
def test_a_forged_manifest_is_refused(tmp_path, tree):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / result_codec.MANIFEST).write_text(json.dumps({"format": 1, "tree": tree,
                                                            "digests": {}}))
    with pytest.raises(result_codec.NotAResult):
        result_codec.decode(folder)


def test_every_result_kind_round_trips(tmp_path, wh, defs):
    scored = result_cache.scored_history(wh, defs, "2025")
    risk = result_cache.risk_table(scored, defs, draws=200)
    listing = result_cache.listing_result(wh, defs, scored)
    for n, value in enumerate((scored, risk, listing)):
        result_codec.write(tmp_path / str(n), value)
        back = result_codec.decode(tmp_path / str(n))
        assert type(back) is type(value)
    back_scored = result_codec.decode(tmp_path / "0")
    for a, b in zip(scored, back_scored, strict=True):
        assert a.wave == b.wave and a.level == b.level
        for name in ("items", "components", "composite"):
            assert getattr(a, name).equals(getattr(b, name)), name
        assert a.model.components == b.model.components
        assert a.model.counties == b.model.counties
        for name in ("survey_mean", "survey_cov", "indicator_raw", "indicator_count", "exposure",
                     "vetoed"):
            x, y = getattr(a.model, name), getattr(b.model, name)
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name
        assert np.array_equal(a.model.draw(50, 1), b.model.draw(50, 1), equal_nan=True)
    assert result_codec.decode(tmp_path / "1").equals(risk)
    back_listing = result_codec.decode(tmp_path / "2")
    for name in ("events", "conditions", "status", "comparison"):
        assert getattr(back_listing, name).equals(getattr(listing, name)), name


@pytest.mark.slow
def test_build_stores_what_the_first_page_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    db = tmp_path / "warehouse.duckdb"
    assert main(["build", "--db", str(db)]) == 0
    assert "已预先计算2025年度的得分与风险" in capsys.readouterr().out
    kinds = sorted(p.name.split("-")[0] for p in result_store.store_dir(db).iterdir())
    assert kinds == ["history", "listing", "risk"]
    assert not list(result_store.store_dir(db).rglob("*.pkl"))
