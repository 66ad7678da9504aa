"""Large blocks under glibc (``backends/transformers/heap.py``): once a large mapped block is freed, glibc serves
smaller large blocks from the heap, where a hole left between held blocks stays resident. The backend fixes the
threshold, so such a block is mapped on its own and returned when freed. Each probe runs in a fresh process, since
the setting lasts for the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Frees a 16 MB block (mapped: over glibc's first threshold, 128 KiB), then allocates 8 MB and says whether that
# block lies in the heap (glibc raised its threshold to 16 MB on the free) or was mapped apart.
PROBE = """
import sys, numpy
from pytest_lmbehave.backends.transformers import heap
if sys.argv[1] == "separate":
    assert heap.separate_large_blocks(), "glibc refused the threshold"
freed = numpy.ones(16 << 20, dtype=numpy.uint8)
del freed
block = numpy.ones(8 << 20, dtype=numpy.uint8)
address = block.ctypes.data
spans = [line.split()[0].split("-") for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")]
print("heap" if any(int(a, 16) <= address < int(b, 16) for a, b in spans) else "apart")
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc's own knob"
)


def where_a_large_block_lies(mode: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@glibc
def test_a_large_block_after_a_larger_one_was_freed_lies_in_the_heap_under_glibcs_own_threshold() -> None:
    assert where_a_large_block_lies("default") == "heap"  # the case the setting exists for


@glibc
def test_the_backends_setting_maps_a_large_block_apart_from_the_heap() -> None:
    assert where_a_large_block_lies("separate") == "apart"


@glibc
def test_a_threshold_the_user_set_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_lmbehave.backends.transformers import heap

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert heap.separate_large_blocks() is False


def test_the_transformers_backend_separates_large_blocks_when_it_loads_a_model(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_lmbehave.backends.transformers import inprocess
    from tests.conftest import tiny_backend_of

    calls: list[str] = []
    monkeypatch.setattr(inprocess, "separate_large_blocks", lambda: calls.append("set") or True)
    tiny_backend_of(tiny_model, tmp_path)
    assert calls == ["set"]
