"""A bookmark restores exactly its view (page, wave, city, county) in a real Chromium, with both
launchers, on a freshly started server and on a warm one (issue 20: a county link opened the first
county of the list, and a fresh `streamlit run` server showed an empty page)."""

from __future__ import annotations

import pytest

from bench.load import LAUNCHERS, stop_server
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_launchers import _start

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")]

# url path → text only that page shows once it has rendered
PAGES = {"": "挂牌整治中", "ranking": "得分表", "risk": "漏斗图", "delisting": "规则判定与正式决定对照",
         "county": "提分杠杆与假设分析", "exports": "导出范围", "scheme": "敏感性分析"}
QUERY = "wave=2024&city=9902&county=990210"


def _check_view(browser, url: str, path: str, visit: str) -> None:
    """Open the bookmark in a fresh browser context (a new visitor) and check every part of the
    view: the page, the wave and city in the sidebar, the county, and the URL left as it was."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{url}/{path}?{QUERY}")
    main = page.locator('[data-testid="stMain"]')
    sidebar = page.locator('[data-testid="stSidebar"]')
    selects = sidebar.locator('[data-testid="stSelectbox"] input')
    selects.first.wait_for(timeout=90_000)
    main.get_by_text(PAGES[path]).first.wait_for(timeout=120_000)
    expect(selects.nth(0)).to_have_value("2024年度", timeout=30_000)
    expect(selects.nth(1)).to_have_value("霁汊市", timeout=30_000)
    if path == "":            # the city's view holds the city's figures, not the province's
        expect(main).to_contain_text("霁汊市平均分", timeout=30_000)
        assert "全省平均分" not in main.inner_text()
    if path == "county":
        box = main.locator('[data-testid="stSelectbox"] input').first
        expect(box).to_have_value("翎埠县（990210）", timeout=30_000)
    page.wait_for_timeout(1500)       # a rerun that rewrote the URL would have done so by now
    for part in QUERY.split("&"):
        assert part in page.url, (path, visit, page.url)
    assert page.url.split("?")[0].rstrip("/").endswith(path), page.url
    assert "没有调查数据" not in main.inner_text()
    context.close()


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("path", list(PAGES), ids=[p or "overview" for p in PAGES])
def test_a_bookmark_of_every_page_restores_its_view_on_a_fresh_server(db_copy, tmp_path,
                                                                      launcher, path):
    from playwright.sync_api import sync_playwright

    process, url = _start(launcher, db_copy, tmp_path / "server.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            _check_view(browser, url, path, "fresh")    # the server's very first visitor
            _check_view(browser, url, path, "warm")     # and one on the now warm server
            browser.close()
    finally:
        stop_server(process)
