"""Timing and memory helpers shared by the bench/ scripts: medians of several runs, and the peak
resident memory of one run measured in a fresh process (so earlier cases do not inflate it)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PEAK_FLAG = "--peak"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.core.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()     # every benchmark imports this module: measure what the entry points run


def median_time(fn: Callable[[], object], runs: int, *, warm_up: bool = True) -> float:
    """Median wall time of `runs` calls (after one untimed call when `warm_up`)."""
    if warm_up:
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired_median_times(first: Callable[[], object], second: Callable[[], object], runs: int,
                        ) -> tuple[float, float, float]:
    """Median wall times of `first` and `second` called alternately (after one untimed call of
    each), and the median of the per-round ratios first / second. The machine's speed drifts
    within minutes; timed back to back, a pair sees the same speed, where two separate series of
    runs may not (ours against the floor measured 2.6× and 3.2× an hour apart that way)."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, out in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    ratios = [a / b for a, b in zip(*times, strict=False)]
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios)


def peak_memory_mb(script: str | Path, case: str) -> float:
    """Peak RSS (MB) of `script --peak case`, a fresh process that runs the case once."""
    done = subprocess.run([sys.executable, str(script), PEAK_FLAG, case], capture_output=True,
                          text=True, check=True)
    return float(done.stdout.rsplit("PEAK_MB", 1)[1])


def report_peak() -> None:
    """Print this process's peak RSS for `peak_memory_mb` (Linux reports kilobytes)."""
    print(f"PEAK_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def peak_case(argv: list[str]) -> str | None:
    """The case to run once when the script was started by `peak_memory_mb`."""
    return argv[argv.index(PEAK_FLAG) + 1] if PEAK_FLAG in argv else None


RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    """The checked-out commit (with "+dirty" when the tree has changes), for the results file."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def record_results(bench: str, runs: int, rows: list[dict[str, object]]) -> Path:
    """Write this run's figures to bench/results/ as JSON: the dated history lives there, in
    files the benchmarks write, so docs/performance.md holds only the current figures.
    Set CEPING_BENCH_NO_RECORD=1 to skip (e.g. a trial run on a loaded machine)."""
    stamp = datetime.datetime.now(datetime.UTC)
    path = RESULTS / f"{stamp:%Y-%m-%dT%H%M}-{bench}.json"
    if os.environ.get("CEPING_BENCH_NO_RECORD"):
        return path
    RESULTS.mkdir(exist_ok=True)
    document = {"bench": bench, "utc": stamp.isoformat(timespec="seconds"), "commit": _commit(),
                "runs": runs, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                "python": platform.python_version(),
                "machine": platform.machine(), "rows": rows}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {path.relative_to(RESULTS.parent.parent)}", flush=True)
    return path
