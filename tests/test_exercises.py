"""Teaching exercises: blanks, hints, wrong answers, progress, reveal and the teacher's key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_lmbehave.teaching.exercises import HINTS_LOG, load_key

EXERCISES = '''
from pytest_lmbehave import ___

def test_count(lm, exercise):
    """How many tokens is "hello hello"?"""
    exercise.check(len(lm.tokenize("hello hello").ids), {count}, hint=lambda a: f"between 1 and {a + 3}")

def test_first_piece(lm, exercise):
    """What is the first piece of "hello"?"""
    exercise.check(lm.tokenize("hello").pieces[0], ___, hint="decode the first id")

def test_vocabulary(lm, exercise):
    """How many tokens does the model know?"""
    exercise.check(len(lm.tokenizer), ___, hint="len(lm.tokenizer)")
'''


@pytest.fixture
def exercises(run_with_tiny, pytester: pytest.Pytester, tiny_model):  # type: ignore[no-untyped-def]
    from pytest_lmbehave.api.lm import LM
    from pytest_lmbehave.runtime.runtime import Runtime
    from tests.conftest import tiny_backend_of

    tokens = LM(Runtime(tiny_backend_of(tiny_model, pytester.path / "c"))).tokenize("hello hello")
    truth = {"count": len(tokens.ids)}
    pytester.makepyfile(
        answer_key=f"ANSWERS = {{'test_count': {truth['count']}, 'test_first_piece': 'MISSING', 'test_vocabulary': 300}}\n"
    )

    def run(count: str, *args: str) -> pytest.RunResult:
        return run_with_tiny(EXERCISES.replace("{count}", count), *args)

    return run, truth


def test_a_blank_says_not_answered_yet_with_a_hint_and_never_the_answer(exercises) -> None:  # type: ignore[no-untyped-def]
    run, truth = exercises
    result = run("___")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            'NotAnswered: not answered yet: How many tokens is "hello hello"?',
            f"  hint: between 1 and {truth['count'] + 3}",
            "  replace ___ with your answer",
        ]
    )
    assert "answer (--lm-reveal)" not in result.stdout.str()


def test_a_wrong_answer_is_told_apart_from_a_blank(exercises) -> None:  # type: ignore[no-untyped-def]
    run, truth = exercises
    result = run(str(truth["count"] + 1))
    result.stdout.fnmatch_lines([f"*not quite: you answered {truth['count'] + 1}, but the model does otherwise.*"])
    assert 'not answered yet: How many tokens is "hello hello"' not in result.stdout.str()


def test_progress_counts_solved_exercises_and_names_the_next_in_order(exercises) -> None:  # type: ignore[no-untyped-def]
    run, truth = exercises
    for workers in ([], ["-n", "2"]):
        result = run(str(truth["count"]), *workers)
        result.assert_outcomes(passed=1, failed=2)
        last = result.stdout.lines[-1]
        assert "exercises: 1/3 solved — next: test_a_blank" not in last  # (module name differs per test)
        assert "exercises: 1/3 solved — next: " in last and last.rstrip("= ").endswith("::test_first_piece")


def test_reveal_shows_the_teachers_answer_beside_each_blank(exercises) -> None:  # type: ignore[no-untyped-def]
    run, _ = exercises
    result = run("___", "--lm-reveal")
    result.stdout.fnmatch_lines(["  answer (--lm-reveal): 'MISSING'"])


def test_the_answer_key_fills_every_blank_and_a_wrong_key_fails(exercises) -> None:  # type: ignore[no-untyped-def]
    run, _ = exercises
    result = run("___", "--lm-answer-key")
    result.assert_outcomes(passed=2, failed=1)  # the key's 'MISSING' piece is wrong on purpose
    result.stdout.fnmatch_lines(["*not quite: you answered 'MISSING'*"])


def test_an_answer_computed_from_the_model_is_refused_it_must_be_a_literal(exercises) -> None:  # type: ignore[no-untyped-def]
    run, _ = exercises
    result = run('len(lm.tokenize("hello hello").ids)')  # the observed expression would always "agree"
    result.stdout.fnmatch_lines(
        [
            "*NotALiteral: write your answer as a literal (a number, a string, True/False, a list or tuple of them), not len(*"
        ]
    )
    result.assert_outcomes(failed=3)


TRICKS = '''
import functools

from pytest_lmbehave import ___

def test_alias(lm, exercise):
    """How many tokens is "hello hello"?"""
    ids = len(lm.tokenize("hello hello").ids)
    c = exercise.check
    c(ids, ids, hint="count them")

def test_helper(lm, exercise):
    """How many tokens is "hello hello"?"""
    def ask(actual, answer):
        exercise.check(actual, answer, hint="count them")
    ids = len(lm.tokenize("hello hello").ids)
    ask(ids, ids)

def test_partial(lm, exercise):
    """How many tokens is "hello hello"?"""
    ids = len(lm.tokenize("hello hello").ids)
    functools.partial(exercise.check, ids)(ids, hint="count them")

def test_keyword(lm, exercise):
    """How many tokens is "hello hello"?"""
    ids = len(lm.tokenize("hello hello").ids)
    check = exercise.check
    check(ids, hint="count them", answer=ids)

def test_blank_through_an_alias(lm, exercise):
    """How many tokens is "hello hello"?"""
    c = exercise.check
    c(len(lm.tokenize("hello hello").ids), ___, hint="count them")

def test_literal_through_an_alias(lm, exercise):
    """How many tokens is "hello hello"?"""
    c = exercise.check
    c(len(lm.tokenize("hello hello").ids), {count}, hint="count them")
'''


def test_the_answer_must_be_a_literal_however_check_is_reached(run_with_tiny, exercises) -> None:  # type: ignore[no-untyped-def]
    """An alias, a helper, functools.partial or a keyword: the observed value passed as the answer is refused
    wherever check is called from, and a literal (or the blank) through an alias still counts."""
    _, truth = exercises
    result = run_with_tiny(TRICKS.replace("{count}", str(truth["count"])))
    result.assert_outcomes(passed=1, failed=5)
    failures = result.stdout.str().split(" FAILURES ")[1].split("short test summary")[0]
    refused = [line for line in failures.splitlines() if line.startswith("NotALiteral: ")]
    assert len(refused) == 4, refused  # alias, helper, partial and keyword; the blank is not answered yet
    assert {line.split(", not ")[1].split(":")[0] for line in refused} == {
        "ids",
        "answer",
        "an answer that cannot be read from the call (call exercise.check(actual, ANSWER, hint=...) with the "
        "answer written in the call itself)",
    }
    assert "NotAnswered: not answered yet" in failures


LEVELS = '''
from pytest_lmbehave import ___

def test_levels(lm, exercise):
    """How many tokens is "hello hello"?"""
    exercise.check(len(lm.tokenize("hello hello").ids), {answer}, hint=["first nudge", "second step", "last step"])
'''


def test_hints_come_in_steps_as_the_same_answer_fails_again(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    shown = []
    for answer in ("___", "___", "___", "___", "99", "99"):
        result = run_with_tiny(LEVELS.replace("{answer}", answer))
        shown.append(next(line.split("hint: ")[1] for line in result.stdout.lines if "hint: " in line))
    assert shown == ["first nudge", "second step", "last step", "last step", "first nudge", "second step"]
    result.stdout.fnmatch_lines(["*(hint 2 of 3; run again with the same answer for the next)*"])


def _appears(answer: object, hint: str, question: str = "") -> bool:
    """Whether a hint gives the answer away: the answer, or any telling part of it, written in the hint (a piece
    of a word the question itself names, such as 'Sh' of 'Shakespeare', tells nothing)."""
    if isinstance(answer, (list, tuple)):
        return any(_appears(part, hint, question) for part in answer)
    if isinstance(answer, bool):
        return str(answer) in hint
    if isinstance(answer, (int, float)):
        # Any number, small ones too, as a whole number in the text: 4 in "4 pieces", 1.0 as "1" or "1.0".
        number = int(answer) if float(answer).is_integer() else answer
        return re.search(rf"(?<![\d.]){re.escape(str(number))}(?:\.0+)?(?!\.?\d)", hint) is not None
    text = str(answer).strip()
    return len(text) > 1 and text in hint and text not in question


@pytest.mark.skipif(
    int(__import__("transformers").__version__.split(".")[0]) < 5,
    reason="the teacher's key is recorded on transformers 5: on 4.57 the embedded tokenizer prepends a BOS, so the "
    "model's answers differ (make test checks the key, and this test, on transformers 5)",
)
def test_no_exercise_hint_gives_its_answer_away() -> None:
    """Every hint level of every exercise, computed on the real model, against the teacher's key."""
    root = Path(__file__).resolve().parent.parent
    log = root / "build" / "hints.jsonl"
    log.parent.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "exercises/",
            "--lm-answer-key",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        env={**os.environ, HINTS_LOG: str(log)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    answers = load_key(root / "exercises")
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert {entry["name"] for entry in logged} == set(answers)
    for entry in logged:
        assert len(entry["hints"]) >= 2, f"{entry['name']}: one hint only, no steps"
        for level, hint in enumerate(entry["hints"], start=1):
            told = _appears(answers[entry["name"]], hint, entry["question"])
            assert not told, f"{entry['name']} hint {level} tells the answer: {hint}"


def test_a_hint_that_writes_a_small_number_answer_tells_it() -> None:
    """The no-leak check reads small numbers too (it once skipped those below 10): 4, 1 and 1.0 as whole numbers."""
    assert _appears(4, "it splits into 4 pieces")
    assert _appears(1.0, "the probabilities sum to 1.") and _appears(1.0, "they sum to 1.0 exactly")
    assert _appears(1, "one token: id 1")
    assert _appears([2, 7], "the second is 7")
    assert not _appears(4, "hint 14: 0.4 of them") and not _appears(1, "10 tokens, 1.5 nats")
