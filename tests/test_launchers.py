"""Both launchers, freshly started, keep a visitor inside app.py: `streamlit run app.py` (what a
Streamlit user types) and `python -m pipelines.serve` (make run). On a fresh `streamlit run`
server Streamlit takes pages/ for its legacy navigation folder until st.navigation first runs:
the first visitor lost the chosen wave on their first page change (issue 19.4), and a bookmarked
deep link ran the page alone, with no sidebar and no sign-in check."""

from __future__ import annotations

import subprocess

import pytest

from bench.load import LAUNCHERS, start_server, stop_server
from pipelines.store.warehouse import REPO_DIR
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")]


def _start(launcher: str, db, log_path) -> tuple[subprocess.Popen, str]:
    """A real server of `launcher` on a free port (bench/load.py's), up within 60 s."""
    return start_server(launcher, db, log_path, draws="2000", timeout=60)


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("start", ["?wave=2023", "county?wave=2023"], ids=["root", "deep-link"])
def test_first_visitor_stays_in_the_app_and_keeps_the_wave(db_copy, tmp_path, launcher, start):
    from playwright.sync_api import expect, sync_playwright

    process, url = _start(launcher, db_copy, tmp_path / "server.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page.goto(f"{url}/{start}")
            sidebar = page.locator('[data-testid="stSidebar"]')
            main = page.locator('[data-testid="stMain"]')
            wave = sidebar.locator('[data-testid="stSelectbox"] input').first
            wave.wait_for(timeout=90_000)                     # app.py ran: the filters are there
            main.get_by_text("2023年度").first.wait_for(timeout=60_000)
            expect(wave).to_have_value("2023年度", timeout=30_000)
            for label, marker in (("县区排名", "得分表"), ("挂牌风险", "漏斗图")):
                page.locator('[data-testid="stSidebarNav"]').get_by_text(label).click()
                main.get_by_text(marker).first.wait_for(timeout=60_000)
                # polls while the page reruns; a wave reset to 2021 never comes back, so this fails
                expect(wave).to_have_value("2023年度", timeout=30_000)
                expect(main).to_contain_text("2023年度", timeout=30_000)
            browser.close()
    finally:
        stop_server(process)


def test_streamlit_magic_is_off_so_pages_compile_safely_in_parallel():
    """Magic ast.parse()s each page; on Python 3.11.7 two sessions doing that at once can fail with
    "AST constructor recursion depth mismatch" (seen as blank pages under load)."""
    import tomllib

    config = tomllib.loads((REPO_DIR / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["magicEnabled"] is False
