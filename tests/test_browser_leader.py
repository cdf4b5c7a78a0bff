"""A leader's first screen in a real Chromium at the meeting-room, laptop and phone sizes: 总览 opens
with the 高危/预警 counties, named, above the fold; on a phone the menu is labelled."""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _settle, served_app  # noqa: F401

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")]

SIZES = {"1920x1080": (1920, 1080), "1366x768": (1366, 768), "390x844": (390, 844)}


def test_first_screen_names_the_red_and_amber_counties_at_every_size(served_app, built_db,  # noqa: F811
                                                                     defs):
    from playwright.sync_api import sync_playwright

    from pipelines.ranking.risk import risk_table
    from pipelines.results.wave import scored_history
    from pipelines.store.warehouse import Warehouse

    wh = Warehouse.open(built_db, read_only=True)
    try:
        risk = risk_table(scored_history(wh, defs, "2025"), defs, draws=4000)
    finally:
        wh.close()
    red = risk.filter(risk["band"] == "高危")["county_name"].to_list()
    amber = risk.filter(risk["band"] == "预警")["county_name"].to_list()
    assert red and amber
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for label, (width, height) in SIZES.items():
            page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")
            page.goto(f"{served_app}/?wave=2025")
            page.get_by_text(f"高危 {len(red)} 个").first.wait_for(timeout=120_000)
            _settle(page)
            page.screenshot(path=str(ARTIFACTS / f"first-screen-{label}.png"))
            for name in red + amber:
                box = page.get_by_text(name, exact=False).first.bounding_box()
                assert box is not None and box["y"] + box["height"] <= height, (label, name, box)
            line = page.get_by_text("高危").first.bounding_box()
            metric = page.get_by_text("全省平均分").first.bounding_box()
            assert line["y"] < metric["y"], label           # the list comes before the figures
            if width < 640:
                toggle = page.locator("[data-testid='stExpandSidebarButton']")
                content = toggle.evaluate("e => getComputedStyle(e, '::after').content")
                assert "菜单" in content
                toggle.click()
                page.get_by_role("link", name="县区排名").wait_for(timeout=30_000)
            page.close()
        browser.close()
