"""Comparing two reports: what changed in each observation, how much, and whether it matters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config import defaults
from ..config.naming import slug
from ..observations import KINDS, verdict
from ..observations.generation import Generation
from ..observations.verdict import Difference, Tolerances

SEVERITIES = ("major", "near-tie", "minor")  # worst first


@dataclass(frozen=True)
class Thresholds:
    near_tie: float = defaults.NEAR_TIE  # nats: a flip is a near-tie when both margins are below this
    prob: float = defaults.DRIFT_PROB  # largest probability change that still counts as no change
    kl: float = defaults.DRIFT_KL  # nats of KL divergence that still count as no change
    score: float = defaults.DRIFT_SCORE  # nats of log-likelihood (scores, margins) that still count as no change

    @property
    def tolerances(self) -> Tolerances:
        return Tolerances(prob=self.prob, score=self.score, margin=self.score, near_tie=self.near_tie, kl=self.kl)


@dataclass
class Change:
    test: str
    index: int
    kind: str  # tokenization, input changed, top-1 flip, probabilities, generation, label, scores, missing
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    layer: str = verdict.MODEL  # tokenizer, model, decoding or follow-on


# What each kind of difference weighs in a drift report; a near-tie flip is "near-tie" whatever its kind.
_MINOR = {verdict.PROBABILITY, verdict.DISTRIBUTION, verdict.SCORE, verdict.MARGIN, verdict.SAMPLED, verdict.DRAWN}
_KIND_NAMES = {
    verdict.PROBABILITY: "probabilities",
    verdict.DISTRIBUTION: "probabilities",
    verdict.ENTRANT: "probabilities",
    verdict.LEFT: "probabilities",
    verdict.SCORE: "scores",
    verdict.SAMPLED: "generation",
    verdict.DRAWN: "draws",
    verdict.QUESTION: "missing",
}


def severity(difference: Difference) -> str:
    if difference.near_tie:
        return "near-tie"
    return "minor" if difference.kind in _MINOR else "major"


def compare_records(
    test: str,
    index: int,
    old: dict[str, Any],
    new: dict[str, Any],
    thresholds: Thresholds,
    environments: tuple[dict[str, Any], ...] = (),
) -> list[Change]:
    """The snapshot extension's comparison (`verdict.compare`), each difference given a severity. ``environments``:
    the two sides' fingerprints, whose measured noise raises the tolerances as a snapshot's does (a bfloat16 side
    is judged in bfloat16's units)."""
    found = verdict.compare(old, new, thresholds.tolerances.for_numerics(*environments))
    changes = []
    for difference in found:
        if difference.kind in (verdict.PROBABILITY, verdict.DISTRIBUTION) and difference is not _largest(found):
            continue  # one probabilities line per observation: the largest move, with the KL divergence
        summary = difference.text.split("\n")[0]
        details: dict[str, Any] = {"difference": difference}
        unit = KINDS.get(str(old.get("kind")))
        moved = difference.kind in (verdict.PROBABILITY, verdict.DISTRIBUTION)
        if unit is not None and unit.drift is not None and moved:
            summary, more = unit.drift(difference, old, new)  # the kind's own drift line (next_token: the KL)
            details.update(more)
        if difference.kind in (verdict.GENERATION, verdict.SAMPLED):
            details.update(step=difference.step, old=old.get("text"), new=new.get("text"))
        kind = _KIND_NAMES.get(difference.kind, difference.kind)
        changes.append(Change(test, index, kind, severity(difference), summary, details, difference.layer))
    return changes


def _largest(found: list[Difference]) -> Difference | None:
    numeric = [d for d in found if d.kind in (verdict.PROBABILITY, verdict.DISTRIBUTION)]
    return max(numeric, key=lambda d: (d.kind == verdict.PROBABILITY, d.size or 0.0), default=None)


def _asked_about(record: dict[str, Any]) -> Any:
    return record.get("kind"), record.get("messages", record.get("prompt", record.get("text")))


def _without_model(test: str, slugs: set[str]) -> str:
    """A node id with the model parameter taken out: ``t[embedded]`` and ``t[owner--name]`` become ``t``."""
    name, bracket, params = test.partition("[")
    if not bracket:
        return test
    params = params[:-1] if params.endswith("]") else params
    for model in sorted(slugs, key=len, reverse=True):
        params = re.sub(rf"(^|-){re.escape(model)}(?=-|$)", "", params).strip("-")
    return f"{name}[{params}]" if params else name


def pair_tests(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """Tests of the two reports, paired by node id; ids found in one report only are paired when they differ
    only by the model parameter (a snapshot test run for another model). Unpaired ones come with None."""
    old_obs, new_obs = old["observations"], new["observations"]
    pairs: list[tuple[str | None, str | None]] = [(t, t) for t in sorted(set(old_obs) & set(new_obs))]
    slugs = {
        slug(str(r.get("model")))
        for report in (old_obs, new_obs)
        for records in report.values()
        for r in records
        if r.get("model")
    }
    only_old = {_without_model(t, slugs): t for t in sorted(set(old_obs) - set(new_obs))}
    only_new = {_without_model(t, slugs): t for t in sorted(set(new_obs) - set(old_obs))}
    for key in sorted(set(only_old) | set(only_new)):
        pairs.append((only_old.get(key), only_new.get(key)))
    return pairs


def summaries(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What each kind says of all its paired records at once (``Kind.summary``: the scores' KL statistics)."""
    lines: list[str] = []
    for name, unit in KINDS.items():
        if unit.summary is None:
            continue
        lines += unit.summary(paired(old, new, name))
    return lines


def paired(old: dict[str, Any], new: dict[str, Any], kind: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The two reports' records of one kind, paired test by test."""
    return [
        (a, b)
        for before, after in pair_tests(old, new)
        if before and after
        for a, b in zip(old["observations"][before], new["observations"][after])
        if a.get("kind") == kind == b.get("kind")
    ]


def _environment(report: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of the model that made ``record``, as its report holds it."""
    found = report.get("environments", {}).get(str(record.get("model")), {})
    return found if isinstance(found, dict) else {}


def compare_reports(old: dict[str, Any], new: dict[str, Any], thresholds: Thresholds) -> tuple[list[Change], int]:
    """All changes, worst first, and the number of observations compared."""
    changes: list[Change] = []
    compared = 0
    old_obs, new_obs = old["observations"], new["observations"]
    for before, after in pair_tests(old, new):
        if before is None or after is None:
            where = "old" if before is None else "new"
            test = str(before or after)
            changes.append(Change(test, 0, "missing", "minor", f"only in one report (missing from the {where} one)"))
            continue
        test = before if before == after else f"{before} -> {after}"
        a, b = old_obs[before], new_obs[after]
        if len(a) != len(b):
            changes.append(Change(test, 0, "missing", "major", f"{len(a)} observations before, {len(b)} now"))
        diverged, follow_on = False, 0
        for index, (x, y) in enumerate(zip(a, b)):
            if diverged and _asked_about(x) != _asked_about(y):
                follow_on += 1  # a question about text that an earlier change already altered
                continue
            compared += 1
            sides = (_environment(old, x), _environment(new, y))
            found = compare_records(test, index, x, y, thresholds, sides)
            diverged = diverged or any(
                c.kind in ("generation", "top-1 flip", "tokenization", verdict.INPUT) for c in found
            )
            changes.extend(found)
        if follow_on:
            changes.append(
                Change(
                    test,
                    0,
                    "follow-on",
                    "minor",
                    f"{follow_on} later observations ask about the changed text, so they are not compared",
                    {"count": follow_on, "after": next((c.layer for c in changes if c.test == test), None)},
                    verdict.FOLLOW_ON,
                )
            )

    changes.sort(key=lambda c: (SEVERITIES.index(c.severity), c.kind, c.test, c.index))
    return changes, compared


def largest_move(old: dict[str, Any], new: dict[str, Any]) -> tuple[float, str]:
    """The largest change of any recorded number between two reports, over observations that asked the same
    question and (for generations) produced the same tokens: the noise floor between two runs."""
    found: tuple[float, str] = (0.0, "")
    for before, after in pair_tests(old, new):
        if before is None or after is None:
            continue
        test = before if before == after else f"{before} -> {after}"
        for index, (a, b) in enumerate(zip(old["observations"][before], new["observations"][after])):
            if _asked_about(a) != _asked_about(b) or a.get("ids") != b.get("ids"):
                continue
            size, where = record_move(a, b)
            if size > found[0]:
                found = (size, f"{test} #{index} {where}")
    return found


def summary_table(changes: list[Change]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for change in changes:
        counts[(change.severity, change.kind)] = counts.get((change.severity, change.kind), 0) + 1
    return sorted(((s, k, n) for (s, k), n in counts.items()), key=lambda r: (SEVERITIES.index(r[0]), -r[2], r[1]))


def record_move(old: Any, new: Any, path: str = "") -> tuple[float, str]:
    """The largest change of any number between two records of the same shape, and where: the noise floor
    between two runs that computed the same things. The per-step margins of a generation (and of every kind whose
    observation is one, a chat's answer) are left out: they are recorded to ``MARGIN_DIGITS`` decimals, so one
    rounding step (0.001) would hide the noise being measured."""
    if isinstance(old, bool) or isinstance(new, bool):
        return 0.0, path
    if (
        isinstance(old, (int, float))
        and isinstance(new, (int, float))
        and (isinstance(old, float) or isinstance(new, float))
    ):
        return abs(float(new) - float(old)), path
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("kind") == "next_token" and isinstance(old.get("top"), list):
            old = {**old, "top": {row[1]: row[2] for row in old["top"]}}
            new = {**new, "top": {row[1]: row[2] for row in new.get("top", [])}}
        keys = [k for k in old if k in new and not (k == "margins" and _generated(old))]
        pairs = [(record_move(old[k], new[k], f"{path}.{k}" if path else str(k)), k) for k in keys]
        return max((p for p, _ in pairs), default=(0.0, path))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return max((record_move(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(old, new))), default=(0.0, path))
    return 0.0, path


def _generated(record: dict[str, Any]) -> bool:
    """Whether a record is a generation's (a generation, or a kind whose observation is one)."""
    kind = KINDS.get(str(record.get("kind")))
    return kind is not None and issubclass(kind.observation, Generation)
