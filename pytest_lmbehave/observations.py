"""What the LM API returns: plain, comparable records of one observation of a model each.

They hold numbers, ids, texts and a ``Vocabulary`` value, never the model: they print, compare and pickle with
no model loaded (and with neither torch nor transformers imported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .defaults import TOP
from .errors import BackendUnavailable, InputError
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    import numpy


@dataclass(frozen=True)
class Tokenization:
    """A text as the model reads it (``ids``, ``pieces``: with any special token its tokenizer adds, such as a
    BOS) and the text's own tokens (``text_ids``, ``text_pieces``: without them)."""

    text: str
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    text_ids: tuple[int, ...] = ()
    text_pieces: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        # `assert lm.tokenize(t) == ["Sh", "akespeare"]` compares pieces; a list of ints compares ids.
        if isinstance(other, Tokenization):
            return (self.text, self.ids, self.pieces) == (other.text, other.ids, other.pieces)
        if isinstance(other, (list, tuple)):
            if all(isinstance(x, int) for x in other):
                return list(self.ids) == list(other)
            if all(isinstance(x, str) for x in other):
                return list(self.pieces) == list(other)
        return NotImplemented

    __hash__ = object.__hash__


@dataclass(frozen=True)
class Candidate:
    piece: str
    id: int
    prob: float
    logprob: float


@dataclass(frozen=True, eq=False)
class Distribution:
    """The model's next-token distribution after a prompt.

    ``values`` holds a log-probability for every vocabulary entry (read-only float32). A served model reports only
    its top ``known`` candidates (and any token asked about); the other entries are -inf, and a question about one
    of them says so instead of answering.
    """

    prompt: str
    values: numpy.ndarray[Any, Any] = field(repr=False)
    vocabulary: Vocabulary = field(repr=False)
    prompt_ids: tuple[int, ...] = ()  # the ids the model read
    known: int = 0  # 0: every entry is known; k: only the top k (a served model)
    ranks: dict[int, int] = field(default_factory=dict, repr=False)  # exact ranks a served model reported

    @property
    def logprobs(self) -> Any:
        """The log-probabilities as a torch tensor [vocab] (a copy: writing into it changes nothing else)."""
        __tracebackhide__ = True
        if self.known:
            raise BackendUnavailable(
                f"the whole next-token distribution is not available from a served model: it reports its top "
                f"{self.known} candidates (use top(k), prob() and rank() for those)"
            )
        import torch

        return torch.tensor(self.values)

    @property
    def argmax_id(self) -> int:
        return int(self.values.argmax())

    @property
    def argmax(self) -> str:
        return self.vocabulary.piece(self.argmax_id)

    @property
    def vocab_size(self) -> int:
        return int(self.values.shape[0])

    def top(self, k: int = TOP) -> list[Candidate]:
        __tracebackhide__ = True
        import numpy

        limit = self.known or self.vocab_size
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
            if self.known and isinstance(k, int) and 1 <= k <= self.vocab_size:
                raise BackendUnavailable(
                    f"top(k={k}): the served model reports at most {self.known} candidates (its --max-logprobs); "
                    f"ask for at most top({self.known}), or start the server with --max-logprobs {k}"
                )
            raise InputError(f"top(k={k!r}): k must be a whole number from 1 to the vocabulary size, {self.vocab_size}")
        ids = numpy.argpartition(-self.values, k - 1)[:k] if k < self.vocab_size else numpy.arange(self.vocab_size)
        ordered = sorted((int(i) for i in ids), key=lambda i: (-float(self.values[i]), i))
        return [
            Candidate(self.vocabulary.piece(i), i, math.exp(float(self.values[i])), float(self.values[i]))
            for i in ordered
        ]

    @property
    def margin(self) -> float:
        """Log-probability gap (nats) between the top candidate and the runner-up."""
        first, second = self.top(2)
        return first.logprob - second.logprob

    def prob(self, piece: str | int) -> float:
        return math.exp(self.logprob(piece))

    def logprob(self, piece: str | int) -> float:
        __tracebackhide__ = True
        token = self._id(piece)
        value = float(self.values[token])
        if self.known and value == -math.inf:
            raise BackendUnavailable(
                f"{piece!r} is not among the top {self.known} candidates the served model reported here; ask a "
                "served model about tokens it ranks high, or use choose() to score a continuation"
            )
        return value

    def rank(self, piece: str | int) -> int:
        """1 for the argmax; ties share the better rank."""
        __tracebackhide__ = True
        value = self.logprob(piece)
        token = self._id(piece)
        if token in self.ranks:
            return self.ranks[token]
        above = int((self.values > value).sum())
        if self.known and above >= self.known:
            raise BackendUnavailable(
                f"{piece!r} ranks below the top {self.known} candidates the served model reported: its rank is unknown"
            )
        return above + 1

    def _id(self, piece: str | int) -> int:
        __tracebackhide__ = True
        if isinstance(piece, int) and not isinstance(piece, bool):
            if not 0 <= piece < self.vocab_size:
                raise InputError(
                    f"token id {piece} is outside the vocabulary: ids run from 0 to {self.vocab_size - 1}; "
                    "ask by piece (' great') or by an id from lm.tokenize(text).ids"
                )
            return piece
        if isinstance(piece, str):
            return self.vocabulary.id_of(piece)
        raise InputError(f"ask about a token piece (a string) or a token id (an int), not {type(piece).__name__}")

    def __eq__(self, other: object) -> bool:
        # `assert lm.next_token(p) == " great"` compares the argmax piece.
        if isinstance(other, str):
            return self.argmax == other
        if isinstance(other, int) and not isinstance(other, bool):
            return self.argmax_id == other
        if isinstance(other, Distribution):
            return self is other
        return NotImplemented

    __hash__ = object.__hash__


# One step's best candidates in a generation: (piece, id, log-probability), best first.
Alternatives = tuple[tuple[str, int, float], ...]


@dataclass(frozen=True)
class Generation:
    prompt: str
    text: str  # the new tokens only
    ids: tuple[int, ...]  # the new tokens only
    full_text: str
    prompt_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    logprobs: tuple[float, ...]  # each new token's log-probability under the untempered model
    margins: tuple[float, ...]  # each step's gap between the top two candidates (nats)
    argmax_ids: tuple[int, ...] = ()  # each step's top candidate under the untempered model
    sampling: str = "greedy"
    seed: int | None = None
    alternatives: tuple[Alternatives, ...] = field(default=(), repr=False, compare=False)  # to explain a failure

    @property
    def greedy_agreement(self) -> float:
        """The share of new tokens that are the untempered model's top candidate at their step."""
        return sum(a == b for a, b in zip(self.ids, self.argmax_ids)) / len(self.ids) if self.ids else 1.0

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else 0.0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.text == other
        if isinstance(other, Generation):
            return (self.prompt, self.ids, self.sampling, self.seed) == (
                other.prompt,
                other.ids,
                other.sampling,
                other.seed,
            )
        return NotImplemented

    __hash__ = object.__hash__


@dataclass(frozen=True)
class Choice:
    prompt: str
    options: tuple[str, ...]
    scores: tuple[float, ...]  # summed log-probability of each option as a continuation
    prompt_ids: tuple[int, ...] = field(default=(), compare=False)  # the ids the model read

    @property
    def best(self) -> str:
        return self.options[max(range(len(self.options)), key=lambda i: self.scores[i])]

    @property
    def margin(self) -> float:
        ordered = sorted(self.scores, reverse=True)
        return ordered[0] - ordered[1] if len(ordered) > 1 else float("inf")

    def score(self, option: str) -> float:
        return self.scores[self.options.index(option)]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.best == other
        if isinstance(other, Choice):
            return (self.prompt, self.options, self.scores) == (other.prompt, other.options, other.scores)
        return NotImplemented

    __hash__ = object.__hash__
