"""Run the R reference script live and compare its output with the committed fixtures, shared by
the tests that check estimators against R's `survey` (fixtures in fixtures/r_survey/)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

R_DIR = Path(__file__).resolve().parent / "fixtures" / "r_survey"


def assert_r_reproduces(out_dir: Path, names: Sequence[str],
                        assert_close: Callable[[pl.Series, pl.Series, str], None]) -> None:
    """Rscript reference.R into `out_dir`; each named CSV equals the committed one (numbers
    within `assert_close`, text exactly)."""
    done = subprocess.run(["Rscript", str(R_DIR / "reference.R"), str(out_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in names:
        fresh, committed = (pl.read_csv(d / name, infer_schema_length=None)
                            for d in (out_dir, R_DIR))
        assert fresh.columns == committed.columns and fresh.height == committed.height, name
        for column in fresh.columns:
            if fresh[column].dtype.is_numeric():
                assert_close(fresh[column], committed[column], f"{name}:{column}")
            else:
                assert fresh[column].to_list() == committed[column].to_list(), f"{name}:{column}"
