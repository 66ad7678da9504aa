"""What a failing snapshot's differences come from, read off the environments: the weights (the model's bytes
moved while the tokenizer read the same ids), told apart from the tokenizer; and which recorded fields differ."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..config import environment
from .differences import TOKENIZER, Difference


def weights_line(old: str, new: str, tokenizer: bool, moved: str) -> str:
    """The weights as a root cause (``moved``: what follows from it); ``tokenizer`` when the tokenizer changed too,
    which is a cause of its own."""
    same = "; the tokenizer changed too" if tokenizer else ", same tokenizer"
    return f"the weights changed (sha256 {old[:7]}… → {new[:7]}…{same}): {moved}"


def root_cause(recorded_envs: Sequence[str], now: str, diffs: Sequence[Difference] | None) -> Iterator[str]:
    """The weights as the root cause of a snapshot's differences, when the recording's weights hash is not this
    run's (a tokenizer change among them is named as a cause of its own)."""
    current = environment.parse_line(now).get("model_sha256", "unknown")
    for env in sorted(set(recorded_envs)) if diffs else []:
        recorded = environment.parse_line(env).get("model_sha256", "unknown")
        if "unknown" not in (recorded, current) and recorded != current:
            if all(d.layer == TOKENIZER for d in diffs or ()):  # the files moved, and only how text reads changed
                yield (
                    f"root cause: the tokenizer: the model's files changed (sha256 {recorded[:7]}… → {current[:7]}…) "
                    "and every difference is in how the text reaches the model (its tokenizer or chat template), a "
                    "cause of its own; whether the weights moved too is not seen: no number of the same ids was compared"
                )
                continue
            tokenizer = any(d.layer == TOKENIZER for d in diffs or ())
            moved = f"{sum(d.layer != TOKENIZER for d in diffs or ())} difference(s) follow from them"
            own = " (the [tokenizer] differences below are a cause of their own)" if tokenizer else ""
            yield f"root cause: {weights_line(recorded, current, tokenizer, moved)}{own}"


def environment_lines(recorded_envs: Sequence[str], now: str) -> Iterator[str]:
    """The recorded environments against this run's, field by field."""
    if not recorded_envs:
        yield "environment: the snapshot records none (transcribed by hand)"
        return
    for env in sorted(set(recorded_envs)):
        yield environment.describe_differences(environment.parse_line(env), environment.parse_line(now))


def recorded_envs(records: Sequence[dict[str, Any]]) -> list[str]:
    return [str(r["env"]) for r in records if r.get("env") is not None]
