"""1. Tokens and ids: the model never sees letters, only token ids."""

from pytest_lmbehave import ___


def test_token_ids(lm, exercise):
    """Which token ids does the tokenizer give for "Shakespeare was a"? (a list of ints)"""
    ids = list(lm.tokenize("Shakespeare was a").text_ids)
    exercise.check(
        ids, ___, hint=lambda a: f"there are {len(a)} ids; try lm.tokenize(...).text_ids, and lm.decode(i) on each"
    )


def test_the_split_of_shakespeare(lm, exercise):
    """Into which pieces does "Shakespeare" (no leading space) split? (a list of strings)"""
    pieces = list(lm.tokenize("Shakespeare").text_pieces)
    exercise.check(
        pieces, ___, hint=lambda a: f"{len(a)} pieces that join back into the word; the first has {len(a[0])} letters"
    )


def test_a_run_of_spaces_is_one_token(lm, exercise):
    """What is the id of the token between the words in "hello     hello" (five spaces)?"""
    middle = lm.tokenize("hello     hello").text_ids[1]
    exercise.check(
        middle,
        ___,
        hint=lambda a: (
            f"decode it: {lm.decode(a)!r} has {len(lm.decode(a))} spaces; the fifth space belongs to ' hello'"
        ),
    )


def test_a_leading_space_changes_the_tokens(lm, exercise):
    """How many tokens is " Shakespeare" (with a leading space)?"""
    count = len(lm.tokenize(" Shakespeare").text_ids)
    exercise.check(
        count, ___, hint="'Shakespeare' without the space is 2 tokens; words after a space are common in training text"
    )
