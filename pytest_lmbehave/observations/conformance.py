"""Sampling verified as a distribution: what a sampler should draw, computed here from the model's own
log-probabilities and the settings asked, independent of any engine's sampler; and a goodness-of-fit verdict over the
tokens it drew (a G-test with the unlikely tokens pooled, at a stated α), whose failure names the largest residuals and
the setting that would explain them.

The filters run in ``Knobs.order``: temperature, top-k, top-p, min-p, as transformers' warpers apply them, and as
our llama.cpp backend builds its sampler chain (``backends/llamacpp/sampler.py``). llama-cpp-python's own chain (its
server's) differs: top-k, typical, top-p, min-p, then temperature (``LLAMA_CPP_ORDER``). For top-k that is the same
distribution (scaling keeps the ranking), and for min-p too when the temperature is 1; top-p differs whenever the
temperature is not 1, since the nucleus is then taken over the untempered probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..backends.sampling import ORDER
from ..config.errors import InputError
from . import statistics

ALPHA = 0.01
MIN_EXPECTED = 5.0  # a token expected fewer times than this goes to the pooled tail


@dataclass(frozen=True)
class Knobs:
    """The sampling settings a draw was asked with; None (or temperature 1) leaves a filter off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    order: tuple[str, ...] = ORDER

    def describe(self) -> str:
        shown = [f"temperature={self.temperature:g}"]
        shown += [f"{name}={getattr(self, name):g}" for name in ("top_k", "top_p", "min_p") if getattr(self, name)]
        return ", ".join(shown) + ("" if self.order == ORDER else f" (in the order {', '.join(self.order)})")


def _softmax(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    out = np.zeros_like(scores)
    top = scores[finite].max()
    out[finite] = np.exp(scores[finite] - top)
    normalised: np.ndarray = out / out.sum()
    return normalised


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """transformers' rule: sorted ascending, a token goes when the mass up to and including it is <= 1 - top_p,
    so the token that crosses top_p (the boundary) stays, and at least one token always does."""
    ascending = np.lexsort((-np.arange(len(probs)), probs))  # ties: the lower id counts as more probable
    cumulative = np.cumsum(probs[ascending])
    remove = cumulative <= 1 - top_p
    remove[-1] = False
    keep = np.ones(len(probs), dtype=bool)
    keep[ascending[remove]] = False
    return keep


def expected(logprobs: Sequence[float] | np.ndarray, knobs: Knobs) -> np.ndarray:
    """The probability of each token of the vocabulary under ``knobs``, from the untempered log-probabilities."""
    scores = np.asarray(logprobs, dtype=np.float64).copy()
    for step in knobs.order:
        if step == "temperature" and knobs.temperature != 1.0:
            scores = scores / knobs.temperature
        elif step == "top_k" and knobs.top_k is not None:
            k = min(int(knobs.top_k), int(np.isfinite(scores).sum()))
            scores[scores < np.partition(scores, -k)[-k]] = -np.inf
        elif step == "top_p" and knobs.top_p is not None and knobs.top_p < 1.0:
            scores[~nucleus(_softmax(scores), knobs.top_p)] = -np.inf
        elif step == "min_p" and knobs.min_p:
            probs = _softmax(scores)
            scores[probs < knobs.min_p * probs.max()] = -np.inf
    return _softmax(scores)


@dataclass(frozen=True, eq=False)
class Draws:
    """``n`` tokens an engine's own sampler drew after ``prompt`` (``lm.draws``), with the settings asked and the
    model's untempered next-token log-probabilities they are held to (``assert_sampled_from``)."""

    prompt: str
    ids: tuple[int, ...]  # the prompt's
    tokens: tuple[int, ...]  # the draws, in order
    knobs: Knobs
    logprobs: np.ndarray = field(repr=False)  # one per vocabulary entry
    decode: Any = field(default=None, repr=False)  # id -> text, to name tokens in a failure

    @property
    def counts(self) -> np.ndarray:
        return counts_of(self.tokens, len(self.logprobs))

    def __add__(self, other: Draws) -> Draws:
        """Both runs' draws as one, held to this one's log-probabilities: more draws of the same prompt and settings
        (e.g. a second batch, under the handle's next seed, before a rejection is called a failure)."""
        __tracebackhide__ = True
        if not isinstance(other, Draws):
            return NotImplemented
        if other.ids != self.ids or other.knobs != self.knobs:
            raise InputError(
                f"draws after {other.prompt!r} ({other.knobs.describe()}) cannot join draws after {self.prompt!r} "
                f"({self.knobs.describe()}): only draws of one prompt under one setting add up"
            )
        return replace(self, tokens=self.tokens + other.tokens)

    def check(self, alpha: float = ALPHA) -> Fit:
        return check(self.counts, self.logprobs, self.knobs, alpha)

    def failure(self, alpha: float = ALPHA) -> list[str] | None:
        """Why the draws do not fit what was asked, in lines; None when they do."""
        counts = self.counts
        found = check(counts, self.logprobs, self.knobs, alpha)
        if found.passed:
            return None
        explanation = best_explanation(counts, self.logprobs, self.knobs, alpha)
        return [f"after {self.prompt!r}:", *describe(found, self.knobs, self.decode, explanation)]


@dataclass(frozen=True)
class Residual:
    token: int
    expected: float  # count
    drawn: int


@dataclass(frozen=True)
class Test:
    name: str
    statistic: float
    p_value: float


@dataclass
class Fit:
    """``n`` draws held to a distribution by up to three tests, Bonferroni-combined at ``alpha``: a G-test (one cell per
    token expected ``MIN_EXPECTED`` times or more, the rest pooled), the score test for the temperature (the draws'
    mean untempered log-probability: the most powerful test against a sampler that is hotter or colder than asked),
    and, under top-p, an exact binomial test of the nucleus's boundary token. A drawn token the settings give no
    probability at all fails outright."""

    n: int
    tests: list[Test]
    alpha: float
    cells: int
    residuals: list[Residual] = field(default_factory=list)  # largest first
    impossible: dict[int, int] = field(default_factory=dict)  # token -> times drawn, probability 0
    tied: tuple[int, ...] = ()  # tokens tied at a filter's cut, held as one cell on the first

    @property
    def p_value(self) -> float:
        """The smallest of the tests' p-values times their number (Bonferroni), at most 1."""
        return min(1.0, min((t.p_value for t in self.tests), default=1.0) * max(1, len(self.tests)))

    @property
    def passed(self) -> bool:
        return not self.impossible and self.p_value >= self.alpha


def counts_of(draws: Sequence[int], vocabulary: int) -> np.ndarray:
    return np.bincount(np.asarray(draws, dtype=np.int64), minlength=vocabulary)


def _g_test(counts: np.ndarray, probs: np.ndarray) -> tuple[Test | None, int]:
    n = int(counts.sum())
    wanted = probs * n
    own = np.nonzero(wanted >= MIN_EXPECTED)[0]
    tail = (probs > 0) & (wanted < MIN_EXPECTED)
    observed = [float(c) for c in counts[own]]
    expect = [float(w) for w in wanted[own]]
    if tail.any():
        observed.append(float(counts[tail].sum()))
        expect.append(float(wanted[tail].sum()))
    if len(observed) < 2:  # one cell holds everything: nothing to test
        return None, len(observed)
    expect = [e * sum(observed) / sum(expect) for e in expect]
    statistic, p_value = statistics.g_test(observed, expect)
    return Test("G-test", statistic, p_value), len(observed)


def _temperature_test(counts: np.ndarray, probs: np.ndarray, scores: np.ndarray) -> Test | None:
    kept = probs > 0
    n = int(counts.sum())
    if n * (1.0 - float(probs.max())) < MIN_EXPECTED:
        # Nearly every draw is one token (T = 0.2: 99.98 %): one rare draw would move the mean by more than its
        # normal approximation allows (seen on llama.cpp's server: p = 2e-5 for a token expected 0.075 times).
        return None
    mean = float(np.sum(probs[kept] * scores[kept]))
    variance = float(np.sum(probs[kept] * (scores[kept] - mean) ** 2))
    if variance <= 1e-12 or n == 0:
        return None
    z = (float(np.sum(counts[kept] * scores[kept])) - n * mean) / math.sqrt(n * variance)
    return Test("temperature score test", z, 2 * statistics.normal_sf(abs(z)))


def _boundary_test(counts: np.ndarray, probs: np.ndarray, boundary: int) -> Test:
    n = int(counts.sum())
    drawn = int(counts[boundary])
    return Test(
        f"boundary token {boundary} drawn {drawn} times", drawn, statistics.binomial_p(drawn, n, probs[boundary])
    )


def without_boundary(probs: np.ndarray) -> np.ndarray:
    """``probs`` with the nucleus's boundary token (its least likely kept one) cut, renormalised."""
    wrong = probs.copy()
    wrong[boundary_of(probs)] = 0.0
    renormalised: np.ndarray = wrong / wrong.sum()
    return renormalised


def boundary_of(probs: np.ndarray) -> int:
    kept = np.nonzero(probs)[0]
    return int(kept[np.argmin(probs[kept])])


def fit(
    counts: np.ndarray,
    probs: np.ndarray,
    alpha: float = ALPHA,
    scores: np.ndarray | None = None,
    boundary: int | None = None,
) -> Fit:
    """Held to ``probs``; ``scores`` (the untempered log-probabilities) adds the temperature test, ``boundary`` (the
    nucleus's last token) the boundary test."""
    n = int(counts.sum())
    g_test, cells = _g_test(counts, probs)
    tests = [g_test] if g_test is not None else []
    if scores is not None:
        tested = _temperature_test(counts, probs, scores)
        tests += [tested] if tested is not None else []
    if boundary is not None and 0 < probs[boundary] < 1:
        tests.append(_boundary_test(counts, probs, boundary))
    impossible = {int(t): int(counts[t]) for t in np.nonzero((probs == 0) & (counts > 0))[0]}
    wanted = probs * n
    scale = np.sqrt(np.maximum(wanted, 1e-12))
    order = np.argsort(-np.abs(counts - wanted) / scale, kind="stable")
    residuals = [Residual(int(t), float(wanted[t]), int(counts[t])) for t in order[:5] if counts[t] or wanted[t]]
    return Fit(n, tests, alpha, cells, residuals, impossible)


def tied_at_the_cut(scores: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The tokens tied exactly with the least likely kept one, when a filter cut some of them: which of them a
    sampler keeps is its sort's choice (torch's and llama.cpp's order ties otherwise than our lexsort), only how many
    is the settings'. bfloat16 ties often: after "Shakespeare was a great" five of the top 40 share one logit, and
    top-p 0.9 ends among them. Empty when there is no such tie."""
    kept = probs > 0
    if kept.all() or not kept.any():
        return np.zeros(0, dtype=np.int64)
    tied = np.nonzero(scores == scores[boundary_of(probs)])[0]
    return tied if len(tied) > 1 and np.any(probs[tied] == 0) else np.zeros(0, dtype=np.int64)


def pooled(counts: np.ndarray, probs: np.ndarray, tied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` and ``probs`` with the tied tokens held as one cell, on the first of them."""
    if len(tied) == 0:
        return counts, probs
    counts, probs = counts.copy(), probs.copy()
    counts[tied[0]], probs[tied[0]] = counts[tied].sum(), probs[tied].sum()
    counts[tied[1:]], probs[tied[1:]] = 0, 0.0
    return counts, probs


def check(counts: np.ndarray, logprobs: Sequence[float] | np.ndarray, knobs: Knobs, alpha: float = ALPHA) -> Fit:
    """Draws held to what ``knobs`` make of the model's log-probabilities, with every test that applies. Tokens tied
    at a filter's cut are held as one cell (``tied_at_the_cut``), which is then the nucleus's boundary."""
    scores = np.asarray(logprobs, dtype=np.float64)
    probs = expected(scores, knobs)
    tied = tied_at_the_cut(scores, probs)
    counts, probs = pooled(counts, probs, tied)
    boundary = None
    if knobs.top_p is not None and knobs.top_p < 1.0:
        boundary = int(tied[0]) if len(tied) else boundary_of(probs)
    found = fit(counts, probs, alpha, scores, boundary)
    found.tied = tuple(int(t) for t in tied)
    return found


def log_likelihood(counts: np.ndarray, probs: np.ndarray) -> float:
    drawn = counts > 0
    if np.any(probs[drawn] == 0):
        return -math.inf
    return float(np.sum(counts[drawn] * np.log(probs[drawn])))


def alternatives(logprobs: np.ndarray, knobs: Knobs) -> list[tuple[str, Knobs | np.ndarray]]:
    """The settings a wrong sampler is known to use instead of the asked ones, each with its words."""
    found: list[tuple[str, Knobs | np.ndarray]] = []
    for factor in (0.5, 0.8, 0.9, 1.1, 1.25, 2.0):
        temperature = knobs.temperature * factor
        found.append(
            (f"temperature {temperature:g}, not {knobs.temperature:g}", replace(knobs, temperature=temperature))
        )
    for min_p in (0.05, 0.1):
        if not knobs.min_p:
            found.append((f"min-p {min_p:g} left on (llama.cpp's server default is 0.05)", replace(knobs, min_p=min_p)))
    for top_k in (40, 50):
        if knobs.top_k is None:
            found.append((f"top-k {top_k} left on (a common server default)", replace(knobs, top_k=top_k)))
    if knobs.top_p is not None and knobs.top_p < 1.0:
        probs = expected(logprobs, knobs)
        if np.count_nonzero(probs) > 1:
            found.append((f"a nucleus without its boundary token {boundary_of(probs)}", without_boundary(probs)))
        if knobs.top_k is not None:
            swapped = tuple("top_p" if s == "top_k" else "top_k" if s == "top_p" else s for s in knobs.order)
            found.append(("top-k applied after top-p", replace(knobs, order=swapped)))
        found.append(("temperature applied after top-p", replace(knobs, order=_last(knobs.order, "temperature"))))
    return found


def _last(order: tuple[str, ...], step: str) -> tuple[str, ...]:
    return (*[s for s in order if s != step], step)


def best_explanation(counts: np.ndarray, logprobs: np.ndarray, knobs: Knobs, alpha: float = ALPHA) -> str | None:
    """The known wrong setting the draws fit (at α) and fit better than the asked one, in words; None if none does."""
    asked = log_likelihood(counts, expected(logprobs, knobs))
    best: tuple[float, str] | None = None
    for words, other in alternatives(logprobs, knobs):
        probs = other if isinstance(other, np.ndarray) else expected(logprobs, other)
        likelihood = log_likelihood(counts, probs)
        if likelihood > asked and fit(counts, probs, alpha).passed and (best is None or likelihood > best[0]):
            best = (likelihood, words)
    return None if best is None else best[1]


def describe(fit: Fit, knobs: Knobs, decode: Any = None, explanation: str | None = None) -> list[str]:
    """A failed fit in lines: the test's numbers, the impossible draws, the largest residuals, and what explains them."""
    name = decode if decode is not None else (lambda token: f"#{token}")
    lines = [
        f"{fit.n} draws do not fit the distribution asked ({knobs.describe()}): p = {fit.p_value:.2g} < α = "
        f"{fit.alpha:g} ({len(fit.tests)} tests, Bonferroni)"
        if not fit.impossible
        else f"{fit.n} draws include tokens the settings asked ({knobs.describe()}) give no probability"
    ]
    for test in fit.tests:
        lines.append(f"  {test.name}: statistic {test.statistic:.2f}, p = {test.p_value:.2g}")
    for token, times in sorted(fit.impossible.items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"  {name(token)!r} (id {token}) drawn {times} times, outside what the filters keep")
    if fit.tied:
        shown = ", ".join(f"{name(t)!r}" for t in fit.tied[:6]) + (", ..." if len(fit.tied) > 6 else "")
        lines.append(f"  {len(fit.tied)} tokens tied at the cut, held as one on id {fit.tied[0]}: {shown}")
    lines.append("largest residuals (expected vs drawn):")
    for row in fit.residuals:
        lines.append(f"  {name(row.token)!r} (id {row.token}): expected {row.expected:.1f}, drawn {row.drawn}")
    if explanation is not None:
        lines.append(f"the draws are consistent with {explanation}")
    return lines
