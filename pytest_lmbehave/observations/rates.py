"""Pass rates: how often a behaviour stated as a predicate holds over independent draws.

A ``Rate`` is ``successes`` of ``n`` with an exact (Clopper-Pearson) interval. Held to a bound (``rate >= 0.9``) it
gives one of three decisions: pass (the whole interval clears the bound), fail (the whole interval misses it) or
inconclusive (the interval straddles it; the decision says about how many more draws would decide). A
``SequentialRate`` draws in looks that double (50, 100, 200, ... up to ``n``) and stops at the first look that
decides; each look's interval is taken at ``1 - alpha / looks`` (Bonferroni), so a wrong decision has probability at
most ``alpha`` however early the rule stops. ``moved_from`` tells whether a rate differs from a recorded one
(Fisher's exact test of the two proportions at ``alpha``): a later run, or another engine, is held to the recorded
rate, never to its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..config.errors import InputError
from . import statistics

ALPHA = 0.01  # the chance of a wrong pass or a wrong fail, whatever the rule's stopping look
FIRST_LOOK = 50  # draws before the first look; each later look doubles them
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
ABOVE = {">=": True, ">": True, "<=": False, "<": False}  # which side of the bound the rate is asserted to lie on


def looks(n: int) -> list[int]:
    """The draw counts at which a sequential rule looks: 50, 100, 200, ... and always ``n`` last."""
    found = []
    size = FIRST_LOOK
    while size < n:
        found.append(size)
        size *= 2
    return [*found, n]


def interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a proportion at ``confidence``: the beta quantiles that define it,
    which is what ``scipy.stats.binomtest(...).proportion_ci(method="exact")`` computes (to 1e-12), 20 times
    faster; the simulations that measure the rule's error rates take thousands."""
    tail = (1 - confidence) / 2
    low = statistics.beta_ppf(tail, successes, n - successes + 1) if successes > 0 else 0.0
    high = statistics.beta_ppf(1 - tail, successes + 1, n - successes) if successes < n else 1.0
    return low, high


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


@dataclass(frozen=True)
class Decision:
    """A rate held to a bound: ``outcome`` is pass, fail or inconclusive; true only for pass, so ``assert`` works."""

    outcome: str
    lines: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.outcome == PASS

    def __str__(self) -> str:
        return "\n".join(self.lines)


class Held:
    """What ``rate >= bound`` and its kin mean for a rate: its decision against the bound (true only for pass)."""

    def decide(self, bound: float, above: bool = True) -> Decision:
        raise NotImplementedError

    def __ge__(self, bound: float) -> Decision:
        return self.decide(bound, above=True)

    def __gt__(self, bound: float) -> Decision:
        return self.decide(bound, above=True)

    def __le__(self, bound: float) -> Decision:
        return self.decide(bound, above=False)

    def __lt__(self, bound: float) -> Decision:
        return self.decide(bound, above=False)


@dataclass(frozen=True)
class Rate(Held):
    """``successes`` of ``n`` draws; the interval is corrected for the ``looks`` a sequential rule took."""

    successes: int
    n: int
    what: str = ""  # what was counted, for messages
    alpha: float = ALPHA
    looks: int = 1
    unit: str = "draws"  # what n counts, for messages ("cases" for a capability under change)

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1 and 0 <= self.successes <= self.n):
            raise InputError(f"a rate needs 0 <= successes <= n and n >= 1, not {self.successes}/{self.n}")

    @property
    def value(self) -> float:
        return self.successes / self.n

    @property
    def confidence(self) -> float:
        return 1 - self.alpha / self.looks

    @cached_property
    def interval(self) -> tuple[float, float]:
        return interval(self.successes, self.n, self.confidence)

    def __str__(self) -> str:
        low, high = self.interval
        looked = f", {self.looks} looks" if self.looks > 1 else ""
        return (
            f"{self.successes}/{self.n} = {percent(self.value)} [{percent(low)}, {percent(high)}] "
            f"({100 * self.confidence:.3g} % Clopper-Pearson{looked})"
        )

    def decide(self, bound: float, above: bool = True) -> Decision:
        """Pass when the interval lies wholly on the asserted side of ``bound``, fail when wholly on the other,
        inconclusive when it straddles it."""
        _check_bound(bound)
        low, high = self.interval
        side = ">=" if above else "<="
        head = f"{self.what + ': ' if self.what else ''}{self} {side} {percent(bound)}?"
        if (low >= bound) if above else (high <= bound):
            return Decision(
                PASS, (head, f"pass: the whole interval lies {'at or above' if above else 'at or below'} the bound")
            )
        if (high < bound) if above else (low > bound):
            return Decision(FAIL, (head, f"fail: the whole interval lies {'below' if above else 'above'} the bound"))
        return Decision(
            INCONCLUSIVE,
            (
                head,
                f"inconclusive: the interval straddles {percent(bound)}; {self.more(bound)}. Not a failure of the "
                f"behaviour: the {self.unit} cannot tell which side it lies on (raise n)",
            ),
        )

    def more(self, bound: float) -> str:
        """About how many more draws would decide, at the rate seen so far (normal approximation)."""
        gap = abs(self.value - bound)
        if gap == 0 or self.value in (0.0, 1.0):
            return "no number of draws decides a rate seen exactly at its bound"
        z = statistics.normal_ppf(1 - (1 - self.confidence) / 2)
        needed = math.ceil(z * z * self.value * (1 - self.value) / (gap * gap))
        more = max(needed - self.n, 1)
        return f"about {more} more {self.unit} would decide, if the rate stays at {percent(self.value)}"

    def moved_from(self, recorded: Rate) -> tuple[bool, float]:
        """Whether this rate differs from ``recorded`` (Fisher's exact test at ``alpha``), and the p-value."""
        table = [[self.successes, self.n - self.successes], [recorded.successes, recorded.n - recorded.successes]]
        p_value = statistics.fisher_p(table)
        return p_value < self.alpha, p_value


class SequentialRate(Held):
    """A rate drawn when it is held to a bound: ``draw(k)`` gives the successes among ``k`` new independent draws.
    The rule looks at 50, 100, 200, ... draws and stops at the first look that decides, or at ``n``."""

    def __init__(self, draw: Callable[[int], int], n: int, what: str = "", alpha: float = ALPHA) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InputError(f"n={n!r} must be a whole number >= 1: the most draws the rate may take")
        self._draw, self.n, self.what, self.alpha = draw, n, what, alpha
        self._successes, self._drawn = 0, 0
        self.last: Rate | None = None  # the rate at the look that decided, once held to a bound

    def decide(self, bound: float, above: bool = True) -> Decision:
        _check_bound(bound)
        planned = looks(self.n)
        decision = None
        for look in planned:
            if look > self._drawn:
                self._successes += int(self._draw(look - self._drawn))
                self._drawn = look
            if look < self._drawn:
                continue
            self.last = Rate(self._successes, self._drawn, self.what, self.alpha, len(planned))
            decision = self.last.decide(bound, above)
            if decision.outcome != INCONCLUSIVE:
                break
        assert decision is not None
        stopped = f"stopped after {self._drawn} of at most {self.n} draws"
        return Decision(decision.outcome, (*decision.lines, stopped))

    def __repr__(self) -> str:
        return f"SequentialRate({self.what or 'a rate'}, {self.last or 'not drawn yet'})"


def _check_bound(bound: Any) -> None:
    __tracebackhide__ = True
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 <= bound <= 1:
        raise InputError(f"a rate is held to a proportion from 0 to 1 (e.g. rate >= 0.9), not {bound!r}")


def explain(op: str, left: Any, right: Any) -> list[str] | None:
    """pytest's failed-assertion lines for ``rate >= bound`` and its kin: the decision, why, and what to do."""
    if op not in ABOVE or not isinstance(left, Held):
        return None
    decision = left.decide(right, ABOVE[op])  # a sequential rate decides again from the draws it already took
    return [f"{decision.outcome.upper()}: rate {op} {right}", *decision.lines]
