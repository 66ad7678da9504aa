"""A text scored token by token: ``Scores``, the log-probability of each token given the ones before it, with each
position's best candidates, from one teacher-forced pass; its record, its comparison, its drift line, and the
distribution statistics two runs' scores of the same ids give (what llama.cpp's ``--kl-divergence`` reports).

In process a ``Scores`` keeps each position's whole distribution (``whole``, never recorded), so two of them are
compared exactly, over the full vocabulary. A record keeps each position's best ``top`` candidates; the rest of the
probability is pooled in one bucket, so the KL divergence of two records is a lower bound (the pooled rest is
compared as one token): what a server, a report or a snapshot gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.protocol import ALTERNATIVES, Logprobs
from ..backends.vocabulary import Vocabulary
from ..config.errors import InputError
from .differences import (
    DISTRIBUTION,
    SCORE,
    TOP1,
    Compared,
    Difference,
    Tolerances,
    is_near_tie,
    moved,
)
from .next_token import EXACT, LOWER_BOUND, Distribution, exact_kl, kl_divergence, pooled
from .rendering import rounded

Best = tuple[tuple[int, float], ...]  # a position's best candidates: (id, log-probability), best first


@dataclass(frozen=True, eq=False)
class Scores:
    """``text`` as the model reads it (``ids``, ``pieces``) and, for every token after the first, its
    log-probability given the tokens before it and that position's best candidates."""

    text: str
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    logprobs: tuple[float, ...]  # log p(ids[i] | ids[:i]) for i >= 1: the first token is read, not predicted
    best: tuple[Best, ...]
    # Each position's log-probabilities over the whole vocabulary (read-only float32, in process; never recorded).
    # None where a server reports only its best candidates.
    whole: tuple[Any, ...] | None = field(default=None, repr=False)

    @property
    def total(self) -> float:
        """The text's log-likelihood after its first token (nats)."""
        return sum(self.logprobs)

    @property
    def perplexity(self) -> float:
        return math.exp(-self.total / len(self.logprobs)) if self.logprobs else 1.0

    @property
    def agreement(self) -> float:
        """The share of positions whose token is the model's own top candidate."""
        hits = sum(best[0][0] == token for best, token in zip(self.best, self.ids[1:]) if best)
        return hits / len(self.best) if self.best else 1.0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Scores):
            return (self.text, self.ids, self.logprobs) == (other.text, other.ids, other.logprobs)
        return NotImplemented

    __hash__ = object.__hash__


def scored(text: str, ids: Sequence[int], steps: Sequence[Logprobs], vocabulary: Vocabulary) -> Scores:
    """The scores of ``ids`` from the teacher-forced distributions before each token after the first."""
    __tracebackhide__ = True
    if len(ids) < 2:
        raise InputError(f"{text!r:.40} reads as {len(ids)} token: scoring needs at least two (one to predict)")
    best = []
    for numbers in steps:
        dist = Distribution("", numbers.values, vocabulary, tuple(ids), numbers.known, numbers.ranks)
        best.append(tuple((c.id, c.logprob) for c in dist.top(min(ALTERNATIVES, numbers.known or dist.vocab_size))))
    logprobs = tuple(float(n.values[t]) for n, t in zip(steps, ids[1:]))
    whole = None if any(n.known for n in steps) else tuple(n.values for n in steps)
    return Scores(text, tuple(ids), tuple(vocabulary.piece(i) for i in ids), logprobs, tuple(best), whole)


def exact_kls(old: Scores, new: Scores) -> list[float] | None:
    """Each position's KL(old || new) over the full vocabulary, or None unless both distributions are whole."""
    if old.whole is None or new.whole is None:
        return None
    return [exact_kl(a, b) for a, b in zip(old.whole, new.whole)]


def _best(values: Any, top: int) -> Best:
    """A whole distribution's best ``top`` candidates, ordered as ``Distribution.top`` orders them."""
    import numpy

    top = min(top, int(values.shape[0]))
    ids = numpy.argpartition(-values, top - 1)[:top]
    ordered = sorted((int(i) for i in ids), key=lambda i: (-float(values[i]), i))
    return tuple((i, float(values[i])) for i in ordered)


def candidates(observation: Scores, top: int) -> tuple[Best, ...]:
    """Each position's best ``top`` candidates: those kept, or, where more are asked, read from the whole
    distributions (in process; a server's stay as many as it reported)."""
    if observation.whole is None or all(len(best) >= top for best in observation.best):
        return tuple(best[:top] for best in observation.best)
    return tuple(_best(values, top) for values in observation.whole)


def record(observation: Scores, top: int) -> dict[str, Any]:
    return {
        "kind": "scores",
        "text": observation.text,
        "input_ids": list(observation.ids),
        "logprobs": rounded(observation.logprobs, 4),
        "top": [[[token, round(math.exp(value), 6)] for token, value in best] for best in candidates(observation, top)],
    }


def _rows(position: list[list[Any]]) -> list[list[Any]]:
    """A position's [id, p] rows as next_token's [piece, id, p] rows, for its KL divergence."""
    return [["", token, p] for token, p in position]


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    """The largest move of a scored token's log-probability, the positions whose top candidate flipped (each judged
    by the near-tie rule), and the mean KL divergence of the positions' candidates."""
    diffs: list[Difference] = []
    before, after = list(old.get("logprobs") or []), list(new.get("logprobs") or [])
    moves = [(abs(b - a), i, a, b) for i, (a, b) in enumerate(zip(before, after)) if abs(b - a) > tolerances.score]
    if moves:
        _, at, a, b = max(moves)
        what = f"score of token {at + 1} of {str(old.get('text', ''))[:40]!r} ({len(moves)} position(s) moved)"
        diffs.append(moved(SCORE, what, a, b, tolerances.score, str(at + 1)))
    flips = []
    for i, (was, now) in enumerate(zip(old.get("top") or [], new.get("top") or [])):
        if was and now and was[0][0] != now[0][0]:
            margins = [_margin(was), _margin(now)]
            flips.append((i, was[0][0], now[0][0], is_near_tie(margins[0], margins[1], tolerances.near_tie)))
    if flips:
        i, was_id, now_id, _ = flips[0]
        diffs.append(
            Difference(
                TOP1,
                f"top candidate flipped at {len(flips)} position(s) of {str(old.get('text', ''))[:40]!r}, first at "
                f"token {i + 1}: id {was_id} -> {now_id}",
                "top",
                was_id,
                now_id,
                near_tie=all(flip[3] for flip in flips),
            )
        )
    kl = mean_kl(old, new)
    if tolerances.kl is not None and kl > tolerances.kl:
        diffs.append(
            Difference(DISTRIBUTION, f"mean KL divergence over the positions {kl:.4f} nats ({LOWER_BOUND})", size=kl)
        )
    return diffs, {"logprobs", "top"}


def _margin(position: list[list[Any]]) -> float | None:
    """A position's top-1 minus top-2 log-probability (None with fewer than two candidates)."""
    if len(position) < 2 or position[1][1] <= 0:
        return None
    return math.log(max(position[0][1], 1e-12)) - math.log(position[1][1])


def kls(old: dict[str, Any], new: dict[str, Any]) -> list[float]:
    """Each position's KL(old || new) over its candidates, the rest pooled."""
    return [kl_divergence(_rows(a), _rows(b)) for a, b in zip(old.get("top") or [], new.get("top") or [])]


def mean_kl(old: dict[str, Any], new: dict[str, Any]) -> float:
    found = kls(old, new)
    return sum(found) / len(found) if found else 0.0


def drift(difference: Difference, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A scored text's line in `lmbehave diff`: its mean KL divergence and the share of positions keeping their top."""
    found = statistics([(old, new)])
    summary = (
        f"{difference.text.splitlines()[0]}; mean KL {found['mean_kl']:.4f} nats ({LOWER_BOUND}), same top "
        f"{found['same_top']:.1%}"
    )
    return summary, found


def statistics(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], exact: list[list[float]] | None = None
) -> dict[str, Any]:
    """Over every position of paired score records that read the same ids (each text once): the mean, median, p99 and max KL
    divergence, the share of positions whose top candidate is the same, the RMS change of the scored token's
    probability, and the worst positions. The KL divergences are ``exact``'s (each pair's positions over the full
    vocabulary) where given, else the records' top candidates with the rest pooled, a lower bound (``over`` says
    which)."""
    rows: list[tuple[float, bool, float, str, int]] = []
    seen: set[tuple[int, ...]] = set()
    depth = 0
    for j, (old, new) in enumerate(pairs):
        ids = tuple(old.get("input_ids") or ())
        if ids != tuple(new.get("input_ids") or ()) or ids in seen:
            continue  # another tokenization is the tokenizer's change; a text scored twice counts once
        seen.add(ids)
        for i, (a, b) in enumerate(zip(old.get("top") or [], new.get("top") or [])):
            depth = max(depth, min(len(a), len(b)))
            kl = exact[j][i] if exact is not None else kl_divergence(_rows(a), _rows(b))
            p_old = math.exp(old["logprobs"][i]) if i < len(old.get("logprobs") or []) else 0.0
            p_new = math.exp(new["logprobs"][i]) if i < len(new.get("logprobs") or []) else 0.0
            rows.append((kl, bool(a and b and a[0][0] == b[0][0]), p_new - p_old, str(old.get("text", "")), i + 1))
    if not rows:
        return {"positions": 0}
    worst = sorted(rows, key=lambda r: -r[0])[:5]
    return {
        **kl_figures([r[0] for r in rows], [r[1] for r in rows]),
        "over": EXACT if exact is not None else pooled(depth),
        "rms_dp": math.sqrt(sum(r[2] ** 2 for r in rows) / len(rows)),
        "worst": [{"kl": r[0], "text": r[3][:40], "token": r[4]} for r in worst],
    }


def kl_figures(kls: Sequence[float], same_top: Sequence[bool]) -> dict[str, Any]:
    """llama.cpp's ``--kl-divergence`` figures of positions' KL divergences: mean, median, p99 and max, with the
    share of positions whose top candidate is the same."""
    ordered = sorted(kls)
    return {
        "positions": len(ordered),
        "mean_kl": sum(ordered) / len(ordered),
        "median_kl": ordered[len(ordered) // 2],
        "p99_kl": ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)],
        "max_kl": ordered[-1],
        "same_top": sum(same_top) / len(same_top),
    }


def summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """The statistics of two reports' paired score records, as `lmbehave diff` prints them."""
    found = statistics(pairs)
    if not found.get("positions"):
        return []
    lines = [
        f"distributions over {found['positions']} scored position(s) of the same ids: KL "
        "{over}: mean {mean_kl:.5f}, median {median_kl:.5f}, p99 {p99_kl:.5f}, max {max_kl:.5f} nats; same top "
        "token {same_top:.2%}; RMS Δp {rms_dp:.5f}".format(**found)
    ]
    lines += [f"  KL {w['kl']:.5f} at token {w['token']} of {w['text']!r}" for w in found["worst"][:3]]
    return lines


def explain(observation: Scores, expected: Any, k: int) -> list[str] | None:
    """Why ``scores == expected`` failed, for an expected total log-likelihood."""
    if not isinstance(expected, (int, float)):
        return None
    return [
        f"scores of {observation.text[:60]!r}: total {observation.total:.4f} nats over {len(observation.logprobs)} "
        f"token(s), expected {expected}; perplexity {observation.perplexity:.3f}"
    ]
