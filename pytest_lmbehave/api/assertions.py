"""Assertions whose failures explain themselves: expected and actual, top candidates, ranks, where text diverges.
Each kind of observation explains its own failures (``observations``); these helpers raise with them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config.defaults import TOP
from ..observations import closeness, kind_of
from ..observations.choice import Choice
from ..observations.conformance import ALPHA, Draws
from ..observations.generation import Generation
from ..observations.next_token import Distribution, candidate_rows
from ..observations.scores import Scores
from ..observations.tokenization import Tokenization

__all__ = [
    "assert_chooses",
    "assert_close",
    "assert_generates",
    "assert_next_token",
    "assert_tokens",
    "candidate_rows",
    "explain",
]


def explain(left: Any, right: Any, k: int = TOP) -> list[str] | None:
    """Explanation lines for ``left == right`` when ``left`` is an observation (``k`` candidates shown: --lm-top);
    None when not ours."""
    kind = kind_of(left)
    return None if kind is None else kind.explain(left, right, k)


def _fail(observation: Any, expected: Any, top: int) -> None:
    __tracebackhide__ = True
    raise AssertionError("\n".join(explain(observation, expected, top) or [f"{observation!r} != {expected!r}"]))


def assert_next_token(dist: Distribution, expected: str | int, top: int = TOP) -> None:
    __tracebackhide__ = True
    if dist != expected:
        _fail(dist, expected, top)


def assert_tokens(tok: Tokenization, expected: Sequence[str] | Sequence[int]) -> None:
    __tracebackhide__ = True
    if tok != expected:
        _fail(tok, expected, TOP)


def assert_generates(gen: Generation, expected: str, top: int = TOP) -> None:
    __tracebackhide__ = True
    if gen.text != expected:
        _fail(gen, expected, top)


def assert_chooses(choice: Choice, expected: str) -> None:
    __tracebackhide__ = True
    if choice.best != expected:
        _fail(choice, expected, TOP)


def assert_close(reference: Scores, other: Scores, profile: str | closeness.Profile = "standard") -> dict[str, Any]:
    """``other``'s distributions are within ``profile`` of ``reference``'s, position by position (``lm.score`` of one
    text by two models or engines): mean and p99 KL divergence and same-top-token share, as llama.cpp's
    ``--kl-divergence`` reports them. Profiles: strict, standard, relaxed (``closeness.PROFILES``, each with its
    source); one below the measured noise floor (``--lm-noise-floor``) is refused. Returns the statistics."""
    __tracebackhide__ = True
    found, over = closeness.judged(reference, other, profile)
    if over:
        raise AssertionError(closeness.explanation(found, over, closeness.profile_of(profile), reference.text))
    return found


def assert_sampled_from(draws: Draws, alpha: float = ALPHA) -> None:
    """``draws`` (``lm.draws``) came from the distribution the settings asked, computed by our own code from the
    model's log-probabilities: a G-test, a temperature score test and, under top-p, the nucleus boundary's binomial
    test, at ``alpha`` together (α = 0.01: each known wrong sampler is rejected in 2,000 draws with measured power
    1.00; the right one falsely in at most 2% of runs, README "Sampling as a distribution"). A failure names the
    largest residuals and the wrong setting the draws fit, if one does."""
    __tracebackhide__ = True
    failure = draws.failure(alpha)
    if failure is not None:
        raise AssertionError("\n".join(failure))
