"""The three kinds of spec, each named by a marker, and what each kind means for a model:

- an **invariant** (``@pytest.mark.invariant``) holds on every correct stack, whatever its weights;
- a **fact** (``@pytest.mark.fact("tokenizer" | "model")``) is a literal of the document's tokenizer or model: it runs
  where the tokenizer is SmolLM2's, or where the model's own recorded set holds it, and is skipped elsewhere;
- a **behaviour** (unmarked, or ``@pytest.mark.behaviour``) is what a capable model does: held to the model's own
  set, and on a model without one measured as a profile (a behaviour it does not show is an expected failure).
"""

from __future__ import annotations

from typing import Any

INVARIANT, FACT, BEHAVIOUR = "invariant", "fact", "behaviour"
KINDS = (INVARIANT, FACT, BEHAVIOUR)
OF = ("tokenizer", "model")

# SmolLM2's tokenizer, named by its tokens in id order (``Vocabulary.tokenizer``): SmolLM2-135M and -360M share it.
DOCUMENT_TOKENIZER = "bee029ab6e02e20c"
NOT_RUN = "not run: a fact of the document's"  # how a skipped fact's reason begins, so the summary can count them
PROFILE = "behaviour profile:"  # how a behaviour not shown by a model without a set is reported (an xfail)


def kind_of(keywords: Any) -> str:
    """A test's kind from its markers (an item's or a report's keywords)."""
    if INVARIANT in keywords:
        return INVARIANT
    if FACT in keywords:
        return FACT
    return BEHAVIOUR


def fact_of(mark: Any) -> str:
    """What a ``fact`` marker is a fact of, checked: 'tokenizer' or 'model'."""
    from ..config.errors import MarkerError

    of = mark.args[0] if mark.args else mark.kwargs.get("of")
    if of not in OF or len(mark.args) + len(mark.kwargs) != 1:
        raise MarkerError(f"@pytest.mark.fact takes one of {OF}: fact('tokenizer') or fact('model'), not {mark}")
    return str(of)


def unrun_fact(of: str, tokenizer: str, has_set: bool) -> str | None:
    """Why a fact is not run on this model, or None where it applies. A tokenizer the backend cannot name ('') is
    taken to be the document's: its facts then run, as they did before there were kinds."""
    if of == "tokenizer" and tokenizer and tokenizer != DOCUMENT_TOKENIZER:
        return f"{NOT_RUN} tokenizer (SmolLM2's), and this model's tokenizer is another ({tokenizer})"
    if of == "model" and not has_set:
        return f"{NOT_RUN} model (SmolLM2), and this model has no recorded set that holds it"
    return None
