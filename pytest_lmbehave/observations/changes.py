"""Behaviour under change, judged over next-token distributions (CheckList's invariance and directional kinds for a
causal LM): one change judged (``invariance``, ``direction``), a capability's cases together (the ``Capability``
observation: its failure rate with an interval), its record, its comparison with a record (case by case, the cases
read within the noise aside, with Fisher's exact test of the rate beside it) and the table `lmbehave diff` prints of
rates before and after.

Invariance: the top-1 (or the chosen label) stays, unless the base was a near tie by the project's rule, and
KL(base || variant) stays under a bound: over the labels when there are labels, else over the full vocabulary where
both distributions are whole (in process), else over the top candidates with the rest pooled, a lower bound (a
server). Direction: a label's probability moves the stated way by at least ``by``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import defaults
from .differences import RATE, Compared, Difference, Tolerances, first_difference
from .next_token import EXACT, Distribution, exact_kl, kl_divergence, pooled
from .numerics import probability_move
from .perturbations import Change
from .rates import ALPHA, Rate, percent

HELD, BROKEN, NEAR_TIE = "held", "broken", "near tie"  # one case's verdict
INVARIANT = "invariant"
SHOWN = 3  # candidates each side shows in a case's lines


@dataclass(frozen=True)
class Outcome:
    """One change judged: its id and family, the verdict, the KL or the move measured, and the lines that explain it."""

    id: str
    family: str
    verdict: str
    measured: float
    lines: tuple[str, ...]
    # Within the noise of the other verdict: a margin under the near-tie threshold, a KL or a move within the
    # tolerance (or the dtype's noise) of its bound; numerical noise alone may turn such a case over.
    within_noise: bool = False


def near_tie_threshold(noise: float) -> float:
    """The near-tie rule's threshold here: NEAR_TIE, or the dtype's measured noise where that is larger."""
    return max(defaults.NEAR_TIE, noise + 1e-9)


def _label_probs(dist: Distribution, labels: Sequence[str | int]) -> list[float]:
    """Each label's probability renormalised over the labels."""
    logprobs = [dist.logprob(label) for label in labels]
    top = max(logprobs)
    weights = [math.exp(v - top) for v in logprobs]
    return [w / sum(weights) for w in weights]


def kl(base: Distribution, variant: Distribution, labels: Sequence[str | int] | None = None) -> tuple[float, str]:
    """KL(base || variant) in nats, and over what: the labels, the full vocabulary (both whole), or the top
    candidates with the rest pooled (a lower bound)."""
    if labels:
        p, q = _label_probs(base, labels), _label_probs(variant, labels)
        return sum(a * math.log(a / max(b, 1e-300)) for a, b in zip(p, q) if a > 0), "over the labels"
    if not base.known and not variant.known:
        return exact_kl(base.values, variant.values), EXACT
    depth = min(defaults.CHANGE_TOP, base.known or defaults.CHANGE_TOP, variant.known or defaults.CHANGE_TOP)
    rows = [[[c.piece, c.id, c.prob] for c in d.top(depth)] for d in (base, variant)]
    return kl_divergence(rows[0], rows[1]), pooled(depth)


def _tokens(dist: Distribution, other: Distribution) -> str:
    """The ids the model read, from a little before where the two prompts' tokens part."""
    ids, others = list(dist.prompt_ids), list(other.prompt_ids)
    if not ids:
        return repr(dist.prompt[-40:])
    start = max(0, first_difference(ids, others) - 2)
    pieces = [dist.vocabulary.piece(t) for t in ids[start : start + 12]]
    more = " ..." if start + 12 < len(ids) else ""
    return ("... " if start else "") + " ".join(repr(p) for p in pieces) + more


def _side(name: str, dist: Distribution, other: Distribution, labels: Sequence[str | int] | None) -> list[str]:
    if labels:
        shown = ", ".join(f"{label!r} {p:.4f}" for label, p in zip(labels, _label_probs(dist, labels)))
    else:
        shown = ", ".join(f"{c.piece!r} {c.prob:.4f}" for c in dist.top(min(SHOWN, dist.known or SHOWN)))
    return [f"  {name:<7} top: {shown}", f"  {name:<7} tokens: {_tokens(dist, other)}"]


def _top(dist: Distribution, labels: Sequence[str | int] | None) -> tuple[str, float]:
    """The top candidate (or label) and its margin over the next, in nats."""
    if labels:
        ordered = sorted(((dist.logprob(label), label) for label in labels), reverse=True)
        best = ordered[0][1]  # a label given by id is named by its piece
        return dist.vocabulary.piece(best) if isinstance(best, int) else best, ordered[0][0] - ordered[1][0]
    return dist.argmax, dist.margin


def invariance(
    change: Change,
    base: Distribution,
    variant: Distribution,
    labels: Sequence[str | int] | None = None,
    max_kl: float | None = None,
    noise: float = 0.0,
) -> Outcome:
    """Whether ``change`` left the behaviour alone: the top-1 (or label) stayed, or the base was a near tie (a
    warning, not a failure), and the KL stayed at or under ``max_kl``."""
    threshold = near_tie_threshold(noise)
    was, base_margin = _top(base, labels)
    now, new_margin = _top(variant, labels)
    divergence, over = kl(base, variant, labels)
    verdict, why = HELD, [f"the {'label' if labels else 'top-1'} {was!r} held (margin {base_margin:.3f} nats)"]
    if now != was:
        if base_margin < threshold:
            verdict = NEAR_TIE
            why = [
                f"NEAR-TIE: the {'label' if labels else 'top-1'} {was!r} -> {now!r}, but the base margin "
                f"{base_margin:.4f} nats is within the near-tie threshold {threshold:.3g}: a warning, not a failure"
            ]
        else:
            verdict = BROKEN
            why = [
                f"the {'label' if labels else 'top-1'} changed: {was!r} -> {now!r} (base margin {base_margin:.4f} "
                f"nats, clear of the near-tie threshold {threshold:.3g}; variant margin {new_margin:.4f})"
            ]
    bound = "" if max_kl is None else f" (bound {max_kl:g})"
    near_bound = max_kl is not None and abs(divergence - max_kl) < max(defaults.TOLERANCE, 2 * noise)
    within_noise = min(base_margin, new_margin) < threshold or near_bound
    if max_kl is not None and divergence > max_kl:
        verdict = BROKEN
        why.append(f"KL(base || variant) {divergence:.4f} nats {over} exceeds the bound {max_kl:g}")
    else:
        why.append(f"KL(base || variant) {divergence:.4f} nats {over}{bound}")
    lines = (
        f"{change.id}: {verdict.upper()}",
        *(f"  {line}" for line in why),
        *_side("base", base, variant, labels),
        *_side("variant", variant, base, labels),
    )
    return Outcome(change.id, change.family, verdict, divergence, lines, within_noise)


def direction_floor(by: float, noise: float) -> tuple[float, str]:
    """The move a direction needs: ``by``, raised to the most a probability moves by the dtype's measured noise."""
    floor = probability_move(noise) if noise > 0 else 0.0
    if floor > by:
        return floor, f" (raised from {by:g} to the noise floor {floor:.3g}: a move within it is numerical noise)"
    return by, ""


def direction(
    change: Change,
    base: Distribution,
    variant: Distribution,
    token: str | int,
    up: bool = True,
    by: float = defaults.DIRECTION_BY,
    labels: Sequence[str | int] | None = None,
    noise: float = 0.0,
) -> Outcome:
    """Whether ``change`` moved ``token``'s probability the stated way by at least ``by`` (renormalised over the
    labels when there are labels)."""
    needed, raised = direction_floor(by, noise)
    if labels:
        index = list(labels).index(token)
        before, after = _label_probs(base, labels)[index], _label_probs(variant, labels)[index]
    else:
        before, after = base.prob(token), variant.prob(token)
    move = after - before
    held = move >= needed if up else move <= -needed
    within_noise = abs(move - (needed if up else -needed)) < max(defaults.TOLERANCE, probability_move(noise))
    way = "rise" if up else "fall"
    lines = (
        f"{change.id}: {(HELD if held else BROKEN).upper()}",
        f"  p({token!r}) {before:.4f} -> {after:.4f}: {move:+.4f}; expected to {way} by at least {needed:.3g}{raised}",
        *_side("base", base, variant, labels),
        *_side("variant", variant, base, labels),
    )
    return Outcome(change.id, change.family, HELD if held else BROKEN, move, lines, within_noise)


@dataclass(frozen=True, eq=False)
class Capability:
    """A capability's cases judged together: ``rate`` is the failure rate (broken cases of all) with its interval;
    ``assert capability.rate <= 0.1`` gives pass, fail or inconclusive."""

    name: str
    expectation: str  # "invariant", or "' bad' up by 0.05"
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict == BROKEN]

    @property
    def near_ties(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict == NEAR_TIE]

    @property
    def rate(self) -> Rate:
        return Rate(len(self.failures), len(self.outcomes), f"{self.name} failure rate", unit="cases")

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(o.family for o in self.outcomes))

    def line(self) -> str:
        """'name invariance: 3/40 fail, 7.5 % [2.6 %, 19.9 %]' (and the near ties, when any)."""
        rate = self.rate
        low, high = rate.interval
        ties = f", {len(self.near_ties)} near tie(s)" if self.near_ties else ""
        return (
            f"{self.name}: {rate.successes}/{rate.n} fail, {percent(rate.value)} [{percent(low)}, {percent(high)}]"
            f"{ties}"
        )

    def explanation(self, shown: int = 3) -> list[str]:
        """The rate, then the first ``shown`` failed cases (and near ties) in full."""
        lines = [f"{self.line()} ({self.expectation}; {100 * self.rate.confidence:.3g} % Clopper-Pearson)"]
        for outcome in (self.failures + self.near_ties)[:shown]:
            lines.extend(outcome.lines)
        left = len(self.failures) + len(self.near_ties) - shown
        if left > 0:
            lines.append(f"... and {left} more: " + "; ".join(o.id for o in (self.failures + self.near_ties)[shown:]))
        return lines

    def __repr__(self) -> str:
        return f"Capability({self.line()})"


def record(observation: Capability, top: int) -> dict[str, Any]:
    rate = observation.rate
    return {
        "kind": "capability",
        "capability": observation.name,
        "expectation": observation.expectation,
        "families": observation.families,
        "n": rate.n,
        "failures": rate.successes,
        # In words, not numbers: a case that flips on another CPU moves the interval by a step, which is a count
        # changing, not numerical noise (`lmbehave diff --max-change` measures the noise of numbers).
        "interval": f"[{percent(rate.interval[0])}, {percent(rate.interval[1])}] (99 % Clopper-Pearson)",
        "failed": [o.id for o in observation.failures],
        "near_ties": [o.id for o in observation.near_ties],
        "within_noise": [o.id for o in observation.outcomes if o.within_noise],
    }


def moved(old: dict[str, Any], new: dict[str, Any]) -> tuple[bool, float, str]:
    """Whether the new failure rate differs from the recorded one (Fisher's exact test at α = 0.01), the p-value
    and the words: 'failure rate 2/40 = 5.0 % recorded, 12/40 = 30.0 % now: +25.0 points (Fisher p=0.0012)'."""
    was = Rate(int(old["failures"]), int(old["n"]))
    now = Rate(int(new.get("failures", 0)), int(new.get("n", 1)))
    significant, p_value = now.moved_from(was)
    points = 100 * (now.value - was.value)
    words = (
        f"failure rate {was.successes}/{was.n} = {percent(was.value)} recorded, {now.successes}/{now.n} = "
        f"{percent(now.value)} now: {points:+.1f} points (Fisher's exact p={p_value:.4g}, "
        f"{'<' if significant else '>='} α={ALPHA})"
    )
    return significant, p_value, words


def flipped(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What moved beyond the noise between two records, in words (nothing: []). One model's cases are
    deterministic, so a case that fails now and held then (or the reverse) is a change of behaviour, unless both
    runs read it within the noise (``within_noise``: a margin under the near-tie threshold, a KL or a move within
    the tolerance or the dtype's noise of its bound), which numerical noise may land either way. Cases are matched
    by their ids (several cases may share one); a failure count that moved beyond the noise without its cases (a
    record altered by hand) is named too."""
    before, after = Counter(old.get("failed", [])), Counter(new.get("failed", []))
    # Noise turns a case over only where both runs read it within the noise (the near-tie rule: both margins).
    noisy = Counter(old.get("within_noise", old.get("near_ties", []))) & Counter(
        new.get("within_noise", new.get("near_ties", []))
    )
    words = [
        f"{way}: {', '.join(f'{case} (x{k})' if k > 1 else case for case, k in cases.items())}"
        for way, cases in (
            ("failing now, held when recorded", _beyond(after, before, noisy)),
            ("holding now, failed when recorded", _beyond(before, after, noisy)),
        )
        if cases
    ]
    count = int(new.get("failures", 0)) - int(old.get("failures", 0))
    if not words and abs(count) > noisy.total():
        words.append(
            f"{abs(count)} {'more' if count > 0 else 'fewer'} failures than recorded, beyond the "
            f"{noisy.total()} case(s) both runs read within the noise, though the same cases are named"
        )
    return words


def _beyond(more: Counter[str], less: Counter[str], noisy: Counter[str]) -> Counter[str]:
    """How many more times each case is in ``more`` than in ``less``, beyond its noisy readings."""
    return Counter({case: k for case in more if (k := more[case] - less[case] - noisy[case]) > 0})


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    """A capability's record against today's: a difference when a case's verdict moved beyond the noise
    (``flipped``) or when the rate moved by Fisher's exact test at α = 0.01."""
    what = f"{old.get('capability')!r}"
    if "n" in old and old.get("n") != new.get("n"):
        text = f"{what}: {old.get('n')} cases recorded, {new.get('n')} now; record it again with --snapshot-update"
        return [Difference(RATE, text, "n", old.get("n"), new.get("n"))], set(old)
    if "failures" in old:
        significant, _, words = moved(old, new)
        cases = flipped(old, new)
        if significant or cases:
            size = abs(int(new.get("failures", 0)) - int(old["failures"])) / max(1, int(old["n"]))
            text = "; ".join(
                [f"{what}: {words}", *cases, f"the cases that fail now: {', '.join(new.get('failed', [])) or 'none'}"]
            )
            return [Difference(RATE, text, "failures", old["failures"], new.get("failures"), size=size)], set(old)
    return [], set(old)


def drift(difference: Difference, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return difference.text.splitlines()[0], {"old": old.get("failures"), "new": new.get("failures")}


def summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """`lmbehave diff`'s one table of capability rates, before and after."""
    if not pairs:
        return []
    width = max(len(str(old.get("capability", ""))) for old, _ in pairs)
    lines = [f"  {'capability':<{width}}  {'before':>16}  {'after':>16}  moved?"]
    for old, new in pairs:
        before = f"{old.get('failures')}/{old.get('n')} = {percent(int(old.get('failures', 0)) / max(1, int(old.get('n', 1))))}"
        after = f"{new.get('failures')}/{new.get('n')} = {percent(int(new.get('failures', 0)) / max(1, int(new.get('n', 1))))}"
        if old.get("n") != new.get("n"):
            verdict = "other cases"
        else:
            significant, p_value, _ = moved(old, new)
            verdict = f"{'yes' if significant else 'no'} (Fisher p={p_value:.3g})"
        lines.append(f"  {old.get('capability', ''):<{width}}  {before:>16}  {after:>16}  {verdict}")
    return ["capability failure rates:", *lines]


def explain(observation: Capability, expected: Any, k: int) -> list[str] | None:
    return None
