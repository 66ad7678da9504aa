"""Teaching exercises: a blank (``___``) the student fills in, hints that teach, and a progress line.

``exercise.check(actual, ___, hint=[nudge, more, ...])`` says "not answered yet" with a hint computed from the model
(never the answer); a filled-in wrong answer is told apart from a blank. Hints come in steps: the first failure
shows the first, and each further failure with the same answer the next (remembered in pytest's cache). The answer
must be a literal (a number, a string, a list or tuple of them): a prediction, not the observed expression. A teacher's key beside the exercises
(``answer_key.py``, a dict ``ANSWERS`` by test name) fills every blank under ``--lm-answer-key`` (so `make test`
proves each exercise solvable on the real model) and is shown under ``--lm-reveal``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ..config.errors import LMBehaveError
from ..observations import statistics

KEY_FILE = "answer_key.py"


class _Blank:
    """The sentinel a student replaces with an answer."""

    def __repr__(self) -> str:
        return "___"


___ = _Blank()


class NotAnswered(LMBehaveError):
    """An exercise whose blank is still there."""


class WrongAnswer(AssertionError):
    """An exercise answered, but not as the model behaves."""


def same(actual: Any, answer: Any) -> bool:
    if isinstance(actual, float) or isinstance(answer, float):
        try:
            return math.isclose(float(actual), float(answer), rel_tol=1e-3, abs_tol=1e-4)
        except (TypeError, ValueError):
            return False
    if isinstance(actual, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(actual) == len(answer) and all(same(a, b) for a, b in zip(actual, answer))
    return bool(actual == answer)


class DrawnCount:
    """How often a token was drawn, compared with a predicted count: the two are equal when a binomial test at
    α = 0.01 cannot tell the draws from the prediction (so a prediction is right within the draws' own noise)."""

    ALPHA = 0.01
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, count: int, n: int) -> None:
        self.count, self.n = count, n

    def accepts(self, predicted: int) -> bool:
        return 0 <= predicted <= self.n and statistics.binomial_p(self.count, self.n, predicted / self.n) >= self.ALPHA

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool) and self.accepts(other)

    def __repr__(self) -> str:
        return f"{self.count} of {self.n} draws"


def load_key(folder: Path) -> dict[str, Any]:
    path = folder / KEY_FILE
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location(f"lmbehave_answer_key_{abs(hash(folder))}", path)
    if spec is None or spec.loader is None:
        return {}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(getattr(module, "ANSWERS", {}))


Hint = str | Callable[[Any], str]
HINTS_LOG = "LMBEHAVE_HINTS_LOG"  # a file to which every hint level of every check is appended (for the no-leak test)


class NotALiteral(LMBehaveError):
    """An answer written as an expression (e.g. the observed value itself) instead of a prediction."""


@cache
def _calls_in(filename: str) -> list[ast.Call]:
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _call_at(frame: Any) -> ast.Call | None:
    """The call being made in ``frame``, found by the exact source position of its instruction (whatever name the
    function is reached by: ``exercise.check``, an alias, a helper), or by its line where positions are unknown."""
    code = frame.f_code
    calls = _calls_in(code.co_filename)
    positions = getattr(code, "co_positions", None)
    if positions is not None:
        found = list(positions())[frame.f_lasti // 2]
        if None not in found:
            exact = [c for c in calls if (c.lineno, c.end_lineno, c.col_offset, c.end_col_offset) == found]
            if exact:
                return exact[0]
    spanning = [c for c in calls if c.lineno <= frame.f_lineno <= (c.end_lineno or c.lineno) and len(c.args) > 1]
    return spanning[-1] if len(spanning) == 1 else None


def answer_source(frame: Any) -> ast.expr | None:
    """The expression written in the answer's place of the call to ``check`` made in ``frame``: its second
    argument, or ``answer=``; None when the call cannot be read (then the answer cannot be shown to be a literal)."""
    call = _call_at(frame)
    if call is None or any(isinstance(a, ast.Starred) for a in call.args[:2]):
        return None
    if len(call.args) > 1:
        return call.args[1]
    return next((k.value for k in call.keywords if k.arg == "answer"), None)


def is_literal(node: ast.expr | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Name) and node.id == "___":
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


class Exercise:
    def __init__(
        self, name: str, question: str, key: dict[str, Any], use_key: bool, reveal: bool, memory: Any = None
    ) -> None:
        self.name = name
        self.question = question
        self.key = key
        self.use_key = use_key
        self.reveal = reveal
        self.memory = memory  # pytest's cache (None without the cacheprovider): how often this answer failed

    def check(self, actual: Any, answer: Any, *, hint: Hint | Sequence[Hint]) -> None:
        """Compare the model's ``actual`` value with the student's ``answer`` (``___`` while unanswered)."""
        __tracebackhide__ = True
        written = answer_source(sys._getframe(1))
        if not is_literal(written):
            raise NotALiteral(
                "write your answer as a literal (a number, a string, True/False, a list or tuple of them), not "
                + (
                    ast.unparse(written)
                    if written is not None
                    else "an answer that cannot be read from the call (call exercise.check(actual, ANSWER, hint=...) "
                    "with the answer written in the call itself)"
                )
                + ": the exercise asks what you predict the model does, and an expression computed from the model "
                "would agree with it whatever it does"
            )
        if isinstance(answer, _Blank) and self.use_key:
            if self.name not in self.key:
                raise NotAnswered(f"{self.name} has no entry in {KEY_FILE}; add the answer there")
            answer = self.key[self.name]
        levels = [hint] if isinstance(hint, str) or callable(hint) else list(hint)
        texts = [level(actual) if callable(level) else level for level in levels]
        self._log(actual, texts)
        if same(actual, answer) and not isinstance(answer, _Blank):
            self._remember(None)
            return
        tries = self._remember(repr(answer))
        shown = min(tries, len(texts)) - 1
        text = texts[shown] + (
            f"\n  (hint {shown + 1} of {len(texts)}; run again with the same answer for the next)"
            if shown + 1 < len(texts)
            else ""
        )
        if isinstance(answer, _Blank):
            message = f"not answered yet: {self.question}\n  hint: {text}\n  replace ___ with your answer"
            if self.reveal and self.name in self.key:
                message += f"\n  answer (--lm-reveal): {self.key[self.name]!r}"
            raise NotAnswered(message)
        raise WrongAnswer(
            f"not quite: you answered {answer!r}, but the model does otherwise.\n  question: {self.question}\n  hint: {text}"
        )

    def _remember(self, answer: str | None) -> int:
        """How many runs in a row this answer has failed (1 for a new one); None forgets (a solved exercise)."""
        if self.memory is None:
            return 1
        key = f"lmbehave/exercises/{self.name}"
        previous = self.memory.get(key, None) or {}
        tries = int(previous.get("tries", 0)) + 1 if previous.get("answer") == answer else 1
        self.memory.set(key, None if answer is None else {"answer": answer, "tries": tries})
        return tries

    def _log(self, actual: Any, texts: list[str]) -> None:
        path = os.environ.get(HINTS_LOG)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"name": self.name, "question": self.question, "hints": texts}) + "\n")


def is_exercise(item: pytest.Item) -> bool:
    return "exercise" in getattr(item, "fixturenames", ())


class ExerciseProgress:
    """Counts solved exercises (from the reports of tests that use ``exercise``, so it works under xdist) and names
    the next one, in document order."""

    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[str, int, str]] = {}

    def add(self, report: pytest.TestReport) -> None:
        failed = report.failed or (report.when == "call" and not report.passed)
        previous = self.outcomes.get(report.nodeid, ("passed", 0, ""))[0]
        state = "failed" if failed or previous == "failed" else "passed"
        if report.when == "call" or failed:
            self.outcomes[report.nodeid] = (state, report.location[1] or 0, report.location[0])

    def closing_line(self, config: pytest.Config) -> None:
        # After pytest's own closing line, so it is the last thing a student reads.
        terminalreporter = config.pluginmanager.getplugin("terminalreporter")
        if not self.outcomes or terminalreporter is None or hasattr(config, "workerinput"):
            return

        ordered = sorted(self.outcomes.items(), key=lambda kv: (kv[1][2], kv[1][1]))
        solved = sum(1 for _, (state, _, _) in ordered if state == "passed")
        pending = [nodeid for nodeid, (state, _, _) in ordered if state != "passed"]
        line = f"exercises: {solved}/{len(ordered)} solved"
        line += f" — next: {pending[0]}" if pending else " — all done"
        terminalreporter.write_sep("=", line, bold=True)


def exercise_for(request: pytest.FixtureRequest) -> Exercise:
    item = request.node
    function = getattr(item, "function", None)
    doc = getattr(function, "__doc__", None) or item.name
    question = " ".join(line.strip() for line in doc.strip().splitlines())

    key = load_key(Path(str(item.path)).parent)
    config = request.config
    return Exercise(
        item.originalname if hasattr(item, "originalname") else item.name,
        question,
        key,
        bool(config.getoption("lm_answer_key")),
        bool(config.getoption("lm_reveal")),
        getattr(config, "cache", None),
    )
