"""Pass rates: the three-way decision, its sequential looks, its measured error rates and power, the test of a rate
against a recorded one, and ``lm.rate`` on a tiny model.

The error rates are measured by simulation (binomial draws from a known true rate), as docs/explanation/statistics.md states them:
- a wrong decision at α = 0.01, the worst case being a true rate exactly at the bound, where both pass and fail are
  wrong: measured 5 and 7 of 1,000 sequential runs (``>=`` and ``<=``); the test allows what α allows, 21 of 1,000
  (the binomial's 99.9 % point);
- power: a true rate of 95 % held to ``>= 0.9`` passes, and 85 % fails, in at least 95 % of runs of at most 2,000
  draws (measured 500 and 500 of 500), after 494 and 669 draws on average; 92 % passes in only 240 of 500 (the rest
  inconclusive: near its bound a rate needs more draws, and the decision says how many);
- Fisher's test of a rate against a recorded one, 2,000 draws each: 6 false alarms in 500 (13 allowed), power 486 of
  500 for 85 % against 90 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from pytest_lmbehave import LM, InputError, Rate, SequentialRate
from pytest_lmbehave.observations import rates

RUNS = 1000
ALLOWED = int(binom.ppf(0.999, RUNS, rates.ALPHA))  # what α allows in RUNS runs, with a 1-in-1000 margin


def simulated(
    true_rate: float, n: int, bound: float, above: bool, runs: int, seed: int
) -> tuple[dict[str, int], float]:
    """Each outcome's count over ``runs`` sequential decisions on binomial draws, and the mean draws taken."""
    rng = np.random.default_rng(seed)
    outcomes = {rates.PASS: 0, rates.FAIL: 0, rates.INCONCLUSIVE: 0}
    taken = 0
    for _ in range(runs):
        rate = SequentialRate(lambda k: int(rng.binomial(k, true_rate)), n)
        outcomes[rate.decide(bound, above).outcome] += 1
        assert rate.last is not None
        taken += rate.last.n
    return outcomes, taken / runs


def test_a_rate_decides_pass_fail_or_inconclusive_from_its_exact_interval() -> None:
    assert (Rate(195, 200) >= 0.9).outcome == rates.PASS
    assert (Rate(150, 200) >= 0.9).outcome == rates.FAIL
    undecided = Rate(171, 200) >= 0.9
    assert undecided.outcome == rates.INCONCLUSIVE and not undecided
    assert "about 207 more draws would decide" in str(undecided)
    assert (Rate(3, 200) <= 0.1) and (Rate(3, 200) < 0.1).outcome == rates.PASS
    assert str(Rate(171, 200)) == "171/200 = 85.5 % [78.0 %, 91.3 %] (99 % Clopper-Pearson)"


def test_the_sequential_rule_looks_at_doubling_counts_and_always_at_n() -> None:
    assert rates.looks(2000) == [50, 100, 200, 400, 800, 1600, 2000]
    assert rates.looks(30) == [30] and rates.looks(100) == [50, 100]


def test_at_its_bound_a_rate_is_wrongly_decided_no_more_often_than_alpha_allows() -> None:
    for above, seed in ((True, 1), (False, 2)):
        outcomes, _ = simulated(0.9, 2000, 0.9, above, RUNS, seed)
        # At the bound both decisions are wrong: passing claims a side, and so does failing.
        assert outcomes[rates.PASS] + outcomes[rates.FAIL] <= ALLOWED, outcomes


def test_a_clear_rate_passes_and_a_clearly_wrong_one_fails_with_at_least_95_percent_power_stopping_early() -> None:
    good, good_draws = simulated(0.95, 2000, 0.9, True, 500, 3)
    bad, bad_draws = simulated(0.85, 2000, 0.9, True, 500, 4)
    assert good[rates.PASS] >= 0.95 * 500 and good[rates.FAIL] == 0, good
    assert bad[rates.FAIL] >= 0.95 * 500 and bad[rates.PASS] == 0, bad  # the negative control: it can fail
    assert good_draws < 1000 and bad_draws < 1000  # the rule stops once it decides (measured 494 and 669)


def test_a_rate_moved_from_its_recording_is_caught_at_alpha_and_an_unmoved_one_is_not() -> None:
    rng = np.random.default_rng(5)
    same = sum(
        Rate(int(rng.binomial(2000, 0.9)), 2000).moved_from(Rate(int(rng.binomial(2000, 0.9)), 2000))[0]
        for _ in range(500)
    )
    moved = sum(
        Rate(int(rng.binomial(2000, 0.85)), 2000).moved_from(Rate(int(rng.binomial(2000, 0.9)), 2000))[0]
        for _ in range(500)
    )
    assert same <= int(binom.ppf(0.999, 500, rates.ALPHA)) and moved >= 0.95 * 500, (same, moved)


def test_a_rate_refuses_a_bound_outside_zero_to_one_and_impossible_counts() -> None:
    with pytest.raises(InputError, match="proportion from 0 to 1"):
        _ = Rate(1, 2) >= 90
    with pytest.raises(InputError, match="0 <= successes <= n"):
        Rate(3, 2)


def test_a_failed_rate_assertion_explains_the_decision_and_the_draws_it_took() -> None:
    rate = SequentialRate(lambda k: k // 2, 400, "half")
    assert not (rate >= 0.9)
    lines = rates.explain(">=", rate, 0.9)
    assert lines is not None and lines[0] == "FAIL: rate >= 0.9"
    assert any("stopped after 50 of at most 400 draws" in line for line in lines)
    assert rates.explain("==", rate, 0.9) is None


@pytest.fixture
def lm(tiny_runtime) -> LM:  # type: ignore[no-untyped-def]
    return LM(tiny_runtime, seed=11)


def test_lm_rate_counts_a_predicate_over_draws_and_stops_once_it_decides(lm: LM) -> None:
    sampled = lm.with_sampling(temperature=1.0)
    always = sampled.rate("Shakespeare was a", lambda text: True, n=2000)
    assert always >= 0.8 and always.last is not None and always.last.n == 50
    first = sampled.next_token("Shakespeare was a").argmax
    never = sampled.with_sampling(temperature=1.0, top_k=1).rate("Shakespeare was a", lambda text: text != first, 100)
    assert (never >= 0.5).outcome == rates.FAIL
    longer = sampled.rate("Shakespeare was a", lambda text: len(text) > 0, n=60, tokens=3)
    assert longer >= 0.5 and longer.last is not None and longer.last.n == 50


def test_lm_rate_refuses_a_greedy_handle_and_a_predicate_that_is_not_a_truth(lm: LM) -> None:
    with pytest.raises(InputError, match="decodes greedily"):
        lm.rate("Shakespeare was a", lambda text: True)
    with pytest.raises(InputError, match="must return True or False"):
        _ = lm.with_sampling(temperature=1.0).rate("Shakespeare was a", lambda text: text, n=50) >= 0.5  # type: ignore[arg-type,return-value]
    with pytest.raises(InputError, match="tokens=0"):
        lm.with_sampling(temperature=1.0).rate("Shakespeare was a", lambda text: True, tokens=0)


def test_the_interval_is_scipys_clopper_pearson() -> None:
    from scipy.stats import binomtest

    for successes, n in ((0, 50), (171, 200), (200, 200), (7, 1600)):
        found = binomtest(successes, n).proportion_ci(confidence_level=0.99, method="exact")
        assert Rate(successes, n).interval == pytest.approx((found.low, found.high), abs=1e-9)
