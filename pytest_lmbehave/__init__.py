"""pytest-lmbehave: pin down what a causal language model does, with pytest."""

from __future__ import annotations

import pytest

from .errors import InputError, LMBehaveError, MarkerError, ModelLoadError, ModelNotFoundError, SettingsError
from .exercises import ___
from .lm import LM, Engine, Sampling
from .observations import Candidate, Choice, Distribution, Generation, Tokenization

greedy = pytest.mark.greedy
sampled = pytest.mark.sampled

__all__ = [
    "LM",
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
