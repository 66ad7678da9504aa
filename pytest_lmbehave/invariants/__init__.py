"""Invariants: what every correct causal-LM stack does, whatever its weights. A failure is a bug in the stack (the
engine, the tokenizer, the sampler, the template or the batching), never a model that behaves otherwise.

``INVARIANTS`` is the one table: each statement, why every stack must hold it, the broken stack that fails it (its
negative control, in ``tests/test_invariants.py``) and its check, a function of a test's ``LM`` handle. The spec
``specs/test_invariants.py`` runs them all; a user's spec can call one: ``INVARIANTS["greedy-is-a-chain-of-argmaxes"].
check(lm)``."""

from __future__ import annotations

from .suite import INVARIANTS, Invariant, coincidence

__all__ = ["INVARIANTS", "Invariant", "coincidence"]
