"""Script runs wait for one of a bounded number of slots (pipelines/core/slots.py): 50 sessions'
runs at once on two cores thrashed over the GIL and starved the server's event loop."""

from __future__ import annotations

import threading
import time

from pipelines.core import slots
from pipelines.core.slots import RunSlots


def test_no_more_runs_at_once_than_slots():
    bound = RunSlots(2)
    running, most = [0], [0]
    lock = threading.Lock()

    def run():
        with bound.slot():
            with bound.slot():                 # nested (a page inside app.py): no second slot
                with lock:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                time.sleep(0.05)
                with lock:
                    running[0] -= 1

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most[0] == 2 and running[0] == 0


def test_a_run_that_raises_frees_its_slot(monkeypatch):
    bound = RunSlots(1)
    for _ in range(3):                         # st.rerun / st.stop leave the block by raising
        try:
            with bound.slot():
                raise RuntimeError("rerun")
        except RuntimeError:
            pass
    assert bound._free.acquire(timeout=1)


def test_the_app_runs_inside_a_slot(monkeypatch):
    import ast

    from pipelines.store.warehouse import REPO_DIR

    tree = ast.parse((REPO_DIR / "app.py").read_text(encoding="utf-8"))
    slot = next(n for n in tree.body if isinstance(n, ast.With)
                and ast.unparse(n.items[0].context_expr) == "run_slot()")
    inside = {ast.unparse(n.func) for n in ast.walk(slot) if isinstance(n, ast.Call)}
    assert {"_filters", "_sign_in"} <= inside and any(c.startswith("st.navigation") for c in inside)
    monkeypatch.setenv(slots.SLOTS_ENV, "3")
    assert slots.default_slots() == 3
