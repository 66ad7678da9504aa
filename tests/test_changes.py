"""Behaviour under change: templates, perturbations, the judgement of one change over distributions, a capability's
failure rate with its interval, the rate's record held by a two-proportion test, and the run's summary."""

from __future__ import annotations

import math
import re

import numpy
import pytest

from pytest_lmbehave import InputError, expand, perturbations
from pytest_lmbehave.backends.vocabulary import Vocabulary
from pytest_lmbehave.observations import changes, next_token
from pytest_lmbehave.observations.next_token import Distribution
from pytest_lmbehave.observations.verdict import RATE, Tolerances, compare

PIECES = (" good", " bad", " maybe", " writer", " poet")
VOCABULARY = Vocabulary(PIECES, {p: i for i, p in enumerate(PIECES)})


def dist(*probs: float, prompt: str = "p", ids: tuple[int, ...] = (1, 2)) -> Distribution:
    values = numpy.log(numpy.array(probs, dtype=numpy.float32) / sum(probs)).astype(numpy.float32)
    return Distribution(prompt, values, VOCABULARY, ids)


CHANGE = perturbations.Change("a review", "a reveiw", "typo", "'review' -> 'reveiw'")


# -- cases and perturbations --------------------------------------------------------------------------------------
def test_expand_fills_every_combination_in_a_fixed_order_and_counts_them_in_the_ids() -> None:
    cases = expand("{name} was a great {role}", name=["Ada", "Wei"], role=["poet", "writer", "actor"])
    assert [c.text for c in cases][:2] == ["Ada was a great poet", "Ada was a great writer"]
    assert [c.id for c in cases][-1] == "name=Wei,role=actor (6 of 6)"
    assert cases[4]["name"] == "Wei" and cases == expand(
        "{name} was a great {role}", name=["Ada", "Wei"], role=["poet", "writer", "actor"]
    )


def test_expand_names_a_missing_lexicon_and_an_unused_one() -> None:
    with pytest.raises(InputError, match=r"no lexicon for role \(pass role=\[...\]\).*city is not a field"):
        expand("{name} was a {role}", name=["Ada"], city=["Paris"])


@pytest.mark.parametrize(
    ("make", "family"),
    [
        (lambda t, s: perturbations.typo(t, s), "typo"),
        (lambda t, s: perturbations.whitespace(t, "inside", s), "whitespace"),
        (lambda t, s: perturbations.punctuation(t, s), "punctuation"),
        (lambda t, s: perturbations.case(t, s), "case"),
    ],
)
def test_each_perturbation_is_deterministic_by_seed_and_changes_the_text(make, family: str) -> None:  # type: ignore[no-untyped-def]
    text = "I loved the story, and the music was great."
    first, again = make(text, 3), make(text, 3)
    assert first == again and first.variant != text and first.family == family and first.base == text


def test_a_typo_swaps_two_letters_of_one_word_and_says_which() -> None:
    change = perturbations.typo("Shakespeare was a", 0)
    assert sorted(change.variant) == sorted(change.base) and change.variant != change.base
    changed = [w for w, v in zip(change.base.split(), change.variant.split()) if w != v]
    assert len(changed) == 1 and changed[0] in change.detail


def test_within_keeps_a_perturbation_inside_the_part_it_names() -> None:
    prompt = "Examples: Game was fun.\nReview: the story is long\nDecision:"
    for seed in range(6):
        change = perturbations.typo(prompt, seed, within="the story is long")
        assert change.variant.startswith("Examples: Game was fun.\nReview: ") and change.variant.endswith("\nDecision:")


def test_reorder_moves_the_examples_and_keeps_the_text_around_them() -> None:
    examples = "\nA: good\n\nB: bad\n\nC: good\n"
    change = perturbations.reorder("intro" + examples + "tail", 0, within=examples)
    assert change.variant.startswith("intro\n") and change.variant.endswith("\ntail")
    assert change.variant != change.base and sorted(change.variant.split("\n")) == sorted(change.base.split("\n"))


def test_negate_adds_a_not_or_a_did_not_and_refuses_a_text_it_cannot_negate() -> None:
    assert perturbations.negate("The game is fun.").variant == "The game is not fun."
    assert perturbations.negate("I loved the music.").variant == "I did not love the music."
    with pytest.raises(InputError, match="write the negated text yourself"):
        perturbations.negate("Fun game.")


def test_a_perturbation_with_nothing_to_change_says_so() -> None:
    with pytest.raises(InputError, match="no word of four letters or more"):
        perturbations.typo("a b c")
    with pytest.raises(InputError, match="does not occur"):
        perturbations.swap("Ada wrote", "Wei", "Ada")


# -- one change judged --------------------------------------------------------------------------------------------
def test_a_label_that_holds_with_a_small_kl_is_invariant() -> None:
    outcome = changes.invariance(CHANGE, dist(6, 3, 1, 1, 1), dist(5, 3, 1, 1, 1), labels=(" good", " bad"))
    assert outcome.verdict == changes.HELD and outcome.measured < 0.01


def test_a_flipped_label_with_a_clear_margin_is_broken_and_shows_both_sides_and_the_tokens() -> None:
    base, variant = dist(6, 3, 1, 1, 1, ids=(1, 2, 3)), dist(3, 6, 1, 1, 1, ids=(1, 4, 3))
    outcome = changes.invariance(CHANGE, base, variant, labels=(" good", " bad"))
    text = "\n".join(outcome.lines)
    assert outcome.verdict == changes.BROKEN
    assert "the label changed: ' good' -> ' bad'" in text and "base margin 0.6931" in text
    assert "base    top: ' good' 0.6667, ' bad' 0.3333" in text and "variant tokens: ' bad' ' poet' ' writer'" in text


def test_a_flip_of_a_near_tie_is_a_warning_not_a_failure_by_the_projects_rule() -> None:
    outcome = changes.invariance(CHANGE, dist(1.02, 1, 1, 1, 1), dist(1, 1.2, 1, 1, 1), labels=(" good", " bad"))
    assert outcome.verdict == changes.NEAR_TIE and "NEAR-TIE" in outcome.lines[1]
    # The dtype's measured noise raises the threshold: a flip within bfloat16's noise is a near tie too.
    wider = changes.invariance(CHANGE, dist(1.2, 1, 1, 1, 1), dist(1, 1.2, 1, 1, 1), labels=(" good", " bad"))
    assert wider.verdict == changes.BROKEN
    noisy = changes.invariance(CHANGE, dist(1.2, 1, 1, 1, 1), dist(1, 1.2, 1, 1, 1), (" good", " bad"), noise=0.25)
    assert noisy.verdict == changes.NEAR_TIE


def test_a_kl_over_its_bound_breaks_invariance_even_when_the_top_holds() -> None:
    outcome = changes.invariance(CHANGE, dist(5, 1, 1, 1, 1), dist(5, 4, 4, 1, 1), max_kl=0.1)
    assert outcome.verdict == changes.BROKEN and "exceeds the bound 0.1" in "\n".join(outcome.lines)


def test_the_in_process_kl_is_the_full_vocabulary_kl_to_1e_6() -> None:
    p, q = numpy.array([5, 1, 1, 2, 1.0]), numpy.array([4, 2, 1, 1, 2.0])
    p, q = p / p.sum(), q / q.sum()
    exact = float((p * numpy.log(p / q)).sum())
    found, over = changes.kl(dist(*p), dist(*q))
    assert abs(found - exact) < 1e-6 and over == next_token.EXACT


def test_a_kl_from_a_servers_top_candidates_says_it_is_a_lower_bound() -> None:
    base = dist(5, 1, 1, 2, 1)
    served = Distribution("p", base.values.copy(), VOCABULARY, (1,), known=2)
    found, over = changes.kl(served, dist(4, 2, 1, 1, 2))
    assert next_token.LOWER_BOUND in over and found >= 0


def test_a_direction_holds_when_the_label_moves_the_stated_way_by_at_least_by() -> None:
    up = changes.direction(CHANGE, dist(8, 2, 1, 1, 1), dist(5, 5, 1, 1, 1), " bad", labels=(" good", " bad"))
    assert up.verdict == changes.HELD and math.isclose(up.measured, 0.3, abs_tol=1e-6)
    short = changes.direction(CHANGE, dist(8, 2, 1, 1, 1), dist(7.8, 2.2, 1, 1, 1), " bad", labels=(" good", " bad"))
    assert short.verdict == changes.BROKEN and "expected to rise by at least 0.05" in short.lines[1]


def test_a_direction_within_the_dtypes_noise_floor_does_not_count() -> None:
    moved = changes.direction(
        CHANGE, dist(8, 2, 1, 1, 1), dist(7, 3, 1, 1, 1), " bad", (True), 0.05, (" good", " bad"), noise=0.25
    )
    assert moved.verdict == changes.BROKEN and "raised from 0.05 to the noise floor 0.221" in moved.lines[1]


# -- a capability's rate, its record and its verdict --------------------------------------------------------------
def capability(failures: int, n: int) -> changes.Capability:
    held = changes.invariance(CHANGE, dist(6, 3, 1, 1, 1), dist(6, 3, 1, 1, 1), labels=(" good", " bad"))
    broken = changes.invariance(CHANGE, dist(6, 3, 1, 1, 1), dist(3, 6, 1, 1, 1), labels=(" good", " bad"))
    return changes.Capability("name invariance", changes.INVARIANT, (broken,) * failures + (held,) * (n - failures))


def test_a_capability_prints_its_failure_rate_with_scipys_exact_interval() -> None:
    from scipy.stats import binomtest

    low, high = binomtest(3, 40).proportion_ci(0.99, method="exact")
    assert capability(3, 40).line() == f"name invariance: 3/40 fail, 7.5 % [{100 * low:.1f} %, {100 * high:.1f} %]"


def test_a_capabilitys_rate_held_to_a_bound_passes_fails_or_is_inconclusive() -> None:
    assert (capability(0, 40).rate <= 0.2).outcome == "pass"
    assert (capability(30, 40).rate <= 0.2).outcome == "fail"
    assert (capability(6, 40).rate <= 0.2).outcome == "inconclusive"


def test_a_record_whose_rate_was_altered_by_hand_fails_and_says_by_how_much() -> None:
    now = changes.record(capability(2, 40), 5)
    recorded = {**now, "failures": 14}
    found = compare(recorded, now, Tolerances())
    assert [d.kind for d in found] == [RATE]
    assert re.search(
        r"failure rate 14/40 = 35.0 % recorded, 2/40 = 5.0 % now: -30.0 points \(Fisher's exact p=0.00", found[0].text
    )


def test_a_case_whose_verdict_moved_with_a_clear_margin_fails_where_the_rate_test_alone_would_pass() -> None:
    """One model's cases are deterministic: 2/40 recorded and 3/40 now is no move of the rate (Fisher's p = 1), but
    the case that fails now held then, and it was no near tie."""
    now = changes.record(capability(3, 40), 5)
    recorded = {**now, "failures": 2, "failed": now["failed"][:2]}
    (found,) = compare(recorded, now, Tolerances())
    assert "Fisher's exact p=1, >= α=0.01" in found.text
    assert f"failing now, held when recorded: {now['failed'][0]}" in found.text


def test_a_case_both_runs_read_within_the_noise_may_land_either_way_but_not_one_read_so_once() -> None:
    """The near-tie rule's 'both margins': noise turns a case over only where both runs read it near its bound."""
    now = changes.record(capability(3, 40), 5)
    case = now["failed"][0]
    recorded = {**now, "failures": 2, "failed": now["failed"][:2], "within_noise": [case]}
    assert compare(recorded, {**now, "within_noise": [case]}, Tolerances()) == []
    assert compare({**now, "within_noise": [case]}, recorded, Tolerances()) == []
    (found,) = compare(recorded, now, Tolerances())  # read clear of its bound today: a change
    assert f"failing now, held when recorded: {case}" in found.text


def test_a_case_is_within_the_noise_where_a_margin_is_under_the_near_tie_threshold_or_a_move_near_its_bound() -> None:
    clear, close = dist(6, 3, 1, 1, 1), dist(6, 5.99, 1, 1, 1)
    assert not changes.invariance(CHANGE, clear, clear, labels=(" good", " bad")).within_noise
    assert changes.invariance(CHANGE, clear, close, labels=(" good", " bad")).within_noise  # the variant's margin
    assert changes.invariance(CHANGE, close, clear, labels=(" good", " bad")).within_noise  # the base's margin
    held = changes.invariance(CHANGE, clear, clear, labels=(" good", " bad"), max_kl=1e-4)
    assert held.verdict == changes.HELD and held.within_noise  # a KL of 0 within the tolerance (1e-3) of its bound
    assert changes.record(changes.Capability("c", changes.INVARIANT, (held,)), 5)["within_noise"] == [held.id]
    labels = (" good", " bad")
    assert not changes.direction(CHANGE, dist(8, 2, 1, 1, 1), dist(5, 5, 1, 1, 1), " bad", labels=labels).within_noise
    edge = changes.direction(CHANGE, dist(8, 2, 1, 1, 1), dist(7.4995, 2.5005, 1, 1, 1), " bad", labels=labels)
    assert edge.verdict == changes.HELD and edge.within_noise  # 0.05005 against 0.05: within the tolerance (1e-3)
    bf16 = changes.direction(CHANGE, dist(8, 2, 1, 1, 1), dist(7, 3, 1, 1, 1), " bad", labels=labels, noise=0.25)
    assert bf16.verdict == changes.BROKEN and bf16.within_noise  # 0.1 against 0.221: within bfloat16's noise


def test_a_failure_count_altered_by_hand_within_fishers_alpha_still_fails_naming_the_count() -> None:
    now = changes.record(capability(3, 40), 5)
    (found,) = compare({**now, "failures": 5}, now, Tolerances())
    assert "2 fewer failures than recorded, beyond the 0 case(s) both runs read within the noise" in found.text


def test_other_cases_than_recorded_are_a_difference_with_the_fix() -> None:
    now = changes.record(capability(3, 40), 5)
    (found,) = compare({**now, "n": 30}, now, Tolerances())
    assert "30 cases recorded, 40 now" in found.text and "--snapshot-update" in found.text


def test_lmbehave_diff_prints_one_table_of_capability_rates_before_and_after() -> None:
    before, after = changes.record(capability(2, 40), 5), changes.record(capability(14, 40), 5)
    lines = changes.summary([(before, after)])
    assert lines[0] == "capability failure rates:" and "2/40 = 5.0 %" in lines[2] and "14/40 = 35.0 %" in lines[2]
    assert "yes (Fisher p=" in lines[2]


# -- through pytest, on the tiny model ----------------------------------------------------------------------------
SOURCE = """
from pytest_lmbehave import assert_invariant, perturbations

TEXTS = ["hello hello world", "the model predicts the next token", "Shakespeare was a great writer"]

def test_capability(lm, lm_snapshot):
    cap = lm.invariance("typo invariance", [perturbations.typo(t, s) for t in TEXTS for s in range(3)])
    assert cap == lm_snapshot

def test_one_case(lm):
    assert_invariant(lm, "hello hello world", "hello hello world", max_kl=1e-6)
"""


def test_a_capabilitys_rate_is_recorded_printed_at_the_end_and_held_to_its_record(
    run_with_tiny, pytester: pytest.Pytester
) -> None:  # type: ignore[no-untyped-def]
    run_with_tiny(SOURCE, "--snapshot-update").assert_outcomes(passed=2)
    (path,) = (pytester.path / "__lm_snapshots__" / "tiny-llama").glob("*.ambr")
    text = path.read_text()
    assert 'kind: "capability"' in text and "n: 9" in text
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*behaviour under change*", "typo invariance: */9 fail, *[[]*]*"])
    failures = int(re.search(r"^  failures: (\d+)$", text, flags=re.M).group(1))  # type: ignore[union-attr]
    path.write_text(re.sub(r"^  failures: \d+$", f"  failures: {9 if failures < 5 else 0}", text, flags=re.M))
    altered = run_with_tiny(SOURCE)
    altered.assert_outcomes(passed=1, failed=1)
    altered.stdout.fnmatch_lines(["*failure rate * recorded, * now: * points (Fisher's exact p=*"])


def test_assert_failure_rate_passes_fails_with_the_cases_or_skips_as_inconclusive_saying_how_many_more() -> None:
    from pytest_lmbehave import assert_failure_rate

    assert_failure_rate(capability(0, 40), at_most=0.2)
    with pytest.raises(AssertionError, match=r"fail: the whole interval lies above the bound(.|\n)*typo: 'review'"):
        assert_failure_rate(capability(30, 40), at_most=0.2)
    with pytest.raises(pytest.skip.Exception, match=r"inconclusive: .* more cases would decide"):
        assert_failure_rate(capability(6, 40), at_most=0.2)
    with pytest.raises(InputError, match="pass one bound"):
        assert_failure_rate(capability(6, 40))
