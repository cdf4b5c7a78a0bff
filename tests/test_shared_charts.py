"""Charts are built once per data version and shared by every session (issue 19: building and
converting the Altair charts was most of a page view under load), yet never shown stale: the
city, the county and the data version are part of what a chart is keyed on."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.present import charts
from tests.test_app import APP, navigation_not_pages_directory  # noqa: F401  (autouse fixture)

BUILDERS = ("ranking_chart", "risk_chart", "funnel_chart", "history_chart", "interval_chart",
            "comparison_chart", "hex_map")


@pytest.fixture
def built(monkeypatch) -> dict[str, int]:
    """How often each chart builder ran."""
    calls = dict.fromkeys(BUILDERS, 0)
    for name in BUILDERS:
        original = getattr(charts, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(charts, name, counted)
    return calls


def _session(monkeypatch, db) -> AppTest:
    monkeypatch.setenv("CEPING_DB", str(db))
    monkeypatch.setenv("CEPING_DRAWS", "2000")
    return AppTest.from_file(APP, default_timeout=120).run()


def _specs(at: AppTest) -> list[dict]:
    found = [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]
    assert found, "no chart on the page"
    return found


PAGES = ("overview", "ranking", "risk", "delisting", "county")


def test_a_second_session_builds_no_chart(monkeypatch, db_copy, built):
    first = _session(monkeypatch, db_copy)
    for page in PAGES:
        first.switch_page(f"pages/{page}.py").run()
        assert not first.exception, (page, first.exception)
    assert all(built[name] for name in ("ranking_chart", "risk_chart", "funnel_chart",
                                        "history_chart", "interval_chart", "hex_map")), built
    once = dict(built)
    second = _session(monkeypatch, db_copy)
    for page in PAGES:
        second.switch_page(f"pages/{page}.py").run()
        assert not second.exception, (page, second.exception)
    assert built == once                                  # every chart came from the cache
    assert _specs(second) == _specs(first)                # the county page: the same charts


def test_a_shared_chart_follows_the_city_and_the_county(monkeypatch, db_copy):
    at = _session(monkeypatch, db_copy)
    at.switch_page("pages/ranking.py").run()
    province = _specs(at)[0]
    at.selectbox(key="city").select("9901").run()
    city = _specs(at)[0]
    assert city != province
    at.selectbox(key="city").select("").run()
    assert _specs(at)[0] == province
    at.switch_page("pages/county.py").run()
    before = _specs(at)
    county = next(box for box in at.selectbox if box.label == "区县")
    county.select_index(county.index + 1).run()
    assert not at.exception and _specs(at) != before


def test_a_leader_arriving_during_the_warm_up_waits_for_it(monkeypatch, db_copy):
    """After a publish the analyst's session computes the new wave; a leader who opens it
    meanwhile must wait for that computation, not run a second one beside it."""
    import threading
    import time

    from pages import _shared
    from pipelines.results import cache

    monkeypatch.setenv("CEPING_DB", str(db_copy))
    runs = []
    original = cache.scored_history

    def slow(*args, **kwargs):
        runs.append(threading.current_thread().name)
        time.sleep(1.5)
        return original(*args, **kwargs)
    monkeypatch.setattr(cache, "scored_history", slow)
    wave = _shared.warehouse().waves()["wave"][-1]
    analyst = threading.Thread(target=_shared.warm_after_publish, name="analyst")
    analyst.start()
    time.sleep(0.5)
    scores = _shared.history(wave)                       # a leader opening the newest wave
    analyst.join()
    assert runs == ["analyst"] and scores[-1].wave == wave
