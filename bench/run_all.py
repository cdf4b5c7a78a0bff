"""Run every benchmark in bench/ (make bench): each prints its own table of medians."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run_all.py", "versus.py") or script.name.startswith("_"):
            continue   # helpers, and the comparison with an earlier commit (it needs a REV)
        print(f"\n== {script.name} ==", flush=True)
        subprocess.run([sys.executable, str(script)], check=True)
