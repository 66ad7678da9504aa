"""What torch computes on, for the fingerprint: its CPU kernel level, BLAS and oneDNN builds, the instruction set
oneDNN's 16-bit kernels use, and the GPU when one is used. Learned from torch once per torch build, CPU and kernel
variables (``config/facts.py``), so an unchanged re-run knows them without importing torch.

torch's bfloat16 and float16 matrix products on a CPU run oneDNN's kernels, which oneDNN picks by the CPU's
instructions: on an AMD EPYC with AVX-512 ``brg_matmul:avx512_core_bf16``; on an Intel Xeon with AMX
``avx512_core_amx``, which sums in other tiles. torch's own level (``cpu_capability``) says AVX512 on both, yet their
bfloat16 numbers differ by more than one machine's noise (measured: a generation's margin 3 bfloat16 steps away, a
scored text's top candidate flipped at 5 of 34 positions). So a 16-bit fingerprint on a CPU names oneDNN's level
too (``onednn_isa``): a set is kept per level, and a run on another level is told so."""

from __future__ import annotations

import os
import platform
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


# Dtypes whose CPU kernels compute other numbers on each SIMD level (AVX-512 against AVX2: margins 3 bfloat16 steps
# apart, other greedy texts) and on each of oneDNN's levels; float32 sums differ only in the last bits, within the
# tolerances.
LOW_PRECISION = ("bfloat16", "float16")
# oneDNN's x86 levels that compute 16-bit products otherwise, lowest first, each with the CPU flags it needs
# (oneDNN's cpu_isa_traits), and the names ONEDNN_MAX_CPU_ISA takes for each (its documentation; AVX10_1_512 is
# AVX512_CORE_FP16's newer name).
ONEDNN_LEVELS = (
    ("sse41", ("sse4_1",)),
    ("avx2", ("avx2",)),
    ("avx512_core", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("avx512_core_bf16", ("avx512_bf16",)),
    ("avx512_core_fp16", ("avx512_fp16",)),
    ("avx512_core_amx", ("amx_tile", "amx_bf16", "amx_int8")),
)
ONEDNN_CAPS = {name.upper(): name for name, _ in ONEDNN_LEVELS}
ONEDNN_CAPS |= {"AVX": "sse41", "AVX2_VNNI": "avx2", "AVX2_VNNI_2": "avx2", "AVX512_CORE_VNNI": "avx512_core"}
ONEDNN_CAPS |= {"AVX10_1_512": "avx512_core_fp16", "AVX10_1_512_AMX": "avx512_core_amx"}
ONEDNN_CAPS |= {"AVX10_1_512_AMX_FP16": "avx512_core_amx"}


def onednn_isa(flags: set[str], cap: str | None) -> str:
    """The highest oneDNN level this CPU's flags allow (each level needs its own flags and every lower level's),
    at most ``cap`` (ONEDNN_MAX_CPU_ISA: ALL or DEFAULT, or a name oneDNN does not know, caps nothing)."""
    reached = "none"
    for name, needs in ONEDNN_LEVELS:
        if not all(flag in flags for flag in needs):
            break
        reached = name
    names = [name for name, _ in ONEDNN_LEVELS]
    capped = ONEDNN_CAPS.get((cap or "").upper())
    if capped is not None and reached in names and names.index(capped) < names.index(reached):
        return capped
    return reached


def _cpu() -> dict[str, str]:
    import torch

    return {"cpu_capability": str(torch.backends.cpu.get_cpu_capability()), "blas": _blas()}


def hardware(device: str, cache_dir: Path | None = None, dtype: str = "float32") -> dict[str, str]:
    """What torch computes on: its CPU kernel level, BLAS and oneDNN builds, oneDNN's level for a 16-bit dtype on
    the CPU, and the GPU when one is used.

    The CPU's facts are learned from torch once per torch build, CPU and kernel variables (``facts.py``), so an
    unchanged re-run knows them without importing torch."""
    found = facts.cpu_facts(cache_dir, numerics_variables(), _cpu)
    if device == "cpu" and dtype in LOW_PRECISION and platform.machine() in ("x86_64", "AMD64"):
        found["onednn_isa"] = onednn_isa(set(facts.cpu_flags().split()), os.environ.get("ONEDNN_MAX_CPU_ISA"))
    if device == "cuda":
        import torch

        major, minor = torch.cuda.get_device_capability()
        found["gpu"] = f"{torch.cuda.get_device_name().replace(' ', '_')}-sm{major}{minor}"
    return found
