"""Blocks of array work on every core: NumPy's sorts, reductions and random draws release the GIL,
so threads over independent blocks use both cores of the development machine without copying data
to worker processes. Random blocks get their own child generators, so a seed still fixes every
draw whatever the number of cores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 4
THREADED_ELEMENTS = 1_000_000  # below this, starting threads costs more than it saves


def map_blocks(fn: Callable[[T], R], blocks: Iterable[T], elements: int) -> list[R]:
    """`fn` over the blocks, in threads when there are several and the whole job touches at least
    THREADED_ELEMENTS array elements; results in block order."""
    blocks = list(blocks)
    workers = min(MAX_THREADS, os.cpu_count() or 1, len(blocks)) \
        if elements >= THREADED_ELEMENTS else 1
    if workers <= 1:
        return [fn(block) for block in blocks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, blocks))


def draw_blocks(n_draws: int, seed: int, chunk: int) -> list[tuple[slice, np.random.Generator]]:
    """Rows `slice` of an n_draws array and the generator that fills them: one child of `seed`
    per block of `chunk` draws (fixed by the seed and the chunk size, not by the thread count)."""
    starts = range(0, n_draws, chunk)
    children = np.random.SeedSequence(seed).spawn(len(starts))
    return [(slice(start, min(start + chunk, n_draws)), np.random.default_rng(child))
            for start, child in zip(starts, children)]
