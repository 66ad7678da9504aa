"""pytest-lmbehave: pin down what a causal language model does, with pytest.

Names are imported on first use, so the ``lmbehave`` command (``diff``, ``explore``) starts without pytest,
torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it; CHANGELOG.md says what changed)

if TYPE_CHECKING:  # what a type checker sees; at run time each name is imported on first use
    import pytest

    from .api.assertions import (
        assert_close,
        assert_direction,
        assert_failure_rate,
        assert_invariant,
        assert_sampled_from,
    )
    from .api.invariants import INVARIANTS, Invariant
    from .api.lm import LM
    from .backends.sampling import Sampling
    from .config.errors import (
        BackendUnavailable,
        InputError,
        LMBehaveError,
        MarkerError,
        ModelLoadError,
        ModelNotFoundError,
        NearTieWarning,
        SettingsError,
    )
    from .observations import lexicons, perturbations
    from .observations.changes import Capability
    from .observations.chat import Chat
    from .observations.choice import Choice
    from .observations.closeness import Profile
    from .observations.conformance import Draws
    from .observations.generation import Generation
    from .observations.next_token import Candidate, Distribution
    from .observations.perturbations import Case, Change, expand
    from .observations.rates import Decision, Rate, SequentialRate
    from .observations.scores import Scores
    from .observations.tokenization import Tokenization
    from .runtime.runtime import Runtime
    from .teaching.exercises import ___

    greedy: pytest.MarkDecorator
    sampled: pytest.MarkDecorator

_WHERE = {
    "InputError": "config.errors",
    "LMBehaveError": "config.errors",
    "MarkerError": "config.errors",
    "ModelLoadError": "config.errors",
    "ModelNotFoundError": "config.errors",
    "SettingsError": "config.errors",
    "NearTieWarning": "config.errors",
    "Capability": "observations.changes",
    "INVARIANTS": "api.invariants",
    "Invariant": "api.invariants",
    "Case": "observations.perturbations",
    "Change": "observations.perturbations",
    "expand": "observations.perturbations",
    "perturbations": "observations.perturbations",
    "lexicons": "observations.lexicons",
    "assert_invariant": "api.assertions",
    "assert_direction": "api.assertions",
    "assert_failure_rate": "api.assertions",
    "BackendUnavailable": "config.errors",
    "___": "teaching.exercises",
    "LM": "api.lm",
    "assert_close": "api.assertions",
    "assert_sampled_from": "api.assertions",
    "Draws": "observations.conformance",
    "Decision": "observations.rates",
    "Rate": "observations.rates",
    "SequentialRate": "observations.rates",
    "Profile": "observations.closeness",
    "Scores": "observations.scores",
    "Runtime": "runtime.runtime",
    "Sampling": "backends.sampling",
    "Candidate": "observations.next_token",
    "Chat": "observations.chat",
    "Choice": "observations.choice",
    "Distribution": "observations.next_token",
    "Generation": "observations.generation",
    "Tokenization": "observations.tokenization",
}

__all__ = [
    "INVARIANTS",
    "LM",
    "BackendUnavailable",
    "Candidate",
    "Capability",
    "Case",
    "Change",
    "Chat",
    "Choice",
    "Decision",
    "Distribution",
    "Draws",
    "Generation",
    "InputError",
    "Invariant",
    "LMBehaveError",
    "MarkerError",
    "ModelLoadError",
    "ModelNotFoundError",
    "NearTieWarning",
    "Profile",
    "Rate",
    "Runtime",
    "Sampling",
    "Scores",
    "SequentialRate",
    "SettingsError",
    "Tokenization",
    "___",
    "assert_close",
    "assert_direction",
    "assert_failure_rate",
    "assert_invariant",
    "assert_sampled_from",
    "expand",
    "greedy",
    "lexicons",
    "perturbations",
    "sampled",
]


def __getattr__(name: str) -> Any:
    if name in ("greedy", "sampled"):
        import pytest

        return getattr(pytest.mark, name)
    if name in ("perturbations", "lexicons"):  # the modules themselves: perturbations.typo(...), lexicons.CITIES
        return importlib.import_module(f"{__name__}.{_WHERE[name]}")
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
