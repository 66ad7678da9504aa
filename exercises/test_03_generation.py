"""3. Continuing a sequence, one token at a time: greedy generation."""

from pytest_lmbehave import ___


def test_continuing_the_sequence(lm, exercise):
    """After "Shakespeare was a great", which token comes next?"""
    dist = lm.next_token("Shakespeare was a great")
    candidates = sorted(c.piece for c in dist.top(5))
    exercise.check(dist.argmax, ___, hint=f"one of these five (in alphabetical order): {candidates}")


def test_greedy_generation(lm, exercise):
    """What text do the first 5 greedy tokens after "Shakespeare was a" make?"""
    generation = lm.generate("Shakespeare was a", max_new_tokens=5)
    exercise.check(
        generation.text,
        ___,
        hint=lambda a: (
            f"greedy = take the argmax each step; {len(generation.ids)} tokens, {len(a)} characters, starting with your answer to exercise 2.4"
        ),
    )
