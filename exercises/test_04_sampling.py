"""4. Sampling: temperature reshapes the distribution, top-p cuts its tail."""

from pytest_lmbehave import ___


def test_temperature(lm, exercise):
    """Which temperature gives more distinct tokens in 50 sampled tokens, 0.2 or 14.0? (a float)"""
    cold = lm.with_sampling(temperature=0.2, seed=1).generate("Shakespeare was a", max_new_tokens=50)
    hot = lm.with_sampling(temperature=14.0, seed=1).generate("Shakespeare was a", max_new_tokens=50)
    more = 0.2 if len(set(cold.ids)) > len(set(hot.ids)) else 14.0
    exercise.check(
        more,
        ___,
        hint="the logits are divided by the temperature before the softmax: small values sharpen, large ones flatten",
    )


def test_top_p(lm, exercise):
    """With top_p=0.9, how many candidates are left after "Shakespeare was a"? (an int)"""
    probs = lm.next_token("Shakespeare was a").logprobs.exp().sort(descending=True).values
    nucleus = int((probs.cumsum(0) < 0.9).sum()) + 1
    exercise.check(
        nucleus,
        ___,
        hint=f"keep the most likely tokens until their probabilities add up to 0.9; the top one alone has p={float(probs[0]):.2f}",
    )
