"""The real server under load (issue 19): 10 sessions over Streamlit's websocket protocol browse
every page of a freshly started `streamlit run app.py` for 60 s while an analyst publishes a
survey wave and its indicator sheet on the data page and withdraws the sheet. Fails on a freeze
(a run without script_finished for 30 s), a health outage (three failed probes in a row, what a
supervisor calls down; single slow probes are printed), an error box or exception, or an analyst
step that did not confirm. Timings are printed, never asserted (bench/load.py)."""

from __future__ import annotations

import pytest

from bench.load import run_load

pytestmark = pytest.mark.slow


def test_ten_sessions_for_a_minute_while_an_analyst_publishes(built_db, tmp_path):
    report = run_load("streamlit-run", sessions=10, seconds=60, idle_seconds=10, think=1.0,
                      draws="2000", workdir=tmp_path, source_db=built_db)
    print("\n".join(report.lines()))
    assert report.arrival_served == 10
    assert report.freezes == 0
    assert report.health_outages == 0
    assert report.errors() == []
    assert len([s for s in report.analyst if not s.startswith("[")]) == 9   # every step ran
    assert report.loaded.runs >= 10 and "2026" in report.loaded.waves_seen
