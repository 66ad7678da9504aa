"""The bench's floor (bench/floor.py): the ideal work counts each shared beginning once, across requests and
processes, and each position the cheapest way it is needed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import floor


def record(questions: list[list[object]], draws: list[list[object]] | None = None) -> dict[str, object]:
    return {"questions": questions, "draws": draws or []}


def test_a_beginning_shared_by_two_processes_is_counted_once() -> None:
    few_shot = [1, 2, 3, 4, 5, 6]
    counts = floor.ideal(
        [
            record([[[*few_shot, 7], 7, "prompt"]]),
            record([[[*few_shot, 8, 9], 8, "prompt"], [[*few_shot, 7], 7, "prompt"]]),
        ]
    )
    assert counts == {"prompt": 9, "forced": 0, "generated": 0, "draws": 0}


def test_a_position_needed_as_a_prompt_and_as_a_generated_token_is_a_prompt_position() -> None:
    generation = [[1, 2, 3, 4], 2, "generated"]  # prompt [1, 2], then 3 and 4 read as generated tokens
    question = [[1, 2, 3], 3, "prompt"]  # a next-token question on the prompt and the first generated token
    scored = [[1, 2, 3, 4, 5], 2, "forced"]
    counts = floor.ideal([record([generation, question, scored])])
    assert counts == {"prompt": 3, "forced": 2, "generated": 0, "draws": 0}  # 4 scored (not generated), and 5
    counts = floor.ideal([record([generation])])
    assert counts == {"prompt": 2, "forced": 0, "generated": 2, "draws": 0}


def test_the_draws_of_one_question_count_once_and_another_policy_counts_again() -> None:
    draws = [[[1, 2], "T=1", 500], [[1, 2], "T=1", 500], [[1, 2], "T=2", 300]]
    assert floor.ideal([record([], draws)])["draws"] == 800


def test_the_work_weights_each_regime_by_its_rate_and_generated_positions_by_verification_only_with_drafts() -> None:
    counts = {"prompt": 10, "forced": 4, "generated": 5, "draws": 100}
    rates = {"prompt_s": 1.0, "forced_s": 2.0, "verify_s": 3.0, "decode_s": 30.0, "draw_s": 0.01}
    assert floor.work_s(counts, rates, drafts=True) == 10 + 8 + 15 + 1
    assert floor.work_s(counts, rates, drafts=False) == 10 + 8 + 150 + 1
