"""Observations as plain JSON-ready dicts: the one description shared by snapshots, reports and diffs."""

from __future__ import annotations

from typing import Any

from .defaults import TOP
from .observations import Choice, Distribution, Generation, Tokenization


def _round(values: Any, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def to_record(observation: Any, top: int = TOP) -> dict[str, Any]:
    """An observation as an ordered dict of JSON values ("top" holds [piece, id, probability] rows)."""
    if isinstance(observation, Tokenization):
        return {
            "kind": "tokenization",
            "text": observation.text,
            "ids": list(observation.ids),
            "pieces": list(observation.pieces),
        }
    if isinstance(observation, Distribution):
        return {
            "kind": "next_token",
            "prompt": observation.prompt,
            "input_ids": list(observation.prompt_ids),
            "argmax": observation.argmax,
            "argmax_id": observation.argmax_id,
            "margin": round(observation.margin, 4),
            "top": [[c.piece, c.id, round(c.prob, 6)] for c in observation.top(min(top, observation.known or top))],
        }
    if isinstance(observation, Generation):
        return {
            "kind": "generation",
            "prompt": observation.prompt,
            "input_ids": list(observation.prompt_ids),
            "sampling": observation.sampling,
            "seed": observation.seed,
            "text": observation.text,
            "ids": list(observation.ids),
            "margins": _round(observation.margins, 3),
        }
    if isinstance(observation, Choice):
        return {
            "kind": "choice",
            "prompt": observation.prompt,
            "input_ids": list(observation.prompt_ids),
            "options": list(observation.options),
            "best": observation.best,
            "scores": _round(observation.scores, 4),
            "margin": round(observation.margin, 4),
        }
    raise TypeError(
        "lm_snapshot takes observations from the lm fixture (tokenize, next_token, generate, choose) or a list of them, "
        f"not {type(observation).__name__}"
    )
