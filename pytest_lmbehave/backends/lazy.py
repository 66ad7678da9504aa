"""A backend known by its facts until a question needs the model: then it loads it, once.

Under ``--lm-cache`` an unchanged re-run answers every question from disk; with this stand-in its engine starts
from the fingerprint, vocabulary and context alone, so torch and transformers are imported only on the first miss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..models import ModelFacts
from ..sampling import Policy
from ..vocabulary import Vocabulary
from . import Backend, Decoded, Logprobs


class LazyBackend:
    name = "transformers"

    def __init__(self, facts: ModelFacts, load: Callable[[], Backend]) -> None:
        self.facts = facts
        self._load = load
        self._real: Backend | None = None

    @property
    def real(self) -> Backend:
        """The backend itself, loaded on first use (the model, torch and transformers with it)."""
        if self._real is None:
            self._real = self._load()
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

    def forced_logprobs(self, rows: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[Logprobs]]:
        return self.real.forced_logprobs(rows)

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
