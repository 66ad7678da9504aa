"""The one place outside the transformers backend that imports torch: numbers handed out as a tensor, for the
document's own code (``lm.logits``, ``Distribution.logprobs``). Nothing else in the LM API needs torch."""

from __future__ import annotations

from typing import Any


def tensor(values: Any) -> Any:
    """A float32 torch tensor holding a copy of ``values`` (a numpy array)."""
    import torch

    return torch.tensor(values)
