"""Keep freed memory for reuse instead of handing it back to the operating system.

Estimation and simulation create many short-lived NumPy arrays of a few megabytes. glibc serves
each from a fresh `mmap` (its threshold starts at 128 KiB) and unmaps it when freed, so every new
temporary page-faults its way in again: about a sixth of scoring the sample province went to page
faults. Raising the mmap threshold to its maximum (32 MiB) and not trimming the heap lets those
arrays reuse memory the process already has. Peak memory is unchanged; memory freed after a
burst stays with the process (to be reused by the next page view). Elsewhere than glibc: no-op.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024     # glibc's upper limit on 64-bit systems
TOP_PAD = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Set glibc's allocator to reuse freed memory; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the process's own libc, without a library search
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, 2**31 - 1),
        (M_TOP_PAD, TOP_PAD)))
