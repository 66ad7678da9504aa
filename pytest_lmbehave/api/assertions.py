"""Assertions whose failures explain themselves: expected and actual, top candidates, ranks, where text diverges.
Each kind of observation explains its own failures (``observations``); these helpers raise with them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config.defaults import DIRECTION_BY, TOP
from ..config.errors import InputError, NearTieWarning
from ..observations import changes, closeness, kind_of
from ..observations.choice import Choice
from ..observations.conformance import ALPHA, Draws
from ..observations.generation import Generation
from ..observations.next_token import Distribution, candidate_rows
from ..observations.perturbations import Change
from ..observations.scores import Scores
from ..observations.tokenization import Tokenization

if TYPE_CHECKING:
    from .lm import LM

__all__ = [
    "assert_chooses",
    "assert_close",
    "assert_direction",
    "assert_failure_rate",
    "assert_generates",
    "assert_invariant",
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
    1.00; the right one falsely in at most 2% of runs, docs/explanation/statistics.md). A failure names the
    largest residuals and the wrong setting the draws fit, if one does."""
    __tracebackhide__ = True
    failure = draws.failure(alpha)
    if failure is not None:
        raise AssertionError("\n".join(failure))


def _change(base: str | Change, variant: str | None) -> Change:
    __tracebackhide__ = True
    if isinstance(base, Change) and variant is None:
        return base
    if isinstance(base, str) and isinstance(variant, str):
        return Change(base, variant, "change", f"{base[-30:]!r} -> {variant[-30:]!r}")
    raise InputError("pass the base text and its variant (two strings), or one Change (perturbations.typo(...))")


def assert_invariant(
    lm: LM,
    base: str | Change,
    variant: str | None = None,
    labels: Sequence[str] | None = None,
    max_kl: float | None = None,
) -> float:
    """``variant`` leaves the behaviour of ``base`` alone: its top-1 (or, with ``labels``, its label) holds and
    KL(base || variant) stays at or under ``max_kl`` (in process over the full vocabulary; over the labels when
    given). A flip whose base margin is within the near-tie threshold warns (NearTieWarning) instead of failing.
    The message shows both sides' top candidates, the margin and the tokens each text became. Returns the KL."""
    __tracebackhide__ = True
    ((change, first, second),) = lm._pairs("assert_invariant", [_change(base, variant)], labels)
    outcome = changes.invariance(change, first, second, labels, max_kl, lm.noise)
    if outcome.verdict == changes.BROKEN:
        raise AssertionError("\n".join(outcome.lines))
    if outcome.verdict == changes.NEAR_TIE:
        warnings.warn(NearTieWarning("\n".join(outcome.lines)), stacklevel=2)
    return outcome.measured


def assert_direction(
    lm: LM,
    base: str | Change,
    variant: str | None,
    token: str,
    up: bool = True,
    by: float = DIRECTION_BY,
    labels: Sequence[str] | None = None,
) -> float:
    """``variant`` moves ``token``'s probability (renormalised over ``labels`` when given) up (or down) by at least
    ``by`` from ``base``'s; ``by`` is raised to the dtype's noise floor where that is larger. Returns the move."""
    __tracebackhide__ = True
    if labels is not None and token not in labels:
        raise InputError(f"token={token!r} must be one of the labels {list(labels)!r}")
    ((change, first, second),) = lm._pairs("assert_direction", [_change(base, variant)], labels)
    outcome = changes.direction(change, first, second, token, up, by, labels, lm.noise)
    if outcome.verdict == changes.BROKEN:
        raise AssertionError("\n".join(outcome.lines))
    return outcome.measured


def assert_failure_rate(
    capability: changes.Capability, at_most: float | None = None, at_least: float | None = None
) -> None:
    """A capability's failure rate held to a bound, with CheckList's three verdicts: pass when its whole 99 % interval
    lies on the stated side, fail (with the rate and the failed cases) when it lies wholly on the other, and
    inconclusive when it straddles the bound: a skip that says so and about how many more cases would decide, since
    a few cases cannot tell (never a silent pass)."""
    __tracebackhide__ = True
    if (at_most is None) == (at_least is None):
        raise InputError(
            "pass one bound: at_most=0.1 (a failure rate held down) or at_least=0.5 (a change that breaks)"
        )
    decision = capability.rate <= at_most if at_most is not None else capability.rate >= at_least  # type: ignore[operator]
    if decision.outcome == "fail":
        raise AssertionError("\n".join([*decision.lines, *capability.explanation()]))
    if decision.outcome == "inconclusive":
        import pytest

        pytest.skip("inconclusive: " + " ".join(decision.lines).replace("\n", " "))
