"""The one comparison of two observation records: what differs, by how much, and whether it is a near-tie.

The snapshot extension and `lmbehave diff` both call `compare`; each only decides what a difference means for
it (a snapshot fails on any difference that is not a near-tie; drift turns kinds into severities) and formats it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .differences import (
    DECODING,
    DISTRIBUTION,
    ENTRANT,
    FIELD,
    FOLLOW_ON,
    GENERATION,
    INPUT,
    LABEL,
    LEFT,
    MARGIN,
    METADATA,
    MODEL,
    PROBABILITY,
    QUESTION,
    SAMPLED,
    SCORE,
    TOKENIZATION,
    TOKENIZER,
    TOP1,
    Compared,
    Difference,
    StepCheck,
    Teacher,
    Tolerances,
    first_difference,
    is_near_tie,
    margin_words,
    moved,
)
from .divergence import generations

__all__ = [
    "DECODING",
    "DISTRIBUTION",
    "ENTRANT",
    "FIELD",
    "FOLLOW_ON",
    "GENERATION",
    "INPUT",
    "LABEL",
    "LEFT",
    "MARGIN",
    "MODEL",
    "PROBABILITY",
    "QUESTION",
    "SAMPLED",
    "SCORE",
    "TOKENIZATION",
    "TOKENIZER",
    "TOP1",
    "Difference",
    "StepCheck",
    "Teacher",
    "Tolerances",
    "compare",
    "first_difference",
    "is_near_tie",
    "kl_divergence",
    "tokenizer_change",
]


def compare(
    old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Teacher | None = None
) -> list[Difference]:
    """Every difference of ``new`` from the recorded ``old`` on the keys ``old`` holds (a transcribed record may
    hold only some), beyond the tolerances. ``teacher`` scores a recorded continuation under today's model, to
    localise a diverging generation; without it the rest of the continuation is not checked."""
    kind = old.get("kind", new.get("kind"))
    asked_old, asked_new = _question(old), _question(new)
    if old.get("kind") not in (None, new.get("kind")) or (asked_old is not None and asked_old != asked_new):
        return [
            Difference(
                QUESTION,
                f"a different question: {old.get('kind')} of {asked_old!r} recorded, {new.get('kind')} of "
                f"{asked_new!r} now",
                layer=FOLLOW_ON,
            )
        ]
    if "input_ids" in old and new.get("input_ids") is not None and old["input_ids"] != new["input_ids"]:
        # The same text reached the model as other ids: whatever it did with them follows from the tokenizer, so
        # nothing else is compared (and no flip can be called a near-tie).
        before, after = list(old["input_ids"]), list(new["input_ids"])
        return [
            Difference(
                INPUT,
                f"the input changed: {str(old.get('prompt', ''))[-40:]!r} reads as {tokenizer_change(before, after)} "
                f"(recorded {_ids(before)}, now {_ids(after)}); what the model did with it is not compared",
                "input_ids",
                before,
                after,
                layer=TOKENIZER,
            )
        ]
    compare_kind = {
        "tokenization": _tokenization,
        "next_token": _next_token,
        "generation": generations,
        "choice": _choice,
    }.get(str(kind))
    handled: set[str] = {"kind", "prompt", "text", "input_ids"}
    if kind == "generation":
        handled.discard("text")
    diffs: list[Difference] = []
    if compare_kind is not None:
        found, keys = compare_kind(old, new, tolerances, teacher)
        diffs += found
        handled |= keys
    for key, want in old.items():
        if key in handled or key in METADATA:
            continue
        if new.get(key) != want:
            diffs.append(Difference(FIELD, f"{key}: {want!r} -> {new.get(key)!r}", key, want, new.get(key)))
    return diffs


def _ids(ids: list[int]) -> str:
    return str(ids) if len(ids) <= 8 else f"[{', '.join(map(str, ids[:6]))}, ... {len(ids)} ids]"


def tokenizer_change(old: Sequence[int], new: Sequence[int], pieces: dict[int, str] | None = None) -> str:
    """What the tokenizer now does to the same text, in words: prepends or appends a token, or splits it anew."""
    pieces = pieces or {}

    def name(token: int) -> str:
        return f"{pieces[token]!r} (id {token})" if token in pieces else f"id {token}"

    old, new = list(old), list(new)
    if len(new) > len(old) and new[len(new) - len(old) :] == old:
        return "the tokenizer now prepends " + ", ".join(name(t) for t in new[: len(new) - len(old)])
    if len(old) > len(new) and old[len(old) - len(new) :] == new:
        return "the tokenizer no longer prepends " + ", ".join(name(t) for t in old[: len(old) - len(new)])
    if len(new) > len(old) and new[: len(old)] == old:
        return "the tokenizer now appends " + ", ".join(name(t) for t in new[len(old) :])
    return "the tokenizer now splits the text differently"


def _question(record: dict[str, Any]) -> Any:
    return record.get("prompt", record.get("text"))


def _tokenization(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    keys = {"ids", "pieces"} & set(old)
    if all(old[k] == new.get(k) for k in keys):
        return [], keys
    shown = "pieces" if "pieces" in keys else "ids"
    words = ""
    if "ids" in old and new.get("ids") is not None:
        names = dict(zip(new.get("ids", []), new.get("pieces", []))) | dict(zip(old["ids"], old.get("pieces", [])))
        words = f": {tokenizer_change(old['ids'], new['ids'], names)}"
    return [
        Difference(
            TOKENIZATION,
            f"{old.get('text')!r} tokenizes as {new.get(shown)} now, {old.get(shown)} recorded{words}",
            str(old.get("text")),
            old.get(shown),
            new.get(shown),
            layer=TOKENIZER,
            details={"old_ids": old.get("ids"), "new_ids": new.get("ids"), "names": names if words else {}},
        )
    ], keys


def _next_token(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    prompt = str(old.get("prompt", ""))[-50:]
    where = ""
    recorded = next((row for row in old.get("top", []) if row[0] == old.get("argmax")), None)
    now = next((i for i, row in enumerate(new.get("top", [])) if recorded and row[1] == recorded[1]), None)
    if recorded is not None and now is not None:
        where = f"; {old['argmax']!r} now has p={new['top'][now][2]} at rank {now + 1}"
    key = "argmax" if "argmax" in old else "argmax_id"  # a transcribed record may hold the id alone
    diffs = _flip_or_margin(TOP1, f"top-1 after {prompt!r}", key, old, new, tolerances, where)
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


def _flip_or_margin(
    kind: str, what: str, key: str, old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, extra: str = ""
) -> list[Difference]:
    """The recorded choice (``argmax``, ``best``) flipped, judged by the near-tie rule; else its margin moved."""
    old_margin, new_margin = old.get("margin"), new.get("margin")
    if key in old and old[key] != new.get(key):
        words = margin_words(old_margin, new_margin, tolerances.near_tie)
        return [
            Difference(
                kind,
                f"{what}: {old[key]!r} -> {new.get(key)!r} ({words}){extra}",
                key,
                old[key],
                new.get(key),
                old_margin=old_margin,
                new_margin=new_margin,
                near_tie=is_near_tie(old_margin, new_margin, tolerances.near_tie),
            )
        ]
    if old_margin is not None and new_margin is not None and abs(old_margin - new_margin) > tolerances.margin:
        return [moved(MARGIN, f"margin of the {what}", old_margin, new_margin, tolerances.margin)]
    return []


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


def kl_divergence(old_rows: list[list[Any]], new_rows: list[list[Any]]) -> float:
    """KL(old || new) over the union of both top lists, the rest of the mass pooled in one bucket."""
    old = {int(row[1]): float(row[2]) for row in old_rows}
    new = {int(row[1]): float(row[2]) for row in new_rows}
    tokens = set(old) | set(new)
    floor_old, floor_new = min(old.values(), default=0.0), min(new.values(), default=0.0)
    p: dict[Any, float] = {t: old.get(t, floor_old) for t in tokens}
    q: dict[Any, float] = {t: new.get(t, floor_new) for t in tokens}
    p["rest"], q["rest"] = max(1e-12, 1 - sum(p.values())), max(1e-12, 1 - sum(q.values()))
    return float(sum(pv * math.log(pv / max(q[t], 1e-12)) for t, pv in p.items() if pv > 0))


def _choice(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    diffs = _flip_or_margin(LABEL, f"choice after {str(old.get('prompt', ''))[-40:]!r}", "best", old, new, tolerances)
    want, got = old.get("scores"), new.get("scores")
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for option, a, b in zip(old.get("options", want), want, got):
            if abs(a - b) > tolerances.score:
                diffs.append(moved(SCORE, f"score of {option!r}", a, b, tolerances.score, str(option)))
    elif want is not None and want != got:
        diffs.append(Difference(FIELD, f"scores: {want!r} -> {got!r}", "scores", want, got))
    return diffs, {"best", "margin", "scores"}
