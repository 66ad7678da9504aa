"""What every invariant's check reads with: the prompts and texts asked, the tolerance of a number read two ways, the
near-tie rule for a token read two ways, and the helpers that ask afresh.

Numbers read two ways are compared within the dtype's measured noise (``lm.noise``, at least 2e-4 nats: float32's
reading paths move a log-probability by ~1e-5). Tokens read two ways are compared by the near-tie rule: two readings
that name other tokens agree when each reads the other's token within that noise of its own (random weights give flat
distributions, and a tie that flips is not a broken stack)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from ...config.errors import BackendUnavailable

if TYPE_CHECKING:
    from ...observations.next_token import Distribution
    from ..lm import LM

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


def whole(dist: Distribution) -> Distribution:
    """The distribution, where it is whole: a served model reports only its top candidates, and an invariant over the
    whole vocabulary cannot be asked of it (it is skipped, saying so)."""
    if dist.known:
        raise BackendUnavailable(
            f"this invariant reads the whole next-token distribution; the server reports its top {dist.known} only"
        )
    return dist


def tolerance(lm: LM) -> float:
    """How far one number read two ways may move: the dtype's measured noise, at least 2e-4 nats."""
    return max(2e-4, lm.noise)


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
    from ..lm import LM

    return LM(lm.runtime.fresh(), lm.sampling, lm.seed)


def _output_rows(lm: LM) -> int:
    return int(lm.runtime.backend.vocab_size)


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


def _stops(lm: LM) -> frozenset[int]:
    found = getattr(lm.runtime.backend, "stop_ids", None)
    if found is None:
        raise BackendUnavailable(f"the {lm.runtime.backend.name} backend does not say which tokens end a generation")
    return frozenset(found)


def _spread(lm: LM) -> str:
    """The prompt whose argmax is likeliest while a draw still has a choice (two draws agree with a chance under
    0.5): a seed can only matter, and a temperature only show, where a draw has somewhere else to go."""
    found = [(dist.prob(dist.argmax_id), prompt) for prompt in PROMPTS for dist in [lm.next_token(prompt)]]
    open_ = [(p, prompt) for p, prompt in found if coincidence([lm.next_token(prompt)]) < 0.5]
    if open_:
        return max(open_)[1]
    pytest.skip("every prompt's next token has p >= 0.9 here: a seed has nothing to choose between")
