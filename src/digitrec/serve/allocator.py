"""Keep freed memory for reuse: preprocessing allocates arrays of a few hundred KB to a few MB per image, and
glibc's malloc serves each one with fresh pages from the kernel (mmap, or heap growth after a trim) — a page
fault for every 4 KB touched. For a 640×480 photo that was ~2,000 faults and a third of the request's CPU time.

`keep_freed_memory()` raises glibc's thresholds once per server process, so those arrays come from memory the
process already holds: at most TRIM_BYTES of it stays with the process after a burst (within the server's own
bounds on decodes). Elsewhere (musl, macOS) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_BYTES = 32 * 1024 * 1024  # blocks above this still go straight to the kernel (glibc's largest setting)
TRIM_BYTES = 128 * 1024 * 1024  # free memory kept at the heap's top before it is returned


def keep_freed_memory() -> bool:
    """True when glibc took the settings."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
