"""A step's numbers from llama.cpp's float32 logits, computed in float64 and stored as float32: the normalising sum
over the vocabulary then rounds the same way whatever SIMD width this machine's numpy sums with."""

from __future__ import annotations

from typing import Any

import numpy


def log_softmax(logits: Any) -> numpy.ndarray[Any, Any]:
    """Log-probabilities of one position's logits [vocab] (float32, read-only)."""
    wide = numpy.asarray(logits, dtype=numpy.float64)
    shifted = wide - wide.max()
    values: numpy.ndarray[Any, Any] = (shifted - numpy.log(numpy.exp(shifted).sum())).astype(numpy.float32)
    values.flags.writeable = False
    return values


def step_figures(values: numpy.ndarray[Any, Any], count: int) -> tuple[tuple[tuple[int, float], ...], int]:
    """The best ``count`` candidates (id, log-probability), best first (a tie goes to the lower id, as torch's
    argmax and topk do), and the argmax."""
    count = min(count, values.shape[0])
    floor = numpy.partition(values, values.shape[0] - count)[values.shape[0] - count]
    candidates = numpy.flatnonzero(values >= floor)  # ties at the floor included, so the order below decides
    order = sorted(candidates.tolist(), key=lambda i: (-float(values[i]), i))[:count]
    top = tuple((int(i), float(values[i])) for i in order)
    return top, top[0][0]
