"""Behaviour under change (CheckList's invariance and directional tests, over next-token distributions): the
document's prompts perturbed, each capability's cases judged together as a failure rate with an interval.

Each test is one capability under one family of change; the rates are printed at the end of the run. A rate is held
to a bound with ``assert_failure_rate`` (pass, fail, or inconclusive: a skip that says how many more cases would
decide), and the bounds are the model's own story: the few-shot label holds under small changes, a trailing space
moves the next token (the document's whitespace lesson, seen from the other side). The rates differ between
engines and versions (transformers 4.57 prepends a BOS: the examples' order then moves 5 of 6 labels, not 3), which
`lmbehave diff` shows side by side."""

from __future__ import annotations

from typing import Any

import pytest
from document import (
    BOSTON_PLACES,
    BOSTON_VISIT,
    JOB_PROMPT,
    ONE_TOKEN_PROMPTS,
    REVIEW_PROMPT,
    REVIEWS,
    SHAKESPEARE,
    few_shot_prompt,
)

from pytest_lmbehave import LM, assert_failure_rate, expand, lexicons, perturbations

LABELS = (" good", " bad")
SEEDS = (0, 1)
NAMES = ("Amara", "Priya", "Wei", "Carlos")  # one from each other region of lexicons.FIRST_NAMES
REVIEWER = "James"  # the base's reviewer, lexicons.FIRST_NAMES[0]


def signed(review: str, name: str = REVIEWER) -> str:
    return few_shot_prompt(f"{review} ({name})")


def few_shot_changes(family: str) -> list[perturbations.Change]:
    if family == perturbations.NAME:
        # One other name per review, each region in turn: a few-shot prompt costs a pass of ~160 tokens.
        return [perturbations.swap(signed(r), f"({REVIEWER})", f"({NAMES[i % 4]})") for i, r in enumerate(REVIEWS)]
    if family == perturbations.TYPO:
        return [perturbations.typo(few_shot_prompt(r), seed, within=r) for r in REVIEWS for seed in SEEDS]
    # A reordering shares no beginning with the base, so it costs a whole pass: one order per review.
    return [perturbations.reorder(few_shot_prompt(r), 1, within=REVIEW_PROMPT) for r in REVIEWS]


# The bound each family is held to, above the upper end of its 99 % interval on the embedded model: a reviewer's name
# never moved the label (0/6), a typo did twice (2/12, both in a review the model reads within 0.07 nats), the
# examples' order did most (3/6). With this few cases (each a pass of ~160 tokens) a bound can only catch a model that
# breaks the invariance far more often; the rates themselves are printed, reported and compared by `lmbehave diff`.
FEW_SHOT_BOUNDS = {perturbations.NAME: 0.75, perturbations.TYPO: 0.75, perturbations.ORDER: 0.95}


def labels_are_tokens(lm: LM) -> None:
    """The label is read off one next-token distribution: it must be one token of this model's vocabulary."""
    apart = [label for label in LABELS if len(lm.tokenize(label).text_ids) != 1]
    if apart:
        pytest.skip(f"the labels {apart} are not single tokens of this model's vocabulary: no label to read")


@pytest.mark.parametrize("family", list(FEW_SHOT_BOUNDS))
def test_the_few_shot_label_holds_under_small_changes(lm: LM, lm_snapshot: Any, family: str) -> None:
    labels_are_tokens(lm)
    cap = lm.invariance(f"few-shot label under {family}", few_shot_changes(family), labels=LABELS)
    assert cap == lm_snapshot
    assert_failure_rate(cap, at_most=FEW_SHOT_BOUNDS[family])


# Over Shakespeare's own top 5 jobs: another playwright's name keeps the same five words in play and may reorder
# them (the label among them changes for 6 of 10 names on the embedded model, 0 of 6 changes of case), but never moves their shape by more
# than this many nats of KL divergence over the five (0.74 at most on the embedded model).
PLAYWRIGHT_KL = 1.5


def playwright_changes(family: str) -> list[perturbations.Change]:
    if family == perturbations.NAME:
        return [perturbations.swap(SHAKESPEARE, "Shakespeare", name) for name in lexicons.PLAYWRIGHTS]
    if family == perturbations.TYPO:
        return [perturbations.typo(SHAKESPEARE, seed) for seed in range(8)]
    return [perturbations.case(SHAKESPEARE, seed) for seed in range(6)]


# A misspelt name is another name to a small model: a typo in "Shakespeare" moves the label among his top 5 jobs
# for 7 of 8 typos on the embedded model, so that family is held to breaking it at least a quarter of the time.
PLAYWRIGHT_BOUNDS = {
    perturbations.NAME: ("<=", 0.95),
    perturbations.TYPO: (">=", 0.25),
    perturbations.CASE: ("<=", 0.95),
}


@pytest.mark.parametrize("family", list(PLAYWRIGHT_BOUNDS))
def test_another_playwright_keeps_shakespeares_top_5_jobs_in_play(lm: LM, lm_snapshot: Any, family: str) -> None:
    jobs = [c.piece for c in lm.next_token(SHAKESPEARE).top(5)]
    cap = lm.invariance(f"'Shakespeare was a' under {family}", playwright_changes(family), jobs, PLAYWRIGHT_KL)
    assert cap == lm_snapshot
    side, bound = PLAYWRIGHT_BOUNDS[family]
    assert_failure_rate(cap, **{"at_most" if side == "<=" else "at_least": bound})


ZERO_SHOT = [*ONE_TOKEN_PROMPTS, JOB_PROMPT, BOSTON_PLACES, BOSTON_VISIT, "Shakespeare's job was"]


def test_a_space_at_the_end_moves_the_zero_shot_answer(lm: LM, lm_snapshot: Any) -> None:
    """The document's whitespace lesson from the other side: a prompt that ends in a space asks for a token that
    does not begin with one, so the answer changes (6 of 7 on the embedded model)."""
    cap = lm.invariance("zero-shot answer, a space at the end", [perturbations.whitespace(p, "end") for p in ZERO_SHOT])
    assert cap == lm_snapshot
    assert_failure_rate(cap, at_least=0.2)


def zero_shot_changes(family: str) -> list[perturbations.Change]:
    if family == perturbations.CASE:
        return [perturbations.case(p, seed) for p in ZERO_SHOT for seed in SEEDS]
    return [perturbations.whitespace(p, family, seed) for p in ZERO_SHOT for seed in SEEDS]


@pytest.mark.parametrize("family", ["inside", "start", perturbations.CASE])
def test_the_zero_shot_answer_under_spaces_within_and_case(lm: LM, lm_snapshot: Any, family: str) -> None:
    cap = lm.invariance(f"zero-shot answer under {family}", zero_shot_changes(family))
    assert cap == lm_snapshot
    assert_failure_rate(cap, at_most=0.95)


POSITIVE = expand("I {verb} the {thing}.", verb=("loved", "enjoyed"), thing=("story", "combat", "music", "campaign"))


def test_a_negated_review_raises_the_bad_label(lm: LM, lm_snapshot: Any) -> None:
    labels_are_tokens(lm)
    changes = [perturbations.negate(few_shot_prompt(case.text), within=case.text) for case in POSITIVE]
    cap = lm.direction("few-shot label under negation", changes, " bad", up=True, labels=LABELS)
    assert cap == lm_snapshot
    assert_failure_rate(cap, at_most=0.75)
