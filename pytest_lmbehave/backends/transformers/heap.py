"""The process's heap under a large vocabulary: what glibc keeps after a pass, and where it puts large blocks.

A distribution is a float32 per vocabulary entry (1 MB at 262,144 rows), and one decoding step of a 10-row batch
allocates several [10, vocabulary] tensors. glibc serves a block smaller than its mmap threshold from the heap, and
raises that threshold (up to 32 MB) each time it frees a larger mapped block. So after the first large pass, every
later step tensor and distribution comes from the heap, where holes between the blocks still held stay resident: a
10-row sampled generation of 20 steps grew the heap by about 300 MB while the tensors alive stayed near 110 MB.

``separate_large_blocks`` fixes the threshold at ``LARGE``: a block that size or larger is mapped on its own and
returned to the OS when freed, and glibc stops raising the threshold. ``give_back`` returns what a large pass freed
in the heap. Both are glibc's own knobs (``mallopt``, ``malloc_trim``) and do nothing elsewhere. Measured in
docs/explanation/speed-and-memory.md: `lmbehave check` on a 262,144-row model peaked about 300 MB lower, and the
embedded model's specs took no measurably longer.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

LARGE = 4 << 20  # bytes from which a block is mapped on its own: a step of 4 rows at 262,144 entries
M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@cache
def _libc() -> Any:
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None  # not glibc


def separate_large_blocks() -> bool:
    """Map blocks of ``LARGE`` bytes and more on their own, for the rest of the process. A threshold the user set
    (``MALLOC_MMAP_THRESHOLD_``) stays as it is. True when glibc took the setting."""
    libc = _libc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE))


def give_back() -> None:
    """Return the heap a large pass freed to the OS (glibc keeps it otherwise): a teacher-forced batch's logits are
    tens of MB that no later question needs, and an xdist worker would hold them for the rest of the run."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
