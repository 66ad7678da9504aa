"""The LM API on a tiny random model: shapes, distributions, greedy, batching, sampling, choice."""

from __future__ import annotations

import pytest
import torch

from pytest_lmbehave import LM, InputError, Sampling


@pytest.fixture
def lm(tiny_runtime) -> LM:  # type: ignore[no-untyped-def]
    return LM(tiny_runtime, seed=123)


def test_tokenize_gives_ids_and_each_token_decoded_on_its_own(lm: LM) -> None:
    tok = lm.tokenize("Shakespeare was a")
    assert len(tok.ids) == len(tok.pieces) > 1
    assert "".join(tok.pieces) == "Shakespeare was a"
    assert tok.pieces[-1] == lm.decode(tok.ids[-1])
    assert lm.decode(list(tok.ids)) == "Shakespeare was a"


def test_logits_have_shape_one_by_tokens_by_vocabulary(lm: LM) -> None:
    n = len(lm.tokenize("Shakespeare was a").ids)
    assert tuple(lm.logits("Shakespeare was a").shape) == (1, n, lm.model.config.vocab_size)


def test_next_token_argmax_top_prob_and_rank_agree(lm: LM) -> None:
    dist = lm.next_token("Shakespeare was a")
    top = dist.top(5)
    assert top[0].piece == dist.argmax and top[0].id == dist.argmax_id
    assert [c.prob for c in top] == sorted((c.prob for c in top), reverse=True)
    assert dist.rank(top[2].piece) == 3
    assert dist.prob(top[0].piece) == pytest.approx(top[0].prob)
    assert float(dist.logprobs.exp().sum()) == pytest.approx(1.0, abs=1e-4)
    assert dist.margin == pytest.approx(top[0].logprob - top[1].logprob)


def test_tied_candidates_share_the_better_rank_while_top_orders_them_by_id() -> None:
    # bfloat16 logits move in steps of 0.125 at |logit| 16-32, so exact ties happen (a GPU run met one in the top 5).
    import numpy

    from pytest_lmbehave.backends.vocabulary import Vocabulary
    from pytest_lmbehave.observations.next_token import Distribution

    pieces = ("a", "b", "c", "d")
    values = numpy.log(numpy.array([0.1, 0.3, 0.3, 0.3], dtype=numpy.float32))
    dist = Distribution("x", values, Vocabulary(pieces, {p: i for i, p in enumerate(pieces)}))
    assert [c.id for c in dist.top(4)] == [1, 2, 3, 0] and dist.argmax_id == 1
    assert [dist.rank(i) for i in (1, 2, 3, 0)] == [1, 1, 1, 4]


def test_greedy_generation_is_the_chain_of_argmaxes(lm: LM) -> None:
    generation = lm.generate("hello hello", max_new_tokens=6)
    ids = list(generation.prompt_ids)
    for new in generation.ids:
        assert lm.next_token(ids).argmax_id == new
        ids.append(new)
    assert generation.full_text == lm.decode(ids)


def test_a_batch_of_prompts_gives_the_unbatched_results(tiny_runtime) -> None:  # type: ignore[no-untyped-def]
    prompts = ["Shakespeare was a", "hello", "The best places to visit in Boston are"]
    batched = LM(tiny_runtime).generate(prompts, max_new_tokens=5)
    tiny_runtime.forget()
    single = [LM(tiny_runtime).generate(p, max_new_tokens=5) for p in prompts]
    assert [g.ids for g in batched] == [g.ids for g in single]
    tiny_runtime.forget()
    next_batched = LM(tiny_runtime).next_token(prompts)
    tiny_runtime.forget()
    assert [d.argmax_id for d in next_batched] == [LM(tiny_runtime).next_token(p).argmax_id for p in prompts]


def test_a_seeded_sample_reproduces_and_leaves_the_global_rng_alone(tiny_runtime) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(99)
    before = torch.get_rng_state()
    first = LM(tiny_runtime, Sampling(temperature=1.5), seed=7).generate("hello", 8)
    tiny_runtime.forget()
    second = LM(tiny_runtime, Sampling(temperature=1.5), seed=7).generate("hello", 8)
    other = LM(tiny_runtime, Sampling(temperature=1.5), seed=8).generate("hello", 8)
    assert first.ids == second.ids
    assert first.ids != other.ids
    assert torch.equal(torch.get_rng_state(), before)


def test_successive_sampled_calls_in_one_test_differ_but_repeat_across_runs(tiny_runtime) -> None:  # type: ignore[no-untyped-def]
    def run() -> list[tuple[int, ...]]:
        handle = LM(tiny_runtime, Sampling(), seed=5)
        return [handle.generate("hello", 6).ids for _ in range(3)]

    first = run()
    assert len(set(first)) == 3
    assert run() == first


def test_choose_picks_the_option_with_the_highest_log_likelihood(lm: LM) -> None:
    prompt = "Review: good game. Decision:"
    choice = lm.choose(prompt, [" good", " bad"])
    for option in (" good", " bad"):
        ids = list(lm.tokenize(prompt).ids)
        total = 0.0
        for token in lm.tokenize(option).ids:
            total += lm.next_token(ids).logprob(token)
            ids.append(token)
        assert choice.score(option) == pytest.approx(total, abs=1e-4)
    assert choice.best == max(choice.options, key=choice.score)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda lm: lm.generate(""), "the prompt is empty"),
        (lambda lm: lm.next_token(42), "must be a non-empty string"),
        (lambda lm: lm.generate("hello", max_new_tokens=0), "max_new_tokens=0 must be a whole number >= 1"),
        (lambda lm: lm.generate("hello " * 80), "more than the model's context of 64 tokens"),
        (lambda lm: lm.next_token("hello").prob(" hello world"), "is not a single token"),
        (lambda lm: lm.choose("hello", [" a"]), "at least two non-empty strings"),
        (lambda lm: lm.with_sampling(temperature=0), "temperature=0 must be a number > 0"),
        (lambda lm: lm.with_sampling(top_p=1.5), "top_p=1.5 must lie in (0, 1]"),
        (lambda lm: lm.generate([]), "must be a non-empty string"),
    ],
)
def test_bad_input_raises_an_error_that_names_the_problem(lm: LM, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        call(lm)
    assert message in str(caught.value)


def test_prompts_keep_the_bos_their_tokenizer_adds_but_pieces_and_options_do_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pytest_lmbehave.runtime.runtime import Runtime
    from tests.conftest import build_tiny_model, tiny_backend_of

    folder = build_tiny_model(tmp_path / "bos-tiny", bos=True)
    lm = LM(Runtime(tiny_backend_of(folder, tmp_path / "cache")))
    bos = lm.tokenizer.eos_token_id
    assert lm.tokenize("hello").ids[0] == bos
    assert lm.generate("hello", max_new_tokens=2).prompt_ids[0] == bos
    [was] = lm.tokenizer(" was", add_special_tokens=False)["input_ids"]
    assert lm.next_token("hello").logprob(" was") == float(lm.next_token("hello").logprobs[was])  # no BOS in a piece

    choice = lm.choose("hello", [" hello", " world"])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.logits("hello")[0, -1], dim=-1)
    one_token = [o for o in choice.options if len(lm.tokenizer(o, add_special_tokens=False)["input_ids"]) == 1]
    for option in one_token:
        token = lm.tokenizer(option, add_special_tokens=False)["input_ids"][0]
        assert choice.score(option) == pytest.approx(float(logprobs[token]), abs=1e-4)
