"""Numbers as records and candidates as lines of text: rounded values for the JSON records, and rank, piece, id,
probability and a bar for failures and ``lmbehave explore``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def bar(prob: float, width: int = 20) -> str:
    return "█" * max(1, round(prob * width)) if prob >= 0.005 else "·"


def rows(candidates: Sequence[tuple[str, int, float]]) -> list[str]:
    """(piece, id, probability) rows, best first."""
    return [
        f"  {rank:>2}. {piece!r:<18} id {token:<6} p={prob:.4f}  {bar(prob)}"
        for rank, (piece, token, prob) in enumerate(candidates, start=1)
    ]


def rounded(values: Any, digits: int) -> list[float]:
    """A record's numbers, to the digits it keeps."""
    return [round(float(v), digits) for v in values]
