"""A chat turn, through the model's own chat template. The document's model is a base model and has none; the
embedded model is an instruct model, as most models people test are, and its template is a classic upgrade hazard:
a release that renders a BOS or a role marker otherwise moves every answer. The snapshot pins the rendered template
and its ids with the answer, so such a change fails as a tokenizer-layer cause, not as a model that answers worse."""

from __future__ import annotations

import pytest

from pytest_lmbehave import LM, sampled
from pytest_lmbehave.api.invariants import coincidence

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_a_one_turn_question_is_answered_through_the_chat_template(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.chat(QUESTION, max_new_tokens=20) == lm_snapshot


@pytest.mark.invariant
def test_the_answer_is_what_the_model_generates_after_the_rendered_template(lm: LM) -> None:
    answer = lm.chat(QUESTION, max_new_tokens=20)
    content = QUESTION[0]["content"]
    assert content in answer.prompt  # the message is in the rendered template, as written,
    assert answer.prompt.index(content) + len(content) < len(answer.prompt)  # and the assistant's turn opens after it
    # The rendered text reads as the ids the model was given, and the answer is plain generation after them.
    assert tuple(lm.runtime.encode(answer.prompt, special=False)) == answer.prompt_ids
    assert lm.generate(list(answer.prompt_ids), max_new_tokens=20).ids == answer.ids
    assert tuple(d.argmax_id for d in lm.steps(answer)) == answer.ids  # greedy: a chain of argmaxes


@pytest.mark.invariant
@sampled(temperature=0.7, top_p=0.9)
def test_a_sampled_answer_reproduces_under_its_seed(lm: LM) -> None:
    answer = lm.chat(QUESTION, max_new_tokens=20)
    assert answer.sampling == "sampled(temperature=0.7, top_p=0.9)" and answer.seed is not None
    # Asked again of an engine that remembers nothing, under the same seed: the same draws.
    again = LM(lm.runtime.fresh(), lm.sampling, lm.seed).chat(QUESTION, max_new_tokens=20)
    assert (again.seed, again.ids) == (answer.seed, answer.ids)
    # It sampled: not the greedy answer, unless the model left draws no choice (a chance above 1e-3 that two agree).
    sampled_away = answer.greedy_agreement < 1 or answer.ids != lm.greedy().chat(QUESTION, max_new_tokens=20).ids
    assert sampled_away or coincidence(lm.steps(answer)) > 1e-3
