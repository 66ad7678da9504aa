"""A choice among options by log-likelihood: the ``Choice`` observation, its record, its comparison (a flip of the
best label judged by the near-tie rule, scores that moved) and how a failed expectation is explained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .differences import FIELD, LABEL, SCORE, Compared, Difference, Tolerances, flip_or_margin, moved
from .rendering import rounded


@dataclass(frozen=True)
class Choice:
    prompt: str
    options: tuple[str, ...]
    scores: tuple[float, ...]  # summed log-probability of each option as a continuation
    prompt_ids: tuple[int, ...] = field(default=(), compare=False)  # the ids the model read

    @property
    def best(self) -> str:
        return self.options[max(range(len(self.options)), key=lambda i: self.scores[i])]

    @property
    def margin(self) -> float:
        ordered = sorted(self.scores, reverse=True)
        return ordered[0] - ordered[1] if len(ordered) > 1 else float("inf")

    def score(self, option: str) -> float:
        return self.scores[self.options.index(option)]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.best == other
        if isinstance(other, Choice):
            return (self.prompt, self.options, self.scores) == (other.prompt, other.options, other.scores)
        return NotImplemented

    __hash__ = object.__hash__


def record(observation: Choice, top: int) -> dict[str, Any]:
    return {
        "kind": "choice",
        "prompt": observation.prompt,
        "input_ids": list(observation.prompt_ids),
        "options": list(observation.options),
        "best": observation.best,
        "scores": rounded(observation.scores, 4),
        "margin": round(observation.margin, 4),
    }


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    diffs = flip_or_margin(LABEL, f"choice after {str(old.get('prompt', ''))[-40:]!r}", "best", old, new, tolerances)
    want, got = old.get("scores"), new.get("scores")
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for option, a, b in zip(old.get("options", want), want, got):
            if abs(a - b) > tolerances.score:
                diffs.append(moved(SCORE, f"score of {option!r}", a, b, tolerances.score, str(option)))
    elif want is not None and want != got:
        diffs.append(Difference(FIELD, f"scores: {want!r} -> {got!r}", "scores", want, got))
    return diffs, {"best", "margin", "scores"}


def explain(choice: Choice, expected: Any, k: int) -> list[str] | None:
    """Why ``choice == expected`` failed: every option's log-likelihood."""
    if not isinstance(expected, str):
        return None
    lines = [f"choice after ...{choice.prompt[-60:]!r}: expected {expected!r}, the model prefers {choice.best!r}"]
    for option, score in sorted(zip(choice.options, choice.scores), key=lambda x: -x[1]):
        lines.append(f"  {option!r:<16} log-likelihood {score:.3f}")
    return lines
