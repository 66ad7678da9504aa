"""Root causes, written in one place: what a failing snapshot's differences come from (``root_cause``, read off the
recorded environments) and what two reports' changes come from (``root_causes``, for `lmbehave diff`): the weights
(the model's bytes moved while the tokenizer read the same ids), told apart from the tokenizer and from decoding;
and which recorded fields differ."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..config import environment
from ..observations import verdict
from ..observations.differences import MODEL, TOKENIZER, Difference
from .drift import Change


def weights_line(old: str, new: str, tokenizer: bool, moved: str) -> str:
    """The weights as a root cause (``moved``: what follows from it); ``tokenizer`` when the tokenizer changed too,
    which is a cause of its own."""
    same = "; the tokenizer changed too" if tokenizer else ", same tokenizer"
    return f"the weights changed (sha256 {old[:7]}… → {new[:7]}…{same}): {moved}"


# The fields of an environment that can move a model's numbers for the same ids, by group, the likeliest cause first.
# The engine's own group holds its dtype or quantization: another engine reads other numbers in its own types.
MOVES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the dtype", ("dtype",)),
    ("transformers", ("transformers",)),
    ("torch", ("torch",)),
    ("the kernels", ("cpu_capability", "blas", "aten_cpu_capability", "mkl_enable_instructions", "mkl_cbwr",
                     "onednn_max_cpu_isa", "batch")),
    ("the device", ("device",)),
    ("the attention", ("attention",)),
    ("the threads", ("threads",)),
)  # fmt: skip
UNMOVED = "nothing in the recorded environment moved: the same stack gave other numbers"


def _engine(env: Mapping[str, Any]) -> str:
    """An environment's engine in words: 'transformers float32', 'llama.cpp 0.3.36 Q4_1', 'vllm 0.32.0 float32'."""
    name = str(env.get("engine") or "transformers")
    version = "" if name == "transformers" else f" {env.get('engine_version', '')}".rstrip()
    return f"{name}{version} {env.get('dtype', '')}".rstrip()


def moved_line(old: Mapping[str, Any], new: Mapping[str, Any], count: int) -> str:
    """What moved between two environments that read the same ids and gave other numbers, the likeliest cause first
    (the engine and its numbers, the dtype, transformers, torch, the kernels, the device, ...), and what stayed; or
    that nothing recorded moved, itself a finding (the same stack, other numbers: nondeterminism)."""
    weights = "same weights" if environment.weights_moved(old, new) is None else "other weights"
    changes = f"{count} change(s)"
    if (old.get("engine") or "transformers", old.get("engine_version")) != (
        new.get("engine") or "transformers",
        new.get("engine_version"),
    ):
        return f"the engine and its numbers: {_engine(old)} → {_engine(new)} ({weights}, same ids): {changes}"
    moved, stayed = [], []
    for name, keys in MOVES:
        shared = [k for k in keys if k in old and k in new]  # a field one side does not record is not a move
        differing = [k for k in shared if str(old[k]) != str(new[k])]
        if differing:
            moves = ", ".join(f"{k} {old[k]} → {new[k]}" for k in differing)
            moved.append(f"{name} {old[keys[0]]} → {new[keys[0]]}" if differing == [keys[0]] else f"{name}: {moves}")
        elif shared and name == "the kernels":
            stayed.append("same kernels")
    if not moved:
        return f"{UNMOVED} ({weights}, same ids): {changes}"
    return f"{'; '.join(moved)} ({', '.join([weights, 'same ids', *stayed])}): {changes}"


def root_cause(recorded_envs: Sequence[str], now: str, diffs: Sequence[Difference] | None) -> Iterator[str]:
    """The root cause of a snapshot's differences: the weights, when the recording's weights hash is not this run's
    (a tokenizer change among them is named as a cause of its own); else, for numbers that moved under the same ids,
    what moved in the recorded environment (``moved_line``), where something did: a record edited by hand, or a run
    whose stack is the recording's, has no cause there to name."""
    for env in sorted(set(recorded_envs)) if diffs else []:
        recorded_env, now_env = environment.parse_line(env), environment.parse_line(now)
        moved = environment.weights_moved(recorded_env, now_env)
        numbers = sum(d.layer == MODEL for d in diffs or ())
        line = moved_line(recorded_env, now_env, numbers)
        if moved is None and numbers and not line.startswith(UNMOVED):  # a hand-edited record moves nothing recorded
            yield f"root cause: {line}"
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


def root_causes(
    changes: list[Change],
    weights: tuple[str, str] | None = None,
    environments: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> list[str]:
    """What the changes come from, leading with tokenizer changes (each with the changes that follow from it),
    then the model (the weights, when their hash moved: ``weights``; else what moved between the two
    ``environments``) and decoding: one line each."""
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
    elif moved and environments is not None:
        lines.append(moved_line(*environments, moved))
    elif moved:
        lines.append(f"the model (the same ids in, other numbers out): {moved} change(s)")
    decoding = sum(1 for c in changes if c.layer == verdict.DECODING and c.kind != "missing")
    if decoding:
        lines.append(f"decoding (the same numbers, other tokens chosen): {decoding} change(s)")
    return lines
