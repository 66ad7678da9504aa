"""5. Zero-shot and few-shot prompting, and telling a real decision from a near-tie."""

import sys
from pathlib import Path

from pytest_lmbehave import ___

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "specs"))
from document import REVIEWS, few_shot_prompt

LABELS = [" good", " bad"]


def test_zero_shot_is_not_a_label(lm, exercise):
    """Zero-shot: does the model answer "The sentiment of this comment is" with " positive" or " negative"? (True or False)"""
    prompt = "Someone said: " + REVIEWS[5] + "\nThe sentiment of this comment is"
    answered = lm.generate(prompt, max_new_tokens=1).text in (" positive", " negative")
    exercise.check(
        answered,
        ___,
        hint=[
            "the question is whether the very next token is one of the two words",
            "lm.next_token(prompt).top(5) shows the five most likely next tokens",
        ],
    )


def test_few_shot_label(lm, exercise):
    """Few-shot: which label does the model choose for the first review? (" good" or " bad")"""
    choice = lm.choose(few_shot_prompt(REVIEWS[0]), LABELS)
    exercise.check(
        choice.best,
        ___,
        hint=[
            "the examples in the prompt end with 'Decision:' and a label; the model scores both labels after it",
            f"the winner beats the other label by {choice.margin:.2f} nats; lm.choose(prompt, LABELS).best names it",
        ],
    )


def test_near_tie(lm, exercise):
    """Which review (index 0-5) has the closest few-shot decision, the one most likely to flip after an upgrade?"""
    margins = [lm.choose(few_shot_prompt(r), LABELS).margin for r in REVIEWS]
    closest = min(range(len(margins)), key=margins.__getitem__)
    exercise.check(
        closest,
        ___,
        hint=[
            "compare the .margin of each lm.choose(...): the log-probability gap between the two labels",
            f"the smallest margin is {min(margins):.4f} nats; the largest {max(margins):.2f}",
        ],
    )


def test_the_change_that_breaks_invariance(lm, exercise):
    """Three changes to "Shakespeare was a": 1) a doubled space after "was", 2) "shakespeare" in lower case, 3) a
    space at the end. Which one (1, 2 or 3) changes the model's next token? Explain it from the tokens."""
    from pytest_lmbehave import perturbations

    text = "Shakespeare was a"
    changes = [
        perturbations.whitespace(text, "inside", 0),
        perturbations.case(text, 1),  # "Shakespeare" -> "shakespeare"
        perturbations.whitespace(text, "end"),
    ]
    cap = lm.invariance("the next token under three changes", changes)
    broken = [i + 1 for i, outcome in enumerate(cap.outcomes) if outcome.verdict == "broken"]
    exercise.check(
        broken[0] if len(broken) == 1 else broken,
        ___,
        hint=[
            "a change that keeps the meaning can still change the tokens: lm.tokenize(variant).text_pieces",
            "a doubled space adds a ' ' token in the middle, a lower case changes the first token; compare the last ones",
            "what is the last token of each variant? The model predicts what follows the last token it read",
        ],
    )
