"""Each invariant with the broken stack it catches: every check passes on a working stack and fails on its own
negative control (``tests/broken_stacks.py``), and no two invariants share a control."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_lmbehave.api.invariants import INVARIANTS
from pytest_lmbehave.api.lm import LM
from pytest_lmbehave.config.errors import BackendUnavailable
from pytest_lmbehave.runtime.runtime import Runtime
from tests.broken_stacks import CONTROLS, SHOWN_ON

HEALTHY = "llama"


def test_there_are_at_least_30_invariants_each_with_a_control_of_its_own() -> None:
    controls = [invariant.control for invariant in INVARIANTS.values()]
    assert len(INVARIANTS) >= 30
    assert len(set(controls)) == len(controls), "two invariants share a negative control"
    assert set(controls) == set(CONTROLS), "every control is built in tests/broken_stacks.py, and only those"


def shown_on(name: str) -> str:
    return SHOWN_ON.get(INVARIANTS[name].control, HEALTHY)


@pytest.mark.parametrize("name", list(INVARIANTS))
def test_each_invariant_fails_on_its_negative_control_and_holds_on_the_working_stack(
    name: str, matrix_backend: Any
) -> None:
    invariant = INVARIANTS[name]
    inner = matrix_backend(shown_on(name))
    invariant.check(LM(Runtime(inner)))  # the working stack holds it
    broken = CONTROLS[invariant.control](inner)
    with pytest.raises(AssertionError):
        invariant.check(broken)


def test_the_docs_list_every_invariant_with_its_statement_and_control() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "explanation" / "kinds.md").read_text(encoding="utf-8")
    for invariant in INVARIANTS.values():
        row = f"| `{invariant.name}` | {invariant.statement} | {invariant.why} | `{invariant.control}` |"
        assert row in readme, f"docs/explanation/kinds.md's table of invariants lacks or misstates {invariant.name}"


def test_an_invariant_a_backend_cannot_answer_says_why(matrix_backend: Any) -> None:
    class NoContext:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        context = 0

    lm = LM(Runtime(NoContext(matrix_backend(HEALTHY))))  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable, match="does not say how long its context is"):
        INVARIANTS["beyond-the-context-is-refused"].check(lm)
