"""A bound on the dashboard's script runs at once. Every session's rerun is a thread of the one
server process; with 50 of them runnable on two cores they thrashed over the GIL: throughput fell
from 1.9 to 0.6 page views a second and the server's event loop (websockets, health endpoint)
waited seconds for its turn. Runs beyond the bound wait, asleep, for a slot."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

SLOTS_ENV = "CEPING_RUN_SLOTS"
LONGEST_WAIT = 120.0   # a run never waits longer than this (a stuck run must not stop the rest)


def default_slots() -> int:
    """`$CEPING_RUN_SLOTS`, else the number of cores (at least 2)."""
    try:
        return max(1, int(os.environ[SLOTS_ENV]))
    except (KeyError, ValueError):
        return max(2, os.cpu_count() or 2)


class RunSlots:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._local = threading.local()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; nested use in one thread takes no second slot."""
        if getattr(self._local, "held", False):
            yield
            return
        acquired = self._free.acquire(timeout=LONGEST_WAIT)
        self._local.held = True
        try:
            yield
        finally:
            self._local.held = False
            if acquired:
                self._free.release()


_slots: RunSlots | None = None
_lock = threading.Lock()


def run_slot() -> contextlib.AbstractContextManager[None]:
    """The process's slot for one script run (created on first use with `default_slots()`)."""
    global _slots
    with _lock:
        if _slots is None:
            _slots = RunSlots(default_slots())
    return _slots.slot()
