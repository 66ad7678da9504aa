"""What torch computes on, for the fingerprint: its CPU kernel level, BLAS and oneDNN builds, and the GPU when one is
used. Learned from torch once per torch build, CPU and kernel variables (``config/facts.py``), so an unchanged
re-run knows them without importing torch."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ...config import facts
from ...config.environment import numerics_variables


@cache
def _blas() -> str:
    import torch

    shown = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", shown)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", shown)
    onednn = re.search(r"MKL-DNN v([\w.]+)", shown)
    parts = [blas.group(1) if blas else "unknown"]
    if mkl:
        parts.append(f"mkl{mkl.group(1)}")
    if onednn:
        parts.append(f"onednn{onednn.group(1)}")
    return "+".join(parts)


def _cpu() -> dict[str, str]:
    import torch

    return {"cpu_capability": str(torch.backends.cpu.get_cpu_capability()), "blas": _blas()}


def hardware(device: str, cache_dir: Path | None = None) -> dict[str, str]:
    """What torch computes on: its CPU kernel level, BLAS and oneDNN builds, and the GPU when one is used.

    The CPU's facts are learned from torch once per torch build, CPU and kernel variables (``facts.py``), so an
    unchanged re-run knows them without importing torch."""
    found = facts.cpu_facts(cache_dir, numerics_variables(), _cpu)
    if device == "cuda":
        import torch

        major, minor = torch.cuda.get_device_capability()
        found["gpu"] = f"{torch.cuda.get_device_name().replace(' ', '_')}-sm{major}{minor}"
    return found
