"""Using model.generate: greedy generation and the generate_text helpers."""

from __future__ import annotations

import pytest
from document import SHAKESPEARE

from pytest_lmbehave import LM


def test_greedy_generation_of_50_tokens(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(SHAKESPEARE, max_new_tokens=50) == lm_snapshot


def test_the_generate_text_helper_gives_20_new_tokens(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(SHAKESPEARE, max_new_tokens=20) == lm_snapshot


@pytest.mark.invariant
def test_greedy_generation_is_the_chain_of_argmaxes(lm: LM) -> None:
    generation = lm.generate(SHAKESPEARE, max_new_tokens=50)
    # Read again in one teacher-forced pass, each token is the argmax at its step, or within the dtype's measured
    # noise of it: a near tie that another reading path can flip (bfloat16: 0.25 nats; float32: about 1e-5).
    for step, (dist, token) in enumerate(zip(lm.steps(generation), generation.ids)):
        behind = dist.logprob(dist.argmax_id) - dist.logprob(token)
        assert behind <= lm.noise, (
            f"step {step}: {lm.decode(token)!r} is {behind:.4f} nats behind the argmax "
            f"{lm.decode(dist.argmax_id)!r}, beyond the measured noise {lm.noise}"
        )


@pytest.mark.invariant
def test_a_shorter_greedy_run_is_a_prefix_of_a_longer_one(lm: LM) -> None:
    long = lm.generate(SHAKESPEARE, max_new_tokens=50)
    short = LM(lm.runtime.fresh()).generate(SHAKESPEARE, max_new_tokens=20)  # computed afresh, not sliced from long

    assert long.ids[:20] == short.ids
    assert long.text.startswith(short.text) and long.full_text.endswith(SHAKESPEARE + long.text)
