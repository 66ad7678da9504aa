"""The larger suite `make bench` times beside the specs (issue 34): every other word prefix of the document's texts
and each review's prompts (`bench/drafts_exact.py`'s prompts), 99 of them, each in a next-token test and a
greedy test (8 tokens). Each test holds what every engine must keep, so it can fail: a choice between the question's
top two candidates picks the first, and a greedy generation begins with the question's argmax and reads the same
log-probability for it. Not in `make test`; the bench runs it on both engines, first without a plan (writing one),
then with it (verifying its drafts), then again from a warm --lm-cache.

    pytest bench/suite -n 2 --lm-plan=/tmp/suite-plan.json --lm-plan-update
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_lmbehave import LM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from drafts_exact import prompts

# bench/bench_scaling.py grows the suite: 1x is 50 prompts, 2x (the default, the bench's rows) 99, 4x all 198.
PROMPTS = prompts()[:: 4 // int(os.environ.get("LMBEHAVE_BENCH_SCALE", "2"))]
STEPS = 8
IDS = [f"{i:03d}" for i in range(len(PROMPTS))]


@pytest.mark.parametrize("prompt", PROMPTS, ids=IDS)
def test_a_choice_between_the_top_two_candidates_picks_the_first(lm: LM, prompt: str) -> None:
    first, second = lm.next_token(prompt).top(2)
    assert lm.choose(prompt, [second.piece, first.piece]).best == first.piece


@pytest.mark.parametrize("prompt", PROMPTS, ids=IDS)
def test_a_greedy_generation_begins_with_the_next_token_questions_argmax(lm: LM, prompt: str) -> None:
    question = lm.next_token(prompt)
    generation = lm.generate(prompt, STEPS)
    assert generation.ids[0] == question.argmax_id
    assert generation.logprobs[0] == pytest.approx(question.logprob(question.argmax_id), abs=1e-4)
