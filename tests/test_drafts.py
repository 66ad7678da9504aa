"""Drafts are verified by teacher forcing, never trusted: a row's ids from an earlier run give what free decoding
gives, whether the draft is right, wrong, too short or too long, greedy or sampled; only the time differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_lmbehave.backends import Decoded
from pytest_lmbehave.backends.sampling import Policy, Sampling

# Teacher-forced and step-by-step passes read the same ids in another shape: their float32 numbers agree to
# ~1e-6 (measured); 2e-4 is the determinism tolerance every mode is held to (tests/test_determinism.py).
FLOATS = 2e-4

PROMPTS = ["Shakespeare was a", "hello hello world, the model", "Review: good game. Decision:", "The best places"]
POLICIES = [
    Policy(),
    Policy(Sampling(temperature=1.5), 11),
    Policy(Sampling(top_p=0.8, top_k=40), 12),
    Policy(Sampling(temperature=0.7), 13),
]


def assert_same(verified: Sequence[Decoded], free: Sequence[Decoded]) -> None:
    __tracebackhide__ = True
    for checked, decoded in zip(verified, free):
        assert checked.ids == decoded.ids
        assert checked.argmax_ids == decoded.argmax_ids
        assert checked.logprobs == pytest.approx(decoded.logprobs, abs=FLOATS)
        assert checked.margins == pytest.approx(decoded.margins, abs=FLOATS)


@pytest.fixture
def rows_and_free(tiny_backend: Any) -> tuple[list[list[int]], list[Decoded]]:
    rows = [tiny_backend.tokenize(p) for p in PROMPTS]
    return rows, tiny_backend.generate(rows, 12, POLICIES)


def test_a_right_draft_is_verified_whole_and_gives_what_free_decoding_gives(tiny_backend: Any, rows_and_free) -> None:  # type: ignore[no-untyped-def]
    rows, free = rows_and_free
    verified = tiny_backend.generate(rows, 12, POLICIES, [d.ids for d in free])
    assert_same(verified, free)
    assert [v.verified for v in verified] == [len(d.ids) for d in free]  # not one token decoded


@pytest.mark.parametrize("step", [0, 3, 11])
def test_a_wrong_draft_is_taken_up_to_where_the_model_departs_and_decoded_from_there(
    tiny_backend: Any, rows_and_free, step: int
) -> None:  # type: ignore[no-untyped-def]
    rows, free = rows_and_free
    wrong = [(*d.ids[:step], (d.ids[step] + 1) % tiny_backend.vocab_size, *d.ids[step + 1 :]) for d in free]
    verified = tiny_backend.generate(rows, 12, POLICIES, wrong)
    assert_same(verified, free)
    assert [v.verified for v in verified] == [step] * len(rows)


def test_a_short_draft_a_long_one_and_no_draft_give_what_free_decoding_gives(tiny_backend: Any, rows_and_free) -> None:  # type: ignore[no-untyped-def]
    rows, free = rows_and_free
    longer = tiny_backend.generate(rows, 20, POLICIES)
    drafts = [free[0].ids[:5], longer[1].ids, None, ()]
    verified = tiny_backend.generate(rows, 12, POLICIES, drafts)
    assert_same(verified, free)
    assert [v.verified for v in verified] == [5, 12, 0, 0]


def test_a_draft_that_ends_at_the_stop_token_ends_the_row_there(tiny_backend: Any) -> None:
    rows = [tiny_backend.tokenize(p) for p in PROMPTS]
    stop = next(iter(tiny_backend.stop_ids))
    policy = Policy(Sampling(temperature=3.0), 0)
    # Find a seeded row that stops before its limit (the tiny model's vocabulary is small), then verify it.
    for seed in range(200):
        policies = [Policy(policy.sampling, seed)] * len(rows)
        free = tiny_backend.generate(rows, 30, policies)
        finished = [i for i, d in enumerate(free) if d.ids and d.ids[-1] == stop and len(d.ids) < 30]
        if finished:
            break
    else:
        pytest.fail("no sampled row reached the stop token in 200 seeds")
    verified = tiny_backend.generate(rows, 30, policies, [d.ids for d in free])
    assert_same(verified, free)
    assert verified[finished[0]].ids[-1] == stop and verified[finished[0]].verified == len(free[finished[0]].ids)


def test_a_planned_run_with_drafts_answers_as_a_run_without_them(tiny_runtime: Any) -> None:
    from pytest_lmbehave import LM
    from pytest_lmbehave.runtime import plan

    recorded: list[plan.Ask] = []
    LM(tiny_runtime.fresh(), seed=0, asks=recorded).generate(PROMPTS, 10)
    sampled = LM(tiny_runtime.fresh(), Sampling(temperature=1.5), seed=0, asks=recorded).generate(PROMPTS, 10)
    assert all(ask.draft for ask in recorded)  # each generation's ids, kept for the next run

    planned = tiny_runtime.fresh()
    planned.use_plan(plan.unique(recorded))
    greedy_again = LM(planned, seed=0).generate(PROMPTS, 10)
    sampled_again = LM(planned, Sampling(temperature=1.5), seed=0).generate(PROMPTS, 10)
    assert [g.ids for g in sampled_again] == [g.ids for g in sampled]
    assert [g.ids for g in greedy_again] == [g.ids for g in LM(tiny_runtime.fresh()).generate(PROMPTS, 10)]
    assert planned.stats["tokens verified"] == sum(len(g.ids) for g in greedy_again + sampled_again)
    assert planned.stats["tokens decoded"] == 0


def test_prompts_sharing_a_beginning_read_in_length_groups_are_each_what_it_reads_alone(tiny_backend) -> None:  # type: ignore[no-untyped-def]
    # The shared part is read once; endings of 1 and 2 tokens go in one pass, of 20 and 25 in another (not padded
    # to 25), each row taking its own numbers back.
    beginning = [(7 * i) % 50 + 3 for i in range(33)]
    rows = [beginning + [(11 * i + n) % 50 + 3 for i in range(n)] for n in (25, 1, 20, 2)]
    together = tiny_backend.next_logprobs(rows)
    alone = [tiny_backend.next_logprobs([row])[0] for row in rows]
    for a, b in zip(together, alone):
        assert abs(a.values - b.values).max() < 1e-4
    assert all(abs(together[0].values - other.values).max() > 1e-3 for other in together[1:])  # rows told apart


def test_short_prompts_of_one_length_read_in_one_pass_are_each_what_it_reads_alone(tiny_backend) -> None:  # type: ignore[no-untyped-def]
    # Three prompts of 5 tokens go in one pass, two of 7 in another, the 3-token ones (shorter than TOGETHER_FROM)
    # alone; each row takes its own numbers back, and the output layer has its own method again afterwards.
    rows = [[(13 * i + n) % 50 + 3 for i in range(length)] for n, length in enumerate((5, 3, 7, 5, 3, 7, 5))]
    together = tiny_backend.next_logprobs(rows)
    alone = [tiny_backend.next_logprobs([row])[0] for row in rows]
    for a, b in zip(together, alone):
        assert abs(a.values - b.values).max() < 1e-4
    assert all(abs(together[0].values - other.values).max() > 1e-3 for other in together[1:])  # rows told apart
    head = tiny_backend.model.get_output_embeddings()
    assert "forward" not in vars(head)
    hooked = head.forward  # a method set on the layer itself, as accelerate's hooks do, is kept too
    head.forward = hooked
    try:
        assert abs(tiny_backend.next_logprobs(rows[:1] + rows[3:4])[1].values - alone[3].values).max() < 1e-4
        assert vars(head)["forward"] is hooked
    finally:
        del head.forward
