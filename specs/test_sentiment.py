"""Sentiment analysis: zero shot doesn't work well."""

from __future__ import annotations

from document import REVIEWS, classify_prompt, comment_prompt, sentiment_prompt

from pytest_lmbehave import LM


def test_what_the_first_comment_is(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(comment_prompt(REVIEWS[0]), max_new_tokens=20) == lm_snapshot


def test_the_sentiment_of_the_first_comment(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(sentiment_prompt(REVIEWS[0]), max_new_tokens=20) == lm_snapshot


def test_zero_shot_positive_or_negative_for_all_six_reviews(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate([classify_prompt(r) for r in REVIEWS], max_new_tokens=5) == lm_snapshot
