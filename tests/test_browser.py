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

from pipelines.store.warehouse import REPO_DIR
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


PASSWORD = "浏览器-测试-口令"


@pytest.fixture
def served_app(db_copy, tmp_path):
    from pipelines.present.access import hash_password

    port = _free_port()
    env = dict(os.environ, CEPING_DB=str(db_copy), CEPING_DRAWS="4000",
               CEPING_ANALYST_HASH=hash_password(PASSWORD, rounds=1000))
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve",
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


PAGES = {  # navigation label → text that must be on the page once it has rendered
    "总览": "全省平均分",
    "县区排名": "得分表",
    "挂牌风险": "漏斗图",
    "摘帽进度": "规则判定与正式决定对照",
    "县区画像": "提分杠杆与假设分析",
    "会议材料": "导出范围",
    "评分方案": "敏感性分析",
}


def _settle(page) -> None:
    """Wait until the page has finished running and drawing (no spinner, no skeletons, charts
    and tables drawn) before reading it or taking a screenshot."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stSkeleton'], [data-testid='stSpinner']\")"
        " && document.querySelector(\"[data-testid='stApp']\")?.dataset?.teststate !== 'running'",
        timeout=90_000)
    page.wait_for_timeout(800)  # vega and the data grid draw after the script has finished


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.inner_text("body")[:2000]


def _open(page, label: str, marker: str) -> float:
    started = time.perf_counter()
    page.get_by_role("link", name=label).first.click()
    try:
        page.get_by_text(marker).first.wait_for(state="attached", timeout=90_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failed-{label}.png"), full_page=True)
        raise
    page.wait_for_load_state("networkidle")
    return time.perf_counter() - started


def _upload(page, path) -> None:
    """Give the data page a file and wait for its validation report (a screenshot if it never
    comes)."""
    # the survey/indicator uploader comes first; the decisions list has its own further down
    page.locator("input[type='file']").first.set_input_files(str(path))
    try:
        page.get_by_text("校验通过").wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failed-upload-{path.stem}.png"), full_page=True)
        raise


def _build_deck_and_download(page, tmp_path) -> None:
    """会议材料: build the deck, download it, and open it."""
    from pptx import Presentation

    page.get_by_role("button", name="生成会议材料").click()
    button = page.get_by_role("button", name="下载会议材料（PPTX）")
    button.wait_for(timeout=120_000)
    _no_exception(page)
    with page.expect_download(timeout=60_000) as download:
        button.click()
    path = tmp_path / "deck.pptx"
    download.value.save_as(path)
    assert len(Presentation(str(path)).slides) > 8


def _download_a_chart_picture(page, tmp_path) -> None:
    """县区排名: the chart's 下载图片 menu gives a 1920×1080 PNG rendered on click."""
    from PIL import Image

    _open(page, "县区排名", "得分表")
    _settle(page)
    page.get_by_role("button", name="下载图片").first.click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="标准（1920×1080）").first.click()
    path = tmp_path / "chart.png"
    download.value.save_as(path)
    assert Image.open(path).size == (1920, 1080)
    page.keyboard.press("Escape")


def test_every_page_and_an_upload_in_a_real_browser(served_app, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import csv_bytes, sample_indicators, sample_wave

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 2400}, locale="zh-CN")
        started = time.perf_counter()
        page.goto(served_app)
        page.get_by_text("全省平均分").first.wait_for(timeout=90_000)
        first_paint = time.perf_counter() - started
        _settle(page)
        _no_exception(page)
        body = page.inner_text("body")
        for expected in ("示例数据", "示范省禁毒工作专项调查测评", "2025年度 · 全省", "挂牌整治中"):
            assert expected in body
        assert "数据管理" not in page.inner_text("[data-testid='stSidebarNav']")
        page.screenshot(path=str(ARTIFACTS / "page-总览.png"), full_page=True)
        switches = {}
        for label, marker in list(PAGES.items())[1:]:
            switches[label] = _open(page, label, marker)
            _settle(page)
            _no_exception(page)
            page.screenshot(path=str(ARTIFACTS / f"page-{label}.png"), full_page=True)
            if label == "会议材料":
                _build_deck_and_download(page, tmp_path)
        body = page.inner_text("body")
        assert "权重" in body
        _download_a_chart_picture(page, tmp_path)

        # the URL carries the wave: a bookmark opens the same view
        assert "wave=2025" in page.url

        # an analyst signs in, uploads a GBK survey file with Chinese headers, and publishes it
        page.get_by_text("分析人员登录").click()
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.get_by_role("link", name="数据管理").wait_for(timeout=30_000)
        page.get_by_role("link", name="数据管理").click()
        page.get_by_text("选择文件").first.wait_for(timeout=30_000)
        survey = tmp_path / "2026年调查.csv"
        survey.write_bytes(csv_bytes(sample_wave("2025").with_columns(
            __import__("polars").lit("2026").alias("调查期次"),
            (__import__("polars").lit("N") + __import__("polars").col("受访者编号"))
            .alias("受访者编号")), "gbk"))
        _upload(page, survey)
        _settle(page)
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "page-数据管理-预览.png"), full_page=True)
        page.get_by_role("button", name="发布").click()
        page.get_by_text("已导入2026年度").first.wait_for(timeout=120_000)  # the flash, not a label
        _no_exception(page)
        page.get_by_text("工作指标表", exact=True).first.click()   # the radio, not the flash note
        _settle(page)
        assert page.get_by_text("2026年调查.csv").count() == 0   # no stale file from the survey
        sheet = tmp_path / "2026年指标.csv"
        sheet.write_bytes(csv_bytes(sample_indicators("2025").with_columns(
            __import__("polars").lit("2026").alias("年度")), "gbk"))
        _upload(page, sheet)
        page.get_by_role("button", name="发布").click()
        page.get_by_text("已导入2026年度工作指标").first.wait_for(timeout=120_000)  # the flash, not a label
        _no_exception(page)
        _open(page, "县区排名", "得分表")
        page.get_by_text("2026年度").first.wait_for(timeout=60_000)
        _settle(page)
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "page-县区排名-2026.png"), full_page=True)
        browser.close()
    print(f"first paint {first_paint:.2f}s; page switches "
          + ", ".join(f"{k} {v:.2f}s" for k, v in switches.items()))
