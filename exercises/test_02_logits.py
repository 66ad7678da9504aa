"""2. Logits, softmax and argmax: one score per vocabulary entry, for every position."""

import torch

from pytest_lmbehave import ___


def test_the_shape_of_the_logits(lm, exercise):
    """What is the shape of the logits for "Shakespeare was a"? (a tuple of three ints)"""
    shape = tuple(lm.logits("Shakespeare was a").shape)
    exercise.check(
        shape,
        ___,
        hint=[
            "(batch, positions, vocabulary): one batch, one row per token the model reads, one column per token it knows",
            "count the tokens of the prompt (exercise 1.1), and look up how many tokens the model knows",
        ],
    )


def test_the_vocabulary_size(lm, exercise):
    """How many different tokens does the model know?"""
    exercise.check(
        len(lm.vocabulary),
        ___,
        hint=[
            "every row of the logits holds one score for each token the model knows",
            "len(lm.vocabulary) counts them; it is a round number for a computer, not for a person",
        ],
    )


def test_softmax_makes_probabilities(lm, exercise):
    """What do the softmax of the last row of logits add up to? (a float)"""
    total = float(torch.softmax(lm.logits("Shakespeare was a")[0, -1], dim=0).sum())
    exercise.check(
        total,
        ___,
        hint=[
            "the softmax turns any scores into a probability distribution",
            "what must the probabilities of all the possible next tokens add up to?",
        ],
    )


def test_the_argmax_is_the_prediction(lm, exercise):
    """Which token does the model find most likely after "Shakespeare was a"? (a piece with its leading space)"""
    dist = lm.next_token("Shakespeare was a")
    exercise.check(
        dist.argmax,
        ___,
        hint=[
            "the argmax is the candidate with the highest probability; a piece after a word starts with a space",
            f"it has p={dist.top(1)[0].prob:.2f}; {sum(c.prob > 0.01 for c in dist.top(100))} candidates have p above 0.01",
            "lm.next_token('Shakespeare was a').top(5) lists the five most likely, the argmax first",
        ],
    )
