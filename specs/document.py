"""The prompts of "Introduction to Language Models", exactly as the document writes them."""

from __future__ import annotations

SHAKESPEARE = "Shakespeare was a"

JOB_PROMPT = """Tell me what job this person had.

Shakespeare:"""

ONE_TOKEN_PROMPTS = [
    "Shakespeare was a",
    "Shakespeare's occupation was as a",
    "Shakespeare's worked as a",
]

# The document's code gives this prompt's blank line 14 spaces; its printed output shows 18. The spec uses the
# code's 14: that is the string the document passed to the model (the output is only what it printed).
BOSTON_CONVERSATION = """The following text is a conversation between two friends, one from NYC and other from Boston.
              
NYC: Give me a list of places to see in Boston.
Boston:"""  # noqa: W293 - the document's prompt keeps the blank line's spaces

BOSTON_PLACES = "The best places to visit in Boston are"
BOSTON_VISIT = "When you visit Boston, make sure you visit the"
FANEUIL = """When you visit Boston, make sure you visit the Faneuil Hall market, with its colorful, eclectic collection of antiques.

Fanny"""

REVIEWS = [
    """1)I know Blizzard gets a lot of hate, but personally, I don't think it gets enough. 2)During my childhood Blizzard couldn’t get it wrong. As an adult, they can’t get it right""",
    """Either you work as a laborer or you farm in Diablo 4. They're both the same.""",
    """If you had fun with previous Diablo titles, you'll enjoy this one. It's nothing new or groundbreaking, more or less the same as Diablo III with a graphics upgrade""",
    """I'm not really the target audience here, as I don't stick around with ARPGs for long, but so far it's been quite enjoyable and addicting... and also the one I've played the most.""",
    """I heard a lot of trash talk about D4, and let’s be honest here - a lot of criticism is absolutely justified, but the game is nowhere near as bad as some people paint it to be""",
    """I dont care what everyone says i loved playing the campaign.""",
]

REVIEW_PROMPT = """
Review: tried on gamepass, and freaking love it, might as well get it on steam while its on sale.
Decision: good

Review: Game was released defunct, with Paradox and Colossal lying about the state of the game and the game play aspects.
Decision: bad

Review: Almost seven months after launch this game is still not were it is supposed to.
Decision: bad

Review: It is being improved and with time will become the greatest city builder ever.
Decision: good
"""


def comment_prompt(review: str) -> str:
    return "Someone said: " + review + "\nThis comment is"


def sentiment_prompt(review: str) -> str:
    return "Someone said: " + review + "\nThe sentiment of this comment is"


def classify_prompt(review: str) -> str:
    return (
        "Someone said: " + review + "\nIf this reviewer had to classify this as positive or negative, they would choose"
    )


def few_shot_prompt(review: str) -> str:
    return REVIEW_PROMPT + f"\nReview:{review}\nDecision:"


# The document's own prose, scored token by token (the corpus llama.cpp's KL tool would read).
PROSE = (
    "Here, we provide some input text to the tokenizer and examine the resulting token IDs. Ignore the attention "
    "mask for now – we will get to it in a later class."
)
