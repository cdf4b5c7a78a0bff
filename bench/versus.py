"""This working tree against an earlier commit, on the same data and in the same machine state:
each case runs in a fresh process, alternating the two trees, for several rounds; the table gives
the median of each side and their ratio. The development machine's speed drifts by half or more
over a day (the same code measured 57 ms and 97 ms hours apart), so a figure of this tree alone
says less than its ratio to the earlier code measured beside it.

Run: uv run python bench/versus.py REV [rounds]      (e.g. bb96cc1; not part of make bench)

The earlier commit is checked out in a temporary git worktree that shares this tree's virtual
environment and generated data (bench/.cache/, read only); it builds its own empty warehouses.
REV must already have bench/_data.py and the split stats package (d277eeb or later). Cases:
scoring (sample, national), the 10,000-draw risk table (sample, national), ingest of the national
CSV wave.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASES = {"scoring, sample": ("score", "sample", 9), "scoring, national": ("score", "national", 3),
         "risk table, sample": ("risk", "sample", 5), "risk table, national": ("risk", "national", 2),
         "ingest CSV, national": ("ingest", "national", 2)}
SHARED = ("sample.duckdb", "large.duckdb", "national.duckdb", "national-wave.csv")


def run_case(kind: str, scale: str, runs: int) -> float:
    """Median seconds of one case, imported from the tree in the current directory."""
    sys.path.insert(0, ".")
    from pipelines.scheme.definitions import load_definitions

    defs = load_definitions()
    if kind == "score":
        from bench.score_wave import wave_frames
        from pipelines.stats.wave_scores import score_frames

        responses, indicators, counties = wave_frames(scale)
        job = lambda: score_frames(responses, indicators, counties, defs)  # noqa: E731
    elif kind == "risk":
        from bench.risk_table import history
        from pipelines.ranking.risk import risk_table

        scores = history(scale)
        job = lambda: risk_table(scores, defs, draws=10_000)  # noqa: E731
    else:
        from bench._data import geography_warehouse, wave_file
        from pipelines.ingest.load import ingest_file
        from pipelines.store.warehouse import Warehouse

        work = Path(tempfile.mkdtemp())

        def job() -> None:
            for leftover in work.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            db = work / "run.duckdb"
            shutil.copy(geography_warehouse(scale), db)
            with Warehouse.open(db) as wh:
                ingest_file(wh, defs, wave_file(scale, "csv"), "2025")
    from bench._measure import median_time

    return median_time(job, runs)


def worktree(rev: str, into: Path) -> Path:
    tree = into / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    (tree / ".venv").symlink_to(REPO / ".venv")
    cache = tree / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (REPO / "bench" / ".cache" / name).exists():
            (cache / name).symlink_to(REPO / "bench" / ".cache" / name)
    for name in ("national-files",):   # the geography warehouse is built from these
        if (REPO / "bench" / ".cache" / name).exists():
            (cache / name).symlink_to(REPO / "bench" / ".cache" / name)
    return tree


def main(rev: str, rounds: int) -> None:
    sys.path.insert(0, str(REPO))
    from bench._data import scaled_warehouse, wave_file

    for scale in ("sample", "national"):
        scaled_warehouse(scale)
    wave_file("national", "csv")
    with tempfile.TemporaryDirectory() as name:
        tree = worktree(rev, Path(name))
        try:
            results: dict[str, dict[str, list[float]]] = {}
            for _ in range(rounds):
                for label, (kind, scale, runs) in CASES.items():
                    for side, where in (("now", REPO), (rev, tree)):
                        done = subprocess.run(
                            [sys.executable, str(HERE / "versus.py"), "--case", kind, scale,
                             str(runs)], cwd=where, capture_output=True, text=True)
                        if done.returncode:
                            raise SystemExit(f"{label} failed in {where}:\n{done.stderr[-2000:]}")
                        results.setdefault(label, {}).setdefault(side, []).append(
                            float(done.stdout.split()[-1]))
            print(f"{'case':<24}{'this tree':>11}{rev:>12}{'ratio':>8}   ({rounds} rounds)")
            for label, sides in results.items():
                now, then = statistics.median(sides["now"]), statistics.median(sides[rev])
                print(f"{label:<24}{now:>10.3f}s{then:>11.3f}s{now / then:>8.2f}")
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:
        print(run_case(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
