"""The one comparison of two observation records: what differs, by how much, and whether it is a near-tie.

The snapshot extension and `lmbehave diff` both call `compare`; each only decides what a difference means for
it (a snapshot fails on any difference that is not a near-tie; drift turns kinds into severities) and formats it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import defaults

# Kinds of difference. Discrete ones change a token, a label or a tokenization; numeric ones move a number.
TOKENIZATION = "tokenization"
TOP1 = "top-1 flip"
GENERATION = "generation"
SAMPLED = "sampled path"
LABEL = "label"
QUESTION = "different question"
INPUT = "input changed"
FIELD = "field"
PROBABILITY = "probability"
ENTRANT = "top-k entrant"
LEFT = "left the top-k"
DISTRIBUTION = "distribution"
SCORE = "score"
MARGIN = "margin"

# The layer a difference comes from: the tokenizer (the ids of the same text changed), the model (the same ids in,
# other numbers out), decoding (the same distributions, other tokens chosen), or a follow-on of an earlier change.
TOKENIZER, MODEL, DECODING, FOLLOW_ON = "tokenizer", "model", "decoding", "follow-on"

METADATA = frozenset({"env"})  # recorded to explain a failure, never compared


@dataclass(frozen=True)
class Tolerances:
    """How far numbers may move before they count as a difference; ``kl`` None leaves KL unchecked."""

    prob: float = defaults.TOLERANCE
    score: float = defaults.TOLERANCE
    margin: float = defaults.TOLERANCE
    near_tie: float = defaults.NEAR_TIE
    kl: float | None = None


@dataclass(frozen=True)
class StepCheck:
    """One step of a recorded continuation scored under today's model (teacher forcing)."""

    token: int  # the recorded token
    argmax: int  # today's top candidate after the recorded prefix
    logprob: float  # today's log-probability of the recorded token
    rank: int  # today's rank of the recorded token (1 = argmax)
    behind: float  # nats by which the recorded token trails today's top candidate (0 when it is the top)


# teacher(prompt text, recorded ids) -> one StepCheck per recorded token
Teacher = Callable[[str, Sequence[int]], Sequence[StepCheck]]


@dataclass(frozen=True)
class Difference:
    kind: str
    text: str  # one line, then optional indented detail lines
    key: str = ""
    old: Any = None
    new: Any = None
    size: float | None = None  # how far a number moved (nats or probability); None for discrete changes
    step: int | None = None
    old_margin: float | None = None
    new_margin: float | None = None
    near_tie: bool = False
    layer: str = MODEL
    details: dict[str, Any] = field(default_factory=dict, compare=False)


def is_near_tie(old_margin: float | None, new_margin: float | None, threshold: float) -> bool:
    """The near-tie rule, written once: a flip is numerical noise only when the recorded margin *and* the new
    margin are both below ``threshold`` nats. A flip of anything recorded with a clear margin is a real change,
    whatever the new margin; a flip with a margin unknown on either side is a real change too."""
    return old_margin is not None and new_margin is not None and old_margin < threshold and new_margin < threshold


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The index where two sequences (ids, or characters) first differ; the shorter length if one extends the other."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def margin_words(old: float | None, new: float | None, threshold: float) -> str:
    """Both margins and what they make of a flip, in the words every front end uses."""
    shown = f"margin {_nats(old)} recorded, {_nats(new)} now"
    if is_near_tie(old, new, threshold):
        return f"NEAR-TIE: {shown}, both < {threshold}: numerical noise, not a change of behaviour"
    if old is None:
        return f"{shown}: no recorded margin, so a real change"
    if old >= threshold:
        return f"{shown}: recorded with a clear margin, a real change of behaviour"
    return f"{shown}: the new margin is clear, a real change of behaviour"


def _nats(value: float | None) -> str:
    return "?" if value is None else f"{value:.4f}"


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
        "generation": _generation,
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


Compared = tuple[list[Difference], set[str]]


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
        return [_moved(MARGIN, f"margin of the {what}", old_margin, new_margin, tolerances.margin)]
    return []


def _moved(kind: str, what: str, old: float, new: float, tolerance: float, key: str = "") -> Difference:
    return Difference(
        kind, f"{what}: {old} -> {new} (tolerance {tolerance})", key or what, old, new, size=abs(new - old)
    )


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
                diffs.append(_moved(PROBABILITY, f"probability of {piece!r} ({token})", prob, now, tolerances.prob))
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


def _generation(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Teacher | None) -> Compared:
    keys = {"text", "ids", "margins"}
    prompt = str(old.get("prompt", new.get("prompt", "")))
    if "ids" not in old:  # transcribed: a text only, located by characters
        if "text" not in old or old["text"] == new.get("text"):
            return [], keys
        char = first_difference(old["text"], new.get("text", ""))
        return [
            Difference(
                GENERATION,
                f"generation after {prompt[-40:]!r}: texts part at character {char}\n"
                f"      recorded: {old['text']!r}\n      now:      {new.get('text')!r}",
                prompt[-40:],
                old["text"],
                new.get("text"),
                step=char,
            )
        ], keys
    old_ids, new_ids = list(old["ids"]), list(new.get("ids") or [])
    old_margins, new_margins = list(old.get("margins") or []), list(new.get("margins") or [])
    if old_ids == new_ids:
        if old.get("text", new.get("text")) != new.get("text"):
            return [Difference(FIELD, f"text: {old['text']!r} -> {new.get('text')!r} (same ids)", "text")], keys
        return _step_margins(prompt, old_margins, new_margins, tolerances), keys
    step = first_difference(old_ids, new_ids)
    old_margin = old_margins[step] if step < len(old_margins) else None
    new_margin = new_margins[step] if step < len(new_margins) else None
    sampled = old.get("sampling", "greedy") != "greedy"
    where = f"first diverging token {step}: recorded {old_ids[step : step + 1]} vs now {new_ids[step : step + 1]}"
    texts = f"\n      recorded: {old.get('text')!r}\n      now:      {new.get('text')!r}"
    allowed = tolerances.margin + defaults.MARGIN_ROUNDING
    same_numbers = len(old_margins) > step < len(new_margins) and all(
        abs(a - b) <= allowed for a, b in zip(old_margins[: step + 1], new_margins[: step + 1])
    )
    if sampled:
        # The same seed drew another token. With the same numbers up to that step the sampler chose differently
        # (decoding); otherwise the probabilities moved across the draw's threshold (the model).
        layer, why = (
            (DECODING, "the same margins up to there: the sampler drew differently")
            if same_numbers
            else (
                MODEL,
                "the model's numbers moved before the draw",
            )
        )
        return [
            Difference(
                SAMPLED,
                f"sampled generation after {prompt[-40:]!r} ({old.get('sampling')}, seed {old.get('seed')}): "
                f"{where} ({why}){texts}",
                prompt[-40:],
                old_ids,
                new_ids,
                step=step,
                layer=layer,
            )
        ], keys
    near_tie = is_near_tie(old_margin, new_margin, tolerances.near_tie)
    words = margin_words(old_margin, new_margin, tolerances.near_tie)
    localised, rest_follows, layer = "", None, MODEL
    if teacher is not None and step < len(old_ids):
        localised, rest_follows, still_top = _localise(prompt, old_ids, old_margins, step, teacher, tolerances.near_tie)
        near_tie = near_tie and bool(rest_follows)
        if still_top:  # today's model still puts the recorded token first: decoding chose another one
            layer, near_tie = DECODING, False
            localised += (
                "\n      the recorded token is still today's top candidate there: decoding changed, not the model"
            )
    elif step < len(old_ids) and near_tie:
        localised = "\n      (the rest of the recorded continuation was not checked: no model at hand)"
    return [
        Difference(
            GENERATION,
            f"generation after {prompt[-40:]!r}: {where} ({words}){localised}{texts}",
            prompt[-40:],
            old_ids,
            new_ids,
            step=step,
            old_margin=old_margin,
            new_margin=new_margin,
            near_tie=near_tie,
            layer=layer,
            details={"rest_follows": rest_follows},
        )
    ], keys


def _step_margins(prompt: str, old: list[float], new: list[float], tolerances: Tolerances) -> list[Difference]:
    """Per-step margins of an unchanged generation; both sides are rounded to 3 decimals, which is allowed for."""
    allowed = tolerances.margin + defaults.MARGIN_ROUNDING
    moved = [(abs(b - a), i, a, b) for i, (a, b) in enumerate(zip(old, new)) if abs(b - a) > allowed]
    if not moved:
        return []
    size, step, a, b = max(moved)
    return [
        Difference(
            MARGIN,
            f"margin of step {step} after {prompt[-40:]!r}: {a} -> {b} (tolerance {allowed}, "
            f"{len(moved)} step(s) moved)",
            prompt[-40:],
            a,
            b,
            size=size,
            step=step,
        )
    ]


def _localise(
    prompt: str, ids: list[int], margins: list[float], step: int, teacher: Teacher, threshold: float
) -> tuple[str, bool, bool]:
    """Score the recorded continuation under today's model (one forward pass): the diverging step's numbers,
    whether every later recorded token is still today's argmax or a near-tie, and whether the recorded token is
    still today's argmax at the diverging step."""
    checks = list(teacher(prompt, ids))
    if len(checks) <= step:
        return "\n      (the recorded continuation could not be scored under today's model)", False, False
    at = checks[step]
    later = []
    for j in range(step + 1, min(len(ids), len(checks))):
        check = checks[j]
        recorded_margin = margins[j] if j < len(margins) else None
        if check.token != check.argmax and not is_near_tie(recorded_margin, check.behind, threshold):
            later.append(j)
    line = (
        f"\n      teacher-forced: at step {step} the recorded token {ids[step]} now has "
        f"p={math.exp(at.logprob):.4f} at rank {at.rank}, {at.behind:.4f} nats behind today's top candidate"
    )
    if later:
        shown = ", ".join(map(str, later[:8])) + (" ..." if len(later) > 8 else "")
        return line + f"; the rest of the recorded continuation also changes at steps {shown}", False, at.rank == 1
    return line + "; only this step changed: the rest of the recorded continuation still follows", True, at.rank == 1


def _choice(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    diffs = _flip_or_margin(LABEL, f"choice after {str(old.get('prompt', ''))[-40:]!r}", "best", old, new, tolerances)
    want, got = old.get("scores"), new.get("scores")
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for option, a, b in zip(old.get("options", want), want, got):
            if abs(a - b) > tolerances.score:
                diffs.append(_moved(SCORE, f"score of {option!r}", a, b, tolerances.score, str(option)))
    elif want is not None and want != got:
        diffs.append(Difference(FIELD, f"scores: {want!r} -> {got!r}", "scores", want, got))
    return diffs, {"best", "margin", "scores"}


def largest_move(old: Any, new: Any, path: str = "") -> tuple[float, str]:
    """The largest change of any number between two records of the same shape, and where: the noise floor
    between two runs that computed the same things. A generation's per-step margins are left out: they are
    recorded to 3 decimals, so one rounding step (0.001) would hide the noise being measured."""
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
        keys = [k for k in old if k in new and not (k == "margins" and old.get("kind") == "generation")]
        pairs = [(largest_move(old[k], new[k], f"{path}.{k}" if path else str(k)), k) for k in keys]
        return max((p for p, _ in pairs), default=(0.0, path))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return max((largest_move(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(old, new))), default=(0.0, path))
    return 0.0, path
