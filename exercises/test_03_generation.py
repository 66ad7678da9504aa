"""3. Continuing a sequence, one token at a time: greedy generation."""

from pytest_lmbehave import ___


def test_continuing_the_sequence(lm, exercise):
    """After "Shakespeare was a great", which token comes next?

    The document's model (SmolLM2-360M) predicted " great" after "Shakespeare was a", and this prompt continues
    from there as the document did. The model behind these exercises (SmolLM2-135M) predicts another token there
    (exercise 2.4): a smaller model is another model, with its own predictions.
    """
    dist = lm.next_token("Shakespeare was a great")
    exercise.check(
        dist.argmax,
        ___,
        hint=[
            "append the prediction to the prompt and predict again: the argmax after the longer prompt",
            f"it has p={dist.top(1)[0].prob:.2f}, the runner-up {dist.top(2)[1].prob:.2f}: a word about Shakespeare's craft",
            "lm.next_token('Shakespeare was a great').top(5) lists the five most likely, the argmax first",
        ],
    )


def test_greedy_generation(lm, exercise):
    """What text do the first 5 greedy tokens after "Shakespeare was a" make?"""
    generation = lm.generate("Shakespeare was a", max_new_tokens=5)
    exercise.check(
        generation.text,
        ___,
        hint=[
            "greedy = take the argmax at each step, append it, and predict again",
            f"{len(generation.ids)} tokens; the first is your answer to exercise 2.4",
            "lm.generate('Shakespeare was a', max_new_tokens=5).text shows it",
        ],
    )
