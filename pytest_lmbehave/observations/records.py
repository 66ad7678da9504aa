"""Observations as plain JSON-ready dicts: the one description shared by snapshots, reports and diffs, each written
by its kind (``KINDS``)."""

from __future__ import annotations

from typing import Any

from ..config.defaults import TOP
from . import kind_of


def to_record(observation: Any, top: int = TOP) -> dict[str, Any]:
    """An observation as an ordered dict of JSON values ("top" holds [piece, id, probability] rows)."""
    kind = kind_of(observation)
    if kind is None:
        raise TypeError(
            "lm_snapshot takes observations from the lm fixture (tokenize, next_token, generate, choose) or a list of "
            f"them, not {type(observation).__name__}"
        )
    return kind.record(observation, top)
