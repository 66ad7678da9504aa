"""Invariants: what every correct causal-LM stack does, whatever its weights (``pytest_lmbehave.invariants``, where
each statement's reason and the broken stack it catches are written). A failure here is a bug in the stack -- the
engine, the tokenizer, the sampler, the chat template or the batching -- on any model, the embedded one or yours."""

from __future__ import annotations

import pytest

from pytest_lmbehave import INVARIANTS, LM


@pytest.mark.invariant
@pytest.mark.parametrize("name", list(INVARIANTS))
def test_every_correct_stack_holds_the_invariant(lm: LM, name: str) -> None:
    INVARIANTS[name].check(lm)
