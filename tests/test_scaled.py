"""The synthetic provinces of the scale benchmarks load through the ordinary ingest path."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.cli import main
from pipelines.ingest.build import build_warehouse
from pipelines.results.wave import score_wave
from pipelines.store.warehouse import Warehouse
from pipelines.synth.scaled import generate_scaled, make_counties


def test_a_small_scaled_province_builds_and_scores(tmp_path, defs):
    source = tmp_path / "files"
    generate_scaled(source, counties=30, per_county=60, waves=3, seed=7)
    db = tmp_path / "scaled.duckdb"
    result = build_warehouse(db, source)
    assert result.waves == 3
    wh = Warehouse.open(db, read_only=True)
    try:
        waves = wh.waves()
        assert waves["wave"].to_list() == ["2023", "2024", "2025"]
        assert waves["counties"].to_list() == [30, 30, 30]
        assert all(57 <= n / 30 <= 63 for n in waves["respondents"].to_list())
        scores = score_wave(wh, defs, "2025").composite
        assert scores.height == 30 and scores["score"].is_between(20, 100).all()
        assert wh.counties()["city_code"].n_unique() == 3
    finally:
        wh.close()


def test_national_geography_has_unique_codes_and_names():
    counties = make_counties(np.random.default_rng(1), 2850)
    assert len({c.code for c in counties}) == 2850 and len({c.name for c in counties}) == 2850
    assert all(len(c.code) == 6 and c.code.isdigit() for c in counties)


def test_scaled_command_writes_files(tmp_path, capsys, monkeypatch):
    import pipelines.synth.scaled as scaled

    monkeypatch.setitem(scaled.SCALES, "sample", (12, 20, 2))
    assert main(["scaled", "--scale", "sample", "--out", str(tmp_path / "p")]) == 0
    assert "12 个县" in capsys.readouterr().out
    assert pl.read_csv(tmp_path / "p" / "counties.csv").height == 12
