"""Zero-shot prompting: famous people's jobs, and recommending places to visit in Boston."""

from __future__ import annotations

from document import BOSTON_CONVERSATION, BOSTON_PLACES, FANEUIL, JOB_PROMPT, ONE_TOKEN_PROMPTS

from pytest_lmbehave import LM


def test_the_job_prompt_in_20_tokens(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(JOB_PROMPT, max_new_tokens=20) == lm_snapshot


def test_the_job_prompt_in_1_token(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(JOB_PROMPT, max_new_tokens=1) == lm_snapshot


def test_shakespeares_job_in_10_tokens(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate("Shakespeare's job was", max_new_tokens=10) == lm_snapshot


def test_one_token_answers_about_shakespeare(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(ONE_TOKEN_PROMPTS, max_new_tokens=1) == lm_snapshot


def test_the_boston_conversation_in_40_tokens(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(BOSTON_CONVERSATION, max_new_tokens=40) == lm_snapshot


def test_the_best_places_to_visit_in_boston(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(BOSTON_PLACES, max_new_tokens=20) == lm_snapshot


def test_the_faneuil_hall_sample_continued_greedily(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.generate(FANEUIL, max_new_tokens=20) == lm_snapshot
