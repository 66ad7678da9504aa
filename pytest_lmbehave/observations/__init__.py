"""What the model was seen doing, and how two sightings of it compare.

Each kind of observation is one unit, one module: its class (what the LM API hands out), its record (the JSON
form snapshots, reports and diffs share), its comparison, its drift line and the explanation of a failed
expectation. ``KINDS`` registers them; adding a kind is a module and one line here. ``verdict.compare`` is the one
comparison over kinds; ``drift`` turns differences into a report's severities; ``causes`` names root causes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import chat, choice, generation, next_token, scores, tokenization
from .differences import Compared, Difference, Teacher, Tolerances


@dataclass(frozen=True)
class Kind:
    name: str  # the record's "kind"
    observation: type  # the class the LM API hands out
    record: Callable[[Any, int], dict[str, Any]]  # the observation as a JSON-ready record (``top`` rows at most)
    compare: Callable[[dict[str, Any], dict[str, Any], Tolerances, Teacher | None], Compared]
    explain: Callable[[Any, Any, int], list[str] | None]  # why ``observation == expected`` failed (None: not ours)
    drift: Callable[[Difference, dict[str, Any], dict[str, Any]], tuple[str, dict[str, Any]]] | None = None
    # What `lmbehave diff` says of all the paired records of this kind at once (the scores' KL statistics).
    summary: Callable[[list[tuple[dict[str, Any], dict[str, Any]]]], list[str]] | None = None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "tokenization", tokenization.Tokenization, tokenization.record, tokenization.compare, tokenization.explain
        ),
        Kind(
            "next_token",
            next_token.Distribution,
            next_token.record,
            next_token.compare,
            next_token.explain,
            next_token.drift,
        ),
        Kind("chat", chat.Chat, chat.record, chat.compare, chat.explain),  # before generation: a Chat is one
        Kind("generation", generation.Generation, generation.record, generation.compare, generation.explain),
        Kind("choice", choice.Choice, choice.record, choice.compare, choice.explain),
        Kind("scores", scores.Scores, scores.record, scores.compare, scores.explain, scores.drift, scores.summary),
    )
}


def kind_of(observation: Any) -> Kind | None:
    """The registered kind of an observation, or None for anything else."""
    return next((kind for kind in KINDS.values() if isinstance(observation, kind.observation)), None)
