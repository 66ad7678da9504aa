"""The protocol between the LM API and an engine that computes: token ids in, plain numbers out (``Logprobs``,
``Decoded``). Each engine implements ``Backend``; everything above it speaks only this."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy

    from ..config.settings import Settings
    from .sampling import Policy, Sampling
    from .vocabulary import Vocabulary


Kind = Literal["embedded", "gguf", "directory", "hub", "served"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, resolved from the spec a user wrote, without loading it."""

    spec: str
    kind: Kind
    name: str
    path: Path

    @property
    def is_gguf(self) -> bool:
        return self.kind in ("embedded", "gguf")


@dataclass(frozen=True)
class Logprobs:
    """One next-token distribution as numbers: a log-probability per vocabulary entry (float32, read-only).

    A served model reports only its top ``known`` entries (and the token it was made to read, under teacher
    forcing); the rest are -inf. ``known`` 0 means every entry is known."""

    values: numpy.ndarray[Any, Any]
    known: int = 0
    ranks: dict[int, int] = field(default_factory=dict)  # exact ranks a served model reported (teacher forcing)


ALTERNATIVES = 10  # best candidates a generation keeps per step, to explain a failure (up to --lm-top of them)
PREFIX = 32  # next-token prompts that share their first PREFIX tokens share one forward pass of their common part
# Next-token prompts of one length, at least this long, are read in one pass, each bit for bit what it is read alone
# (backends/transformers/prefill.one_length); shorter ones run other matrix kernels together than alone, so are read
# alone.
TOGETHER_FROM = 4


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all rows share, leaving each row at least its last token."""
    shared = min(len(r) for r in rows) - 1
    for row in rows[1:]:
        shared = next((i for i, (a, b) in enumerate(zip(rows[0][:shared], row)) if a != b), shared)
    return max(shared, 0)


Step = tuple[tuple[int, float], ...]  # a step's best candidates: (id, log-probability), best first


def limits(steps: int | Sequence[int], rows: int) -> list[int]:
    """Each row's limit of new tokens, from one limit for all or one per row."""
    return [steps] * rows if isinstance(steps, int) else list(steps)


@dataclass(frozen=True)
class Decoded:
    """One generated row: the new ids (up to and including a stop token) and what each step recorded."""

    ids: tuple[int, ...]
    logprobs: tuple[float, ...]  # the chosen token's log-probability under the untempered model
    margins: tuple[float, ...]  # top-1 minus top-2 log-probability
    argmax_ids: tuple[int, ...]  # the untempered model's top candidate
    alternatives: tuple[Step, ...] = ()  # the step's best candidates, to explain a failure
    verified: int = 0  # leading tokens taken from a draft after checking them (teacher forcing), not decoded

    def cut(self, n: int) -> Decoded:
        """The first ``n`` steps."""
        if n >= len(self.ids):
            return self
        return Decoded(
            self.ids[:n],
            self.logprobs[:n],
            self.margins[:n],
            self.argmax_ids[:n],
            self.alternatives[:n],
            min(self.verified, n),
        )


@dataclass(frozen=True)
class Drawn:
    """``Backend.draws``' answer: the tokens drawn, the untempered numbers of the pass they were drawn from, and the
    settings the sampler applied (the asked ones, with what the model's own generation config fills in)."""

    tokens: list[int]
    numbers: Logprobs
    sampling: Sampling
    order: tuple[str, ...] | None = None  # the order the sampler applied its knobs in, when not transformers'


class Backend(Protocol):
    """What the LM API needs from an engine that computes. Every verb takes and returns token ids and numbers."""

    name: str  # "transformers", or the served engine's name
    # Each of lm.draws()' draws is a decode of its own (a server: a request, or one of a request's n choices), not a
    # sample from one pass's numbers; the runtime then takes fewer when not told how many (defaults.DRAWS_DECODED).
    decodes_each_draw: bool

    @property
    def vocab_size(self) -> int: ...

    @property
    def context(self) -> int:
        """How many tokens the model reads at most (0 when it does not say)."""
        ...

    def fingerprint(self) -> dict[str, str]:
        """Everything that can change what it computes (model bytes, numerics, versions)."""
        ...

    def vocabulary(self) -> Vocabulary: ...

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """The ids the model reads for ``text`` (with a BOS where its tokenizer adds one, unless not ``special``)."""
        ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def chat(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int]]:
        """The model's own chat template over ``messages``, the assistant's turn opened: the rendered text and the
        ids it reads as (InputError naming the fix when the model has no template)."""
        ...

    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        """The next-token distribution after each row. A row's numbers never depend on the rows beside it, beyond
        the last bits of a float."""
        ...

    def forced_logprobs(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], generated: bool = False
    ) -> list[list[Logprobs]]:
        """Teacher forcing: for each (prompt, continuation), the distribution before each continuation token,
        from one forward pass per batch. ``generated``: as generate picked from it, through the model's own
        generation-config processors (a repetition penalty...), where the backend applies them itself."""
        ...

    def generate(
        self,
        rows: Sequence[Sequence[int]],
        steps: int | Sequence[int],
        policies: Sequence[Policy],
        drafts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Decoded]:
        """Up to ``steps`` new tokens per row (one limit, or one per row), each row by its own policy (greedy, or
        sampled by its own seed); a row never depends on the rows beside it, nor on their limits.
        A draft (the row's ids from an earlier run) is checked in one teacher-forced pass instead of decoded
        where the model agrees with it; the result is the same as without it."""
        ...

    def logits(self, ids: Sequence[int]) -> Any:
        """The raw logits tensor [1, len(ids), vocab]; a served model has none (BackendUnavailable)."""
        ...

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        """``n`` independent draws of the token after ``ids`` through the engine's own sampler, under a sampled
        ``policy`` and its seed: what ``generate``'s first step draws, ``n`` times, from one forward pass."""
        ...


class EnginePackage(Protocol):
    """What a backend package that computes in this process offers at its top, for its row in the engine table
    (``config/engines.py``): the engine's facts, which nothing outside ``backends/`` tests its name for."""

    # Its generations are the plan's drafts: it verifies them by teacher forcing, and --snapshot-update writes its
    # own into the plan. (An engine whose numbers are not the plan's leaves the plan's drafts alone.)
    DRAFTS: bool
    # It verifies drafts, but its numbers are not the plan's: an update adds its generations to the plan as its own
    # drafts, beside the plan's, and changes nothing else (llama.cpp's sampled rows draw other tokens).
    OWN_DRAFTS: bool

    def open(
        self,
        source: ModelSource,
        settings: Settings,
        announce: Callable[[str], None] | None,
        timings: dict[str, tuple[float, float]] | None,
    ) -> Backend:
        """The model loaded (its import and load timed apart, in ``timings``)."""
        ...

    def check(self, settings: Settings, resolve: Callable[[str], ModelSource]) -> None:
        """Before any test: what only this engine can judge of the settings (SettingsError naming the fix)."""
        ...

    def numerics(self, settings: Settings) -> str:
        """The header's words for what computes, and in which numerics."""
        ...

    def by_level(self, environment: Mapping[str, str]) -> bool:
        """Whether numbers recorded in ``environment`` depend on the CPU's SIMD level (its kernels compute other
        numbers on AVX2 and AVX-512), so that the level outweighs the rest in choosing a recorded variant."""
        ...
