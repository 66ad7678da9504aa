"""Scoring a text: the log-probability of each token given the ones before it, from one teacher-forced pass, as
the forward pass of the document gives it position by position. The document's own prose is the text."""

from __future__ import annotations

import math

import pytest
from document import PROSE

from pytest_lmbehave import LM


@pytest.mark.invariant
def test_every_token_after_the_first_is_scored_given_the_ones_before_it(lm: LM) -> None:
    scores = lm.score(PROSE)
    assert len(scores.logprobs) == len(scores.ids) - 1 == len(scores.best)
    assert all(value <= 0 for value in scores.logprobs)
    assert math.isclose(scores.total, sum(scores.logprobs))
    for best, token, value in zip(scores.best, scores.ids[1:], scores.logprobs):
        assert [v for _, v in best] == sorted((v for _, v in best), reverse=True)
        assert value <= best[0][1] + 1e-6  # the scored token is at best the top candidate
        listed = dict(best)
        assert token not in listed or math.isclose(listed[token], value, abs_tol=1e-6)  # one number, two places
    # The same numbers as the next-token question on each prefix: a teacher-forced pass and one forward pass per
    # prefix read the same ids in another shape, so they agree within that reading's noise (2e-4 covers float32's;
    # in bfloat16 the dtype's measured noise, lm.noise, is the larger).
    for i in (1, len(scores.ids) // 2, len(scores.ids) - 1):
        after = lm.next_token(list(scores.ids[:i]))
        assert math.isclose(after.logprob(scores.ids[i]), scores.logprobs[i - 1], abs_tol=max(2e-4, lm.noise))


def test_the_documents_prose_scores_as_recorded(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.score(PROSE) == lm_snapshot
