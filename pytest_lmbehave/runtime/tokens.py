"""Ids and text for one model: encoding (with a BOS where the tokenizer adds one), decoding, the checks every
prompt passes, and the text fields of the observations built from ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..backends import Backend, Decoded
from ..backends.sampling import Policy
from ..backends.vocabulary import Vocabulary
from ..config.errors import InputError
from ..observations.generation import Generation
from ..observations.tokenization import Tokenization
from .memo import Memo

Prompt = str | Sequence[int]


class Tokens:
    def __init__(self, backend: Backend, vocabulary: Vocabulary, context: int, memo: Memo) -> None:
        self.backend = backend
        self.vocabulary = vocabulary
        self.context = context  # tokens the model reads at most (0: unknown)
        self.memo = memo  # remembers every lookup, so an unchanged re-run needs no tokenizer

    def encode(self, text: str, special: bool = True) -> list[int]:
        """Ids as the tokenizer gives them (with a BOS where the model's tokenizer adds one); pieces go without."""
        return list(self.memo.through(("encode", text, special), lambda: self.backend.tokenize(text, special)))

    def decode(self, ids: Sequence[int] | int) -> str:
        __tracebackhide__ = True
        ids = [ids] if isinstance(ids, int) else list(ids)
        self.vocabulary.check(ids)
        return str(self.memo.through(("decode", tuple(ids)), lambda: self.backend.detokenize(ids)))

    def tokenize(self, text: str) -> Tokenization:
        __tracebackhide__ = True
        if not isinstance(text, str):
            raise InputError(f"tokenize() takes a string, not {type(text).__name__}")
        ids, own = self.encode(text), self.encode(text, special=False)
        piece = self.vocabulary.piece
        return Tokenization(text, tuple(ids), tuple(map(piece, ids)), tuple(own), tuple(map(piece, own)))

    def chat(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int]]:
        """A conversation rendered by the model's chat template (the assistant's turn opened): text and ids."""
        turns = tuple((m["role"], m["content"]) for m in messages)
        text, ids = self.memo.through(("chat", turns), lambda: self.backend.chat(messages))
        return text, list(ids)

    def ids(self, prompt: Prompt, extra: int = 0) -> list[int]:
        """The ids a prompt reaches the model as, checked against the vocabulary and the context."""
        __tracebackhide__ = True
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise InputError("the prompt has no tokens; pass at least one character of text or one token id")
        self.vocabulary.check(ids)
        if self.context and len(ids) + extra > self.context:
            raise InputError(
                f"the prompt has {len(ids)} tokens"
                + (f" and asks for {extra} new ones" if extra else "")
                + f", more than the model's context of {self.context} tokens; shorten the prompt"
                + (" or lower max_new_tokens" if extra else "")
            )
        return ids

    def text(self, prompt: Prompt, ids: Sequence[int]) -> str:
        return prompt if isinstance(prompt, str) else self.decode(ids)

    def generation(self, prompt_ids: tuple[int, ...], decoded: Decoded, policy: Policy) -> Generation:
        piece = self.vocabulary.piece
        return Generation(
            prompt=self.decode(prompt_ids),
            text=self.decode(decoded.ids),
            ids=decoded.ids,
            full_text=self.decode(prompt_ids + decoded.ids),
            prompt_ids=prompt_ids,
            pieces=tuple(map(piece, decoded.ids)),
            logprobs=decoded.logprobs,
            margins=decoded.margins,
            argmax_ids=decoded.argmax_ids,
            sampling=policy.describe(),
            seed=policy.seed,
            alternatives=tuple(tuple((piece(i), i, v) for i, v in step) for step in decoded.alternatives),
        )

    def truncate(self, generation: Generation, n: int) -> Generation:
        if n >= len(generation.ids):
            return generation
        ids = generation.ids[:n]
        return replace(
            generation,
            ids=ids,
            text=self.decode(ids),
            full_text=self.decode(generation.prompt_ids + ids),
            pieces=generation.pieces[:n],
            logprobs=generation.logprobs[:n],
            margins=generation.margins[:n],
            argmax_ids=generation.argmax_ids[:n],
            alternatives=generation.alternatives[:n],
        )
