"""2. Logits, softmax and argmax: one score per vocabulary entry, for every position."""

import torch

from pytest_lmbehave import ___


def test_the_shape_of_the_logits(lm, exercise):
    """What is the shape of the logits for "Shakespeare was a"? (a tuple of three ints)"""
    shape = tuple(lm.logits("Shakespeare was a").shape)
    exercise.check(
        shape,
        ___,
        hint="(batch, positions, vocabulary): one batch, one row per prompt token, one column per token the model knows",
    )


def test_the_vocabulary_size(lm, exercise):
    """How many different tokens does the model know?"""
    exercise.check(
        len(lm.tokenizer),
        ___,
        hint="it is the last number of the logits' shape (the exercise before), and len(lm.tokenizer)",
    )


def test_softmax_makes_probabilities(lm, exercise):
    """What do the softmax of the last row of logits add up to? (a float)"""
    total = float(torch.softmax(lm.logits("Shakespeare was a")[0, -1], dim=0).sum())
    exercise.check(total, ___, hint="the softmax turns scores into a probability distribution")


def test_the_argmax_is_the_prediction(lm, exercise):
    """Which token does the model find most likely after "Shakespeare was a"? (a piece with its leading space)"""
    dist = lm.next_token("Shakespeare was a")
    candidates = sorted(c.piece for c in dist.top(5))
    exercise.check(dist.argmax, ___, hint=f"one of these five (in alphabetical order): {candidates}")
