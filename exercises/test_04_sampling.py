"""4. Sampling: temperature reshapes the distribution, top-p cuts its tail."""

from pytest_lmbehave import ___
from pytest_lmbehave.teaching.exercises import DrawnCount


def test_temperature(lm, exercise):
    """Which temperature gives more distinct tokens in 50 sampled tokens, 0.2 or 14.0? (a float)"""
    cold = lm.with_sampling(temperature=0.2, seed=1).generate("Shakespeare was a", max_new_tokens=50)
    hot = lm.with_sampling(temperature=14.0, seed=1).generate("Shakespeare was a", max_new_tokens=50)
    more = 0.2 if len(set(cold.ids)) > len(set(hot.ids)) else 14.0
    exercise.check(
        more,
        ___,
        hint=[
            "the logits are divided by the temperature before the softmax: small values sharpen, large ones flatten",
            "a flat distribution gives many tokens a real chance; a sharp one keeps choosing its favourite",
        ],
    )


def test_top_p(lm, exercise):
    """With top_p=0.5, how many candidates are left after "Shakespeare was a"? (an int)

    The nucleus is the smallest set of the most likely tokens whose probabilities add up to at least top_p: the
    token that crosses it counts. (0.5 rather than the document's 0.9: there the 415th token crosses 0.9 by
    0.0001, as little as one CPU's rounding differs from another's; here the crossing is 0.003 clear.)
    """
    probs = lm.next_token("Shakespeare was a").logprobs.double().exp().sort(descending=True).values
    nucleus = int(((probs / probs.sum()).cumsum(0) < 0.5).sum()) + 1
    exercise.check(
        nucleus,
        ___,
        hint=[
            f"keep the most likely tokens until their probabilities add up to 0.5; the top one alone has p={float(probs[0]):.2f}",
            "sort the probabilities (lm.next_token(...).logprobs.exp()), add them up in order, count until 0.5",
        ],
    )


def test_how_often_master_comes_first(lm, exercise):
    """Sampling 2,000 times at temperature 0.7 (top-50) after "Shakespeare was a": about how many draws are " master"?
    (an int: any count the draws cannot tell from yours, by a binomial test at α = 0.01, is right)"""
    draws = lm.with_sampling(temperature=0.7, top_k=50, seed=1).draws("Shakespeare was a", n=2000)
    master = lm.vocabulary.id_of(" master")
    probability = float(lm.next_token("Shakespeare was a").prob(" master"))
    exercise.check(
        DrawnCount(int(draws.counts[master]), len(draws.tokens)),
        ___,
        hint=[
            f'at temperature 1, " master" has p={probability:.2f}: 2,000 draws would hold about '
            f"{round(2000 * probability)} of them; 0.7 divides the logits by 0.7 first",
            "exp(logprob / 0.7) for each of the top 50 tokens, divided by their sum, is each one's chance; "
            "times 2,000 is the count to expect",
        ],
    )
