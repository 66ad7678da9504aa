"""Picking each row's next token in a batch whose rows keep their own policy: greedy, or sampled with their own seed.

transformers' ``generate`` runs the loop (KV cache, padding, stopping at EOS); ``RowPicker`` is a logits processor
that chooses every row's token itself and forces it. A row's tokens then depend only on its prompt, its settings
and its seed, never on the rows batched beside it, so requests from different tests (or different sampling
settings) can share one batch. Per step it keeps only what a ``Generation`` records: the chosen token's
log-probability under the untempered model, the top-2 margin and the argmax, never the whole logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lm import Sampling

# Raised whenever a change here can change which token a row picks (the draw, the warpers, their order): part of
# the environment fingerprint, so recorded snapshots and --lm-cache entries name the algorithm that made them.
ALGORITHM_VERSION = "1"


@dataclass(frozen=True)
class Policy:
    """How one row picks its tokens: greedy (``sampling`` None) or sampled with its own ``seed``."""

    sampling: Sampling | None = None
    seed: int | None = None


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


class RowPicker:
    """A ``LogitsProcessor``: chooses each row's token by its policy and records the step's figures."""

    def __init__(self, policies: list[Policy]) -> None:
        self.policies = policies
        self.warpers = [None if p.sampling is None else warpers_for(p.sampling) for p in policies]
        self.generators: list[Any] = []
        self.chosen: list[Any] = []  # per step: [B] token ids
        self.logprobs: list[Any] = []  # per step: [B] log-probability of the chosen token (untempered)
        self.margins: list[Any] = []  # per step: [B] top-1 minus top-2 log-probability
        self.argmaxes: list[Any] = []  # per step: [B] the untempered top token

    def _generator(self, row: int, device: Any) -> Any:
        import torch

        if not self.generators:
            for policy in self.policies:
                generator = None
                if policy.sampling is not None:
                    generator = torch.Generator(device=device)
                    generator.manual_seed(int(policy.seed or 0))
                self.generators.append(generator)
        return self.generators[row]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logprobs = torch.log_softmax(scores.float(), dim=-1)
        top2 = torch.topk(logprobs, 2, dim=-1).values
        argmax = scores.argmax(dim=-1)
        chosen = argmax.clone()
        for row, warpers in enumerate(self.warpers):
            if warpers is None:
                continue
            warped = warpers(input_ids[row : row + 1], scores[row : row + 1].clone())
            chosen[row] = draw(torch.softmax(warped.float(), dim=-1)[0], self._generator(row, scores.device))
        self.chosen.append(chosen.cpu())
        self.logprobs.append(logprobs.gather(1, chosen[:, None])[:, 0].cpu())
        self.margins.append((top2[:, 0] - top2[:, 1]).cpu())
        self.argmaxes.append(argmax.cpu())
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, chosen[:, None], 0.0)
        return forced
