"""The one comparison of two observation records: what differs, by how much, and whether it is a near-tie.

The snapshot extension and `lmbehave diff` both call `compare`; each only decides what a difference means for
it (a snapshot fails on any difference that is not a near-tie; drift turns kinds into severities) and formats it.
"""

from __future__ import annotations

from typing import Any

from .differences import (
    DECODING,
    DISTRIBUTION,
    DRAWN,
    ENTRANT,
    FIELD,
    FOLLOW_ON,
    GENERATION,
    INPUT,
    LABEL,
    LEFT,
    MARGIN,
    METADATA,
    MODEL,
    PROBABILITY,
    QUESTION,
    RATE,
    SAMPLED,
    SCORE,
    TOKENIZATION,
    TOKENIZER,
    TOP1,
    Difference,
    StepCheck,
    Teacher,
    Tolerances,
    first_difference,
    is_near_tie,
    tokenizer_change,
)
from .next_token import kl_divergence

__all__ = [
    "DECODING",
    "DISTRIBUTION",
    "DRAWN",
    "ENTRANT",
    "FIELD",
    "FOLLOW_ON",
    "GENERATION",
    "INPUT",
    "LABEL",
    "LEFT",
    "MARGIN",
    "MODEL",
    "PROBABILITY",
    "QUESTION",
    "RATE",
    "SAMPLED",
    "SCORE",
    "TOKENIZATION",
    "TOKENIZER",
    "TOP1",
    "Difference",
    "StepCheck",
    "Teacher",
    "Tolerances",
    "compare",
    "first_difference",
    "is_near_tie",
    "kl_divergence",
    "tokenizer_change",
]


def compare(
    old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Teacher | None = None
) -> list[Difference]:
    """Every difference of ``new`` from the recorded ``old`` on the keys ``old`` holds (a transcribed record may
    hold only some), beyond the tolerances. ``teacher`` scores a recorded continuation under today's model, to
    localise a diverging generation; without it the rest of the continuation is not checked."""
    kind = old.get("kind", new.get("kind"))
    asked_old, asked_new = _question(old), _question(new)
    if old.get("kind") not in (None, new.get("kind")) or (asked_old is not None and asked_old != asked_new):
        return [
            Difference(
                QUESTION,
                f"a different question: {old.get('kind')} of {asked_old!r} recorded, {new.get('kind')} of "
                f"{asked_new!r} now",
                layer=FOLLOW_ON,
            )
        ]
    from . import KINDS  # the kinds register themselves in the package, which imports this module's neighbours

    unit = KINDS.get(str(kind))
    changed = unit.input_change(old, new) if unit is not None and unit.input_change is not None else None
    if changed is not None:
        return [changed]
    if "input_ids" in old and new.get("input_ids") is not None and old["input_ids"] != new["input_ids"]:
        # The same text reached the model as other ids: whatever it did with them follows from the tokenizer, so
        # nothing else is compared (and no flip can be called a near-tie).
        before, after = list(old["input_ids"]), list(new["input_ids"])
        return [
            Difference(
                INPUT,
                f"the input changed: {str(old.get('prompt', ''))[-40:]!r} reads as {tokenizer_change(before, after)} "
                f"(recorded {_ids(before)}, now {_ids(after)}); what the model did with it is not compared",
                "input_ids",
                before,
                after,
                layer=TOKENIZER,
            )
        ]
    handled: set[str] = {"kind", "prompt", "text", "input_ids"}
    diffs: list[Difference] = []
    if unit is not None:
        found, keys = unit.compare(old, new, tolerances, teacher)
        diffs += found
        handled |= keys
    for key, want in old.items():
        if key in handled or key in METADATA:
            continue
        if new.get(key) != want:
            diffs.append(Difference(FIELD, f"{key}: {want!r} -> {new.get(key)!r}", key, want, new.get(key)))
    return diffs


def _ids(ids: list[int]) -> str:
    return str(ids) if len(ids) <= 8 else f"[{', '.join(map(str, ids[:6]))}, ... {len(ids)} ids]"


def _question(record: dict[str, Any]) -> Any:
    return record.get("messages", record.get("prompt", record.get("text")))
