"""Comparing two reports: what changed in each observation, how much, and whether it matters."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LMBehaveError
from .records import first_difference, is_near_tie
from .report import FORMAT, VERSION

SEVERITIES = ("major", "near-tie", "minor")  # worst first


class ReportError(LMBehaveError):
    """A report that cannot be compared: missing, truncated or not ours."""


@dataclass(frozen=True)
class Thresholds:
    near_tie: float = 0.05  # nats: a flip whose margin is below this is a near-tie
    prob: float = 0.01  # largest probability change that still counts as no change
    kl: float = 0.01  # nats of KL divergence that still count as no change
    score: float = 0.05  # nats of log-likelihood change that still count as no change


@dataclass
class Change:
    test: str
    index: int
    kind: str  # tokenization, top-1 flip, probabilities, generation, label, scores, missing
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def load_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportError(f"{path}: no such report; write one with `pytest specs/ --lm-report {path}`")
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ReportError(
            f"{path} is not valid JSON ({error}); it may be truncated: write it again with --lm-report"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReportError(
            f'{path} is not a pytest-lmbehave report (no "format": "{FORMAT}"); pass files written by --lm-report'
        )
    if document.get("version") != VERSION:
        raise ReportError(
            f"{path} is a version {document.get('version')} report; this lmbehave reads version {VERSION}"
        )
    if not isinstance(document.get("observations"), dict):
        raise ReportError(f"{path} has no observations table; write it again with --lm-report")
    return document


def _distribution(rows: list[list[Any]]) -> dict[int, float]:
    return {int(token): float(prob) for _, token, prob in rows}


def kl_divergence(old_rows: list[list[Any]], new_rows: list[list[Any]]) -> float:
    """KL(old || new) over the union of both top lists, the rest of the mass pooled in one bucket."""
    old, new = _distribution(old_rows), _distribution(new_rows)
    tokens = set(old) | set(new)
    floor_old = min(old.values(), default=0.0)
    floor_new = min(new.values(), default=0.0)
    p: dict[Any, float] = {t: old.get(t, floor_old) for t in tokens}
    q: dict[Any, float] = {t: new.get(t, floor_new) for t in tokens}
    p["rest"], q["rest"] = max(1e-12, 1 - sum(p.values())), max(1e-12, 1 - sum(q.values()))
    return float(sum(pv * math.log(pv / max(q[t], 1e-12)) for t, pv in p.items() if pv > 0))


def _flip_severity(margins: list[float | None], thresholds: Thresholds) -> tuple[str, float | None]:
    known = [m for m in margins if m is not None]
    margin = min(known) if known else None
    return ("near-tie" if is_near_tie(margin, thresholds.near_tie) else "major"), margin


def compare_records(
    test: str, index: int, old: dict[str, Any], new: dict[str, Any], thresholds: Thresholds
) -> list[Change]:
    kind = old.get("kind")
    changes: list[Change] = []
    if kind != new.get("kind") or old.get("prompt", old.get("text")) != new.get("prompt", new.get("text")):
        return [
            Change(
                test,
                index,
                "missing",
                "major",
                f"observation {index} is a different one ({kind} vs {new.get('kind')}): the test asked something else",
            )
        ]
    if kind == "tokenization" and old["ids"] != new["ids"]:
        changes.append(
            Change(
                test,
                index,
                "tokenization",
                "major",
                f"{old['text']!r}: {old['pieces']} -> {new['pieces']}",
                {"old": old["pieces"], "new": new["pieces"]},
            )
        )
    if kind == "next_token":
        if old["argmax"] != new["argmax"]:
            severity, margin = _flip_severity([old.get("margin"), new.get("margin")], thresholds)
            changes.append(
                Change(
                    test,
                    index,
                    "top-1 flip",
                    severity,
                    f"after {old['prompt'][-50:]!r}: {old['argmax']!r} -> {new['argmax']!r} (margin {margin} nats)",
                )
            )
        old_p, new_p = _distribution(old["top"]), _distribution(new["top"])
        deltas = {t: new_p.get(t, 0.0) - old_p.get(t, 0.0) for t in set(old_p) & set(new_p)}
        biggest = max(deltas.items(), key=lambda kv: abs(kv[1]), default=(None, 0.0))
        kl = kl_divergence(old["top"], new["top"])
        if abs(biggest[1]) > thresholds.prob or kl > thresholds.kl:
            piece = next((r[0] for r in old["top"] if r[1] == biggest[0]), "?")
            changes.append(
                Change(
                    test,
                    index,
                    "probabilities",
                    "minor",
                    f"after {old['prompt'][-50:]!r}: largest change {piece!r} {biggest[1]:+.4f}, KL {kl:.4f} nats",
                    {"kl": kl, "old_top": old["top"], "new_top": new["top"]},
                )
            )
    if kind == "generation" and old["ids"] != new["ids"]:
        step = first_difference(old["ids"], new["ids"])
        margins = [m[step] if step < len(m) else None for m in (old.get("margins", []), new.get("margins", []))]
        severity, margin = _flip_severity(margins, thresholds)
        if old.get("sampling", "greedy") != "greedy":
            # The same seed drew another token: the probabilities moved across a random threshold, no argmax flipped.
            severity = "minor"
        char = first_difference(old["text"], new["text"])
        changes.append(
            Change(
                test,
                index,
                "generation",
                severity,
                f"after {old['prompt'][-40:]!r}: first diverging token {step} (margin {margin} nats): old {old['text'][char:][:60]!r} / new {new['text'][char:][:60]!r}",
                {"step": step, "old": old["text"], "new": new["text"]},
            )
        )
    if kind == "choice":
        if old["best"] != new["best"]:
            severity, margin = _flip_severity([old.get("margin"), new.get("margin")], thresholds)
            changes.append(
                Change(test, index, "label", severity, f"{old['best']!r} -> {new['best']!r} (margin {margin} nats)")
            )
        moved = max((abs(a - b) for a, b in zip(old["scores"], new["scores"])), default=0.0)
        if moved > thresholds.score:
            changes.append(Change(test, index, "scores", "minor", f"option scores moved by up to {moved:.4f} nats"))
    return changes


def _asked_about(record: dict[str, Any]) -> Any:
    return record.get("kind"), record.get("prompt", record.get("text"))


def compare_reports(old: dict[str, Any], new: dict[str, Any], thresholds: Thresholds) -> tuple[list[Change], int]:
    """All changes, worst first, and the number of observations compared."""
    changes: list[Change] = []
    compared = 0
    old_obs, new_obs = old["observations"], new["observations"]
    for test in sorted(set(old_obs) | set(new_obs)):
        if test not in new_obs or test not in old_obs:
            where = "new" if test not in new_obs else "old"
            changes.append(Change(test, 0, "missing", "minor", f"only in one report (missing from the {where} one)"))
            continue
        a, b = old_obs[test], new_obs[test]
        if len(a) != len(b):
            changes.append(Change(test, 0, "missing", "major", f"{len(a)} observations before, {len(b)} now"))
        diverged, follow_on = False, 0
        for index, (x, y) in enumerate(zip(a, b)):
            if diverged and _asked_about(x) != _asked_about(y):
                follow_on += 1  # a question about text that an earlier change already altered
                continue
            compared += 1
            found = compare_records(test, index, x, y, thresholds)
            diverged = diverged or any(c.kind in ("generation", "top-1 flip", "tokenization") for c in found)
            changes.extend(found)
        if follow_on:
            changes.append(
                Change(
                    test,
                    0,
                    "follow-on",
                    "minor",
                    f"{follow_on} later observations ask about the changed text, so they are not compared",
                )
            )

    changes.sort(key=lambda c: (SEVERITIES.index(c.severity), c.kind, c.test, c.index))
    return changes, compared


def summary_table(changes: list[Change]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for change in changes:
        counts[(change.severity, change.kind)] = counts.get((change.severity, change.kind), 0) + 1
    return sorted(((s, k, n) for (s, k), n in counts.items()), key=lambda r: (SEVERITIES.index(r[0]), -r[2], r[1]))


def environments_side_by_side(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for model in sorted(set(old.get("environments", {})) | set(new.get("environments", {}))):
        a, b = old.get("environments", {}).get(model, {}), new.get("environments", {}).get(model, {})
        for key in sorted(set(a) | set(b)):
            rows.append((f"{model}: {key}", str(a.get(key, "-")), str(b.get(key, "-"))))
    return rows
