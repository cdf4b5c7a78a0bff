"""No per-row Python function on any path a page runs: a script thread inside `map_elements`
while another converts a frame to pandas deadlocked the whole server (issue 19). The vectorised
replacements say exactly what the Python functions said."""

from __future__ import annotations

import re

import polars as pl

from pipelines.core.waves import wave_display, wave_display_expr
from pipelines.present.tables import FORMULA_STARTS, Table, csv_bytes, neutralise
from pipelines.store.warehouse import REPO_DIR

UDF = re.compile(r"\.(map_elements|map_rows|map_batches|map_groups|apply)\(")


def test_no_python_udf_on_a_page_path():
    files = [REPO_DIR / "app.py", *(REPO_DIR / "pages").rglob("*.py"),
             *(REPO_DIR / "pipelines").rglob("*.py")]
    found = [f"{path.relative_to(REPO_DIR)}:{n}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if UDF.search(line)]
    assert not found, found


def test_wave_labels_as_an_expression():
    labels = ["2021", "2025", "2025H1", "2025H2", "2025Q1", "2025Q4", "2025Q5", "1999", "其他", ""]
    got = pl.DataFrame({"wave": labels}).select(wave_display_expr("wave"))["wave"].to_list()
    assert got == [wave_display(label) for label in labels]
    nulls = pl.DataFrame({"wave": [None, "2024"]}, schema={"wave": pl.String})
    assert nulls.select(wave_display_expr("wave"))["wave"].to_list() == [None, "2024年度"]


def test_csv_cells_are_neutralised_as_before():
    cells = [s + "x" for s in FORMULA_STARTS] + ["正常", "1+1", "", "x=1", None]
    frame = pl.DataFrame({"文字": cells, "数": list(range(len(cells)))})
    text = csv_bytes(Table("t", frame)).decode("utf-8-sig").splitlines()[1:]
    expected = pl.DataFrame({"文字": [None if c is None else neutralise(c) for c in cells],
                             "数": list(range(len(cells)))}).write_csv().splitlines()[1:]
    assert text == expected
