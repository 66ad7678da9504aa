"""Sampling: without temperature or top-p, with top_p=0.9, with temperature 0.2 and 14.0, and ten samples.

The document's sampled texts came from an unknown seed, so they are examples, not expectations: these specs
assert what holds for any model and any seed.

**What the document's runs applied.** It calls ``model.generate(..., do_sample=True, temperature=T, top_p=P)`` and
never passes ``top_k``. Neither the SmolLM2 checkpoints' ``generation_config.json`` nor the embedded model's sets
one, so ``generate`` falls back to the library default, ``top_k=50``, on both sides of the upgrade: transformers
4.57's ``GenerationConfig()`` holds ``top_k=50``; transformers 5's holds ``None`` and ``generate`` fills it from
``GenerationConfig._get_default_generation_params()``, again 50. ``temperature=None`` and ``top_p=None`` switch those
warpers off on both. So every sampled run of the document was top-50 sampling, which is why its temperature-14
text is still made of words; these specs sample the same way (``top_k=50``; the marker itself never adds one).
"""

from __future__ import annotations

import math

import pytest
from document import BOSTON_VISIT, SHAKESPEARE

from pytest_lmbehave import LM, Distribution, assert_sampled_from, sampled
from pytest_lmbehave.api.invariants import coincidence


def within_top(lm: LM, dist: Distribution, token: int, k: int) -> bool:
    """Among the top ``k`` candidates, or within the dtype's measured noise of the k-th: the sampler filtered on
    numbers read token by token, these were read by teacher forcing, and in bfloat16 the two differ by up to
    ``lm.noise`` (float32: about 1e-5), enough to reorder near-equal candidates around the boundary."""
    return dist.rank(token) <= k or dist.logprob(token) >= dist.top(k)[-1].logprob - lm.noise


@pytest.mark.invariant
@sampled(top_k=50)
def test_a_seeded_sample_reproduces(lm: LM) -> None:
    first = lm.generate(SHAKESPEARE, max_new_tokens=20)
    # Asked again of an engine that remembers nothing, as one batch: row 0 takes the same seed, row 1 another.
    again, other = LM(lm.runtime.fresh(), lm.sampling, lm.seed).generate([SHAKESPEARE] * 2, max_new_tokens=10)
    assert again.seed == first.seed != other.seed
    assert again.ids == first.ids[:10]  # the same draws, step by step: a shorter run is a prefix
    # and the seed matters, where draws had a choice: a model that puts its mass on one token draws it whatever the
    # seed (two seeds' draws coincide with a chance above 1e-3 only then; the embedded model's: below 1e-20)
    assert other.ids != first.ids[:10] or coincidence(lm.steps(first)[:10]) > 1e-3


@pytest.mark.invariant
@sampled(top_p=0.9, top_k=50)
def test_every_token_sampled_with_top_p_lies_inside_the_nucleus_at_its_step(lm: LM) -> None:
    generation = lm.generate(SHAKESPEARE, max_new_tokens=50)
    # Sampling really sampled: greedy decoding would pass the nucleus check below at every step (unless the model
    # leaves the nucleus one token at every step: p >= 0.9 each time).
    steps = lm.steps(generation)
    one_token = all(d.prob(d.argmax_id) >= 0.9 for d in steps)
    assert generation.greedy_agreement < 1 or one_token, "every sampled token is the argmax: this is greedy decoding"
    for step, (dist, token) in enumerate(zip(steps, generation.ids)):
        assert within_top(lm, dist, token, 50), f"step {step}: {lm.decode(token)!r} lies outside the top 50"
        # The nucleus: the most likely tokens until their mass reaches 0.9 (the token that crosses it included).
        # 1e-4 of slack: the sampler's own float32 cumulative sum over a few hundred tokens, and a CPU's rounding
        # of the probabilities (~1e-5, measured across AVX-512, AVX2 and SSE kernels), stay well inside it. In
        # bfloat16 the mass may move by as much as a probability moves within the measured noise.
        slack = max(1e-4, 1 - math.exp(-lm.noise))
        mass_before = float(dist.logprobs.double().exp()[dist.logprobs > dist.logprobs[token]].sum())
        assert mass_before < 0.9 + slack, f"step {step}: token {lm.decode(token)!r} lies outside the 0.9 nucleus"


def test_temperature_0_2_stays_close_to_greedy_while_14_is_far_more_diverse(lm: LM) -> None:
    cold = lm.with_sampling(temperature=0.2, top_k=50).generate(SHAKESPEARE, max_new_tokens=50)
    hot = lm.with_sampling(temperature=14.0, top_k=50).generate(SHAKESPEARE, max_new_tokens=50)
    # T = 14 is surprising but still word-like: every token it drew is among the untempered model's top 50.
    assert all(within_top(lm, dist, token, 50) for dist, token in zip(lm.steps(hot), hot.ids))
    # Measure 1: how often the sampled token is the untempered model's top candidate.
    assert cold.greedy_agreement >= 0.8 > 0.2 >= hot.greedy_agreement
    # Measure 2: the mean log-probability of the sampled tokens under the untempered model (nats). Measured with
    # top-50: -0.94 vs -5.83 on transformers 5, -1.07 vs -5.42 on 4.57 (4.9 and 4.35 nats apart); 3 holds on both.
    assert cold.mean_logprob > hot.mean_logprob + 3
    # Measure 3: the first token's spread, over 200 draws through the engine's sampler (one seeded text's distinct
    # tokens told it once, and under AVX-512 kernels without bfloat16 a cold text held 44 distinct tokens to a hot
    # one's 43). Measured: T = 14 drew 50 and 49 of the 50 tokens top-k allows, T = 0.2 drew 1 or 2 on transformers 5
    # and 7 on 4.57 (its BOS leaves the first two candidates 0.07 nats apart).
    spread = {
        t: len(set(lm.with_sampling(temperature=t, top_k=50).draws(SHAKESPEARE, n=200).tokens)) for t in (0.2, 14)
    }
    assert spread[14] >= 40 and spread[14] >= 4 * spread[0.2], f"distinct first tokens in 200 draws: {spread}"


@sampled(top_k=50)
def test_ten_samples_of_the_boston_prompt_are_nearly_all_different(lm: LM) -> None:
    samples = lm.generate([BOSTON_VISIT] * 10, max_new_tokens=20)
    # Measured: all 10 differ, on transformers 5 and on 4.57 (their first three tokens: 9 and 10 ways). 8 of 10
    # allows two coincidences; identical rows (one seed reused for every row) would give 1.
    assert len({s.ids for s in samples}) >= 8
    assert all(s.prompt == BOSTON_VISIT for s in samples)


LATER = SHAKESPEARE + " great"
TOP_50, TOP_P, COLD, HOT = (
    {"top_k": 50},
    {"top_p": 0.9, "top_k": 50},
    {"temperature": 0.2, "top_k": 50},
    {"temperature": 14.0, "top_k": 50},
)


# The document's runs, as distributions: 2,000 draws (1,000 on a server, where each is a decode of its own) of the token
# after "Shakespeare was a", through the engine's own sampler, held by our own computation from the same pass's
# log-probabilities to what the settings make of them (assert_sampled_from; each known wrong sampler is rejected with
# power 1.00 at T = 1, docs/explanation/statistics.md). One step later (after its greedy " great", where the document reads " writer"), the
# two settings that cut the distribution somewhere new: the nucleus and the cold tail. llama.cpp's server takes one
# request per draw: its specs took 221 s before this session's draws, 390 s with all four settings one step later and
# 384 s with these two (the rest of the growth is elsewhere, not yet found).
# α is the least at which the four known wrong samplers are still rejected in every one of 200 simulated runs at both
# steps: 0.001 at 2,000 draws, 0.01 at a server's 1,000 (at 0.001 the nucleus without its boundary token is rejected
# in 1 of 200 there). A rejection is confirmed on twice the draws (a second batch, under the handle's next seed)
# before it is a failure: it stands only if the pooled draws are rejected too, so a right sampler's false alarms stay
# under α (simulated at α = 0.01: 30-41 of 4,000 first batches rejected, 4-8 confirmed) and a wrong one, rejected
# in every run, is rejected again. More verdicts per engine and dtype made one false alarm likely at α = 0.01:
# llama.cpp's top-p draws one step later were rejected at p = 0.00099 under one seed, where 48 others passed.
@pytest.mark.invariant
@pytest.mark.parametrize(
    ("settings", "prompt"),
    [
        (TOP_50, SHAKESPEARE),
        (TOP_P, SHAKESPEARE),
        (COLD, SHAKESPEARE),
        (HOT, SHAKESPEARE),
        (TOP_P, LATER),
        (COLD, LATER),
    ],
    ids=[
        "top-50",
        "top-p-0.9",
        "temperature-0.2",
        "temperature-14",
        "top-p-0.9-one-step-later",
        "temperature-0.2-one-step-later",
    ],
)
def test_the_next_token_is_drawn_from_the_distribution_the_settings_make(
    lm: LM, settings: dict[str, float], prompt: str
) -> None:
    sampler = lm.with_sampling(**settings)  # type: ignore[arg-type]
    draws = sampler.draws(prompt)
    alpha = 0.001 if len(draws.tokens) >= 2000 else 0.01
    if draws.failure(alpha) is not None:
        draws = draws + sampler.draws(prompt)
    assert_sampled_from(draws, alpha=alpha)


# The document's words as pass rates: T = 0.2 "stays close to greedy", T = 14 leaves the greedy token behind. lm.rate
# draws in looks of 50, 100, 200, ... and stops once the decision is clear (pass, fail, or inconclusive when 2,000
# draws cannot tell; α = 0.01 over all looks).
# Cooling is held to the model's own untempered probability of its greedy token, not to a fixed share: a model whose
# first two candidates nearly tie splits a cold sampler's draws between them (transformers 4.57 prepends a BOS, and
# the embedded model's first two then lie 0.07 nats apart: about 50 % each at T = 0.2, against 5 % untempered).
# Heating is held to the sampled-text spec's bound above. Measured on transformers 5: 100 % (bound 25 %) and 0 %
# after 50 draws each.
@pytest.mark.invariant
def test_at_t_0_2_the_greedy_first_token_is_drawn_more_often_than_its_untempered_probability(lm: LM) -> None:
    dist = lm.next_token(SHAKESPEARE)
    rate = lm.with_sampling(temperature=0.2, top_k=50).rate(SHAKESPEARE, lambda text: text == dist.argmax)
    # A bound of 1 cannot be shown by any number of draws: a model sure of its argmax (p > 0.99) is held to 0.99.
    assert rate >= min(dist.prob(dist.argmax_id), 0.99)


def test_at_t_14_the_greedy_first_token_is_drawn_at_most_20_percent_of_the_time(lm: LM) -> None:
    greedy = lm.next_token(SHAKESPEARE).argmax
    rate = lm.with_sampling(temperature=14.0, top_k=50).rate(SHAKESPEARE, lambda text: text == greedy)
    assert rate <= 0.2
