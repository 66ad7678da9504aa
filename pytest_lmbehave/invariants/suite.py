"""The invariant suite: each statement with its reason, its negative control and its check.

Numbers read two ways are compared within the dtype's measured noise (``lm.noise``, at least 2e-4 nats: float32's
reading paths move a log-probability by ~1e-5). Tokens read two ways are compared by the near-tie rule: two readings
that name other tokens agree when each reads the other's token within that noise of its own (random weights give flat
distributions, and a tie that flips is not a broken stack)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from ..config.errors import BackendUnavailable, InputError

if TYPE_CHECKING:
    from ..api.lm import LM
    from ..observations.next_token import Distribution

PROMPTS = (
    "Shakespeare was a",
    "The best places to visit in Boston are",
    "hello     hello",
    "Tell me what job this person had.\n\nShakespeare:",
)
# decode(encode(text)) == text over what tokenizers get wrong: accents, CJK, emoji (with a modifier and a joiner),
# runs of spaces, tabs and newlines, and spaces at either end.
TEXTS = (
    "café crème brûlée, naïve façade, Ångström",
    "東京は日本の首都です。中文，한국어",
    "emoji 🙂👍🏽 and 👩‍💻 ❤️",
    "hello     hello\t\ttabs\n\nnewlines  ",
    "  two spaces first, one last ",
)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True)
class Invariant:
    name: str
    statement: str
    why: str
    control: str  # the broken stack that fails it: tests/test_invariants.py builds each by this name
    check: Callable[[LM], None]


def tolerance(lm: LM) -> float:
    """How far one number read two ways may move: the dtype's measured noise, at least 2e-4 nats."""
    return max(2e-4, lm.noise)


def agree(first: Distribution, second: Distribution, within: float) -> bool:
    """The near-tie rule for a token read two ways: the same argmax, or each reading puts the other's within
    ``within`` nats of its own."""
    a, b = first.argmax_id, second.argmax_id
    if a == b:
        return True
    return first.logprob(a) - first.logprob(b) <= within and second.logprob(b) - second.logprob(a) <= within


def coincidence(steps: Sequence[Distribution], k: int = 50) -> float:
    """The chance that two independent draws (top-k, T = 1) give the same tokens at every one of ``steps``: where it
    is not small, a seed cannot show that it matters (a model that puts its mass on one token draws it anyway)."""
    chance = 1.0
    for dist in steps:
        probabilities = [c.prob for c in dist.top(min(k, dist.vocab_size))]
        total = sum(probabilities)
        chance *= sum((p / total) ** 2 for p in probabilities)
    return chance


def _ids(lm: LM, prompt: str) -> list[int]:
    return list(lm.tokenize(prompt).ids)


def _fresh(lm: LM) -> LM:
    """The same model with nothing remembered: a result computed afresh, not read back."""
    from ..api.lm import LM

    return LM(lm.runtime.fresh(), lm.sampling, lm.seed)


def _backend(lm: LM) -> object:
    return lm.runtime.backend


def _output_rows(lm: LM) -> int:
    return int(lm.runtime.backend.vocab_size)


# -- the forward pass ---------------------------------------------------------------------------------------------
def logits_shape(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        ids = _ids(lm, prompt)
        shape = tuple(lm.logits(prompt).shape)
        assert shape == (1, len(ids), _output_rows(lm)), (
            f"logits of {prompt!r}: shape {shape}, expected (1, {len(ids)} tokens read, {_output_rows(lm)} output rows)"
        )


def logits_finite(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS:
        values = numpy.asarray(lm.logits(prompt).float())
        bad = int((~numpy.isfinite(values)).sum())
        assert bad == 0, f"logits of {prompt!r}: {bad} of {values.size} are not finite (NaN or inf)"


def softmax_sums_to_one(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS:
        dist = lm.next_token(prompt)
        rows = dist.vocab_size
        total = float(numpy.exp(dist.values.astype(numpy.float64)).sum())
        # Each row's probability is exact to the dtype's rounding; n of them summed in any order stay within
        # (n - 1) * eps / 2 of 1 (Higham 4.2), and within the measured noise for a dtype whose noise is larger.
        bound = max((rows - 1) * float(numpy.finfo(numpy.float32).eps) / 2, 1 - math.exp(-lm.noise))
        assert abs(total - 1) <= bound, f"after {prompt!r} the probabilities sum to {total:.6f}, beyond 1 ± {bound:.2g}"


def next_token_is_log_softmax_of_logits(lm: LM) -> None:
    import numpy

    for prompt in PROMPTS[:2]:
        last = numpy.asarray(lm.logits(prompt)[0, -1].double())
        expected = last - numpy.logaddexp.reduce(last)
        dist = lm.next_token(prompt)
        moved = float(numpy.abs(expected - dist.values.astype(numpy.float64))[dist.values > -30].max())
        assert moved <= tolerance(lm), (
            f"after {prompt!r} next_token's log-probabilities are {moved:.4g} nats from log_softmax of the logits' "
            f"last row (allowed {tolerance(lm):.2g}): the distribution is not the logits'"
        )


def argmax_is_next_token(lm: LM) -> None:
    for prompt in PROMPTS:
        row = lm.logits(prompt)[0, -1]
        dist = lm.next_token(prompt)
        top = int(row.argmax())
        assert top == dist.argmax_id or dist.logprob(dist.argmax_id) - dist.logprob(top) <= tolerance(lm), (
            f"after {prompt!r} the logits' last row picks {lm.decode(top)!r} ({top}), next_token "
            f"{dist.argmax!r} ({dist.argmax_id})"
        )
        first = lm.generate(prompt, max_new_tokens=3).ids[0]
        assert first == dist.argmax_id or dist.logprob(dist.argmax_id) - dist.logprob(first) <= tolerance(lm), (
            f"after {prompt!r} greedy generation starts with {lm.decode(first)!r} ({first}), not the argmax "
            f"{dist.argmax!r} ({dist.argmax_id})"
        )


def same_numbers_asked_again(lm: LM) -> None:
    import numpy

    first = [lm.next_token(p).values for p in PROMPTS]
    again = _fresh(lm)
    for prompt, before in zip(PROMPTS, first):
        now = again.next_token(prompt).values
        moved = float(numpy.abs(now.astype(numpy.float64) - before)[before > -30].max())
        assert moved <= tolerance(lm), f"after {prompt!r}, asked again: the numbers moved {moved:.4g} nats"


# -- batches ------------------------------------------------------------------------------------------------------
def batch_equals_alone_next_token(lm: LM) -> None:
    """The backend's own batch (the engine's padding, longer and shorter rows beside each other)."""
    import numpy

    backend = lm.runtime.backend
    rows = [_ids(lm, p) for p in PROMPTS]
    together = backend.next_logprobs(rows)
    for prompt, row, numbers in zip(PROMPTS, rows, together):
        alone = backend.next_logprobs([row])[0]
        a, b = numbers.values.astype(numpy.float64), alone.values.astype(numpy.float64)
        moved = float(numpy.abs(a - b)[b > -30].max())
        assert moved <= tolerance(lm), (
            f"after {prompt!r}: read in a batch of {len(rows)}, the numbers moved {moved:.4g} nats from the prompt "
            f"read alone (allowed {tolerance(lm):.2g}): the rows beside it, or their padding, leak in"
        )


def _greedy_rows(lm: LM, rows: list[list[int]], steps: int) -> list[tuple[int, ...]]:
    """The backend's own greedy generation of ``rows`` in one call (no memo, no plan: the engine's batching)."""
    from ..backends.sampling import Policy

    return [decoded.ids for decoded in lm.runtime.backend.generate(rows, steps, [Policy()] * len(rows))]


def batch_equals_alone_generation(lm: LM) -> None:
    rows = [_ids(lm, p) for p in PROMPTS[:3]]
    together = _greedy_rows(lm, rows, 8)
    for prompt, row, ids in zip(PROMPTS, rows, together):
        (alone,) = _greedy_rows(lm, [row], 8)
        _same_greedy(lm, row, alone, ids, f"{prompt!r} alone and in a batch of {len(rows)}")


def identical_rows_agree(lm: LM) -> None:
    row = _ids(lm, PROMPTS[0])
    first, *others = _greedy_rows(lm, [row] * 3, 8)
    for index, ids in enumerate(others, 1):
        _same_greedy(lm, row, first, ids, f"row 0 and row {index} of a batch of the same prompt")


def _same_greedy(lm: LM, prompt_ids: Sequence[int], a: Sequence[int], b: Sequence[int], what: str) -> None:
    """Two greedy runs of one prompt: the same ids, or they part at a near tie (each step's token read both ways)."""
    a, b = tuple(a), tuple(b)
    if a == b:
        return
    step = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    dist = lm.next_token([*prompt_ids, *a[:step]])
    if step < min(len(a), len(b)):
        gap = abs(dist.logprob(a[step]) - dist.logprob(b[step]))
        assert gap <= tolerance(lm), (
            f"{what}: step {step} took {lm.decode(a[step])!r} and {lm.decode(b[step])!r}, {gap:.4g} nats apart "
            f"(a near tie is at most {tolerance(lm):.2g})"
        )
    else:
        raise AssertionError(f"{what}: one run is {len(a)} tokens, the other {len(b)}")


# -- greedy decoding ----------------------------------------------------------------------------------------------
def greedy_is_a_chain_of_argmaxes(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        generation = lm.generate(prompt, max_new_tokens=20)
        for step, (dist, token) in enumerate(zip(lm.steps(generation), generation.ids)):
            behind = dist.logprob(dist.argmax_id) - dist.logprob(token)
            assert behind <= tolerance(lm), (
                f"after {prompt!r}, step {step}: {lm.decode(token)!r} is {behind:.4f} nats behind the argmax "
                f"{dist.argmax!r}, beyond the noise {tolerance(lm):.2g}"
            )


def shorter_greedy_is_a_prefix(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        long = _fresh(lm).generate(prompt, max_new_tokens=24)
        short = _fresh(lm).generate(prompt, max_new_tokens=6)
        _same_greedy(lm, short.prompt_ids, short.ids, long.ids[: len(short.ids)], f"{prompt!r} in 6 and in 24 tokens")


def kv_cache_equals_teacher_forcing(lm: LM) -> None:
    for prompt in PROMPTS[:2]:
        generation = _fresh(lm).generate(prompt, max_new_tokens=16)
        for step, (dist, token, logprob) in enumerate(zip(lm.steps(generation), generation.ids, generation.logprobs)):
            moved = abs(dist.logprob(token) - logprob)
            assert moved <= tolerance(lm) + 1e-3, (  # a generation keeps its log-probabilities to 3 decimals at most
                f"after {prompt!r}, step {step}: decoding read {lm.decode(token)!r} at {logprob:.5f}, one teacher-"
                f"forced pass at {dist.logprob(token):.5f}: the cache of earlier positions is not the text's"
            )


def sampled_generation_records_untempered_logprobs(lm: LM) -> None:
    hot = lm.with_sampling(temperature=3.0, top_k=50, seed=7)
    generation = hot.generate(PROMPTS[0], max_new_tokens=12)
    for step, (dist, token, logprob) in enumerate(zip(lm.steps(generation), generation.ids, generation.logprobs)):
        moved = abs(dist.logprob(token) - logprob)
        assert moved <= tolerance(lm) + 1e-3, (
            f"step {step}: a generation at T = 3 recorded {lm.decode(token)!r} at {logprob:.5f}, the untempered "
            f"model reads {dist.logprob(token):.5f}: it recorded the tempered number"
        )


def _stops(lm: LM) -> frozenset[int]:
    found = getattr(lm.runtime.backend, "stop_ids", None)
    if found is None:
        raise BackendUnavailable(f"the {lm.runtime.backend.name} backend does not say which tokens end a generation")
    return frozenset(found)


def nothing_follows_a_stop_token(lm: LM) -> None:
    stops = _stops(lm)
    for prompt in PROMPTS[:2]:
        for generation in (
            lm.generate(prompt, max_new_tokens=16),
            lm.with_sampling(temperature=2.0, top_k=200, seed=3).generate(prompt, max_new_tokens=16),
        ):
            ended = next((i for i, token in enumerate(generation.ids) if token in stops), None)
            assert ended is None or ended == len(generation.ids) - 1, (
                f"after {prompt!r}: {len(generation.ids) - ended - 1} token(s) follow the stop token "
                f"{lm.decode(generation.ids[ended])!r} at step {ended}"
            )


def max_new_tokens_is_the_length(lm: LM) -> None:
    stops = _stops(lm)
    for prompt in PROMPTS:
        for n in (1, 7):
            generation = lm.generate(prompt, max_new_tokens=n)
            ended = bool(generation.ids) and generation.ids[-1] in stops
            assert len(generation.ids) == n or (ended and len(generation.ids) < n), (
                f"after {prompt!r}: max_new_tokens={n} gave {len(generation.ids)} token(s), not ending at a stop token"
            )


# -- sampling -----------------------------------------------------------------------------------------------------
def seeded_sample_reproduces(lm: LM) -> None:
    from ..api.lm import LM as Handle

    sampler = lm.with_sampling(temperature=1.0, top_k=50, seed=11)
    first = sampler.generate(PROMPTS[0], max_new_tokens=12)
    again = Handle(lm.runtime.fresh(), sampler.sampling, sampler.seed).generate(PROMPTS[0], max_new_tokens=12)
    assert again.ids == first.ids, f"the same seed drew {first.ids} and then {again.ids}"


def _spread(lm: LM) -> str:
    """A prompt whose next token is not nearly certain (a seed can only matter where a draw has a choice)."""
    for prompt in PROMPTS:
        if coincidence([lm.next_token(prompt)]) < 0.5:
            return prompt
    pytest.skip("every prompt's next token has p >= 0.9 here: a seed has nothing to choose between")


def the_seed_matters(lm: LM) -> None:
    prompt = _spread(lm)
    one = lm.with_sampling(top_k=50, seed=1).draws(prompt, n=200).tokens
    two = lm.with_sampling(top_k=50, seed=2).draws(prompt, n=200).tokens
    assert one != two, f"after {prompt!r}, 200 draws under seed 1 and under seed 2 are the same: the seed is not used"


def draws_follow_the_distribution(lm: LM) -> None:
    sampler = lm.with_sampling(top_k=50, seed=5)
    draws = sampler.draws(PROMPTS[0])
    alpha = 0.001 if len(draws.tokens) >= 2000 else 0.01
    if draws.failure(alpha) is not None:  # confirmed on twice the draws before it is a failure
        draws = draws + sampler.draws(PROMPTS[0])
    failure = draws.failure(alpha)
    assert failure is None, "\n".join(failure or [])


def _sampled_steps(lm: LM, **settings: float) -> Iterator[tuple[int, Distribution, int]]:
    for prompt in PROMPTS[:1]:
        generation = lm.with_sampling(seed=13, **settings).generate(prompt, max_new_tokens=16)  # type: ignore[arg-type]
        yield from ((step, dist, token) for step, (dist, token) in enumerate(zip(lm.steps(generation), generation.ids)))


def top_k_holds(lm: LM) -> None:
    k = 5
    for step, dist, token in _sampled_steps(lm, top_k=k):
        kth = dist.top(k)[-1].logprob
        assert dist.rank(token) <= k or dist.logprob(token) >= kth - tolerance(lm), (
            f"step {step}: top_k={k} drew {lm.decode(token)!r}, ranked {dist.rank(token)}"
        )


def nucleus_holds(lm: LM) -> None:
    p = 0.5
    for step, dist, token in _sampled_steps(lm, top_p=p, top_k=1000):
        probabilities = dist.values.astype("float64")
        before = float(math.fsum(math.exp(v) for v in probabilities[probabilities > dist.logprob(token)]))
        slack = max(1e-4, 1 - math.exp(-lm.noise))
        assert before < p + slack, (
            f"step {step}: top_p={p} drew {lm.decode(token)!r}, with {before:.3f} of the mass above it"
        )


def cold_draws_the_argmax(lm: LM) -> None:
    for prompt in PROMPTS:
        dist = lm.next_token(prompt)
        if dist.margin >= 0.25:  # at T = 0.01 the runner-up is then drawn with p < e**-25 a draw
            tokens = set(lm.with_sampling(temperature=0.01, top_k=50, seed=17).draws(prompt, n=500).tokens)
            assert tokens == {dist.argmax_id}, (
                f"after {prompt!r} at T = 0.01, 500 draws gave {sorted(lm.decode(t) for t in tokens)}, not only "
                f"the argmax {dist.argmax!r} (margin {dist.margin:.2f} nats)"
            )
            return
    pytest.skip("no prompt's argmax leads by 0.25 nats here: at T -> 0 a near tie may go either way")


def cooling_favours_the_argmax(lm: LM) -> None:
    prompt = _spread(lm)
    dist = lm.next_token(prompt)
    argmax = dist.argmax
    rate = lm.with_sampling(temperature=0.5, top_k=50, seed=19).rate(prompt, lambda text: text == argmax)
    assert rate >= dist.prob(dist.argmax_id)


# -- scoring and choosing -----------------------------------------------------------------------------------------
def score_is_the_next_token_question(lm: LM) -> None:
    text = PROMPTS[3]
    scores = lm.score(text)
    assert len(scores.logprobs) == len(scores.ids) - 1
    for i in range(1, len(scores.ids)):
        after = lm.next_token(list(scores.ids[:i]))
        moved = abs(after.logprob(scores.ids[i]) - scores.logprobs[i - 1])
        assert moved <= tolerance(lm), (
            f"token {i} ({lm.decode(scores.ids[i])!r}) scores {scores.logprobs[i - 1]:.5f} in one teacher-forced pass, "
            f"{after.logprob(scores.ids[i]):.5f} asked after its prefix"
        )


def choose_sums_the_options_scores(lm: LM) -> None:
    prompt, options = PROMPTS[0], (" great writer", " poet and playwright", " man")
    choice = lm.choose(prompt, options)
    context = _ids(lm, prompt)
    for option in options:
        tokens = lm.runtime.encode(option, special=False)
        scores = lm.score([*context, *tokens])
        summed = sum(scores.logprobs[len(context) - 1 :])
        assert abs(choice.score(option) - summed) <= tolerance(lm) * len(tokens), (
            f"choose scored {option!r} at {choice.score(option):.5f}; its {len(tokens)} token(s) after the context "
            f"sum to {summed:.5f}"
        )
    best = max(options, key=choice.score)
    assert choice.best == best, f"choose picked {choice.best!r}, the highest score is {best!r}'s"


def choose_reads_the_context_as_next_token_does(lm: LM) -> None:
    prompt = "Shakespeare was a "  # a context that ends in a space: whole-text tokenization would merge it on
    context = _ids(lm, prompt)
    dist = lm.next_token(prompt)
    one_token = [c for c in dist.top(200) if lm.runtime.encode(c.piece, special=False) == [c.id]]
    # Options whose first token would merge with the context's last one when the two are tokenized together first.
    crossing = [c for c in one_token if _ids(lm, prompt + c.piece)[: len(context)] != context]
    options = (crossing[:2] + [c for c in one_token if c not in crossing])[:2]
    if len(options) < 2:
        pytest.skip(f"fewer than two of the top 200 after {prompt!r} read back as one token")
    choice = lm.choose(prompt, [c.piece for c in options])
    for candidate in options:
        moved = abs(choice.score(candidate.piece) - dist.logprob(candidate.id))
        assert moved <= tolerance(lm), (
            f"choose scored {candidate.piece!r} at {choice.score(candidate.piece):.5f} after {prompt!r}; the next-token "
            f"question gives it {dist.logprob(candidate.id):.5f}: the context was not read as the model reads it alone"
        )


# -- the tokenizer and the vocabulary -----------------------------------------------------------------------------
def decode_inverts_encode(lm: LM) -> None:
    for text in TEXTS:
        tokens = lm.tokenize(text)
        back = lm.decode(list(tokens.text_ids))
        assert back == text, f"decode(encode({text!r})) gave {back!r}"


def specials_come_first(lm: LM) -> None:
    for text in PROMPTS:
        tokens = lm.tokenize(text)
        assert tuple(tokens.ids[len(tokens.ids) - len(tokens.text_ids) :]) == tuple(tokens.text_ids), (
            f"{text!r} reads as {list(tokens.ids)}; its own ids {list(tokens.text_ids)} are not last"
        )
        assert tuple(lm.runtime.encode(text, special=False)) == tuple(tokens.text_ids)


def every_id_decodes(lm: LM) -> None:
    vocabulary = lm.vocabulary
    rows = _output_rows(lm)
    assert len(vocabulary) == rows, f"the vocabulary names {len(vocabulary)} ids, the model has {rows} output rows"
    stride = max(1, vocabulary.tokens // 500)
    for token in [*range(0, vocabulary.tokens, stride), vocabulary.tokens - 1]:
        text = lm.decode(token)
        assert isinstance(text, str), f"id {token} decodes to {text!r}"
        assert vocabulary.piece(token) == text, (
            f"id {token}: the vocabulary says {vocabulary.piece(token)!r}, decode {text!r}"
        )


def padding_rows_are_named_and_out_of_reach(lm: LM) -> None:
    vocabulary = lm.vocabulary
    padding = range(vocabulary.tokens, len(vocabulary))
    for token in padding:
        assert vocabulary.is_padding(token), f"output row {token} lies beyond the tokenizer's {vocabulary.tokens}"
    for prompt in PROMPTS:
        dist = lm.next_token(prompt)
        named = [c for c in dist.top(50) if c.id >= vocabulary.tokens]
        assert not named, (
            f"after {prompt!r} padding row(s) {[c.id for c in named]} rank among the top 50: the model can "
            f"predict a row no token stands for ({len(padding)} padding row(s) beyond {vocabulary.tokens} tokens)"
        )


def a_prompt_beyond_the_context_is_refused(lm: LM) -> None:
    context = lm.runtime.backend.context
    if not context:
        raise BackendUnavailable(f"the {lm.runtime.backend.name} backend does not say how long its context is")
    ids = (_ids(lm, PROMPTS[0]) * (context // 2 + 2))[: context + 8]
    try:
        lm.next_token(ids)
    except InputError:
        return
    raise AssertionError(f"a prompt of {len(ids)} tokens, beyond the context of {context}, was read without a word")


# -- chat ---------------------------------------------------------------------------------------------------------
def chat_opens_the_assistants_turn(lm: LM) -> None:
    prompt, _ = lm.runtime.chat(QUESTION)
    reply = "Paris."
    answered, _ = lm.runtime.chat([*QUESTION, {"role": "assistant", "content": reply}])
    assert answered.startswith(prompt + reply), (
        f"the rendered prompt {prompt[-60:]!r} followed by the reply is not how the template renders the "
        f"conversation with it ({answered[-90:]!r}): the assistant's turn is not open at its end"
    )


def chat_is_generate_on_the_rendered_prompt(lm: LM) -> None:
    answer = lm.chat(QUESTION, max_new_tokens=12)
    assert tuple(lm.runtime.encode(answer.prompt, special=False)) == answer.prompt_ids, (
        f"the rendered prompt reads as {list(lm.runtime.encode(answer.prompt, special=False))[:8]}..., the chat gave "
        f"the model {list(answer.prompt_ids)[:8]}...: another BOS, or other ids than its text"
    )
    generated = _fresh(lm).generate(list(answer.prompt_ids), max_new_tokens=12)
    _same_greedy(lm, answer.prompt_ids, generated.ids, answer.ids, "chat and generate on its rendered prompt")


def _table(*rows: tuple[str, str, str, str, Callable[[LM], None]]) -> dict[str, Invariant]:
    return {name: Invariant(name, statement, why, control, check) for name, statement, why, control, check in rows}


INVARIANTS: dict[str, Invariant] = _table(
    ("logits-shape", "The logits hold one row per token read and one column per output row.",
     "The forward pass reads each position once and scores every row of the output layer.",
     "drops-the-last-position", logits_shape),
    ("logits-finite", "Every logit is finite.",
     "A NaN or inf poisons the softmax and every sample drawn from it.",
     "nan-in-the-logits", logits_finite),
    ("softmax-sums-to-one", "The next-token probabilities sum to 1 within the dtype's rounding.",
     "A distribution is normalised; only its summation order may differ.",
     "unnormalised-logprobs", softmax_sums_to_one),
    ("next-token-is-the-logits", "next_token's log-probabilities are log_softmax of the logits' last row.",
     "Both read the same pass; a processor applied to one only (a hidden temperature) is a bug.",
     "hidden-temperature", next_token_is_log_softmax_of_logits),
    ("argmax-is-the-next-token", "The last row's argmax is the next token, and greedy generation starts with it.",
     "The model's prediction is the last position's best row.",
     "greedy-starts-with-the-runner-up", argmax_is_next_token),
    ("asked-again-the-same", "A question asked again of a fresh runtime gives the same numbers.",
     "Nothing of one request (a KV cache, a sampler's state) may leak into the next.",
     "state-leaks-between-requests", same_numbers_asked_again),
    ("batch-equals-alone", "A prompt's numbers read in a batch beside longer and shorter prompts equal it read alone.",
     "Padding is masked and rows are independent: only the last bits of a float may move.",
     "padding-leaks-into-the-batch", batch_equals_alone_next_token),
    ("batched-generation-equals-alone", "A greedy generation in a batch equals the prompt generated alone.",
     "Left padding shifts positions; the attention mask and position ids must undo it.",
     "batch-positions-shifted", batch_equals_alone_generation),
    ("identical-rows-agree", "Every row of a batch of one prompt generates the same greedy tokens.",
     "Rows do not depend on their index in the batch.",
     "row-index-leaks", identical_rows_agree),
    ("greedy-is-a-chain-of-argmaxes", "Each greedy token is the argmax of its step read by teacher forcing.",
     "Greedy decoding picks the best candidate at every step.",
     "greedy-picks-a-lower-rank", greedy_is_a_chain_of_argmaxes),
    ("shorter-greedy-is-a-prefix", "A shorter greedy run is a prefix of a longer one.",
     "A step depends only on the tokens before it, never on how many are asked for.",
     "length-dependent-decoding", shorter_greedy_is_a_prefix),
    ("kv-cache-equals-teacher-forcing", "Each token's log-probability while decoding equals one teacher-forced pass.",
     "The KV cache holds exactly the earlier positions: a stale or shifted cache reads other numbers.",
     "stale-kv-cache", kv_cache_equals_teacher_forcing),
    ("untempered-logprobs-recorded", "A sampled generation records each token's untempered log-probability.",
     "Temperature shapes the draw, not the model's numbers reported beside it.",
     "records-tempered-logprobs", sampled_generation_records_untempered_logprobs),
    ("nothing-follows-a-stop-token", "No token follows a stop token (EOS) in a generation.",
     "A row ends at its EOS; a batch pads finished rows, it does not continue them.",
     "decodes-past-eos", nothing_follows_a_stop_token),
    ("max-new-tokens-is-the-length", "A generation has max_new_tokens tokens unless it ends at a stop token.",
     "The limit counts new tokens only, and a row ends early only at EOS.",
     "one-token-too-many", max_new_tokens_is_the_length),
    ("seeded-sample-reproduces", "A sample under one seed, asked again of a fresh runtime, draws the same tokens.",
     "Reproducible sampling is what makes a sampled spec a test.",
     "unseeded-sampler", seeded_sample_reproduces),
    ("the-seed-matters", "Two seeds draw otherwise where the next token is not nearly certain.",
     "A sampler that ignores its seed draws one sequence for every row.",
     "fixed-seed-sampler", the_seed_matters),
    ("draws-follow-the-distribution", "Draws at T = 1, top-50 follow the model's own top-50 distribution (G-test).",
     "The sampler draws from the numbers the model computed, renormalised over what the settings keep.",
     "sampler-off-distribution", draws_follow_the_distribution),
    ("top-k-holds", "Every token sampled with top_k = 5 ranks among the top 5 of its step.",
     "Top-k keeps the k best candidates and nothing else.",
     "top-k-ignored", top_k_holds),
    ("nucleus-holds", "Every token sampled with top_p = 0.5 lies inside the 0.5 nucleus of its step.",
     "Top-p keeps the best candidates until their mass reaches p, the one that crosses it included.",
     "top-p-ignored", nucleus_holds),
    ("cold-draws-the-argmax", "As T -> 0 (T = 0.01) every draw is the argmax, where it leads by 0.25 nats.",
     "Temperature divides the logits: a cold sampler is greedy.",
     "temperature-ignored", cold_draws_the_argmax),
    ("cooling-favours-the-argmax", "At T = 0.5 the argmax is drawn at least as often as its untempered probability.",
     "Dividing logits by T < 1 moves mass to the best candidate.",
     "temperature-inverted", cooling_favours_the_argmax),
    ("score-is-the-next-token-question", "score's value at each position equals next_token asked at that prefix.",
     "One teacher-forced pass and a pass per prefix read the same ids.",
     "scores-shifted-by-one", score_is_the_next_token_question),
    ("choose-sums-the-options-scores", "choose scores each option as the sum of its tokens' log-probabilities.",
     "A log-likelihood of a continuation is the sum over its tokens; a mean or a first token alone is another rule.",
     "choose-averages", choose_sums_the_options_scores),
    ("choose-reads-the-context-alone",
     "choose reads the context as next_token reads it, and each option as its own tokens after it.",
     "So a one-token option's score is the next-token probability. lm-eval tokenizes context and continuation "
     "together and splits at the context's tokens; that differs where a merge crosses the boundary (a context ending "
     "in a space), and then the context is not the prompt the model is asked.",
     "choose-splits-the-whole-text", choose_reads_the_context_as_next_token_does),
    ("decode-inverts-encode", "decode(encode(t)) == t over accents, CJK, emoji and runs of spaces.",
     "Byte-level BPE and SentencePiece with byte fallback are both lossless.",
     "cleans-up-spaces", decode_inverts_encode),
    ("specials-come-first", "Whatever the tokenizer adds to a text (a BOS) comes before the text's own ids.",
     "A model reads its BOS first; the text's ids are the same with or without it.",
     "bos-at-the-end", specials_come_first),
    ("every-id-decodes", "Every id below the tokenizer's size decodes, and the vocabulary names each output row.",
     "Every row the model scores must be nameable.",
     "vocabulary-short", every_id_decodes),
    ("padding-rows-out-of-reach", "Output rows beyond the tokenizer's tokens are named padding and never ranked high.",
     "A padded output layer's extra rows stand for no token (a trained model never predicts them).",
     "padding-rows-favoured", padding_rows_are_named_and_out_of_reach),
    ("beyond-the-context-is-refused", "A prompt longer than the model's context is refused, never cut silently.",
     "A silently truncated prompt is another question.",
     "truncates-silently", a_prompt_beyond_the_context_is_refused),
    ("chat-opens-the-assistants-turn",
     "The rendered chat prompt, followed by the reply, is the template's rendering of the conversation with it.",
     "The model answers as the assistant only when its turn is open at the end.",
     "no-generation-prompt", chat_opens_the_assistants_turn),
    ("chat-is-generate", "A chat answer is generate on the rendered prompt, whose text reads as its ids.",
     "The template's text and the ids the model reads must be the same prompt (no second BOS).",
     "chat-adds-a-bos", chat_is_generate_on_the_rendered_prompt),
)  # fmt: skip

NAMES: Sequence[str] = tuple(INVARIANTS)
