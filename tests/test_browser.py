"""A real headless Chromium (Debian's, through Playwright) opens the dashboard as a user would.

The app is started by the test on a free loopback port, against a copy of the sample warehouse.
Screenshots are saved under test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.warehouse import REPO_DIR
from tests.conftest import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium "
                                 "(make test installs it)")]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_app(db_copy, tmp_path):
    port = _free_port()
    env = dict(os.environ, CEPING_DB=str(db_copy))
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO_DIR / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true"],
        cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_overview_in_a_real_browser(served_app):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        started = time.perf_counter()
        page.goto(served_app)
        page.get_by_text("示范省禁毒工作专项调查测评").wait_for(timeout=60_000)
        page.get_by_text("2025年度").first.wait_for(state="attached", timeout=30_000)
        first_paint = time.perf_counter() - started
        assert page.locator("[data-testid='stException']").count() == 0
        body = page.inner_text("body")
        for expected in ("示例数据", "已导入期次", "5 期", "88 个", "区县名单"):
            assert expected in body
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
        browser.close()
    print(f"first paint {first_paint:.2f}s")
