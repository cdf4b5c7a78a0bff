"""The real server under a meeting's load: N sessions over Streamlit's own websocket protocol
(bench/_st_client.py) browse every page for D seconds while an analyst session, through the
data page, publishes a survey wave and its indicator sheet and then withdraws the sheet (撤回).

Phases on a freshly started server (a copy of the sample warehouse, cold result cache):
  arrival  N sessions open the dashboard in the same second: all must be served;
  idle     one session browses every page (the idle page times);
  loaded   N sessions browse every page while the analyst works.
Prints errors (exception messages and error boxes), freezes (a run with no script_finished for
more than 30 s), health-endpoint failures, page p50/p95 idle vs loaded, the server's RSS.

Run: uv run python bench/load.py --sessions 20 --seconds 180 --launcher streamlit-run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._st_client import Freeze, Run, Session  # noqa: E402
from pipelines.core.waves import wave_display  # noqa: E402
from pipelines.ingest.readers import read_table  # noqa: E402
from pipelines.present.access import hash_password  # noqa: E402
from pipelines.synth.sample import SAMPLE_DIR  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LAUNCHERS = {"streamlit-run": ["-m", "streamlit", "run", "app.py"],
             "serve": ["-m", "pipelines.serve"]}
PASSWORD = "负载-测试-口令"
NEW_WAVE = "2026"
FREEZE_AFTER = 30.0
HEALTH_TIMEOUT = 5.0
# A supervisor (systemd's watchdog, a load balancer, Kubernetes' failureThreshold) declares a server
# down after about three failed probes in a row; one slow answer under load is reported, not an outage.
OUTAGE_PROBES = 3


@dataclass
class Stats:
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    freezes: int = 0
    runs: int = 0
    waves_seen: set[str] = field(default_factory=set)
    by_page: dict[str, list[float]] = field(default_factory=dict)

    def record(self, page: str, run: Run) -> None:
        self.runs += 1
        self.times.append(run.seconds)
        self.by_page.setdefault(page, []).append(run.seconds)
        self.errors += [f"{page}: {e}" for e in run.exceptions + run.errors]
        text = run.text()
        self.waves_seen |= {w for w in ("2025", NEW_WAVE) if f"{wave_display(w)}" in text}


@dataclass
class Report:
    launcher: str
    sessions: int
    seconds: float
    arrival_served: int = 0
    arrival_slowest: float = 0.0
    idle: Stats = field(default_factory=Stats)
    loaded: Stats = field(default_factory=Stats)
    health_failures: int = 0
    health_outages: int = 0        # runs of OUTAGE_PROBES failed probes in a row: a supervisor's "down"
    health_slowest: float = 0.0
    health_failed_at: list[float] = field(default_factory=list)   # seconds since the start
    started: float = field(default_factory=time.monotonic)
    rss_mb: list[float] = field(default_factory=list)
    analyst: list[str] = field(default_factory=list)
    analyst_errors: list[str] = field(default_factory=list)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def freezes(self) -> int:
        return self.idle.freezes + self.loaded.freezes

    def errors(self) -> list[str]:
        return self.idle.errors + self.loaded.errors + self.analyst_errors

    def lines(self) -> list[str]:
        rss = f"{self.rss_mb[0]:.0f} → 峰值 {max(self.rss_mb):.0f} → 结束 {self.rss_mb[-1]:.0f} MB" \
            if self.rss_mb else "—"
        out = [f"launcher={self.launcher} sessions={self.sessions} seconds={self.seconds:.0f} "
               f"load average={' '.join(f'{x:.1f}' for x in self.load_average)} "
               f"({os.cpu_count()} CPUs, shared machine)",
               f"arrival: {self.arrival_served}/{self.sessions} served, slowest "
               f"{self.arrival_slowest:.2f} s",
               f"idle:   {_quantiles(self.idle.times)}",
               f"loaded: {_quantiles(self.loaded.times)}",
               f"freezes: {self.freezes}  health outages: {self.health_outages}  "
               f"health-check failures: {self.health_failures} "
               f"(slowest answer {self.health_slowest:.2f} s, failed at +{self.health_failed_at} s)"
               f"  errors: {len(self.errors())}",
               f"server RSS: {rss}",
               f"waves seen by readers: {sorted(self.loaded.waves_seen)}",
               "analyst: " + "; ".join(self.analyst),
               "loaded by page: " + "  ".join(
                   f"{page} p50 {_percentile(t, 50):.2f}/p95 {_percentile(t, 95):.2f}"
                   for page, t in sorted(self.loaded.by_page.items()))]
        out += [f"  error: {e}" for e in self.errors()[:20]]
        return out

    def row(self) -> dict[str, object]:
        def q(times: list[float], p: float) -> float | None:
            return round(_percentile(times, p), 3) if times else None
        return {"launcher": self.launcher, "sessions": self.sessions, "seconds": self.seconds,
                "arrival_served": self.arrival_served, "idle_p50": q(self.idle.times, 50),
                "idle_p95": q(self.idle.times, 95), "loaded_p50": q(self.loaded.times, 50),
                "loaded_p95": q(self.loaded.times, 95), "loaded_runs": self.loaded.runs,
                "freezes": self.freezes, "health_failures": self.health_failures,
                "health_outages": self.health_outages,
                "health_slowest": self.health_slowest,
                "errors": len(self.errors()), "rss_peak_mb": max(self.rss_mb, default=None),
                "analyst": self.analyst}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _quantiles(times: list[float]) -> str:
    if not times:
        return "no page runs"
    return (f"{len(times)} page runs, p50 {_percentile(times, 50):.2f} s, "
            f"p95 {_percentile(times, 95):.2f} s, max {max(times):.2f} s, "
            f"mean {statistics.fmean(times):.2f} s")


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(launcher: str, db: Path, log: Path, *, draws: str | None = None,
                 timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """A real server as a subprocess on a free port, once its health endpoint answers."""
    port = free_port()
    env = dict(os.environ, CEPING_DB=str(db),
               CEPING_ANALYST_HASH=hash_password(PASSWORD, rounds=1000))
    if draws:
        env["CEPING_DRAWS"] = draws
    process = subprocess.Popen(
        [sys.executable, *LAUNCHERS[launcher], "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server ended with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return process, url
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start within {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


HEALTH_PROBE = """
import sys, time, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
while True:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            ok = response.status == 200
    except OSError:
        ok = False
    print(("ok" if ok else "fail"), round(time.monotonic() - started, 3), flush=True)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
"""


async def monitor(url: str, pid: int, report: Report, stop: asyncio.Event) -> None:
    """The health endpoint once a second from a process of its own (so this client's own work
    does not delay it; a failure: no 200 within HEALTH_TIMEOUT s), and the server's RSS."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HEALTH_PROBE, f"{url}/_stcore/health", str(HEALTH_TIMEOUT),
        stdout=asyncio.subprocess.PIPE)

    async def read() -> None:
        in_a_row = 0
        async for line in probe.stdout:
            verdict, seconds = line.decode().split()
            if verdict != "ok":
                report.health_failures += 1
                report.health_failed_at.append(round(time.monotonic() - report.started))
                in_a_row += 1
                report.health_outages += in_a_row == OUTAGE_PROBES
            else:
                in_a_row = 0
            report.health_slowest = max(report.health_slowest, float(seconds))
    reader = asyncio.create_task(read())
    try:
        while not stop.is_set():
            if (mb := rss_mb(pid)) is not None:
                report.rss_mb.append(mb)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        probe.kill()
        await probe.wait()
        reader.cancel()


# -- sessions ---------------------------------------------------------------------------------


async def browse(url: str, stats: Stats, deadline: float, rng: random.Random,
                 think: float) -> None:
    """A leader: open the dashboard, visit every page in some order, close; again until the
    deadline. A freeze ends that session (a new one is opened)."""
    while time.monotonic() < deadline:
        try:
            async with Session(url, freeze_after=FREEZE_AFTER) as session:
                stats.record("首页", await session.run(query=""))
                pages = list(session.pages)
                rng.shuffle(pages)
                for page in pages:
                    if time.monotonic() >= deadline:
                        return
                    await asyncio.sleep(rng.uniform(0, 2 * think))
                    stats.record(page, await session.run(page))
        except Freeze:
            stats.freezes += 1
        except (OSError, ConnectionError, LookupError) as exc:
            stats.errors.append(f"session: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def arrive(url: str, report: Report) -> None:
    """N sessions opening the freshly started dashboard in the same second."""
    async def one() -> float | None:
        try:
            async with Session(url, freeze_after=120) as session:
                run = await session.run(query="")
                report.idle.errors += [f"arrival: {e}" for e in run.exceptions + run.errors]
                return run.seconds
        except Freeze:
            report.idle.freezes += 1
        except (OSError, ConnectionError) as exc:
            report.idle.errors.append(f"arrival: {type(exc).__name__}: {exc}")
        return None
    times = [t for t in await asyncio.gather(*(one() for _ in range(report.sessions)))
             if t is not None]
    report.arrival_served, report.arrival_slowest = len(times), max(times, default=0.0)


def survey_file(wave: str) -> bytes:
    """The sample province's 2025 survey as a new wave (new respondent ids), UTF-8 CSV."""
    path = SAMPLE_DIR / "survey_2025.csv.gz"
    frame = read_table(path.read_bytes(), path.name).frame
    frame = frame.rename({k: v for k, v in {"样本编号": "受访者编号", "县区代码": "区县代码",
                                            "设计权重": "权重", "乡镇街道": "乡镇(街道)"}.items()
                          if k in frame.columns})
    frame = frame.with_columns(pl.lit(wave).alias("调查期次"),
                               (pl.lit("N") + pl.col("受访者编号")).alias("受访者编号"))
    return frame.write_csv(line_terminator="\n").encode()


def indicator_file(wave: str) -> bytes:
    frame = pl.read_csv(SAMPLE_DIR / "indicators_2025.csv", infer_schema=False)
    return frame.with_columns(pl.lit(wave).alias("年度")).write_csv(line_terminator="\n").encode()


async def analyst(url: str, report: Report, wave: str = NEW_WAVE) -> None:
    """Sign in; on 数据管理 publish a survey wave and its indicator sheet, then withdraw the
    sheet. Each step's time goes to the report; a missing confirmation is an error."""
    async def step(label: str, session: Session, expect: str | None = None, **kwargs) -> Run:
        run = await session.run(**kwargs)
        report.analyst.append(f"{label} {run.seconds:.1f} s (+{time.monotonic() - report.started:.0f})")
        report.analyst_errors += [f"analyst {label}: {e}" for e in run.exceptions + run.errors]
        if expect is not None and not any(expect in s for s in run.successes):
            report.analyst_errors.append(f"analyst {label}: no “{expect}” in {run.successes}")
        return run

    try:
        async with Session(url, freeze_after=300) as s:
            run = await step("打开", s, query="")
            s.set_text(run.widget("text_input", "密码"), PASSWORD)
            await step("登录", s, triggers=(run.widget("button", "登录"),))
            run = await step("数据管理", s, page="数据管理")
            s.set_text(run.widget("text_input", "期次"), wave)
            await s.upload(run.widget("file_uploader", "选择文件"), f"{wave}年调查.csv",
                           survey_file(wave))
            run = await step("校验调查数据", s, expect="校验通过")
            await step("发布调查数据", s, expect="已导入", triggers=(run.widget("button", "发布"),))
            s.choose(run.widget("radio", "数据类型"), "工作指标表")
            run = await step("切换到工作指标表", s)
            s.set_text(run.widget("text_input", "期次"), wave)
            await s.upload(run.widget("file_uploader", "选择文件"), f"{wave}年指标.csv",
                           indicator_file(wave))
            run = await step("校验工作指标表", s, expect="校验通过")
            run = await step("发布工作指标表", s, expect="已导入",
                             triggers=(run.widget("button", "发布"),))
            s.choose(run.widget("selectbox", "要撤回的版本"), f"{wave_display(wave)} · 工作指标")
            s.set_text(run.widget("text_input", "撤回原因"), "负载测试：撤回刚发布的指标表")
            s.tick(run.widget("checkbox", "我已核对"))
            await step("撤回工作指标表", s, expect="已撤回",
                       triggers=(run.widget("button", "撤回"),))
    except Freeze:
        report.analyst_errors.append("analyst: freeze (no script_finished within 300 s)")
    except (OSError, ConnectionError, LookupError, StopIteration) as exc:
        report.analyst_errors.append(f"analyst: {type(exc).__name__}: {exc}")


async def measure(url: str, pid: int, report: Report, *, idle_seconds: float, think: float,
                  analyst_after: float, seed: int = 19) -> Report:
    stop = asyncio.Event()
    watcher = asyncio.create_task(monitor(url, pid, report, stop))
    rng = random.Random(seed)
    try:
        await arrive(url, report)
        report.analyst.append(f"[arrival done +{time.monotonic() - report.started:.0f}]")
        await browse(url, report.idle, time.monotonic() + idle_seconds, rng, think)
        deadline = time.monotonic() + report.seconds
        report.analyst.append(f"[loaded from +{time.monotonic() - report.started:.0f}]")
        readers = [browse(url, report.loaded, deadline, random.Random(seed + i), think)
                   for i in range(report.sessions)]

        async def late_analyst() -> None:
            await asyncio.sleep(analyst_after)
            await analyst(url, report)
        await asyncio.gather(*readers, late_analyst())
    finally:
        stop.set()
        await watcher
        report.load_average = os.getloadavg()
    return report


def run_load(launcher: str, sessions: int, seconds: float, *, idle_seconds: float = 60.0,
             think: float = 1.0, draws: str | None = None, workdir: Path | None = None,
             source_db: Path | None = None) -> Report:
    """Start a server on a copy of the warehouse, measure, stop it; the report."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "warehouse.duckdb"
        if source_db is None:
            from pipelines.ingest.build import build_warehouse
            build_warehouse(db)
            shutil.rmtree(db.with_name(db.name + ".results"), ignore_errors=True)  # cold start
        else:
            shutil.copy(source_db, db)
        process, url = start_server(launcher, db, Path(tmp) / "server.log", draws=draws)
        report = Report(launcher, sessions, seconds)
        try:
            asyncio.run(measure(url, process.pid, report, idle_seconds=idle_seconds, think=think,
                                analyst_after=min(30.0, seconds / 5)))
        finally:
            if process.poll() is not None:
                report.analyst_errors.append(f"server ended with {process.returncode}")
            stop_server(process)
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean pause between a session's pages (uniform 0–2×), seconds")
    parser.add_argument("--launcher", choices=sorted(LAUNCHERS), default="streamlit-run")
    parser.add_argument("--draws", help="CEPING_DRAWS for the server (default: the dashboard's)")
    args = parser.parse_args(argv)
    report = run_load(args.launcher, args.sessions, args.seconds, idle_seconds=args.idle_seconds,
                      think=args.think, draws=args.draws)
    print("\n".join(report.lines()))
    from bench._measure import record_results
    record_results("load", 1, [report.row()])
    return 1 if report.freezes or report.health_outages or report.errors() else 0


if __name__ == "__main__":
    sys.exit(main())
