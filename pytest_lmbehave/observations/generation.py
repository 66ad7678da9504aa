"""A generation: the ``Generation`` observation, its record, its comparison (where recorded and new ids part and,
by teacher forcing the recorded continuation through today's model, whether that step alone changed (a near-tie)
or the rest changes too, and in which layer) and how a failed expectation is explained."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import defaults
from ..config.defaults import TOP
from . import numerics
from .differences import (
    DECODING,
    FIELD,
    GENERATION,
    MARGIN,
    MODEL,
    SAMPLED,
    Compared,
    Difference,
    Teacher,
    Tolerances,
    first_difference,
    is_near_tie,
    margin_words,
)
from .rendering import rounded, rows

Alternatives = tuple[tuple[str, int, float], ...]


@dataclass(frozen=True)
class Generation:
    prompt: str
    text: str  # the new tokens only
    ids: tuple[int, ...]  # the new tokens only
    full_text: str
    prompt_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    logprobs: tuple[float, ...]  # each new token's log-probability under the untempered model
    margins: tuple[float, ...]  # each step's gap between the top two candidates (nats)
    argmax_ids: tuple[int, ...] = ()  # each step's top candidate under the untempered model
    sampling: str = "greedy"
    seed: int | None = None
    alternatives: tuple[Alternatives, ...] = field(default=(), repr=False, compare=False)  # to explain a failure

    @property
    def greedy_agreement(self) -> float:
        """The share of new tokens that are the untempered model's top candidate at their step."""
        return sum(a == b for a, b in zip(self.ids, self.argmax_ids)) / len(self.ids) if self.ids else 1.0

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else 0.0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.text == other
        if isinstance(other, Generation):
            return (self.prompt, self.ids, self.sampling, self.seed) == (
                other.prompt,
                other.ids,
                other.sampling,
                other.seed,
            )
        return NotImplemented

    __hash__ = object.__hash__


def record(observation: Generation, top: int) -> dict[str, Any]:
    return {
        "kind": "generation",
        "prompt": observation.prompt,
        "input_ids": list(observation.prompt_ids),
        "sampling": observation.sampling,
        "seed": observation.seed,
        "text": observation.text,
        "ids": list(observation.ids),
        "margins": rounded(observation.margins, MARGIN_DIGITS),
    }


MODES = ("greedy", "sampled")  # what `lmbehave diff --only` tells apart: a sampled path is its engine's own
MARGIN_DIGITS = 3  # a step's margin in a record: one rounding step (0.001) is above the noise between CPUs


def mode(record: dict[str, Any]) -> str:
    """A generation record's mode: greedy, or sampled (by a seed)."""
    return "greedy" if record.get("sampling", "greedy") == "greedy" else "sampled"


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Teacher | None) -> Compared:
    keys = {"text", "ids", "margins"}
    prompt = str(old.get("prompt", new.get("prompt", "")))
    if "ids" not in old:  # transcribed: a text only, located by characters
        if "text" not in old or old["text"] == new.get("text"):
            return [], keys
        char = first_difference(old["text"], new.get("text", ""))
        return [
            Difference(
                GENERATION,
                f"generation after {prompt[-40:]!r}: texts part at character {char}\n"
                f"      recorded: {old['text']!r}\n      now:      {new.get('text')!r}",
                prompt[-40:],
                old["text"],
                new.get("text"),
                step=char,
            )
        ], keys
    old_ids, new_ids = list(old["ids"]), list(new.get("ids") or [])
    old_margins, new_margins = list(old.get("margins") or []), list(new.get("margins") or [])
    if old_ids == new_ids:
        if old.get("text", new.get("text")) != new.get("text"):
            return [Difference(FIELD, f"text: {old['text']!r} -> {new.get('text')!r} (same ids)", "text")], keys
        return _step_margins(prompt, old_margins, new_margins, tolerances), keys
    step = first_difference(old_ids, new_ids)
    old_margin = old_margins[step] if step < len(old_margins) else None
    new_margin = new_margins[step] if step < len(new_margins) else None
    sampled = old.get("sampling", "greedy") != "greedy"
    where = f"first diverging token {step}: recorded {old_ids[step : step + 1]} vs now {new_ids[step : step + 1]}"
    texts = f"\n      recorded: {old.get('text')!r}\n      now:      {new.get('text')!r}"
    allowed = tolerances.margin + defaults.MARGIN_ROUNDING
    same_numbers = len(old_margins) > step < len(new_margins) and all(
        abs(a - b) <= allowed for a, b in zip(old_margins[: step + 1], new_margins[: step + 1])
    )
    if sampled:
        # The same seed drew another token. With the same numbers up to that step the sampler chose differently
        # (decoding); otherwise the probabilities moved across the draw's threshold (the model).
        layer, why = (
            (DECODING, "the same margins up to there: the sampler drew differently")
            if same_numbers
            else (
                MODEL,
                "the model's numbers moved before the draw",
            )
        )
        return [
            Difference(
                SAMPLED,
                f"sampled generation after {prompt[-40:]!r} ({old.get('sampling')}, seed {old.get('seed')}): "
                f"{where} ({why}){texts}",
                prompt[-40:],
                old_ids,
                new_ids,
                step=step,
                layer=layer,
            )
        ], keys
    near_tie = is_near_tie(old_margin, new_margin, tolerances.near_tie)
    words = margin_words(old_margin, new_margin, tolerances)
    localised, rest_follows, layer = "", None, MODEL
    if teacher is not None and step < len(old_ids):
        localised, rest_follows, still_top = _localise(prompt, old_ids, old_margins, step, teacher, tolerances.near_tie)
        near_tie = near_tie and bool(rest_follows)
        if still_top and near_tie and tolerances.noise > 0:  # bfloat16: reading paths differ by the noise itself
            localised += (
                "\n      the teacher-forced pass still reads the recorded token first: within the dtype's noise "
                "between reading paths, not a change"
            )
        elif still_top:  # today's model still puts the recorded token first: decoding chose another one
            layer, near_tie = DECODING, False
            localised += (
                "\n      the recorded token is still today's top candidate there: decoding changed, not the model"
            )
    elif step < len(old_ids) and near_tie:
        localised = "\n      (the rest of the recorded continuation was not checked: no model at hand)"
    return [
        Difference(
            GENERATION,
            f"generation after {prompt[-40:]!r}: {where} ({words}){localised}{texts}",
            prompt[-40:],
            old_ids,
            new_ids,
            step=step,
            old_margin=old_margin,
            new_margin=new_margin,
            near_tie=near_tie,
            layer=layer,
            details={"rest_follows": rest_follows},
        )
    ], keys


def _step_margins(prompt: str, old: list[float], new: list[float], tolerances: Tolerances) -> list[Difference]:
    """Per-step margins of an unchanged generation; both sides are rounded to 3 decimals, which is allowed for."""
    allowed = tolerances.margin + defaults.MARGIN_ROUNDING
    moved = [(abs(b - a), i, a, b) for i, (a, b) in enumerate(zip(old, new)) if abs(b - a) > allowed]
    if not moved:
        return []
    size, step, a, b = max(moved)
    units = numerics.in_steps(round(size, 4), tolerances.dtype, tolerances.scale)
    units = f"a move of {units}; " if units else ""
    return [
        Difference(
            MARGIN,
            f"margin of step {step} after {prompt[-40:]!r}: {a} -> {b} ({units}tolerance {allowed:g}; "
            f"{len(moved)} of the generation's steps moved)",
            prompt[-40:],
            a,
            b,
            size=size,
            step=step,
        )
    ]


def _localise(
    prompt: str, ids: list[int], margins: list[float], step: int, teacher: Teacher, threshold: float
) -> tuple[str, bool, bool]:
    """Score the recorded continuation under today's model (one forward pass): the diverging step's numbers,
    whether every later recorded token is still today's argmax or a near-tie, and whether the recorded token is
    still today's argmax at the diverging step."""
    checks = list(teacher(prompt, ids))
    if len(checks) <= step:
        return "\n      (the recorded continuation could not be scored under today's model)", False, False
    at = checks[step]
    later = []
    for j in range(step + 1, min(len(ids), len(checks))):
        check = checks[j]
        recorded_margin = margins[j] if j < len(margins) else None
        if check.token != check.argmax and not is_near_tie(recorded_margin, check.behind, threshold):
            later.append(j)
    line = (
        f"\n      teacher-forced: at step {step} the recorded token {ids[step]} now has "
        f"p={math.exp(at.logprob):.4f} at rank {at.rank}, {at.behind:.4f} nats behind today's top candidate"
    )
    # A near tie is one today's model could read either way, never a token it ranks far below (a hand-edited record).
    close = at.behind <= threshold
    line += "" if close else f" (beyond the near-tie threshold {threshold:.3g}: not a near tie)"
    if later:
        shown = ", ".join(map(str, later[:8])) + (" ..." if len(later) > 8 else "")
        return line + f"; the rest of the recorded continuation also changes at steps {shown}", False, at.rank == 1
    rest = "; only this step changed: the rest of the recorded continuation still follows"
    return line + rest, close, at.rank == 1


def explain(gen: Generation, expected: Any, k: int = TOP) -> list[str] | None:
    """Why ``gen == expected`` failed: where the texts part, and the step's best candidates there."""
    if not isinstance(expected, str):
        return None
    lines = [f"generation after {gen.prompt!r} ({gen.sampling}{'' if gen.seed is None else f', seed {gen.seed}'}):"]
    lines.append(f"  expected: {expected!r}")
    lines.append(f"  actual:   {gen.text!r}")
    index = first_difference(expected, gen.text)
    consumed = 0
    for step, piece in enumerate(gen.pieces):
        if consumed + len(piece) > index:
            lines.append(
                f"  the texts part at character {index}, in new token {step} ({piece!r}, margin {gen.margins[step]:.3f} nats)"
            )
            if step < len(gen.alternatives):
                best = gen.alternatives[step][:k]
                kept = "" if len(best) >= k else f" (of {k} asked: each step keeps its best {len(best)})"
                lines.append(f"  top {len(best)} at that step{kept}:")
                lines.extend(rows([(piece, token, math.exp(logprob)) for piece, token, logprob in best]))
            break
        consumed += len(piece)
    return lines
