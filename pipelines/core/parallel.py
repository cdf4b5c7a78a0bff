"""Blocks of array work on every core: NumPy's sorts, reductions and random draws release the GIL,
so threads over independent blocks use both cores of the development machine without copying data
to worker processes. Random blocks get their own child generators, so a seed still fixes every
draw whatever the number of cores."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 4
THREADED_ELEMENTS = 100_000  # below this, handing blocks to threads costs more than it saves

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_worker = threading.local()


def _workers() -> ThreadPoolExecutor:
    """One pool for the process: starting threads per call costs ~1.5 ms, more than a small
    job saves."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(MAX_THREADS, os.cpu_count() or 1),
                                       thread_name_prefix="blocks",
                                       initializer=lambda: setattr(_in_worker, "flag", True))
        return _pool


def _forget_pool() -> None:
    """A forked child inherits the pool object but none of its threads: start afresh."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def map_blocks(fn: Callable[[T], R], blocks: Iterable[T], elements: int) -> list[R]:
    """`fn` over the blocks, in threads when there are several and the whole job touches at least
    THREADED_ELEMENTS array elements; results in block order. A block that itself maps blocks
    runs them in its own thread (a pool waiting on itself could deadlock)."""
    blocks = list(blocks)
    threaded = len(blocks) > 1 and elements >= THREADED_ELEMENTS and (os.cpu_count() or 1) > 1 \
        and not getattr(_in_worker, "flag", False)
    if not threaded:
        return [fn(block) for block in blocks]
    return list(_workers().map(fn, blocks))


def in_background(fn: Callable[..., R], *args: object) -> Future[R]:
    """Start `fn(*args)` on the process's pool (for work that releases the GIL, such as
    compression or parsing, done while the calling thread goes on); run at once in the calling
    thread when that is itself a worker, since the caller waits on the result and a pool full of
    waiting callers would never run it."""
    if not getattr(_in_worker, "flag", False):
        return _workers().submit(fn, *args)
    done: Future[R] = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as exc:
        done.set_exception(exc)
    return done


def draw_blocks(n_draws: int, seed: int, chunk: int) -> list[tuple[slice, np.random.Generator]]:
    """Rows `slice` of an n_draws array and the generator that fills them: one child of `seed`
    per block of `chunk` draws (fixed by the seed and the chunk size, not by the thread count)."""
    starts = range(0, n_draws, chunk)
    children = np.random.SeedSequence(seed).spawn(len(starts))
    return [(slice(start, min(start + chunk, n_draws)), np.random.default_rng(child))
            for start, child in zip(starts, children, strict=False)]
