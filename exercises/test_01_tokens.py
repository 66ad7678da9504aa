"""1. Tokens and ids: the model never sees letters, only token ids."""

from pytest_lmbehave import ___


def test_token_ids(lm, exercise):
    """Which token ids does the tokenizer give for "Shakespeare was a"? (a list of ints)"""
    ids = list(lm.tokenize("Shakespeare was a").text_ids)
    exercise.check(
        ids,
        ___,
        hint=[
            "the model reads integers, one per token; a token is a piece of text the tokenizer knows",
            lambda a: f"there are {len(a)} of them; a space usually starts the token of the word after it",
            "find them with lm.tokenize(...).text_ids, and see each one's text with lm.decode(i)",
        ],
    )


def test_the_split_of_shakespeare(lm, exercise):
    """Into which pieces does "Shakespeare" (no leading space) split? (a list of strings)"""
    pieces = list(lm.tokenize("Shakespeare").text_pieces)
    exercise.check(
        pieces,
        ___,
        hint=[
            "a word the tokenizer did not learn whole is split into pieces it knows, which join back into the word",
            lambda a: (
                f"{len(a)} pieces; a capital letter at the start of a text is rarer than the same word after a space"
            ),
            "lm.tokenize('Shakespeare').text_pieces shows them",
        ],
    )


def test_a_run_of_spaces_is_one_token(lm, exercise):
    """What is the id of the token between the words in "hello     hello" (five spaces)?"""
    middle = lm.tokenize("hello     hello").text_ids[1]
    exercise.check(
        middle,
        ___,
        hint=[
            "a run of spaces becomes one token of its own, and each length of run has its own id",
            "the last space of the run joins the next word: ' hello' is one token",
            "lm.tokenize('hello     hello').text_ids has three ids; you want the middle one",
        ],
    )


def test_a_leading_space_changes_the_tokens(lm, exercise):
    """How many tokens is " Shakespeare" (with a leading space)?"""
    count = len(lm.tokenize(" Shakespeare").text_ids)
    exercise.check(
        count,
        ___,
        hint=[
            "a tokenizer learns whole the pieces that are frequent in its training text",
            "in running text a word usually comes after a space, so the tokenizer saw it that way far more often",
            "compare lm.tokenize(' Shakespeare').text_pieces with the split of the exercise before",
        ],
    )
