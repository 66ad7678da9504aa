"""The memo's budget for whole distributions: the least recently used let go first, and one let go read again to
the same bits, alone or in its planned batch."""

from __future__ import annotations

import numpy
import pytest

from pytest_lmbehave.runtime import memo, plan
from pytest_lmbehave.runtime.memo import Memo
from pytest_lmbehave.runtime.runtime import Runtime

# Four prompts of one length: one planned batch (plan.groups), read in one pass.
PROMPTS = [(5, 6, 7, 8, 9), (5, 6, 7, 8, 10), (11, 12, 13, 14, 15), (20, 21, 22, 23, 24)]


def distribution(mb: float) -> numpy.ndarray:
    return numpy.zeros(int(mb * 2**20) // 4, dtype=numpy.float32)


def test_a_memo_over_its_budget_lets_the_least_recently_used_distribution_go() -> None:
    kept = Memo(budget_mb=2)
    kept.put(("next_token", 1), distribution(1))
    kept.put(("next_token", 2), distribution(1))
    assert kept.get(("next_token", 1)) is not None  # 1 is now the most recently used
    kept.put(("next_token", 3), distribution(1))
    assert ("next_token", 2) not in kept
    assert ("next_token", 1) in kept and ("next_token", 3) in kept
    assert kept.held == 2 * 2**20 and kept.stats["let go"] == 1


def test_a_memo_keeps_light_results_and_the_newest_heavy_one_whatever_its_budget() -> None:
    kept = Memo(budget_mb=0)
    kept.put(("generation", 1), ("a generation", 5))
    kept.put(("next_token", 2), distribution(3))
    kept.put(("next_token", 3), distribution(3))
    assert ("generation", 1) in kept and ("next_token", 3) in kept
    assert ("next_token", 2) not in kept


def test_a_memo_lets_a_result_the_plan_still_owes_go_only_when_every_other_is_owed_too() -> None:
    kept = Memo(budget_mb=3)
    kept.owe([("next_token", 1), ("next_token", 1), ("next_token", 2)])  # two tests ask 1, one asks 2
    kept.put(("next_token", 1), distribution(1))  # computed with its batch, before any test asked
    kept.put(("next_token", 2), distribution(1))
    kept.asked(("next_token", 1))
    kept.put(("next_token", 3), distribution(1))  # no test's
    kept.put(("next_token", 4), distribution(1))  # over the budget: 3 goes before the older, owed 1 and 2
    assert ("next_token", 3) not in kept
    assert all(("next_token", k) in kept for k in (1, 2, 4))
    kept.asked(("next_token", 1))  # asked as often as planned: 1 may go now, and as the least recent it does
    kept.put(("next_token", 5), distribution(1))
    assert ("next_token", 1) not in kept and ("next_token", 2) in kept
    assert kept.stats["let go"] == 2
    owing = Memo(budget_mb=1)
    owing.owe([("next_token", 1), ("next_token", 2)])
    owing.put(("next_token", 1), distribution(1))
    owing.put(("next_token", 2), distribution(1))  # all owed: the least recent goes, never the newest
    assert ("next_token", 1) not in owing and ("next_token", 2) in owing


def test_a_result_counted_twice_is_held_once() -> None:
    kept = Memo(budget_mb=8)
    kept.put(("forced", 1), [distribution(1), distribution(1)])
    kept.put(("forced", 1), [distribution(1), distribution(1)])
    assert kept.held == 2 * 2**20


def bits(runtime: Runtime) -> list[bytes]:
    return [d.values.tobytes() for d in runtime.next_tokens(PROMPTS)]


@pytest.fixture
def starved(tiny_runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:  # type: ignore[no-untyped-def]
    """A runtime on the tiny model whose memo holds one distribution (the tiny model's 300 entries count as heavy)."""
    monkeypatch.setattr(memo, "HEAVY", 1)
    runtime = Runtime(tiny_runtime.backend)
    runtime.memo.budget = 0
    return runtime


def test_a_distribution_let_go_is_read_again_to_the_same_bits(tiny_runtime, starved: Runtime) -> None:  # type: ignore[no-untyped-def]
    first = bits(starved)
    assert bits(starved) == first == bits(Runtime(tiny_runtime.backend))
    assert starved.stats["let go"] >= len(PROMPTS) and starved.stats["computed"] == 2 * len(PROMPTS)


def test_a_planned_distribution_let_go_is_read_again_in_its_own_batch(tiny_runtime, starved: Runtime) -> None:  # type: ignore[no-untyped-def]
    asks = [plan.Ask.of("next_token", p) for p in PROMPTS]
    planned = Runtime(tiny_runtime.backend)
    planned.use_plan(asks)
    batch = bits(planned)
    starved.use_plan(asks)
    assert bits(starved) == batch and bits(starved) == batch
    # The memo holds the batch's last row; each of the other 3 questions, in each of 2 rounds, found its answer let
    # go and settled the whole batch again (4 rows computed), never its own row alone.
    assert starved.stats["computed"] == 2 * (len(PROMPTS) - 1) * len(PROMPTS)
