"""The request plan: fixed batches from recorded requests, rows independent of their batch, shared among workers."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy
import pytest

from pytest_lmbehave import LM, Sampling
from pytest_lmbehave.backends.sampling import Policy
from pytest_lmbehave.backends.transformers import prefill
from pytest_lmbehave.runtime import plan
from pytest_lmbehave.runtime.runtime import Runtime
from pytest_lmbehave.runtime.store import SharedBatches

GREEDY = None
WARM = Sampling(temperature=1.3)


def rows_of(*specs: tuple[tuple[int, ...], int, Sampling | None, int | None]) -> list[plan.Row]:
    return [plan.Row.of("generation", ids, n, Policy(sampling, seed)) for ids, n, sampling, seed in specs]


def test_the_same_requests_make_the_same_groups_in_any_order() -> None:
    rows = rows_of(*[((1, 2, i), 20, WARM if i % 2 else GREEDY, i) for i in range(30)], ((5,), 50, GREEDY, None))
    rows += [plan.Row.of("next_token", (7, i)) for i in range(7)]
    expected = plan.groups(rows)
    for seed in range(5):
        shuffled = list(rows)
        random.Random(seed).shuffle(shuffled)
        assert plan.groups(shuffled) == expected
    assert [len(g.rows) for g in expected if g.kind == "generation"] == [1, plan.GROUP_ROWS, 30 - plan.GROUP_ROWS]


def test_a_shorter_run_rides_on_the_longest_and_one_greedy_token_is_a_next_token_question() -> None:
    groups = plan.groups(rows_of(((1, 2), 20, GREEDY, None), ((1, 2), 50, GREEDY, None), ((3, 4), 1, GREEDY, None)))
    assert [(g.kind, [(r.ids, r.n) for r in g.rows]) for g in groups] == [
        ("generation", [((1, 2), 50)]),
        ("next_token", [((3, 4), 1)]),
    ]
    # A sampled row is a different request from the greedy one, and its seed is part of it.
    sampled = plan.groups(rows_of(((1, 2), 20, GREEDY, None), ((1, 2), 20, WARM, 1), ((1, 2), 20, WARM, 2)))
    assert sum(len(g.rows) for g in sampled) == 3


def test_no_row_runs_more_than_twice_its_length() -> None:
    groups = plan.groups(rows_of(((1,), 50, GREEDY, None), ((2,), 25, GREEDY, None), ((3,), 24, GREEDY, None)))
    assert [[r.n for r in g.rows] for g in groups] == [[50, 25], [24]]


def test_next_token_prompts_with_a_long_common_beginning_share_a_group() -> None:
    beginning = tuple(range(100, 100 + plan.PREFIX))
    rows = [plan.Row.of("next_token", (*beginning, i)) for i in range(5)]
    rows += [plan.Row.of("next_token", (i,)) for i in range(5)]
    groups = plan.groups(rows)
    shared = [g for g in groups if len(g.rows[0].ids) > plan.PREFIX]
    assert len(shared) == 1 and len(shared[0].rows) == 5
    assert plan.common_prefix([r.ids for r in shared[0].rows]) == plan.PREFIX
    assert [len(g.rows) for g in groups if g not in shared] == [plan.NEXT_ROWS, 5 - plan.NEXT_ROWS]
    assert plan.common_prefix([(1, 2, 3), (1, 2, 3)]) == 2  # every row keeps its last token to predict from


def test_short_next_token_prompts_of_one_length_share_a_group_and_shorter_ones_go_three_by_three() -> None:
    # prefill.by_length reads prompts of one length (TOGETHER_FROM tokens or more) in one pass; shorter ones alone.
    long = plan.TOGETHER_FROM + 2
    rows = [plan.Row.of("next_token", (i,) * length) for i in range(1, 6) for length in (long, long + 1, 2)]
    groups = plan.groups(rows)
    assert sorted((len(g.rows[0].ids), len(g.rows)) for g in groups) == [
        (2, 2),
        (2, 3),
        (long, 5),
        (long + 1, 5),
    ]
    assert all(len({len(r.ids) for r in g.rows}) == 1 for g in groups)
    together = next(g for g in groups if len(g.rows[0].ids) == long)
    alone = sum(plan.Group("next_token", (row,)).cost for row in together.rows)
    assert together.cost < 0.6 * alone  # one pass and five rows through the output layer, not five passes


def test_a_plan_reads_back_what_was_written_and_merging_keeps_what_did_not_run(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    first = {
        "a.py::test_one": [
            plan.Ask.of("generation", "hello", 5, Policy(WARM, 7)),
            plan.Ask.of("next_token", (1, 2, 3)),
        ],
        "a.py::test_gone": [plan.Ask.of("next_token", "x")],
        "b.py::test_other": [plan.Ask.of("generation", "hi", 3)],
    }
    path.write_text(plan.render(first, 0))
    tests, base_seed, problem = plan.read(path)
    assert (tests, base_seed, problem) == (first, 0, None)
    assert len(path.read_text().splitlines()) == 5 + 4 * 2 + 4  # one request a line, for readable diffs
    merged = plan.merge(tests, {"a.py::test_one": [plan.Ask.of("next_token", "new")]}, collected={"a.py::test_one"})
    assert merged == {
        "a.py::test_one": [plan.Ask.of("next_token", "new")],
        "b.py::test_other": first["b.py::test_other"],
    }


def test_an_engines_own_drafts_go_beside_the_plans_and_survive_its_next_update(tmp_path: Path) -> None:
    sampled, greedy = (
        plan.Ask.of("generation", "hello", 4, Policy(WARM, 7), (1, 2, 3, 4)),
        plan.Ask.of("generation", "hi", 2),
    )
    old = {"a.py::test_one": [sampled, greedy], "a.py::test_two": [plan.Ask.of("next_token", "x")]}
    ran = {"a.py::test_one": [replace(sampled, draft=(1, 9, 9, 9)), replace(greedy, draft=None)]}
    mine = plan.own_drafts(old, ran, "llama.cpp")
    assert mine == old and mine["a.py::test_one"][0].others == (("llama.cpp", (1, 9, 9, 9)),)
    assert mine["a.py::test_one"][0].draft == (1, 2, 3, 4) and mine["a.py::test_one"][1].others == ()
    same = plan.own_drafts(old, {"a.py::test_one": [sampled]}, "llama.cpp")  # its ids are the plan's: nothing kept
    assert plan.render(same, 0) == plan.render(old, 0)
    path = tmp_path / "plan.json"
    path.write_text(plan.render(mine, 0))
    tests, _, _ = plan.read(path)
    assert [a.others for a in tests["a.py::test_one"]] == [(("llama.cpp", (1, 9, 9, 9)),), ()]
    assert [a.for_engine("llama.cpp").draft for a in tests["a.py::test_one"]] == [(1, 9, 9, 9), None]
    assert tests["a.py::test_one"][0].for_engine("transformers").draft == (1, 2, 3, 4)
    again = plan.merge(tests, {"a.py::test_one": [replace(sampled, draft=(1, 2, 3, 5))]}, {"a.py::test_one"})
    assert again["a.py::test_one"][0].others == (("llama.cpp", (1, 9, 9, 9)),)  # the plan's engine updated it


@pytest.mark.parametrize(
    "text", ["{not json", json.dumps({"format": "something else", "version": 1}), json.dumps({"format": plan.FORMAT})]
)
def test_a_damaged_plan_is_named_and_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    tests, _, problem = plan.read(path)
    assert tests == {} and problem is not None
    assert str(path) in problem and "--lm-plan-update rewrites it" in problem


def test_a_rows_tokens_do_not_depend_on_the_rows_batched_beside_it(tiny_runtime: Runtime) -> None:
    prompt = tiny_runtime.encode("Shakespeare was a")
    others = [tiny_runtime.encode("hello hello world, the model"), tiny_runtime.encode("Review:")]
    policies = [Policy(Sampling(temperature=1.5), 11), Policy(None, None)]
    alone = [tiny_runtime.backend.generate([prompt], 12, [p])[0] for p in policies]
    company = [Policy(Sampling(top_p=0.8), 3), Policy(Sampling(temperature=0.7, top_k=5), 4)]
    together = tiny_runtime.backend.generate(
        [others[0], prompt, others[1], prompt], 12, [company[0], policies[0], company[1], policies[1]]
    )
    for single, batched in zip(alone, [together[1], together[3]]):
        assert batched.ids == single.ids
        assert batched.logprobs == pytest.approx(single.logprobs, abs=1e-4)
        assert batched.argmax_ids == single.argmax_ids


def test_a_sampled_row_with_the_seed_of_a_single_call_repeats_it(tiny_runtime: Runtime) -> None:
    lm = LM(tiny_runtime.fresh(), Sampling(temperature=1.5), seed=5)
    single = lm.generate("hello", 8)
    batch = LM(tiny_runtime.fresh(), Sampling(temperature=1.5), seed=5).generate(["hello", "hello"], 8)
    assert batch[0].ids == single.ids and batch[0].seed == single.seed != batch[1].seed


def asks_and_answers(lm: LM) -> list[object]:
    warm = lm.with_sampling(temperature=1.3, seed=9)
    return [
        lm.generate(["hello", "Shakespeare was a"], 6),
        lm.generate("Shakespeare was a", 3),
        lm.generate("Review: good game. Decision:", 1),
        lm.next_token("hello hello"),
        lm.choose("Review: good game. Decision:", [" good", " bad"]),
        warm.generate(["hello", "hello world"], 5),
    ]


def same(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if hasattr(a, "logprobs") and hasattr(a, "ids"):  # generations: ids exactly, numbers within float noise
        return a.ids == b.ids and a.logprobs == pytest.approx(b.logprobs, abs=1e-4)  # type: ignore[attr-defined]
    if hasattr(a, "scores"):
        return a.scores == pytest.approx(b.scores, abs=1e-4)  # type: ignore[attr-defined]
    return bool(numpy.allclose(a.values, b.values, atol=1e-4))  # type: ignore[attr-defined]


def test_a_planned_run_answers_as_an_unplanned_one_and_computes_each_batch_once(tiny_runtime: Runtime) -> None:
    recorded: list[plan.Ask] = []
    unplanned = asks_and_answers(LM(tiny_runtime.fresh(), seed=0, asks=recorded))
    planned_runtime = tiny_runtime.fresh()
    planned_runtime.use_plan(plan.unique(recorded))
    planned = asks_and_answers(LM(planned_runtime, seed=0))
    assert same(planned, unplanned)
    # Everything was answered from the plan's batches: nothing was computed one request at a time.
    # (The one extra is the choice: its scores are read off a planned next-token distribution.)
    groups = planned_runtime.schedule.groups
    assert planned_runtime.stats["computed"] == sum(len(g.rows) for g in groups) + 1
    assert len(planned_runtime.schedule.settled) == len(groups) >= 2


def test_a_batch_one_worker_computed_is_read_by_the_other(tiny_runtime: Runtime, tmp_path: Path) -> None:
    recorded: list[plan.Ask] = []
    asks_and_answers(LM(tiny_runtime.fresh(), seed=0, asks=recorded))
    workers = [Runtime(tiny_runtime.backend, None, SharedBatches(tmp_path, tiny_runtime.fingerprint)) for _ in "ab"]
    for runtime in workers:
        runtime.use_plan(plan.unique(recorded))
        runtime.prefetch()
    first, second = workers
    assert first.stats["computed"] > 0 and first.stats["shared"] == 0
    assert second.stats["computed"] == 0 and second.stats["shared"] == first.stats["computed"]
    assert same(asks_and_answers(LM(second, seed=0)), asks_and_answers(LM(first, seed=0)))
    assert second.stats["computed"] == 1  # only the choice, read off a next-token batch the first worker wrote


def test_prompts_sharing_a_beginning_get_the_distributions_they_get_alone(tiny_runtime: Runtime) -> None:
    beginning = tiny_runtime.encode("Shakespeare was a great writer, but he was also a great actor.")
    assert plan.PREFIX < len(beginning) < tiny_runtime.backend.context - 10
    rows = [tuple(beginning + tiny_runtime.encode(end, special=False)) for end in (" hello", " Review: good", " the")]
    together = tiny_runtime.backend.next_logprobs(rows)
    for row, numbers in zip(rows, together):
        [alone] = tiny_runtime.backend.next_logprobs([row])
        assert numpy.allclose(numbers.values, alone.values, atol=1e-4)
        assert numbers.values.argmax() == alone.values.argmax()


def test_prompts_sharing_beginnings_at_two_depths_read_each_shared_beginning_once(tiny_runtime: Runtime) -> None:
    encode = tiny_runtime.encode
    beginning = encode("Shakespeare was a great writer, but he was also a great actor.")
    review = encode(" Review: the plays are long and the jokes are old, yet the verse is still as fresh", special=False)
    endings = [encode(end, special=False) for end in (" good", " bad", " fine")]
    assert len(beginning) >= plan.PREFIX and len(review) >= prefill.BRANCH and 2 * len(review) >= prefill.FORK
    rows = [tuple(beginning + review + end) for end in endings] + [tuple(beginning + encode(" the", special=False))]
    model, read = tiny_runtime.backend.model, []

    def count(module, args, kwargs, output):  # type: ignore[no-untyped-def]
        ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
        read.append(int(mask[:, -ids.shape[1] :].sum()) if mask is not None else ids.numel())

    hook = model.register_forward_hook(count, with_kwargs=True)
    try:
        together = tiny_runtime.backend.next_logprobs(rows)
    finally:
        hook.remove()
    # The beginning once, the review once on a forked cache, then each row's own ending: the prompts' prefix tree.
    assert sum(read) == len(beginning) + len(review) + sum(len(e) for e in endings) + 1
    for row, numbers in zip(rows, together):
        [alone] = tiny_runtime.backend.next_logprobs([row])
        assert numpy.allclose(numbers.values, alone.values, atol=1e-4)
        assert numbers.values.argmax() == alone.values.argmax()


def test_options_of_one_long_prompt_read_the_prompt_once_and_score_what_each_scores_alone(
    tiny_runtime: Runtime,
) -> None:
    encode, backend = tiny_runtime.encode, tiny_runtime.backend
    prompt = encode("Shakespeare was a great writer, but he was also a great actor. Review: the plays are long")
    options = [encode(option, special=False) for option in (" and good", " but bad, and old", " fine")]
    assert len(prompt) > plan.PREFIX
    read: list[int] = []

    def count(module, args, kwargs, output):  # type: ignore[no-untyped-def]
        ids = kwargs.get("input_ids", args[0] if args else None)
        read.append(ids.shape[0] * ids.shape[1])  # with the pads: left-padded endings

    hook = backend.model.register_forward_hook(count, with_kwargs=True)
    try:
        together = backend.forced_logprobs([(prompt, option) for option in options])
    finally:
        hook.remove()
    # The prompt but its last token once, then every option's ending (that token and the option) padded to the longest.
    assert read == [len(prompt) - 1, len(options) * (1 + max(len(o) for o in options) - 1)]
    for option, numbers in zip(options, together):
        [alone] = backend.forced_logprobs([(prompt, option)])
        for step, one in zip(numbers, alone):
            assert numpy.allclose(step.values, one.values, atol=1e-4)


def test_rows_whose_starts_lie_far_apart_are_read_in_one_padded_pass(
    tiny_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a shared beginning the logits kept would run from the earliest start to the longest end: 26 positions
    # here where a padded pass keeps 6, each a whole distribution. Beyond EXTRA_MB more, the padded pass keeps the
    # memory where it was.
    encode, backend = tiny_runtime.encode, tiny_runtime.backend
    prompt = encode("Shakespeare was a great writer, but he was also a great actor. Review: the plays are long")
    more = encode(" and the jokes are old, yet the verse is still as fresh as it was", special=False)
    rows = [prompt + more[:5], prompt + more[:25]]
    starts = [len(prompt) - 1, len(prompt) + 19]
    assert len(prompt) > plan.PREFIX
    monkeypatch.setattr(prefill, "EXTRA_MB", (26 - 6) * 2 * prefill.output_rows(backend.model) * 4 / 2**20 - 0.01)
    passes: list[tuple[int, ...]] = []
    hook = backend.model.register_forward_hook(
        lambda module, args, kwargs, output: passes.append(tuple(output.logits.shape[:2])), with_kwargs=True
    )
    try:
        together = prefill.forced_logits(backend.model, rows, starts, backend.pad_id)
    finally:
        hook.remove()
    assert passes == [(2, 6)]
    for row, start, scores in zip(rows, starts, together):
        assert torch_close(scores, prefill.forced_logits(backend.model, [row], [start], backend.pad_id)[0])


def torch_close(a: Any, b: Any) -> bool:
    return bool((a - b).abs().max() <= 1e-4)


@pytest.mark.parametrize("architecture", ["mistral", "gemma2"])
def test_rows_sharing_a_beginning_longer_than_a_sliding_window_read_what_each_reads_alone(architecture: str) -> None:
    # A token's place in the cache must be its position: a window counts places, so pads between the shared
    # beginning and an ending (left-padded endings) moved both models' logits by whole nats, not by float noise.
    import torch
    from transformers import AutoModelForCausalLM

    from .architectures import _config

    config = _config(architecture, 1000, {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2})
    config.sliding_window = 48
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    words = random.Random(1)
    beginning, review = ([words.randrange(3, 1000) for _ in range(n)] for n in (40, 20))
    rows = [beginning + review + [words.randrange(3, 1000) for _ in range(n)] for n in (3, 7, 5)] + [[*beginning, 5]]
    starts = [len(beginning) + 5, len(beginning) + 22, len(beginning) + 21, len(beginning)]
    argument = prefill.cache_argument(model)
    together = prefill.shared_beginning(model, rows, 0, argument)
    forced = prefill.forced_logits(model, rows, starts, 0)
    for row, start, numbers, scores in zip(rows, starts, together, forced):
        assert torch.allclose(numbers, prefill.last_logprobs(model, row), atol=1e-4)
        assert torch.allclose(scores, prefill.forced_logits(model, [row], [start], 0)[0], atol=1e-4)


SOURCE = """
from pytest_lmbehave import sampled

def test_generations(lm):
    lm.generate(["hello", "Shakespeare was a"], max_new_tokens=6)
    lm.generate("Review: good game. Decision:", max_new_tokens=1)

def test_next_and_choice(lm):
    lm.next_token("hello hello")
    lm.choose("Review: good game. Decision:", [" good", " bad"])

@sampled(temperature=1.3)
def test_sampled(lm):
    lm.generate(["hello", "hello world"], max_new_tokens=5)
"""


def observations(run_with_tiny, path: Path, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    run_with_tiny(SOURCE, f"--lm-report={path}", *args).assert_outcomes(passed=3)
    found = json.loads(path.read_text())["observations"]
    return {
        test: [(o["kind"], o.get("ids"), o.get("argmax"), o.get("best")) for o in obs] for test, obs in found.items()
    }


def test_plan_update_records_every_tests_requests_and_planned_runs_observe_the_same(  # type: ignore[no-untyped-def]
    run_with_tiny, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    without = observations(run_with_tiny, tmp_path / "none.json", "-p", "no:xdist", "--lm-plan=none")
    assert not (pytester.path / "lmbehave-plan.json").exists()
    result = run_with_tiny(SOURCE, "-p", "no:xdist", "--lm-plan-update")
    result.stderr.fnmatch_lines(["*request plan for 3 tests written to *lmbehave-plan.json"])
    tests, base_seed, problem = plan.read(pytester.path / "lmbehave-plan.json")
    assert problem is None and base_seed == 0
    assert {node.split("::")[1]: [a.kind for a in asks] for node, asks in tests.items()} == {
        "test_generations": ["generation", "generation", "next_token"],
        "test_next_and_choice": ["next_token", "next_token"],
        "test_sampled": ["generation", "generation"],
    }
    assert observations(run_with_tiny, tmp_path / "serial.json", "-p", "no:xdist") == without
    assert observations(run_with_tiny, tmp_path / "n2.json", "-n", "2") == without
    # Under xdist the requests travel on the workers' reports; the controller writes the same plan.
    serial_plan = (pytester.path / "lmbehave-plan.json").read_text()
    (pytester.path / "lmbehave-plan.json").unlink()
    run_with_tiny(SOURCE, "-n", "2", "--lm-plan-update").assert_outcomes(passed=3)
    assert (pytester.path / "lmbehave-plan.json").read_text() == serial_plan
    assert not [p for p in pytester.path.iterdir() if p.name.startswith(".lmbehave-plan")]  # no staging file left


def test_an_update_under_xdist_drops_the_entries_of_tests_gone_from_a_collected_module(  # type: ignore[no-untyped-def]
    run_with_tiny, pytester: pytest.Pytester
) -> None:
    run_with_tiny(SOURCE, "-p", "no:xdist", "--lm-plan-update").assert_outcomes(passed=3)
    path = pytester.path / "lmbehave-plan.json"
    tests, _, _ = plan.read(path)
    module = next(iter(tests)).split("::")[0]
    gone = {f"{module}::test_renamed_since": [plan.Ask.of("next_token", "x")]}
    elsewhere = {"not_collected.py::test_kept": [plan.Ask.of("next_token", "y")]}
    path.write_text(plan.render({**tests, **gone, **elsewhere}, 0))
    run_with_tiny(SOURCE, "-n", "2", "--lm-plan-update").assert_outcomes(passed=3)
    assert plan.read(path)[0] == {**tests, **elsewhere}  # the workers' collections reached the controller


def test_a_damaged_plan_file_is_named_and_the_run_goes_on(run_with_tiny, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    (pytester.path / "lmbehave-plan.json").write_text("{half a plan")
    result = run_with_tiny(SOURCE, "-p", "no:xdist")
    result.assert_outcomes(passed=3)
    result.stderr.fnmatch_lines(
        ["*lmbehave-plan.json is not a readable plan (*); it is ignored, and --lm-plan-update rewrites it"]
    )
    assert (pytester.path / "lmbehave-plan.json").read_text() == "{half a plan"  # never rewritten unasked


def test_prompts_of_very_different_lengths_are_read_a_length_group_at_a_time_with_the_same_results(
    tiny_runtime: Runtime,
) -> None:
    short, middle = tiny_runtime.encode("hello"), tiny_runtime.encode("hello hello world, the")
    long = tiny_runtime.encode("Shakespeare was a great writer, but he was also")
    # Two length groups (from the shortest: up to twice its length + 16), the first padded.
    assert len(short) < len(middle) <= 2 * len(short) + 16 < len(long)
    rows = [short, long, middle]
    policies = [Policy(None, None), Policy(Sampling(temperature=1.5), 2), Policy(None, None)]
    backend = tiny_runtime.backend
    model, pad_id = backend.model, backend.pad_id
    assert set(prefill.stitched(model, rows, pad_id, "cache")) == {"cache"}
    assert prefill.stitched(model, [short, middle], pad_id, "cache") == {}  # one length group: one pass over the batch
    together = backend.generate(rows, 10, policies)
    for row, policy, batched in zip(rows, policies, together):
        [alone] = backend.generate([row], 10, [policy])
        assert batched.ids == alone.ids
        assert batched.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_the_plan_check_names_a_renamed_tests_stale_entry_and_passes_the_committed_plan(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    committed = root / "specs" / "lmbehave-plan.json"
    check = [sys.executable, str(root / "tools" / "plan_check.py"), str(committed)]
    same = tmp_path / "same.json"
    same.write_bytes(committed.read_bytes())
    assert subprocess.run([*check, str(same)], capture_output=True).returncode == 0
    document = json.loads(committed.read_text())
    name = next(iter(document["tests"]))
    document["tests"]["specs/test_x.py::test_renamed"] = document["tests"].pop(name)
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(document))
    done = subprocess.run([*check, str(renamed)], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"stale (no such test any more): {name}" in done.stdout
    assert "missing (not in the committed plan): specs/test_x.py::test_renamed" in done.stdout
    assert "pytest specs/ -n 2 --lm-plan-update" in done.stdout
