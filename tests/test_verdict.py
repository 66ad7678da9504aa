"""The one comparison: the near-tie rule, every recorded row and new entrant, margins, teacher-forced localisation,
and the snapshot extension and `lmbehave diff` agreeing on every case because they share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_lmbehave.observations import verdict
from pytest_lmbehave.observations.verdict import StepCheck, Tolerances, compare, is_near_tie
from pytest_lmbehave.plugin.snapshots import LMSnapshotExtension
from pytest_lmbehave.reports.drift import Thresholds, compare_records

TOP = [[" master", 7, 0.25], [" prolific", 8, 0.0433], [" great", 9, 0.0278]]


def next_token(argmax: str = " master", margin: float = 1.75, top: list[list[Any]] | None = None) -> dict[str, Any]:
    return {"kind": "next_token", "prompt": "Shakespeare was a", "argmax": argmax, "margin": margin, "top": top or TOP}


def generation(ids: list[int], margins: list[float], sampling: str = "greedy") -> dict[str, Any]:
    return {
        "kind": "generation",
        "prompt": "p",
        "sampling": sampling,
        "seed": None,
        "text": "".join(f"<{i}>" for i in ids),
        "ids": ids,
        "margins": margins,
    }


def choice(best: str, margin: float, scores: list[float]) -> dict[str, Any]:
    return {
        "kind": "choice",
        "prompt": "p",
        "options": [" good", " bad"],
        "best": best,
        "scores": scores,
        "margin": margin,
    }


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [(3.0, 0.01, False), (0.01, 3.0, False), (0.01, 0.02, True), (None, 0.01, False), (0.01, None, False)],
    ids=["confident-then-close", "close-then-clear", "both-close", "unrecorded", "unknown-now"],
)
def test_a_flip_is_a_near_tie_only_when_both_margins_are_below_the_threshold(
    old: float | None, new: float | None, expected: bool
) -> None:
    assert is_near_tie(old, new, 0.05) is expected


def test_a_confident_top_token_that_now_loses_by_a_hair_is_a_real_change() -> None:
    old = next_token(" master", 3.0)
    new = next_token(" prolific", 0.01, [[" prolific", 8, 0.2502], [" master", 7, 0.25], [" great", 9, 0.0278]])
    [flip, *_] = compare(old, new, Tolerances())
    assert flip.kind == verdict.TOP1 and not flip.near_tie
    assert (flip.old_margin, flip.new_margin) == (3.0, 0.01)
    assert "margin 3.0000 recorded, 0.0100 now: recorded with a clear margin" in flip.text
    assert "' master' now has p=0.25 at rank 2" in flip.text


def test_a_new_candidate_inserted_at_rank_2_is_a_difference() -> None:
    inserted = [TOP[0], [" new", 42, 0.20], TOP[1]]
    [entrant] = compare(next_token(), next_token(top=inserted), Tolerances())
    assert entrant.kind == verdict.ENTRANT and "' new' (42) entered the top 3 with p=0.2" in entrant.text
    # " great" (p=0.0278) was pushed below the new last row (0.0433) without moving: no difference of its own.


def test_a_margin_that_moved_beyond_the_tolerance_is_reported_without_a_flip() -> None:
    [moved] = compare(next_token(margin=1.75), next_token(margin=1.76), Tolerances())
    assert moved.kind == verdict.MARGIN and moved.size == pytest.approx(0.01)
    assert compare(next_token(margin=1.75), next_token(margin=1.7505), Tolerances()) == []


def test_generation_margins_allow_for_their_three_decimal_rounding() -> None:
    assert compare(generation([1, 2], [0.5, 0.6]), generation([1, 2], [0.501, 0.6]), Tolerances()) == []
    [moved] = compare(generation([1, 2], [0.5, 0.6]), generation([1, 2], [0.5, 0.61]), Tolerances())
    assert moved.kind == verdict.MARGIN and moved.step == 1


def fake_teacher(argmaxes: list[int]) -> verdict.Teacher:
    """Today's argmax at each step of the recorded continuation; a recorded token off it trails by 0.01 nats."""

    def teacher(prompt: str, ids: Sequence[int]) -> list[StepCheck]:
        return [
            StepCheck(token, best, -1.0, 1 if token == best else 2, 0.0 if token == best else 0.01)
            for token, best in zip(ids, argmaxes)
        ]

    return teacher


def test_teacher_forcing_turns_a_near_tie_with_a_following_rest_into_a_near_tie() -> None:
    old, new = generation([1, 2, 3, 4], [2.0, 0.01, 2.0, 2.0]), generation([1, 5, 6, 7], [2.0, 0.02, 1.0, 1.0])
    [diff] = compare(old, new, Tolerances(), fake_teacher([1, 5, 3, 4]))
    assert diff.near_tie and diff.step == 1 and diff.details["rest_follows"] is True
    assert "only this step changed: the rest of the recorded continuation still follows" in diff.text


def test_teacher_forcing_names_later_steps_that_no_longer_follow() -> None:
    old, new = generation([1, 2, 3, 4], [2.0, 0.01, 2.0, 2.0]), generation([1, 5, 6, 7], [2.0, 0.02, 1.0, 1.0])
    [diff] = compare(old, new, Tolerances(), fake_teacher([1, 5, 3, 9]))
    assert not diff.near_tie and "also changes at steps 3" in diff.text


def test_a_confident_greedy_divergence_is_a_real_change_whatever_the_rest() -> None:
    old, new = generation([1, 2, 3], [2.0, 3.0, 2.0]), generation([1, 5, 6], [2.0, 0.01, 1.0])
    [diff] = compare(old, new, Tolerances(), fake_teacher([1, 5, 3]))
    assert not diff.near_tie and diff.kind == verdict.GENERATION


CASES = {
    "no change": (next_token(), next_token(), True),
    "confident flip": (next_token(" master", 3.0), next_token(" prolific", 0.01), False),
    "near-tie flip": (next_token(" master", 0.01), next_token(" prolific", 0.02), True),
    "probability moved": (next_token(), next_token(top=[[" master", 7, 0.26], *TOP[1:]]), False),
    "entrant": (next_token(), next_token(top=[TOP[0], [" new", 42, 0.2], TOP[1]]), False),
    "greedy near-tie": (generation([1, 2], [1.0, 0.01]), generation([1, 3], [1.0, 0.02]), True),
    "greedy confident": (generation([1, 2], [2.0, 1.0]), generation([1, 3], [0.02, 1.0]), False),
    "sampled path": (generation([1, 2], [2.0, 1.0], "sampled()"), generation([1, 3], [2.0, 1.0], "sampled()"), False),
    "label near-tie": (choice(" good", 0.0004, [-1.0, -1.0004]), choice(" bad", 0.0002, [-1.0003, -1.0001]), True),
    "label confident": (choice(" good", 1.0, [-1.0, -2.0]), choice(" bad", 0.002, [-1.002, -1.0]), False),
    "scores moved": (choice(" good", 1.0, [-1.0, -2.0]), choice(" good", 1.0, [-1.01, -2.01]), False),
}


@pytest.mark.parametrize(("old", "new", "passes_as_noise"), CASES.values(), ids=CASES.keys())
def test_the_snapshot_extension_and_lmbehave_diff_give_the_same_verdict(
    old: dict[str, Any], new: dict[str, Any], passes_as_noise: bool
) -> None:
    from pytest_lmbehave.plugin.snapshots import extension_for, render_record

    notes: list[str] = []  # a session's pending near-tie notes (NearTieSummary.pending)
    extension = extension_for(
        "model", "", LMSnapshotExtension.tolerance, LMSnapshotExtension.near_tie, False, notes=notes
    )()
    passes = extension.matches(serialized_data=render_record(new), snapshot_data=render_record(old))
    assert bool(notes) == (passes and old != new and passes_as_noise)  # a near-tie that passed is noted
    thresholds = Thresholds(near_tie=extension.near_tie, prob=extension.tolerance, score=extension.tolerance, kl=1e9)
    severities = {c.severity for c in compare_records("t", 0, old, new, thresholds)}
    assert passes == (severities <= {"near-tie"}) == passes_as_noise


def test_a_transcribed_record_holding_only_the_argmax_id_is_compared_on_it() -> None:
    transcribed = {"kind": "next_token", "prompt": "Shakespeare was a", "argmax_id": 1109}  # the document's " great"
    now = {**next_token(" master"), "argmax_id": 4163}
    [flip] = compare(transcribed, now, Tolerances())
    assert flip.kind == verdict.TOP1 and not flip.near_tie and "1109 -> 4163" in flip.text
    assert compare(transcribed, {**now, "argmax_id": 1109}, Tolerances()) == []


def test_lmbehave_diff_judges_a_bfloat16_side_in_bfloat16s_units_as_a_snapshot_does() -> None:
    # The embedded model's "Shakespeare was a" at step 11, float32 against bfloat16 (docs/tutorials/guarding-an-upgrade.md)
    old, new = generation([1, 2], [1.0, 0.053]), generation([1, 3], [1.0, 0.0])
    float32 = {"dtype": "float32", "noise": "1.1e-05", "logit_scale": "16"}
    bfloat16 = {"dtype": "bfloat16", "noise": "0.25", "logit_scale": "16"}
    [change] = compare_records("t", 0, old, new, Thresholds(), (float32, bfloat16))
    assert change.severity == "near-tie" and "bfloat16 steps at |logit| 16-32" in change.summary
    [change] = compare_records("t", 0, old, new, Thresholds(), (float32, float32))
    assert change.severity == "major"  # in float32's units the same flip is a real change
