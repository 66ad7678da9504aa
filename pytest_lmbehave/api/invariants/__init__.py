"""Invariants: what every correct causal-LM stack does, whatever its weights. A failure is a bug in the stack (the
engine, the tokenizer, the sampler, the template or the batching), never a model that behaves otherwise.

``INVARIANTS`` is the one table: each statement, why every stack must hold it, the broken stack that fails it (its
negative control, in ``tests/broken_stacks.py``) and its check, a function of a test's ``LM`` handle. The spec
``specs/test_invariants.py`` runs them all; a user's spec can call one:
``INVARIANTS["greedy-is-a-chain-of-argmaxes"].check(lm)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .numbers import (
    argmax_is_next_token,
    batch_equals_alone_generation,
    batch_equals_alone_next_token,
    greedy_is_a_chain_of_argmaxes,
    identical_rows_agree,
    kv_cache_equals_teacher_forcing,
    logits_finite,
    logits_shape,
    max_new_tokens_is_the_length,
    next_token_is_log_softmax_of_logits,
    nothing_follows_a_stop_token,
    same_numbers_asked_again,
    sampled_generation_records_untempered_logprobs,
    shorter_greedy_is_a_prefix,
    softmax_sums_to_one,
)
from .reading import coincidence
from .sampling import (
    cold_draws_the_argmax,
    cooling_favours_the_argmax,
    draws_follow_the_distribution,
    nucleus_holds,
    seeded_sample_reproduces,
    the_seed_matters,
    top_k_holds,
)
from .text import (
    a_prompt_beyond_the_context_is_refused,
    chat_is_generate_on_the_rendered_prompt,
    chat_opens_the_assistants_turn,
    choose_reads_the_context_as_next_token_does,
    choose_sums_the_options_scores,
    decode_inverts_encode,
    every_id_decodes,
    padding_rows_are_named_and_out_of_reach,
    score_is_the_next_token_question,
    specials_come_first,
)

if TYPE_CHECKING:
    from ..lm import LM

__all__ = ["INVARIANTS", "Invariant", "coincidence"]


@dataclass(frozen=True)
class Invariant:
    name: str
    statement: str
    why: str
    control: str  # the broken stack that fails it: tests/broken_stacks.py builds each by this name
    check: Callable[[LM], None]


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
     "padding-unmasked", batch_equals_alone_generation),
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
    ("nucleus-holds", "Every token sampled with top_p = 0.2 lies inside the 0.2 nucleus of its step.",
     "Top-p keeps the best candidates until their mass reaches p, the one that crosses it included.",
     "top-p-ignored", nucleus_holds),
    ("cold-draws-the-argmax", "As T -> 0 (T = 0.01) every draw is the argmax, where it leads by 0.25 nats.",
     "Temperature divides the logits: a cold sampler is greedy.",
     "temperature-ignored", cold_draws_the_argmax),
    ("cooling-favours-the-argmax", "At T = 0.5, top-50, the argmax is drawn at least as often as its untempered top-50 probability.",
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
