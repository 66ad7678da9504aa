"""Numbers in the dtype's own units.

A bfloat16 logit near 20 moves in steps of 0.125 (8 bits of mantissa; float16 has 11, float32 24), and a prompt's
numbers in bfloat16 change with the batch it shares and the path that reads it. The numerics probe (the backend's
``invariance``) measures how far: the largest move of a top candidate's log-probability between batch layouts and
between teacher-forced and token-by-token reading, kept in the fingerprint as ``noise`` (nats), with the power of two
at or below the top logit as ``logit_scale``. Every record carries its fingerprint, so a comparison knows both sides'
noise, and ``Tolerances.for_numerics`` raises the tolerances to it (``differences.py``).
"""

from __future__ import annotations

import math
from typing import Any

from ..config.environment import LOGIT_SCALE, NOISE

MANTISSA = {"bfloat16": 7, "float16": 10, "float32": 23, "float64": 52}  # explicit bits: the step is 2^(e - bits)


def step(dtype: str, scale: float) -> float | None:
    """The distance between neighbouring values of ``dtype`` between ``scale`` and ``2 * scale``."""
    return scale * 2.0 ** -MANTISSA[dtype] if dtype in MANTISSA and scale > 0 else None


def in_steps(value: float, dtype: str, scale: float) -> str:
    """'0.125 = 1 bfloat16 step at |logit| 16-32', or '' when the dtype or its scale is not known."""
    size = step(dtype, scale)
    if size is None:
        return ""
    count = abs(value) / size
    shown = f"{count:.0f}" if abs(count - round(count)) < 1e-6 else f"{count:.2f}"
    return f"{value:g} = {shown} {dtype} step{'' if shown == '1' else 's'} at |logit| {scale:g}-{2 * scale:g}"


def noise_words(noise: float, dtype: str, scale: float) -> str:
    """'bfloat16's measured noise between batch layouts and paths, 2 steps at |logit| 16-32'."""
    size = step(dtype, scale)
    steps = f", {noise / size:.0f} steps at |logit| {scale:g}-{2 * scale:g}" if size else ""
    return f"{dtype}'s measured noise between batch layouts and paths{steps}"


def number(environment: dict[str, Any], key: str) -> float:
    try:
        return float(environment.get(key, 0.0))
    except (TypeError, ValueError):
        return 0.0


def noisiest(environments: tuple[dict[str, Any], ...]) -> tuple[float, str, float]:
    """The largest measured noise among the sides' fingerprints, with that side's dtype and logit scale."""
    found = max(environments, key=lambda e: number(e, NOISE), default={})
    return number(found, NOISE), str(found.get("dtype", "")), number(found, LOGIT_SCALE)


def probability_move(noise: float) -> float:
    """The most a probability moves when its log-probability moves by ``noise`` nats."""
    return 1.0 - math.exp(-noise)
