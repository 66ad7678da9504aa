"""The words of a comparison: kinds and layers of difference, tolerances, and the near-tie rule, written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import defaults
from . import numerics

# Kinds of difference. Discrete ones change a token, a label or a tokenization; numeric ones move a number.
TOKENIZATION = "tokenization"
TOP1 = "top-1 flip"
GENERATION = "generation"
SAMPLED = "sampled path"
LABEL = "label"
QUESTION = "different question"
INPUT = "input changed"
FIELD = "field"
PROBABILITY = "probability"
ENTRANT = "top-k entrant"
LEFT = "left the top-k"
DISTRIBUTION = "distribution"
SCORE = "score"
MARGIN = "margin"
RATE = "failure rate"  # a capability's rate under change, rejected by a two-proportion test
DRAWN = "drawn distribution"  # two runs' draws of one question, rejected as one distribution by a G-test

# The layer a difference comes from: the tokenizer (the ids of the same text changed), the model (the same ids in,
# other numbers out), decoding (the same distributions, other tokens chosen), or a follow-on of an earlier change.
TOKENIZER, MODEL, DECODING, FOLLOW_ON = "tokenizer", "model", "decoding", "follow-on"

METADATA = frozenset({"env", "model"})  # recorded to explain a failure (and which model said it), never compared


@dataclass(frozen=True)
class Tolerances:
    """How far numbers may move before they count as a difference; ``kl`` None leaves KL unchecked. ``noise``,
    ``dtype`` and ``scale`` say what raised them, when the dtype's measured noise did (``for_numerics``)."""

    prob: float = defaults.TOLERANCE
    score: float = defaults.TOLERANCE
    margin: float = defaults.TOLERANCE
    near_tie: float = defaults.NEAR_TIE
    kl: float | None = None
    noise: float = 0.0
    dtype: str = ""
    scale: float = 0.0

    def for_numerics(self, *environments: dict[str, Any]) -> Tolerances:
        """Each tolerance raised to the larger measured noise of the sides compared (their fingerprints), where
        that noise is above it: a margin, score or log-probability may move by the noise, a probability by
        ``1 - exp(-noise)``, and a flip is a near-tie when both margins are within it. float32's noise (about 1e-5
        here) is below every tolerance, so nothing changes for it."""
        noise, dtype, scale = numerics.noisiest(environments)
        if noise <= min(self.prob, self.score, self.margin):
            return self
        return replace(
            self,
            prob=max(self.prob, numerics.probability_move(noise)),
            score=max(self.score, noise),
            margin=max(self.margin, noise),
            near_tie=max(self.near_tie, noise + 1e-9),  # within: a margin equal to the noise is within it
            noise=noise,
            dtype=dtype,
            scale=scale,
        )


@dataclass(frozen=True)
class StepCheck:
    """One step of a recorded continuation scored under today's model (teacher forcing)."""

    token: int  # the recorded token
    argmax: int  # today's top candidate after the recorded prefix
    logprob: float  # today's log-probability of the recorded token
    rank: int  # today's rank of the recorded token (1 = argmax)
    behind: float  # nats by which the recorded token trails today's top candidate (0 when it is the top)


# teacher(prompt text, recorded ids) -> one StepCheck per recorded token
Teacher = Callable[[str, Sequence[int]], Sequence[StepCheck]]


@dataclass(frozen=True)
class Difference:
    kind: str
    text: str  # one line, then optional indented detail lines
    key: str = ""
    old: Any = None
    new: Any = None
    size: float | None = None  # how far a number moved (nats or probability); None for discrete changes
    step: int | None = None
    old_margin: float | None = None
    new_margin: float | None = None
    near_tie: bool = False
    layer: str = MODEL
    details: dict[str, Any] = field(default_factory=dict, compare=False)


def is_near_tie(old_margin: float | None, new_margin: float | None, threshold: float) -> bool:
    """The near-tie rule, written once: a flip is numerical noise only when the recorded margin *and* the new
    margin are both below ``threshold`` nats. A flip of anything recorded with a clear margin is a real change,
    whatever the new margin; a flip with a margin unknown on either side is a real change too."""
    return old_margin is not None and new_margin is not None and old_margin < threshold and new_margin < threshold


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The index where two sequences (ids, or characters) first differ; the shorter length if one extends the other."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def margin_words(old: float | None, new: float | None, tolerances: Tolerances) -> str:
    """Both margins and what they make of a flip, in the words every front end uses; where the dtype's measured
    noise set the threshold, in the dtype's terms ('0.125 = 1 bfloat16 step at |logit| 16-32')."""
    threshold = tolerances.near_tie
    shown = f"margin {_nats(old)} recorded, {_nats(new)} now"
    dtype = tolerances.noise > 0 and threshold <= tolerances.noise + 1e-6
    if dtype:
        moved = max(abs(old or 0.0), abs(new or 0.0))
        steps = numerics.in_steps(moved, tolerances.dtype, tolerances.scale)
        why = numerics.noise_words(tolerances.noise, tolerances.dtype, tolerances.scale)
        shown += f" ({steps})" if steps else ""
        if is_near_tie(old, new, threshold):
            return f"NEAR-TIE: {shown}, both within {threshold:.3g} ({why}): numerical noise, not a change of behaviour"
        threshold_words = f" (beyond {threshold:.3g}, {why})"
    else:
        if is_near_tie(old, new, threshold):
            return f"NEAR-TIE: {shown}, both < {threshold}: numerical noise, not a change of behaviour"
        threshold_words = ""
    if old is None:
        return f"{shown}: no recorded margin, so a real change"
    if old >= threshold:
        return f"{shown}: recorded with a clear margin{threshold_words}, a real change of behaviour"
    return f"{shown}: the new margin is clear{threshold_words}, a real change of behaviour"


def _nats(value: float | None) -> str:
    return "?" if value is None else f"{value:.4f}"


def moved(kind: str, what: str, old: float, new: float, tolerance: float, key: str = "") -> Difference:
    return Difference(
        kind, f"{what}: {old} -> {new} (tolerance {tolerance})", key or what, old, new, size=abs(new - old)
    )


Compared = tuple[list[Difference], set[str]]  # a kind's differences, and the record keys it has compared


def flip_or_margin(
    kind: str, what: str, key: str, old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, extra: str = ""
) -> list[Difference]:
    """The recorded choice (``argmax``, ``best``) flipped, judged by the near-tie rule; else its margin moved."""
    old_margin, new_margin = old.get("margin"), new.get("margin")
    if key in old and old[key] != new.get(key):
        words = margin_words(old_margin, new_margin, tolerances)
        return [
            Difference(
                kind,
                f"{what}: {old[key]!r} -> {new.get(key)!r} ({words}){extra}",
                key,
                old[key],
                new.get(key),
                old_margin=old_margin,
                new_margin=new_margin,
                near_tie=is_near_tie(old_margin, new_margin, tolerances.near_tie),
            )
        ]
    if old_margin is not None and new_margin is not None and abs(old_margin - new_margin) > tolerances.margin:
        return [moved(MARGIN, f"margin of the {what}", old_margin, new_margin, tolerances.margin)]
    return []


def tokenizer_change(old: Sequence[int], new: Sequence[int], pieces: dict[int, str] | None = None) -> str:
    """What the tokenizer now does to the same text, in words: prepends or appends a token, or splits it anew."""
    pieces = pieces or {}

    def name(token: int) -> str:
        return f"{pieces[token]!r} (id {token})" if token in pieces else f"id {token}"

    old, new = list(old), list(new)
    if len(new) > len(old) and new[len(new) - len(old) :] == old:
        return "the tokenizer now prepends " + ", ".join(name(t) for t in new[: len(new) - len(old)])
    if len(old) > len(new) and old[len(old) - len(new) :] == new:
        return "the tokenizer no longer prepends " + ", ".join(name(t) for t in old[: len(old) - len(new)])
    if len(new) > len(old) and new[: len(old)] == old:
        return "the tokenizer now appends " + ", ".join(name(t) for t in new[len(old) :])
    return "the tokenizer now splits the text differently"
