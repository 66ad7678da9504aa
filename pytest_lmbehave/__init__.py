"""pytest-lmbehave: pin down what a causal language model does, with pytest.

Names are imported on first use, so the ``lmbehave`` command (``diff``, ``explore``) starts without pytest,
torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker sees; at run time each name is imported on first use
    import pytest

    from .engine import Engine
    from .errors import (
        BackendUnavailable,
        InputError,
        LMBehaveError,
        MarkerError,
        ModelLoadError,
        ModelNotFoundError,
        SettingsError,
    )
    from .exercises import ___
    from .lm import LM
    from .observations import Candidate, Choice, Distribution, Generation, Tokenization
    from .sampling import Sampling

    greedy: pytest.MarkDecorator
    sampled: pytest.MarkDecorator

_WHERE = {
    "InputError": "errors",
    "LMBehaveError": "errors",
    "MarkerError": "errors",
    "ModelLoadError": "errors",
    "ModelNotFoundError": "errors",
    "SettingsError": "errors",
    "BackendUnavailable": "errors",
    "___": "exercises",
    "LM": "lm",
    "Engine": "engine",
    "Sampling": "sampling",
    "Candidate": "observations",
    "Choice": "observations",
    "Distribution": "observations",
    "Generation": "observations",
    "Tokenization": "observations",
}

__all__ = [
    "LM",
    "BackendUnavailable",
    "Candidate",
    "Choice",
    "Distribution",
    "Engine",
    "Generation",
    "InputError",
    "LMBehaveError",
    "MarkerError",
    "ModelLoadError",
    "ModelNotFoundError",
    "Sampling",
    "SettingsError",
    "Tokenization",
    "___",
    "greedy",
    "sampled",
]


def __getattr__(name: str) -> Any:
    if name in ("greedy", "sampled"):
        import pytest

        return getattr(pytest.mark, name)
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
