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
    record: dict[str, Any] = plain(kind.record(observation, top))
    return record


def plain(value: Any) -> Any:
    """JSON values of the built-in types only: a token's ``Piece`` (a str that carries its id) becomes its text, so a
    record pickles, ships between xdist's processes (execnet takes built-in types alone) and prints as before."""
    if isinstance(value, str):
        return str(value) if type(value) is not str else value
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
