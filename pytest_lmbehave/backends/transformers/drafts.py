"""Verifying drafts instead of decoding: a row's ids from an earlier run, checked by teacher forcing.

A greedy generation is a fixed point: each token is the argmax after the tokens before it. One forward pass over
prompt + draft gives every step's distribution at once, so the longest prefix of the draft that the model itself
would choose is taken as it is, the model's own token is taken where it departs, and only from there is the row
decoded step by step. A sampled row replays its own generator over the teacher-forced steps (one uniform draw per
step, as decoding draws), so it draws what decoding draws. The result is what free decoding gives; a wrong or
stale draft only costs time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..protocol import Decoded
from ..sampling import Policy
from . import prefill
from .decoding import RowState, step_numbers

GROUP = 8  # rows per teacher-forced pass: bounds the logits kept (rows x draft length x vocabulary floats)
# Every padded position of a teacher-forced pass costs a whole position's compute: rows read together are within
# a quarter of each other's length (+ 8 tokens).
SPREAD, SLACK = 1.25, 8


class Decoder(Protocol):
    """What verifying needs of the in-process backend."""

    model: Any
    pad_id: int
    stop_ids: frozenset[int]

    def state(self, policy: Policy, begin: int) -> RowState: ...

    def decode_rows(self, rows: Sequence[Sequence[int]], steps: int, states: Sequence[RowState]) -> list[Decoded]: ...


class Walk:
    """One row's steps so far: what each step recorded, and whether the row has finished (a stop token)."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.margins: list[float] = []
        self.argmaxes: list[int] = []
        self.best: list[tuple[tuple[int, float], ...]] = []
        self.verified = 0
        self.finished = False

    def take(self, token: int, logprobs: Any, best: Any, argmax: int) -> None:
        values, ids = best.values[0].tolist(), best.indices[0].tolist()
        self.ids.append(token)
        self.logprobs.append(float(logprobs[0, token]))
        self.margins.append(float(values[0] - values[1]))
        self.argmaxes.append(argmax)
        self.best.append(tuple((int(i), float(v)) for v, i in zip(values, ids)))

    def then(self, more: Decoded) -> Decoded:
        return Decoded(
            ids=(*self.ids, *more.ids),
            logprobs=(*self.logprobs, *more.logprobs),
            margins=(*self.margins, *more.margins),
            argmax_ids=(*self.argmaxes, *more.argmax_ids),
            alternatives=(*self.best, *more.alternatives),
            verified=self.verified,
        )


def verify(
    backend: Decoder,
    rows: Sequence[Sequence[int]],
    steps: Sequence[int],
    policies: Sequence[Policy],
    drafts: Sequence[Sequence[int] | None],
) -> list[Decoded]:
    """Each row as free decoding would give it; a row's draft is checked first and decoded only past it."""
    states = [backend.state(p, len(r)) for p, r in zip(policies, rows)]
    walks = [Walk() for _ in rows]
    drafted = [i for i, draft in enumerate(drafts) if draft]
    read = {i: list(rows[i]) + list(drafts[i] or [])[: steps[i]] for i in drafted}
    for group in prefill.length_groups([read[i] for i in drafted], SPREAD, SLACK, GROUP):
        _walk_drafts(backend, rows, steps, states, walks, read, [drafted[g] for g in group])
    left = [i for i, walk in enumerate(walks) if not walk.finished and len(walk.ids) < steps[i]]
    results = [walk.then(Decoded((), (), (), ())) for walk in walks]
    if left:
        # Rows with no draft, and rows that left theirs, are decoded in one batch from where each one stands, each
        # with its own generator; a row decoded past its own steps is cut back to them.
        longest = max(steps[i] - len(walks[i].ids) for i in left)
        more = backend.decode_rows([list(rows[i]) + walks[i].ids for i in left], longest, [states[i] for i in left])
        for i, decoded in zip(left, more):
            results[i] = walks[i].then(decoded.cut(steps[i] - len(walks[i].ids)))
    return results


def _walk_drafts(
    backend: Decoder,
    rows: Sequence[Sequence[int]],
    steps: Sequence[int],
    states: Sequence[RowState],
    walks: list[Walk],
    read: dict[int, list[int]],
    members: list[int],
) -> None:
    """One teacher-forced pass over prompt + draft for these rows, then each row's walk along its draft."""
    import torch

    starts = [len(rows[i]) - 1 for i in members]
    logits = prefill.forced_logits(backend.model, [read[i] for i in members], starts, backend.pad_id)
    for i, scores in zip(members, logits):
        walk, sequence = walks[i], read[i]
        draft = sequence[len(rows[i]) :]
        for step in range(min(len(draft) + 1, steps[i])):
            seen = torch.tensor([sequence[: len(rows[i]) + step]], device=scores.device)
            row = states[i].process(seen, scores[step : step + 1])  # the model's own processors, as decoding
            logprobs, best, argmax = step_numbers(row)
            token = states[i].pick(seen, row, argmax[0])
            walk.take(token, logprobs, best, int(argmax[0]))
            agreed = step < len(draft) and token == draft[step]
            walk.verified += agreed
            walk.finished = token in backend.stop_ids
            if not agreed or walk.finished:
                break  # the model's own token (past the draft, or where it departs), or the end of the row
