"""A backend known by its facts until a question needs the model: then it loads it, once.

Under ``--lm-cache`` an unchanged re-run answers every question from disk; with this stand-in its engine starts
from the fingerprint, vocabulary and context alone, so the model is loaded (and transformers imported, or llama.cpp's
weights read) only on the first miss. Each engine learns its facts its own way (``transformers/lazy.py``,
``llamacpp``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.errors import LMBehaveError
from .protocol import Backend, Decoded, Drawn, Logprobs
from .sampling import Policy
from .vocabulary import Vocabulary


@dataclass(frozen=True)
class ModelFacts:
    """What the LM API needs of a model besides its answers: known without loading it once it has been loaded."""

    fingerprint: dict[str, str]
    vocabulary: Vocabulary
    context: int


class LazyBackend:
    """An engine's backend known by its facts: the engine's ``name`` and ``decodes_each_draw`` are its own, the
    rest is answered from ``facts`` or by the backend ``load`` gives, called on the first question that needs it."""

    def __init__(
        self, facts: ModelFacts, load: Callable[[], Backend], name: str, decodes_each_draw: bool = False
    ) -> None:
        self.name = name
        self.decodes_each_draw = decodes_each_draw
        self.facts = facts
        self._load = load
        self._real: Backend | None = None
        self._failure: LMBehaveError | None = None  # a model that cannot load is tried, and reported, once

    @property
    def real(self) -> Backend:
        """The backend itself, loaded on first use (the model, torch and transformers with it)."""
        if self._failure is not None:
            raise type(self._failure)(str(self._failure))
        if self._real is None:
            try:
                self._real = self._load()
            except LMBehaveError as error:
                self._failure = error
                raise
        return self._real

    @property
    def loaded_yet(self) -> bool:
        return self._real is not None

    def __getattr__(self, name: str) -> Any:  # model, tokenizer, loaded: the raw objects of the real backend
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real, name)

    @property
    def vocab_size(self) -> int:
        return self.facts.vocabulary.size

    @property
    def context(self) -> int:
        return self.facts.context

    def fingerprint(self) -> dict[str, str]:
        return self.facts.fingerprint

    def vocabulary(self) -> Vocabulary:
        return self.facts.vocabulary

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.real.tokenize(text, special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.real.detokenize(ids)

    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        return self.real.next_logprobs(rows)

    def forced_logprobs(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], generated: bool = False
    ) -> list[list[Logprobs]]:
        return self.real.forced_logprobs(rows, generated)

    def generate(
        self,
        rows: Sequence[Sequence[int]],
        steps: int | Sequence[int],
        policies: Sequence[Policy],
        drafts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Decoded]:
        return self.real.generate(rows, steps, policies, drafts)

    def logits(self, ids: Sequence[int]) -> Any:
        return self.real.logits(ids)

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        return self.real.draws(ids, policy, n)
