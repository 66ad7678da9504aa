"""Picking each row's next token in a batch whose rows keep their own policy: greedy, or sampled with their own seed.

transformers' ``generate`` runs the loop (KV cache, padding, stopping at EOS); ``RowPicker`` is a logits processor
that chooses every row's token itself and forces it. A row's tokens then depend only on its prompt, its settings
and its seed, never on the rows batched beside it, so requests from different tests (or different sampling
settings) can share one batch. Per step it keeps only what a ``Generation`` records: the chosen token's
log-probability under the untempered model, the top-2 margin, the argmax and the best few candidates, never the
whole logits. A draft's replay (``drafts.py``) picks with the same ``RowState``, so it draws what decoding draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sampling import Policy, Sampling

from ...config.defaults import DECODING_VERSION as ALGORITHM_VERSION  # noqa: F401 - the fingerprint's "decoding"
from ..protocol import ALTERNATIVES


def warpers_for(sampling: Sampling) -> Any:
    """transformers' own warpers, in the order its sampling applies them: temperature, top-k, top-p."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if sampling.temperature is not None and sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(float(sampling.temperature)))
    if sampling.top_k is not None:
        warpers.append(TopKLogitsWarper(int(sampling.top_k)))
    if sampling.top_p is not None and sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(float(sampling.top_p)))
    return warpers


def draw(probs: Any, generator: Any) -> int:
    """One token from ``probs`` by inverting its cumulative sum at a uniform draw from the row's own generator.

    torch.multinomial draws one exponential per vocabulary entry (49,152 here) for a single sample; this draws
    one number. Tokens with no probability (cut by top-k or top-p) have no width, so they are never drawn.
    """
    import torch

    cumulative = torch.cumsum(probs, dim=0)
    point = torch.rand((), generator=generator, device=probs.device) * cumulative[-1]
    index = int(torch.searchsorted(cumulative, point, right=True).clamp(max=probs.shape[0] - 1))
    if probs[index] <= 0:  # only at a rounding edge past the last token with probability
        index = int(torch.nonzero(probs > 0)[-1])
    return index


class RowState:
    """One row's policy, the model's own processors for it (``configured.py``) and, for a sampled row, its own
    generator: carried from a draft's replay into decoding, so a row continued after its draft draws exactly what
    free decoding would have drawn. ``sampling`` is the policy's, with the config's defaults filled in."""

    def __init__(self, policy: Policy, processors: Any = None, sampling: Sampling | None = None) -> None:
        self.policy = policy
        self.processors = processors
        drawn = sampling if sampling is not None else policy.sampling
        self.warpers = None if policy.sampling is None or drawn is None else warpers_for(drawn)
        self._generator: Any = None

    def process(self, input_ids: Any, scores: Any) -> Any:
        """The scores [1, vocab] generate picks from: the raw ones, through the model's own processors (which read
        the row's ids so far, [1, length], never a batch's padding)."""
        return scores if self.processors is None else self.processors(input_ids, scores.clone())

    def generator(self, device: Any) -> Any:
        import torch

        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(int(self.policy.seed or 0))
        return self._generator

    def pick(self, input_ids: Any, scores: Any, argmax: Any) -> int:
        """This step's token from the processed scores [1, vocab]: the argmax, or a draw from the warped
        distribution."""
        import torch

        if self.warpers is None:
            return int(argmax)
        warped = self.warpers(input_ids, scores.clone())
        return draw(torch.softmax(warped.float(), dim=-1)[0], self.generator(scores.device))


def step_numbers(scores: Any) -> tuple[Any, Any, Any]:
    """What a step records, from raw scores [B, vocab]: log-probabilities, the best candidates and the argmax."""
    import torch

    logprobs = torch.log_softmax(scores.float(), dim=-1)
    best = torch.topk(logprobs, min(ALTERNATIVES, logprobs.shape[-1]), dim=-1)
    return logprobs, best, scores.argmax(dim=-1)


class RowPicker:
    """A ``LogitsProcessor``: chooses each row's token by its policy and records the step's figures. ``pads`` is
    each row's left padding in the batch, so a row's own processors read its own ids."""

    def __init__(self, states: list[RowState], pads: list[int]) -> None:
        self.states = states
        self.pads = pads
        self.chosen: list[Any] = []  # per step: [B] token ids
        self.logprobs: list[Any] = []  # per step: [B] log-probability of the chosen token (untempered)
        self.margins: list[Any] = []  # per step: [B] top-1 minus top-2 log-probability
        self.argmaxes: list[Any] = []  # per step: [B] the untempered top token
        self.best: list[tuple[Any, Any]] = []  # per step: ([B, 5] log-probabilities, [B, 5] ids), best first

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if any(state.processors is not None for state in self.states):
            scores = scores.clone()
            for row, (state, pad) in enumerate(zip(self.states, self.pads)):
                scores[row : row + 1] = state.process(input_ids[row : row + 1, pad:], scores[row : row + 1])
        logprobs, best, argmax = step_numbers(scores)
        chosen = argmax.clone()
        for row, state in enumerate(self.states):
            if state.warpers is not None:
                chosen[row] = state.pick(input_ids[row : row + 1], scores[row : row + 1], argmax[row])
        self.chosen.append(chosen.cpu())
        self.logprobs.append(logprobs.gather(1, chosen[:, None])[:, 0].cpu())
        self.margins.append((best.values[:, 0] - best.values[:, 1]).cpu())
        self.argmaxes.append(argmax.cpu())
        self.best.append((best.values.cpu(), best.indices.cpu()))
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, chosen[:, None], 0.0)
        return forced

    def row(self, row: int) -> tuple[list[float], list[float], list[int], list[tuple[tuple[int, float], ...]]]:
        """One row's recorded figures, step by step."""
        return (
            [float(step[row]) for step in self.logprobs],
            [float(step[row]) for step in self.margins],
            [int(step[row]) for step in self.argmaxes],
            [
                tuple((int(i), float(v)) for v, i in zip(values[row].tolist(), ids[row].tolist()))
                for values, ids in self.best
            ],
        )
