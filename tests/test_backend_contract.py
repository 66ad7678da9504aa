"""The contract every backend keeps, whatever computes behind it: the tests' tiny in-process model here, a real
served model in tests/test_served.py. Everything above the backend relies on exactly these promises."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_lmbehave.backends import Backend, Logprobs
from pytest_lmbehave.backends.sampling import Policy, Sampling
from pytest_lmbehave.config.errors import BackendUnavailable

# Two passes over the same ids in another shape (one row or a batch, one step at a time or teacher-forced) agree
# to float32 noise: measured ~1e-6 here; 1e-4 leaves room for other kernels and is far below any real change.
SAME = 1e-4


def known_ids(numbers: Logprobs) -> list[int]:
    values = numbers.values
    order = sorted(range(len(values)), key=lambda i: -float(values[i]))
    return order[: numbers.known] if numbers.known else order[:10]


def check_backend(backend: Backend, prompt: str) -> None:
    """Every promise of the protocol, on one prompt."""
    __tracebackhide__ = True
    ids = backend.tokenize(prompt)
    assert ids and all(isinstance(i, int) for i in ids)
    own = backend.tokenize(prompt, special=False)
    assert ids[len(ids) - len(own) :] == own  # anything the tokenizer adds comes first
    assert backend.detokenize(own) == prompt

    vocabulary = backend.vocabulary()
    assert vocabulary.size == backend.vocab_size
    for token in own:
        assert vocabulary.piece(token) == backend.detokenize([token])
    assert isinstance(backend.fingerprint().get("model_sha256", backend.fingerprint().get("model")), str)

    [after] = backend.next_logprobs([ids])
    assert after.values.shape == (backend.vocab_size,)
    assert not after.values.flags.writeable  # shared by every observation made of it
    if not after.known:
        assert math.fsum(math.exp(float(v)) for v in after.values) == pytest.approx(1.0, abs=1e-3)

    # Greedy decoding is the chain of argmaxes, and each step's numbers are the next-token question's.
    [greedy] = backend.generate([ids], 6, [Policy()])
    assert 1 <= len(greedy.ids) <= 6
    assert len(greedy.logprobs) == len(greedy.margins) == len(greedy.argmax_ids) == len(greedy.ids)
    assert greedy.argmax_ids == greedy.ids
    read = list(ids)
    for step, token in enumerate(greedy.ids):
        [numbers] = backend.next_logprobs([read])
        top = known_ids(numbers)
        assert token == top[0], f"step {step}: generated {token}, the next-token argmax is {top[0]}"
        assert greedy.logprobs[step] == pytest.approx(float(numbers.values[token]), abs=SAME)
        assert greedy.margins[step] == pytest.approx(float(numbers.values[top[0]] - numbers.values[top[1]]), abs=SAME)
        read.append(token)

    # Teacher forcing: the distribution before each continuation token, the same as asking step by step.
    [forced] = backend.forced_logprobs([(ids, greedy.ids)])
    assert len(forced) == len(greedy.ids)
    for step, (numbers, token) in enumerate(zip(forced, greedy.ids)):
        [alone] = backend.next_logprobs([list(ids) + list(greedy.ids[:step])])
        assert float(numbers.values[token]) == pytest.approx(float(alone.values[token]), abs=SAME)

    # A seeded row repeats itself, another seed draws otherwise, and no row depends on the rows beside it.
    hot = Sampling(temperature=1.5)
    first = backend.generate([ids], 8, [Policy(hot, 1)])[0].ids
    assert backend.generate([ids], 8, [Policy(hot, 1)])[0].ids == first
    others = {backend.generate([ids], 8, [Policy(hot, seed)])[0].ids for seed in (2, 3, 4)}
    assert others - {first}, "three other seeds all drew the first seed's tokens"
    crowd = backend.generate([own[:1], ids, ids], 8, [Policy(), Policy(hot, 1), Policy(hot, 2)])
    assert crowd[1].ids == first

    # Draws through the engine's own sampler: only what the settings keep, the same under the same seed, from the
    # numbers the next-token question reads.
    top3 = Policy(Sampling(top_k=3), 5)
    try:
        drawn = backend.draws(ids, top3, 300)
    except BackendUnavailable as error:
        assert "draws" in str(error)
    else:
        kept = set(known_ids(drawn.numbers)[:3])
        assert len(drawn.tokens) == 300 and set(drawn.tokens) <= kept and len(set(drawn.tokens)) > 1
        assert backend.draws(ids, top3, 300).tokens == drawn.tokens
        assert drawn.sampling == Sampling(top_k=3)  # no generation config here fills anything in
        top = known_ids(after)[0]
        assert float(drawn.numbers.values[top]) == pytest.approx(float(after.values[top]), abs=SAME)

    try:
        logits = backend.logits(ids)
    except BackendUnavailable as error:
        assert "logits" in str(error)
    else:
        assert tuple(logits.shape) == (1, len(ids), backend.vocab_size)


def test_the_tiny_in_process_backend_keeps_the_contract(tiny_backend: Any) -> None:
    check_backend(tiny_backend, "Shakespeare was a")


def test_the_contract_catches_a_backend_whose_greedy_is_not_the_argmax(tiny_backend: Any) -> None:
    class Shifted:
        """A backend that generates the runner-up instead of the argmax: the contract must say so."""

        def __getattr__(self, name: str) -> Any:
            return getattr(tiny_backend, name)

        def generate(self, rows: Sequence[Sequence[int]], steps: int, policies: Any, drafts: Any = None) -> Any:
            from dataclasses import replace

            found = tiny_backend.generate(rows, steps, policies, drafts)
            runner_up = [tuple(step[1][0] for step in d.alternatives) for d in found]  # a consistent lie
            return [replace(d, ids=ids, argmax_ids=ids) for d, ids in zip(found, runner_up)]

    with pytest.raises(AssertionError, match="argmax"):
        check_backend(Shifted(), "Shakespeare was a")  # type: ignore[arg-type]
