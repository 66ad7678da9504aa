"""Assertions whose failures explain themselves: expected and actual, top candidates, ranks, where text diverges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .defaults import TOP
from .observations import Choice, Distribution, Generation, Tokenization
from .verdict import first_difference


def _bar(prob: float, width: int = 20) -> str:
    return "█" * max(1, round(prob * width)) if prob >= 0.005 else "·"


def candidate_rows(dist: Distribution, k: int = TOP) -> list[str]:
    return _rows([(c.piece, c.id, c.prob) for c in dist.top(k)])


def _rows(candidates: Sequence[tuple[str, int, float]]) -> list[str]:
    return [
        f"  {rank:>2}. {piece!r:<18} id {token:<6} p={prob:.4f}  {_bar(prob)}"
        for rank, (piece, token, prob) in enumerate(candidates, start=1)
    ]


def explain_next_token(dist: Distribution, expected: str | int, k: int = TOP) -> list[str]:
    lines = [f"next token after {dist.prompt!r}: expected {expected!r}, the model's top candidate is {dist.argmax!r}"]
    try:
        lines.append(f"  {expected!r} has rank {dist.rank(expected)} with p={dist.prob(expected):.4f}")
    except Exception as error:  # an expected piece that is not one token
        lines.append(f"  {error}")
    shown = min(k, dist.known or k)
    lines.append(f"  top {shown} (margin of the top candidate: {dist.margin:.3f} nats):")
    lines.extend(candidate_rows(dist, shown))
    return lines


def explain_tokens(tok: Tokenization, expected: Sequence[str] | Sequence[int]) -> list[str]:
    by_ids = bool(expected) and all(isinstance(x, int) for x in expected)
    actual: Sequence[Any] = tok.ids if by_ids else tok.pieces
    lines = [
        f"tokenization of {tok.text!r}: {len(actual)} tokens, expected {len(expected)}",
        f"   #  {'expected':<20}  {'actual':<20}  id",
    ]
    for i in range(max(len(actual), len(expected))):
        want = repr(expected[i]) if i < len(expected) else "-"
        got = repr(actual[i]) if i < len(actual) else "-"
        mark = "  " if i < len(actual) and i < len(expected) and actual[i] == expected[i] else "!="
        ident = str(tok.ids[i]) if i < len(tok.ids) else ""
        lines.append(f"  {i:>2}  {want:<20}{mark}{got:<20}  {ident}")
    return lines


def explain_generation(gen: Generation, expected: str, k: int = TOP) -> list[str]:
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
                lines.extend(_rows([(piece, token, math.exp(logprob)) for piece, token, logprob in best]))
            break
        consumed += len(piece)
    return lines


def explain_choice(choice: Choice, expected: str) -> list[str]:
    lines = [f"choice after ...{choice.prompt[-60:]!r}: expected {expected!r}, the model prefers {choice.best!r}"]
    for option, score in sorted(zip(choice.options, choice.scores), key=lambda x: -x[1]):
        lines.append(f"  {option!r:<16} log-likelihood {score:.3f}")
    return lines


def explain(left: Any, right: Any, k: int = TOP) -> list[str] | None:
    """Explanation lines for ``left == right`` when ``left`` is an observation (``k`` candidates shown: --lm-top);
    None when not ours."""
    if isinstance(left, Distribution) and isinstance(right, (str, int)):
        return explain_next_token(left, right, k)
    if isinstance(left, Tokenization) and isinstance(right, (list, tuple)):
        return explain_tokens(left, right)
    if isinstance(left, Generation) and isinstance(right, str):
        return explain_generation(left, right, k)
    if isinstance(left, Choice) and isinstance(right, str):
        return explain_choice(left, right)
    return None


def assert_next_token(dist: Distribution, expected: str | int, top: int = TOP) -> None:
    __tracebackhide__ = True
    if dist != expected:
        raise AssertionError("\n".join(explain_next_token(dist, expected, top)))


def assert_tokens(tok: Tokenization, expected: Sequence[str] | Sequence[int]) -> None:
    __tracebackhide__ = True
    if tok != expected:
        raise AssertionError("\n".join(explain_tokens(tok, expected)))


def assert_generates(gen: Generation, expected: str, top: int = TOP) -> None:
    __tracebackhide__ = True
    if gen.text != expected:
        raise AssertionError("\n".join(explain_generation(gen, expected, top)))


def assert_chooses(choice: Choice, expected: str) -> None:
    __tracebackhide__ = True
    if choice.best != expected:
        raise AssertionError("\n".join(explain_choice(choice, expected)))
