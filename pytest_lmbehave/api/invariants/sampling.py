"""Invariants of the sampler: seeds, the distribution drawn from, top-k, top-p and temperature."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .reading import (
    PROMPTS,
    _spread,
    tolerance,
    whole,
)

if TYPE_CHECKING:
    from ...observations.next_token import Distribution
    from ..lm import LM


# -- sampling -----------------------------------------------------------------------------------------------------
def seeded_sample_reproduces(lm: LM) -> None:
    from ..lm import LM as Handle

    sampler = lm.with_sampling(temperature=1.0, top_k=50, seed=11)
    first = sampler.generate(PROMPTS[0], max_new_tokens=12)
    again = Handle(lm.runtime.fresh(), sampler.sampling, sampler.seed).generate(PROMPTS[0], max_new_tokens=12)
    assert again.ids == first.ids, f"the same seed drew {first.ids} and then {again.ids}"


def the_seed_matters(lm: LM) -> None:
    prompt = _spread(lm)
    one = lm.with_sampling(top_k=50, seed=1).draws(prompt, n=200).tokens
    two = lm.with_sampling(top_k=50, seed=2).draws(prompt, n=200).tokens
    assert one != two, f"after {prompt!r}, 200 draws under seed 1 and under seed 2 are the same: the seed is not used"


def draws_follow_the_distribution(lm: LM) -> None:
    sampler = lm.with_sampling(top_k=50, seed=5)
    draws = sampler.draws(PROMPTS[0])
    alpha = 0.001 if len(draws.tokens) >= 2000 else 0.01
    if draws.failure(alpha) is not None:  # confirmed on twice the draws before it is a failure
        draws = draws + sampler.draws(PROMPTS[0])
    failure = draws.failure(alpha)
    assert failure is None, "\n".join(failure or [])


def _sampled_steps(lm: LM, **settings: float) -> Iterator[tuple[int, Distribution, int]]:
    for prompt in PROMPTS[:1]:
        generation = lm.with_sampling(seed=13, **settings).generate(prompt, max_new_tokens=16)  # type: ignore[arg-type]
        yield from ((step, dist, token) for step, (dist, token) in enumerate(zip(lm.steps(generation), generation.ids)))


def top_k_holds(lm: LM) -> None:
    k = 5
    for step, dist, token in _sampled_steps(lm, top_k=k):
        kth = dist.top(k)[-1].logprob
        assert dist.rank(token) <= k or dist.logprob(token) >= kth - tolerance(lm), (
            f"step {step}: top_k={k} drew {lm.decode(token)!r}, ranked {dist.rank(token)}"
        )


def nucleus_holds(lm: LM) -> None:
    p = 0.2
    for step, dist, token in _sampled_steps(lm, top_p=p, top_k=1000):
        probabilities = whole(dist).values.astype("float64")
        before = float(math.fsum(math.exp(v) for v in probabilities[probabilities > dist.logprob(token)]))
        slack = max(1e-4, 1 - math.exp(-lm.noise))
        assert before < p + slack, (
            f"step {step}: top_p={p} drew {lm.decode(token)!r}, with {before:.3f} of the mass above it"
        )


def cold_draws_the_argmax(lm: LM) -> None:
    for prompt in PROMPTS:
        dist = lm.next_token(prompt)
        if dist.margin >= 0.25:  # at T = 0.01 the runner-up is then drawn with p < e**-25 a draw
            tokens = set(lm.with_sampling(temperature=0.01, top_k=50, seed=17).draws(prompt, n=500).tokens)
            assert tokens == {dist.argmax_id}, (
                f"after {prompt!r} at T = 0.01, 500 draws gave {sorted(lm.decode(t) for t in tokens)}, not only "
                f"the argmax {dist.argmax!r} (margin {dist.margin:.2f} nats)"
            )
            return
    pytest.skip("no prompt's argmax leads by 0.25 nats here: at T -> 0 a near tie may go either way")


def cooling_favours_the_argmax(lm: LM) -> None:
    prompt = _spread(lm)
    dist = lm.next_token(prompt)
    argmax = dist.argmax
    # Held to its untempered probability among the same 50 candidates: top-k alone already raises the argmax's share.
    untempered = dist.prob(dist.argmax_id) / sum(c.prob for c in dist.top(50))
    rate = lm.with_sampling(temperature=0.5, top_k=50, seed=19).rate(prompt, lambda text: text == argmax)
    assert rate >= min(untempered, 0.99)
