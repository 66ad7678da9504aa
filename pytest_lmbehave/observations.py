"""What the LM API returns: plain, comparable records of one observation of a model each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InputError


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
    """The model's next-token distribution after a prompt (probabilities over the whole vocabulary)."""

    prompt: str
    logprobs: Any  # torch.Tensor [vocab], float32
    decode: Any = field(repr=False)  # id -> piece
    encode_piece: Any = field(repr=False)  # piece -> id (raises when the piece is not one token)
    prompt_ids: tuple[int, ...] = ()  # the ids the model read

    @property
    def argmax_id(self) -> int:
        return int(self.logprobs.argmax())

    @property
    def argmax(self) -> str:
        return str(self.decode(self.argmax_id))

    @property
    def vocab_size(self) -> int:
        return int(self.logprobs.shape[0])

    def top(self, k: int = 5) -> list[Candidate]:
        __tracebackhide__ = True
        import math

        import torch

        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= self.vocab_size:
            raise InputError(f"top(k={k!r}): k must be a whole number from 1 to the vocabulary size, {self.vocab_size}")
        values, ids = torch.topk(self.logprobs, k)
        return [Candidate(self.decode(i), i, math.exp(v), v) for v, i in zip(values.tolist(), ids.tolist())]

    @property
    def margin(self) -> float:
        """Log-probability gap (nats) between the top candidate and the runner-up."""
        import torch

        first, second = torch.topk(self.logprobs, 2).values.tolist()
        return float(first - second)

    def prob(self, piece: str | int) -> float:
        import math

        return math.exp(self.logprob(piece))

    def logprob(self, piece: str | int) -> float:
        __tracebackhide__ = True
        if isinstance(piece, int) and not isinstance(piece, bool):
            if not 0 <= piece < self.vocab_size:
                raise InputError(
                    f"token id {piece} is outside the vocabulary: ids run from 0 to {self.vocab_size - 1}; "
                    "ask by piece (' great') or by an id from lm.tokenize(text).ids"
                )
            token = piece
        elif isinstance(piece, str):
            token = self.encode_piece(piece)
        else:
            raise InputError(f"ask about a token piece (a string) or a token id (an int), not {type(piece).__name__}")
        return float(self.logprobs[token])

    def rank(self, piece: str | int) -> int:
        """1 for the argmax; ties share the better rank."""
        value = self.logprob(piece)
        return int((self.logprobs > value).sum()) + 1

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
    engine: Any = field(default=None, repr=False, compare=False)  # to explain a failure

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
