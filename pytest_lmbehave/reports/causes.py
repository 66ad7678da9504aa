"""Root causes, written in one place: what a failing snapshot's differences come from (``root_cause``, read off the
recorded environments) and what two reports' changes come from (``root_causes``, for `lmbehave diff`): the weights
(the model's bytes moved while the tokenizer read the same ids), told apart from the tokenizer and from decoding;
and which recorded fields differ."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..config import environment
from ..observations import verdict
from ..observations.differences import TOKENIZER, Difference
from .drift import Change


def weights_line(old: str, new: str, tokenizer: bool, moved: str) -> str:
    """The weights as a root cause (``moved``: what follows from it); ``tokenizer`` when the tokenizer changed too,
    which is a cause of its own."""
    same = "; the tokenizer changed too" if tokenizer else ", same tokenizer"
    return f"the weights changed (sha256 {old[:7]}… → {new[:7]}…{same}): {moved}"


def root_cause(recorded_envs: Sequence[str], now: str, diffs: Sequence[Difference] | None) -> Iterator[str]:
    """The weights as the root cause of a snapshot's differences, when the recording's weights hash is not this
    run's (a tokenizer change among them is named as a cause of its own)."""
    for env in sorted(set(recorded_envs)) if diffs else []:
        moved = environment.weights_moved(environment.parse_line(env), environment.parse_line(now))
        if moved is not None:
            recorded, current = moved
            if all(d.layer == TOKENIZER for d in diffs or ()):  # the files moved, and only how text reads changed
                yield (
                    f"root cause: the tokenizer: the model's files changed (sha256 {recorded[:7]}… → {current[:7]}…) "
                    "and every difference is in how the text reaches the model (its tokenizer or chat template), a "
                    "cause of its own; whether the weights moved too is not seen: no number of the same ids was compared"
                )
                continue
            tokenizer = any(d.layer == TOKENIZER for d in diffs or ())
            follows = f"{sum(d.layer != TOKENIZER for d in diffs or ())} difference(s) follow from them"
            own = " (the [tokenizer] differences below are a cause of their own)" if tokenizer else ""
            yield f"root cause: {weights_line(recorded, current, tokenizer, follows)}{own}"


def environment_lines(recorded_envs: Sequence[str], now: str) -> Iterator[str]:
    """The recorded environments against this run's, field by field."""
    if not recorded_envs:
        yield "environment: the snapshot records none (transcribed by hand)"
        return
    for env in sorted(set(recorded_envs)):
        yield environment.describe_differences(environment.parse_line(env), environment.parse_line(now))


def recorded_envs(records: Sequence[dict[str, Any]]) -> list[str]:
    return [str(r["env"]) for r in records if r.get("env") is not None]


def root_causes(changes: list[Change], weights: tuple[str, str] | None = None) -> list[str]:
    """What the changes come from, leading with tokenizer changes (each with the changes that follow from it),
    then the model (the weights, when their hash moved: ``weights``) and decoding: one line each."""
    names: dict[int, str] = {}  # pieces of ids, from the tokenization changes, to name what was added
    for change in changes:
        if "difference" in change.details:
            names.update(change.details["difference"].details.get("names", {}))
    causes: dict[str, int] = {}
    tokenizer_tests: dict[str, str] = {}
    for change in changes:
        difference = change.details.get("difference")
        if difference is None or difference.layer != verdict.TOKENIZER:
            continue
        if difference.kind == verdict.TOKENIZATION:
            old, new = difference.details.get("old_ids") or [], difference.details.get("new_ids") or []
        else:
            old, new = difference.old or [], difference.new or []
        cause = verdict.tokenizer_change(old, new, names)
        causes[cause] = causes.get(cause, 0) + 1
        tokenizer_tests[change.test] = cause
    for change in changes:  # follow-ons in a test whose input changed follow from the same cause
        if change.kind == "follow-on" and change.test in tokenizer_tests:
            cause = tokenizer_tests[change.test]
            causes[cause] += int(change.details.get("count", 1))
    lines = [
        f"{cause}: {count} observation(s) follow from it"
        for cause, count in sorted(causes.items(), key=lambda kv: -kv[1])
    ]
    moved = sum(1 for c in changes if c.layer == verdict.MODEL and c.kind != "missing")
    if weights is not None and moved:
        observations = len({(c.test, c.index) for c in changes if c.layer == verdict.MODEL and c.kind != "missing"})
        lines.append(weights_line(*weights, bool(causes), f"{observations} observation(s) moved ({moved} change(s))"))
    elif moved:
        lines.append(f"the model (the same ids in, other numbers out): {moved} change(s)")
    decoding = sum(1 for c in changes if c.layer == verdict.DECODING and c.kind != "missing")
    if decoding:
        lines.append(f"decoding (the same numbers, other tokens chosen): {decoding} change(s)")
    return lines
