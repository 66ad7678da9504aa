"""What the model was seen doing, and how two sightings of it compare.

Each kind of observation is one unit, one module: its class (what the LM API hands out), its record (the JSON
form snapshots, reports and diffs share), its comparison, its drift line and the explanation of a failed
expectation. ``KINDS`` registers them; adding a kind is a module and one line here. ``verdict.compare`` is the one
comparison over kinds. Comparing two reports (their drift and root causes) is ``reports``' job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import changes, chat, choice, conformance, draws, generation, next_token, scores, tokenization
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
    # The modes `lmbehave diff --only` tells apart within the kind (a generation's greedy and sampled), and which
    # mode a record is in; a kind with none is selected by its name.
    modes: tuple[str, ...] = ()
    mode: Callable[[dict[str, Any]], str] | None = None
    # What became of the kind's question before the model read it (a chat's template), when that alone decides.
    input_change: Callable[[dict[str, Any], dict[str, Any]], Difference | None] | None = None


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
        Kind(  # before generation: a Chat is one
            "chat", chat.Chat, chat.record, chat.compare, chat.explain, input_change=chat.template_change
        ),
        Kind(
            "generation",
            generation.Generation,
            generation.record,
            generation.compare,
            generation.explain,
            modes=generation.MODES,
            mode=generation.mode,
        ),
        Kind("choice", choice.Choice, choice.record, choice.compare, choice.explain),
        Kind("scores", scores.Scores, scores.record, scores.compare, scores.explain, scores.drift, scores.summary),
        Kind("draws", conformance.Draws, draws.record, draws.compare, draws.explain, draws.drift, draws.summary),
        Kind(
            "capability",
            changes.Capability,
            changes.record,
            changes.compare,
            changes.explain,
            changes.drift,
            changes.summary,
        ),
    )
}


def selectable() -> tuple[str, ...]:
    """What `lmbehave diff --only` takes: each kind by its name, or by its modes where it has them."""
    return tuple(mode for kind in KINDS.values() for mode in kind.modes or (kind.name,))


def selected_as(record: dict[str, Any]) -> str:
    """The name ``selectable`` gives a record: its kind's, or its mode's."""
    kind = KINDS.get(str(record.get("kind")))
    return kind.mode(record) if kind is not None and kind.mode is not None else str(record.get("kind"))


def kind_of(observation: Any) -> Kind | None:
    """The registered kind of an observation, or None for anything else."""
    return next((kind for kind in KINDS.values() if isinstance(observation, kind.observation)), None)
