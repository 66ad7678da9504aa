"""Decoding settings in one shape: ``Sampling`` (a test's knobs), ``Policy`` (how one row picks: greedy, or sampled
with its own seed), and the seeds, derived from a base seed and a stable key so no result depends on test order."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..config.errors import InputError

KNOBS = ("temperature", "top_p", "top_k")


ORDER = ("temperature", "top_k", "top_p", "min_p")  # transformers' warpers (generation/utils.py): what a spec means
LLAMA_CPP_ORDER = ("top_k", "top_p", "min_p", "temperature")  # llama-cpp-python's Llama._init_sampler, its server's


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of a sampled test; ``None`` means the knob is off (no top-k unless asked)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        if self.temperature is not None and not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise InputError(
                f"temperature={self.temperature!r} must be a number > 0; use greedy decoding for 'temperature 0'"
            )
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise InputError(
                f"top_p={self.top_p!r} must lie in (0, 1]; 0.9 keeps the smallest set of tokens holding 90% of the probability"
            )
        if self.top_k is not None and not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise InputError(f"top_k={self.top_k!r} must be a whole number >= 1, or None for no top-k filter")
        if self.seed is not None and not (isinstance(self.seed, int) and self.seed >= 0):
            raise InputError(
                f"seed={self.seed!r} must be a whole number >= 0, or None to derive it from --lm-seed and the test id"
            )

    @property
    def draws(self) -> Sampling:
        """The settings that decide the draws, without the test-level seed (each row carries its own)."""
        return Sampling(self.temperature, self.top_p, self.top_k)

    @property
    def knobs(self) -> tuple[float | None, float | None, int | None]:
        """The knobs in their one order (temperature, top_p, top_k): the plan's form of a sampling."""
        return (self.temperature, self.top_p, self.top_k)

    def describe(self) -> str:
        """The knobs in words, the records' form of a sampling: ``sampled(temperature=0.7, top_k=50)``."""
        knobs = [f"{k}={v}" for k, v in zip(KNOBS, self.knobs) if v is not None]
        return "sampled(" + ", ".join(knobs) + ")"

    @classmethod
    def from_words(cls, words: str) -> Sampling:
        """The sampling ``describe`` wrote."""
        inner = words.strip().removeprefix("sampled(").removesuffix(")")
        found = dict(part.strip().split("=", 1) for part in inner.split(",") if "=" in part)
        temperature, top_p, top_k = (found.get(name) for name in KNOBS)
        return cls(
            None if temperature is None else float(temperature),
            None if top_p is None else float(top_p),
            None if top_k is None else int(top_k),
        )


@dataclass(frozen=True)
class Policy:
    """How one row picks its tokens: greedy (``sampling`` None, no seed) or sampled with its own ``seed``."""

    sampling: Sampling | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.sampling is not None and self.sampling.seed is not None:
            object.__setattr__(self, "sampling", self.sampling.draws)  # the row's seed is the one that counts
        if self.sampling is None and self.seed is not None:
            object.__setattr__(self, "seed", None)  # a greedy row draws nothing

    @property
    def greedy(self) -> bool:
        return self.sampling is None

    def describe(self) -> str:
        return "greedy" if self.sampling is None else self.sampling.describe()

    @classmethod
    def from_words(cls, words: str, seed: int | None) -> Policy:
        """The policy a record names: its sampling in words (``describe``) and its seed."""
        return cls() if words == "greedy" else cls(Sampling.from_words(words), seed)


GREEDY = Policy()


def derive_seed(base: int, key: str) -> int:
    """A seed from a base seed and a stable key (a node id): independent of test order and worker."""
    return (base + zlib.crc32(key.encode("utf-8"))) % (2**32)


def row_seed(seed: int, row: int) -> int:
    """Row 0 of a sampled call takes the call's seed, so a batch's first row equals the same prompt asked alone."""
    return seed if row == 0 else derive_seed(seed, f"row-{row}")
