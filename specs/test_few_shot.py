"""Few-shot prompting: four labelled reviews, then a "Decision:" for each of the six reviews."""

from __future__ import annotations

import pytest
from document import REVIEWS, few_shot_prompt

from pytest_lmbehave import LM

LABELS = (" good", " bad")


def test_the_few_shot_decisions_for_all_six_reviews(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate([few_shot_prompt(r) for r in REVIEWS], max_new_tokens=1) == lm_snapshot


@pytest.mark.fact("model")
def test_each_few_shot_answer_is_exactly_one_of_the_labels(lm: LM) -> None:
    answers = [g.text for g in lm.generate([few_shot_prompt(r) for r in REVIEWS], max_new_tokens=1)]
    assert [a in LABELS for a in answers] == [True] * len(REVIEWS), answers


def test_choosing_between_the_labels_by_log_likelihood(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert [lm.choose(few_shot_prompt(r), LABELS) for r in REVIEWS] == lm_snapshot
