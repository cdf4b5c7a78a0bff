"""Dashboard timings in a real browser (Debian's Chromium through Playwright): cold start to first
paint (server launch → the overview's numbers drawn) and page-to-page switches, medians of runs.

Run: uv run python bench/dashboard.py [runs]      (make bench runs every benchmark)
Cold start includes scoring every wave and the 10,000-draw risk table for the first visitor; later
visitors and page switches read the cache (keyed on the data version). Scales: the sample province
and the national one (2,850 counties × 400 respondents × 10 waves, bench/_data.py).
Run: uv run python bench/dashboard.py [runs] [sample,national]
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import scaled_warehouse  # noqa: E402
from bench._measure import record_results  # noqa: E402

PAGES = {"县区排名": "得分表", "挂牌风险": "漏斗图", "摘帽进度": "规则判定与正式决定对照",
         "县区画像": "提分杠杆与假设分析", "会议材料": "导出范围", "评分方案": "敏感性分析",
         "总览": "全省平均分"}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
SETTLED = ("() => !document.querySelector(\"[data-testid='stSkeleton'], "
           "[data-testid='stSpinner']\") && document.querySelector(\"[data-testid='stApp']\")"
           "?.dataset?.teststate !== 'running'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(db: Path) -> tuple[float, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "pipelines.serve", "--server.port",
                               str(port), "--server.headless", "true"],
                              env=dict(os.environ, CEPING_DB=str(db)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.get_by_text("全省平均分").first.wait_for(timeout=180_000)
            page.wait_for_function(SETTLED, timeout=180_000)
            cold = time.perf_counter() - started
            switches = {}
            for label, marker in PAGES.items():
                t0 = time.perf_counter()
                page.get_by_role("link", name=label).first.click()
                page.get_by_text(marker).first.wait_for(state="attached", timeout=120_000)
                page.wait_for_function(SETTLED, timeout=120_000)
                switches[label] = time.perf_counter() - t0
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return cold, switches


def main(runs: int = 3, scales: tuple[str, ...] = ("sample", "national")) -> None:
    """Per scale: cold starts with the results computed by the first visitor (a fresh copy of the
    warehouse, as after a publish) and with the results already stored beside the warehouse (a
    restart; pipelines/result_store.py), then page switches on the stored runs. The app's code is
    byte-compiled first, as `make run` does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "pages", "pipelines"],
                   cwd=Path(__file__).resolve().parent.parent, check=True)
    rows: list[dict[str, object]] = []
    for scale in scales:
        source = scaled_warehouse(scale)
        computed, stored, switches = [], [], {k: [] for k in PAGES}
        with tempfile.TemporaryDirectory() as name:
            copy = Path(name) / "run.duckdb"
            for _ in range(runs if scale == "sample" else 1):
                shutil.rmtree(Path(name) / "run.duckdb.results", ignore_errors=True)
                shutil.copy(source, copy)
                computed.append(run_once(copy)[0])
            for _ in range(runs):          # the store written by the last run stays
                cold, times = run_once(copy)
                stored.append(cold)
                for label, value in times.items():
                    switches[label].append(value)
        print(f"{scale}: cold start to first paint, results computed: median "
              f"{statistics.median(computed):.2f}s (runs: {', '.join(f'{c:.2f}' for c in computed)})")
        print(f"{scale}: cold start to first paint, results stored: median "
              f"{statistics.median(stored):.2f}s (runs: {', '.join(f'{c:.2f}' for c in stored)})")
        for label, values in switches.items():
            print(f"  switch to {label}: median {statistics.median(values):.2f}s "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
        rows.append({"scale": scale, "cold_computed_s": statistics.median(computed),
                     "cold_stored_s": statistics.median(stored),
                     "switch_s": {k: statistics.median(v) for k, v in switches.items()}})
    record_results("dashboard", runs, rows)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3,
         tuple(sys.argv[2].split(",")) if len(sys.argv) > 2 else ("sample", "national"))
