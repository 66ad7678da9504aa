"""Invariants of the numbers a model reads out: the forward pass, batches, greedy decoding and its stops."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ...config.errors import BackendUnavailable
from .reading import (
    PROMPTS,
    _fresh,
    _ids,
    _output_rows,
    _same_greedy,
    _stops,
    tolerance,
    whole,
)

if TYPE_CHECKING:
    from ..lm import LM


# -- the forward pass ---------------------------------------------------------------------------------------------
def logits_shape(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        ids = _ids(lm, prompt)
        shape = tuple(lm.logits(prompt).shape)
        assert shape == (1, len(ids), _output_rows(lm)), (
            f"logits of {prompt!r}: shape {shape}, expected (1, {len(ids)} tokens read, {_output_rows(lm)} output rows)"
        )


def logits_finite(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS:
        values = numpy.asarray(lm.logits(prompt).float())
        bad = int((~numpy.isfinite(values)).sum())
        assert bad == 0, f"logits of {prompt!r}: {bad} of {values.size} are not finite (NaN or inf)"


def softmax_sums_to_one(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS:
        dist = lm.next_token(prompt)
        rows = dist.vocab_size
        total = float(numpy.exp(whole(dist).values.astype(numpy.float64)).sum())
        # Each row's probability is exact to the dtype's rounding; n of them summed in any order stay within
        # (n - 1) * eps / 2 of 1 (Higham 4.2), and within the measured noise for a dtype whose noise is larger.
        bound = max((rows - 1) * float(numpy.finfo(numpy.float32).eps) / 2, 1 - math.exp(-lm.noise))
        assert abs(total - 1) <= bound, f"after {prompt!r} the probabilities sum to {total:.6f}, beyond 1 ± {bound:.2g}"


def next_token_is_log_softmax_of_logits(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS[:2]:
        last = numpy.asarray(lm.logits(prompt)[0, -1].double())
        expected = last - numpy.logaddexp.reduce(last)
        dist = lm.next_token(prompt)
        moved = float(numpy.abs(expected - dist.values.astype(numpy.float64))[dist.values > -30].max())
        assert moved <= tolerance(lm), (
            f"after {prompt!r} next_token's log-probabilities are {moved:.4g} nats from log_softmax of the logits' "
            f"last row (allowed {tolerance(lm):.2g}): the distribution is not the logits'"
        )


def argmax_is_next_token(lm: LM) -> None:
    for prompt in PROMPTS:
        row = lm.logits(prompt)[0, -1]
        dist = lm.next_token(prompt)
        top = int(row.argmax())
        assert top == dist.argmax_id or dist.logprob(dist.argmax_id) - dist.logprob(top) <= tolerance(lm), (
            f"after {prompt!r} the logits' last row picks {lm.decode(top)!r} ({top}), next_token "
            f"{dist.argmax!r} ({dist.argmax_id})"
        )
        first = lm.generate(prompt, max_new_tokens=3).ids[0]
        assert first == dist.argmax_id or dist.logprob(dist.argmax_id) - dist.logprob(first) <= tolerance(lm), (
            f"after {prompt!r} greedy generation starts with {lm.decode(first)!r} ({first}), not the argmax "
            f"{dist.argmax!r} ({dist.argmax_id})"
        )


def same_numbers_asked_again(lm: LM) -> None:
    import numpy

    first = [whole(lm.next_token(p)).values for p in PROMPTS]
    again = _fresh(lm)
    for prompt, before in zip(PROMPTS, first):
        now = again.next_token(prompt).values
        moved = float(numpy.abs(now.astype(numpy.float64) - before)[before > -30].max())
        assert moved <= tolerance(lm), f"after {prompt!r}, asked again: the numbers moved {moved:.4g} nats"


# -- batches ------------------------------------------------------------------------------------------------------
def batch_equals_alone_next_token(lm: LM) -> None:
    """The backend's own batch (the engine's padding, longer and shorter rows beside each other)."""
    import numpy

    backend = lm.runtime.backend
    rows = [_ids(lm, p) for p in PROMPTS]
    together = backend.next_logprobs(rows)
    for prompt, row, numbers in zip(PROMPTS, rows, together):
        alone = backend.next_logprobs([row])[0]
        if numbers.known or alone.known:
            raise BackendUnavailable("a batch of the server's top candidates cannot be compared row by row in full")
        a, b = numbers.values.astype(numpy.float64), alone.values.astype(numpy.float64)
        moved = float(numpy.abs(a - b)[b > -30].max())
        assert moved <= tolerance(lm), (
            f"after {prompt!r}: read in a batch of {len(rows)}, the numbers moved {moved:.4g} nats from the prompt "
            f"read alone (allowed {tolerance(lm):.2g}): the rows beside it, or their padding, leak in"
        )


def _greedy_rows(lm: LM, rows: list[list[int]], steps: int) -> list[tuple[int, ...]]:
    """The backend's own greedy generation of ``rows`` in one call (no memo, no plan: the engine's batching)."""
    from ...backends.sampling import Policy

    return [decoded.ids for decoded in lm.runtime.backend.generate(rows, steps, [Policy()] * len(rows))]


def batch_equals_alone_generation(lm: LM) -> None:
    rows = [_ids(lm, p) for p in PROMPTS[:3]]
    together = _greedy_rows(lm, rows, 8)
    for prompt, row, ids in zip(PROMPTS, rows, together):
        (alone,) = _greedy_rows(lm, [row], 8)
        _same_greedy(lm, row, alone, ids, f"{prompt!r} alone and in a batch of {len(rows)}")


def identical_rows_agree(lm: LM) -> None:
    row = _ids(lm, PROMPTS[0])
    first, *others = _greedy_rows(lm, [row] * 3, 8)
    for index, ids in enumerate(others, 1):
        _same_greedy(lm, row, first, ids, f"row 0 and row {index} of a batch of the same prompt")


# -- greedy decoding ----------------------------------------------------------------------------------------------
def greedy_is_a_chain_of_argmaxes(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        generation = lm.generate(prompt, max_new_tokens=20)
        for step, (dist, token) in enumerate(zip(lm.steps(generation), generation.ids)):
            behind = dist.logprob(dist.argmax_id) - dist.logprob(token)
            assert behind <= tolerance(lm), (
                f"after {prompt!r}, step {step}: {lm.decode(token)!r} is {behind:.4f} nats behind the argmax "
                f"{dist.argmax!r}, beyond the noise {tolerance(lm):.2g}"
            )


def shorter_greedy_is_a_prefix(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        long = _fresh(lm).generate(prompt, max_new_tokens=24)
        short = _fresh(lm).generate(prompt, max_new_tokens=6)
        _same_greedy(lm, short.prompt_ids, short.ids, long.ids[: len(short.ids)], f"{prompt!r} in 6 and in 24 tokens")


def kv_cache_equals_teacher_forcing(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        generation = _fresh(lm).generate(prompt, max_new_tokens=16)
        for step, (dist, token, logprob) in enumerate(zip(lm.steps(generation), generation.ids, generation.logprobs)):
            moved = abs(dist.logprob(token) - logprob)
            assert moved <= tolerance(lm) + 1e-3, (  # a generation keeps its log-probabilities to 3 decimals at most
                f"after {prompt!r}, step {step}: decoding read {lm.decode(token)!r} at {logprob:.5f}, one teacher-"
                f"forced pass at {dist.logprob(token):.5f}: the cache of earlier positions is not the text's"
            )


def sampled_generation_records_untempered_logprobs(lm: LM) -> None:
    hot = lm.with_sampling(temperature=3.0, top_k=50, seed=7)
    generation = hot.generate(PROMPTS[0], max_new_tokens=12)
    for step, (dist, token, logprob) in enumerate(zip(lm.steps(generation), generation.ids, generation.logprobs)):
        moved = abs(dist.logprob(token) - logprob)
        assert moved <= tolerance(lm) + 1e-3, (
            f"step {step}: a generation at T = 3 recorded {lm.decode(token)!r} at {logprob:.5f}, the untempered "
            f"model reads {dist.logprob(token):.5f}: it recorded the tempered number"
        )


def nothing_follows_a_stop_token(lm: LM) -> None:
    stops = _stops(lm)
    for prompt in PROMPTS[:2]:
        for generation in (
            lm.generate(prompt, max_new_tokens=16),
            lm.with_sampling(temperature=2.0, top_k=200, seed=3).generate(prompt, max_new_tokens=16),
        ):
            ended = next((i for i, token in enumerate(generation.ids) if token in stops), None)
            assert ended is None or ended == len(generation.ids) - 1, (
                f"after {prompt!r}: {len(generation.ids) - ended - 1} token(s) follow the stop token "
                f"{lm.decode(generation.ids[ended])!r} at step {ended}"
            )


def max_new_tokens_is_the_length(lm: LM) -> None:
    stops = _stops(lm)
    for prompt in PROMPTS:
        for n in (1, 7):
            generation = lm.generate(prompt, max_new_tokens=n)
            ended = bool(generation.ids) and generation.ids[-1] in stops
            assert len(generation.ids) == n or (ended and len(generation.ids) < n), (
                f"after {prompt!r}: max_new_tokens={n} gave {len(generation.ids)} token(s), not ending at a stop token"
            )
