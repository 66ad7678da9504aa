"""The model's next-token distribution after a prompt: the ``Distribution`` observation (and its ``Candidate``
rows), its record (the top rows), its comparison (a flip judged by the near-tie rule, rows that moved, left or
entered, the KL divergence of the top rows), its drift line and how a failed expectation is explained."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backends.vocabulary import Vocabulary
from ..config.defaults import TOP
from ..config.errors import BackendUnavailable, InputError
from .differences import (
    DISTRIBUTION,
    ENTRANT,
    FIELD,
    LEFT,
    PROBABILITY,
    TOP1,
    Compared,
    Difference,
    Tolerances,
    flip_or_margin,
    moved,
)
from .rendering import rows

if TYPE_CHECKING:
    import numpy


@dataclass(frozen=True)
class Candidate:
    piece: str
    id: int
    prob: float
    logprob: float


@dataclass(frozen=True, eq=False)
class Distribution:
    """The model's next-token distribution after a prompt.

    ``values`` holds a log-probability for every vocabulary entry (read-only float32). A served model reports only
    its top ``known`` candidates (and any token asked about); the other entries are -inf, and a question about one
    of them says so instead of answering.
    """

    prompt: str
    values: numpy.ndarray[Any, Any] = field(repr=False)
    vocabulary: Vocabulary = field(repr=False)
    prompt_ids: tuple[int, ...] = ()  # the ids the model read
    known: int = 0  # 0: every entry is known; k: only the top k (a served model)
    ranks: dict[int, int] = field(default_factory=dict, repr=False)  # exact ranks a served model reported

    @property
    def logprobs(self) -> Any:
        """The log-probabilities as a torch tensor [vocab] (a copy: writing into it changes nothing else)."""
        __tracebackhide__ = True
        if self.known:
            raise BackendUnavailable(
                f"the whole next-token distribution is not available from a served model: it reports its top "
                f"{self.known} candidates (use top(k), prob() and rank() for those)"
            )
        from .tensors import tensor

        return tensor(self.values)

    @property
    def argmax_id(self) -> int:
        return int(self.values.argmax())

    @property
    def argmax(self) -> str:
        return self.vocabulary.piece(self.argmax_id)

    @property
    def vocab_size(self) -> int:
        return int(self.values.shape[0])

    def top(self, k: int = TOP) -> list[Candidate]:
        __tracebackhide__ = True
        import numpy

        limit = self.known or self.vocab_size
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
            if self.known and isinstance(k, int) and 1 <= k <= self.vocab_size:
                raise BackendUnavailable(
                    f"top(k={k}): the served model reports at most {self.known} candidates (its --max-logprobs); "
                    f"ask for at most top({self.known}), or start the server with --max-logprobs {k}"
                )
            raise InputError(f"top(k={k!r}): k must be a whole number from 1 to the vocabulary size, {self.vocab_size}")
        ids = numpy.argpartition(-self.values, k - 1)[:k] if k < self.vocab_size else numpy.arange(self.vocab_size)
        ordered = sorted((int(i) for i in ids), key=lambda i: (-float(self.values[i]), i))
        return [
            Candidate(self.vocabulary.piece(i), i, math.exp(float(self.values[i])), float(self.values[i]))
            for i in ordered
        ]

    @property
    def margin(self) -> float:
        """Log-probability gap (nats) between the top candidate and the runner-up."""
        first, second = self.top(2)
        return first.logprob - second.logprob

    def prob(self, piece: str | int) -> float:
        return math.exp(self.logprob(piece))

    def logprob(self, piece: str | int) -> float:
        __tracebackhide__ = True
        token = self._id(piece)
        value = float(self.values[token])
        if self.known and value == -math.inf:
            raise BackendUnavailable(
                f"{piece!r} is not among the top {self.known} candidates the served model reported here; ask a "
                "served model about tokens it ranks high, or use choose() to score a continuation"
            )
        return value

    def rank(self, piece: str | int) -> int:
        """1 for the argmax; ties share the better rank."""
        __tracebackhide__ = True
        value = self.logprob(piece)
        token = self._id(piece)
        if token in self.ranks:
            return self.ranks[token]
        above = int((self.values > value).sum())
        if self.known and above >= self.known:
            raise BackendUnavailable(
                f"{piece!r} ranks below the top {self.known} candidates the served model reported: its rank is unknown"
            )
        return above + 1

    def _id(self, piece: str | int) -> int:
        __tracebackhide__ = True
        if isinstance(piece, int) and not isinstance(piece, bool):
            if not 0 <= piece < self.vocab_size:
                raise InputError(
                    f"token id {piece} is outside the vocabulary: ids run from 0 to {self.vocab_size - 1}; "
                    "ask by piece (' great') or by an id from lm.tokenize(text).ids"
                )
            return piece
        if isinstance(piece, str):
            return self.vocabulary.id_of(piece)
        raise InputError(f"ask about a token piece (a string) or a token id (an int), not {type(piece).__name__}")

    def __eq__(self, other: object) -> bool:
        # `assert lm.next_token(p) == " great"` compares the argmax piece.
        if isinstance(other, str):
            return self.argmax == other
        if isinstance(other, int) and not isinstance(other, bool):
            return self.argmax_id == other
        if isinstance(other, Distribution):
            return self is other
        return NotImplemented

    __hash__ = object.__hash__


def record(observation: Distribution, top: int) -> dict[str, Any]:
    return {
        "kind": "next_token",
        "prompt": observation.prompt,
        "input_ids": list(observation.prompt_ids),
        "argmax": observation.argmax,
        "argmax_id": observation.argmax_id,
        "margin": round(observation.margin, 4),
        "top": [[c.piece, c.id, round(c.prob, 6)] for c in observation.top(min(top, observation.known or top))],
    }


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    prompt = str(old.get("prompt", ""))[-50:]
    where = ""
    recorded = next((row for row in old.get("top", []) if row[0] == old.get("argmax")), None)
    now = next((i for i, row in enumerate(new.get("top", [])) if recorded and row[1] == recorded[1]), None)
    if recorded is not None and now is not None:
        where = f"; {old['argmax']!r} now has p={new['top'][now][2]} at rank {now + 1}"
    key = "argmax" if "argmax" in old else "argmax_id"  # a transcribed record may hold the id alone
    diffs = flip_or_margin(TOP1, f"top-1 after {prompt!r}", key, old, new, tolerances, where)
    if key == "argmax" and not diffs and "argmax_id" in old and old["argmax_id"] != new.get("argmax_id"):
        diffs.append(Difference(FIELD, f"argmax_id: {old['argmax_id']} -> {new.get('argmax_id')}", "argmax_id"))
    if "top" in old:
        diffs += _top_rows(old["top"], new.get("top", []), tolerances)
        if tolerances.kl is not None:
            kl = kl_divergence(old["top"], new.get("top", []))
            if kl > tolerances.kl:
                diffs.append(
                    Difference(
                        DISTRIBUTION, f"KL divergence of the top rows {kl:.4f} nats (> {tolerances.kl})", size=kl
                    )
                )
    return diffs, {"argmax", "argmax_id", "margin", "top"}


def _top_rows(old_rows: list[list[Any]], new_rows: list[list[Any]], tolerances: Tolerances) -> list[Difference]:
    """Every recorded row against the new rows, and every new row against the recorded ones: a token that moved,
    left the top-k or entered it by more than the tolerance is a difference. Rows are [piece, id, p]."""
    diffs: list[Difference] = []
    shown = min(len(old_rows), len(new_rows))  # a run that shows fewer (or more) rows compares the common depth
    old_by_id = {row[1]: row for row in old_rows}
    new_by_id = {row[1]: row for row in new_rows}
    old_floor = min((row[2] for row in old_rows[:shown]), default=0.0)
    new_floor = min((row[2] for row in new_rows[:shown]), default=0.0)
    for piece, token, prob in old_rows:
        if token in new_by_id:
            now = new_by_id[token][2]
            if abs(now - prob) > tolerances.prob:
                diffs.append(moved(PROBABILITY, f"probability of {piece!r} ({token})", prob, now, tolerances.prob))
        elif prob > new_floor + tolerances.prob and shown:
            diffs.append(
                Difference(
                    LEFT,
                    f"{piece!r} ({token}) left the top {shown}: it had p={prob}, the last row now has p={new_floor}",
                    str(piece),
                    prob,
                    None,
                )
            )
    for piece, token, prob in new_rows[:shown]:
        if token not in old_by_id and prob > old_floor + tolerances.prob:
            diffs.append(
                Difference(
                    ENTRANT,
                    f"{piece!r} ({token}) entered the top {shown} with p={prob}; the last recorded row had p={old_floor}",
                    str(piece),
                    None,
                    prob,
                )
            )
    return diffs


EXACT = "over the full vocabulary (exact)"  # how a KL divergence was computed, said beside its number
LOWER_BOUND = "a lower bound"


def pooled(top: int) -> str:
    """How a KL divergence from top candidates is computed, said beside its number."""
    return f"over the top {top} candidates, the rest pooled ({LOWER_BOUND})"


def exact_kl(old: Any, new: Any) -> float:
    """KL(old || new) in nats over the whole vocabulary, from each side's log-probabilities (float32 as read),
    summed in float64 after each side is normalised again."""
    import numpy

    lp, lq = (numpy.asarray(side, dtype=numpy.float64) for side in (old, new))
    lp, lq = (side - numpy.logaddexp.reduce(side[numpy.isfinite(side)]) for side in (lp, lq))
    p = numpy.exp(lp)
    kept = p > 0
    return float((p[kept] * (lp[kept] - lq[kept])).sum())


def kl_divergence(old_rows: list[list[Any]], new_rows: list[list[Any]]) -> float:
    """KL(old || new) over the union of both top lists, the rest of the mass pooled in one bucket: in effect a lower
    bound of the whole vocabulary's (pooling never raises a KL divergence; a token one list lacks is taken at that
    list's least probability)."""
    old = {int(row[1]): float(row[2]) for row in old_rows}
    new = {int(row[1]): float(row[2]) for row in new_rows}
    tokens = set(old) | set(new)
    floor_old, floor_new = min(old.values(), default=0.0), min(new.values(), default=0.0)
    p: dict[Any, float] = {t: old.get(t, floor_old) for t in tokens}
    q: dict[Any, float] = {t: new.get(t, floor_new) for t in tokens}
    p["rest"], q["rest"] = max(1e-12, 1 - sum(p.values())), max(1e-12, 1 - sum(q.values()))
    return float(sum(pv * math.log(pv / max(q[t], 1e-12)) for t, pv in p.items() if pv > 0))


def drift(difference: Difference, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A moved distribution's line in `lmbehave diff`: its largest move, with the KL divergence of the top rows."""
    kl = kl_divergence(old.get("top", []), new.get("top", []))
    summary = f"{difference.text.splitlines()[0]}; KL {kl:.4f} nats ({LOWER_BOUND})"
    return summary, {"kl": kl, "old_top": old.get("top", []), "new_top": new.get("top", [])}


def candidate_rows(dist: Distribution, k: int = TOP) -> list[str]:
    return rows([(c.piece, c.id, c.prob) for c in dist.top(k)])


def explain(dist: Distribution, expected: Any, k: int = TOP) -> list[str] | None:
    """Why ``dist == expected`` failed: the expected token's rank and probability, and the top candidates."""
    if not isinstance(expected, (str, int)):
        return None
    lines = [f"next token after {dist.prompt!r}: expected {expected!r}, the model's top candidate is {dist.argmax!r}"]
    try:
        lines.append(f"  {expected!r} has rank {dist.rank(expected)} with p={dist.prob(expected):.4f}")
    except Exception as error:  # an expected piece that is not one token
        lines.append(f"  {error}")
    shown = min(k, dist.known or k)
    lines.append(f"  top {shown} (margin of the top candidate: {dist.margin:.3f} nats):")
    lines.extend(candidate_rows(dist, shown))
    return lines
