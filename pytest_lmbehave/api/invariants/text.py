"""Invariants of text in and out: scores and choices, the tokenizer and vocabulary, the context and chat template."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ...config.errors import BackendUnavailable, InputError
from .reading import (
    PROMPTS,
    QUESTION,
    TEXTS,
    _fresh,
    _ids,
    _output_rows,
    _same_greedy,
    tolerance,
)

if TYPE_CHECKING:
    from ..lm import LM


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
    except Exception as error:  # the model itself fell over (GPT-2's position table ends at its context)
        raise AssertionError(
            f"a prompt of {len(ids)} tokens, beyond the context of {context}, was not refused: the model raised "
            f"{type(error).__name__}: {error}"
        ) from None
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
