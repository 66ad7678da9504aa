"""Reading the ``greedy``, ``sampled`` and ``lm_model`` markers of a test, once, into its ``Marks``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from ..backends.sampling import Sampling, derive_seed
from ..config.errors import InputError, MarkerError

MARKERS = {
    "greedy": "greedy: decode greedily (the default for every test using `lm`).",
    "sampled": (
        "sampled(seed=None, temperature=None, top_p=None, top_k=None): sample instead of decoding greedily; "
        "the seed defaults to --lm-seed combined with the test's node id."
    ),
    "invariant": (
        "invariant: what every correct causal-LM stack does, whatever its weights; a failure is a bug in the engine, "
        "tokenizer, sampler, template or batching."
    ),
    "fact": (
        "fact(of): a literal of the document's tokenizer (of='tokenizer': runs where the tokenizer is SmolLM2's) or "
        "model (of='model': runs where the model's own recorded set holds it); elsewhere skipped, with the reason."
    ),
    "behaviour": (
        "behaviour: what a capable model does (the default for an unmarked spec); without a recorded set it is "
        "measured as a profile, and fails only against a baseline."
    ),
    "lm_model": (
        "lm_model(spec, expect=None): run this test (class, module) against another model: 'embedded', a directory, "
        "a .gguf or a hub id; expect='embedded' holds it to that model's snapshot set (new weights, old expectations)."
    ),
}


def _signature_check(name: str, fn: Any, mark: pytest.Mark) -> dict[str, Any]:
    try:
        bound = inspect.signature(fn).bind(*mark.args, **mark.kwargs)
    except TypeError as error:
        accepted = ", ".join(
            f"{p.name}" + ("" if p.default is p.empty else f"={p.default!r}")
            for p in inspect.signature(fn).parameters.values()
        )
        raise MarkerError(
            f"@pytest.mark.{name}{_render(mark)} is not valid: {error}; the marker takes {name}({accepted})"
        ) from None
    return dict(bound.arguments)


def _render(mark: pytest.Mark) -> str:
    args = [repr(a) for a in mark.args] + [f"{k}={v!r}" for k, v in mark.kwargs.items()]
    return "(" + ", ".join(args) + ")"


def _sampled(
    seed: int | None = None, temperature: float | None = None, top_p: float | None = None, top_k: int | None = None
) -> None: ...


def _greedy() -> None: ...


def _lm_model(spec: str, expect: str | None = None) -> None: ...


def sampling_for(item: pytest.Item, base_seed: int) -> tuple[Sampling | None, int]:
    """The test's decoding settings and seed; raises MarkerError naming the bad marker."""
    sampled = item.get_closest_marker("sampled")
    greedy = item.get_closest_marker("greedy")
    if greedy is not None:
        _signature_check("greedy", _greedy, greedy)
    seed = derive_seed(base_seed, item.nodeid)
    if sampled is None or (greedy is not None and _closer(item, "greedy", "sampled")):
        return None, seed
    arguments = _signature_check("sampled", _sampled, sampled)
    try:
        sampling = Sampling(**arguments)
    except InputError as error:
        raise MarkerError(f"@pytest.mark.sampled{_render(sampled)}: {error}") from None
    return sampling, sampling.seed if sampling.seed is not None else seed


def _closer(item: pytest.Item, first: str, second: str) -> bool:
    """Whether marker ``first`` is applied closer to the test than ``second`` (a test's own mark wins over its class's)."""
    for node in item.listchain()[::-1]:
        names = {m.name for m in node.own_markers}
        if first in names:
            return True
        if second in names:
            return False
    return False


def _lm_model_of(item: pytest.Item) -> tuple[str | None, str | None]:
    """The ``lm_model`` marker's model and the set it is held to (``expect``), checked; (None, None) without it."""
    mark = item.get_closest_marker("lm_model")
    if mark is None:
        return None, None
    arguments = _signature_check("lm_model", _lm_model, mark)
    spec, expect = arguments["spec"], arguments.get("expect")
    if not isinstance(spec, str) or not spec.strip():
        raise MarkerError(
            f"@pytest.mark.lm_model{_render(mark)}: the model must be a non-empty string such as 'embedded' or 'HuggingFaceTB/SmolLM2-360M'"
        )
    if expect is not None and (not isinstance(expect, str) or not expect.strip()):
        raise MarkerError(f"@pytest.mark.lm_model{_render(mark)}: expect must be a set's name, e.g. 'embedded'")
    return spec, expect


@dataclass(frozen=True)
class Marks:
    """What a test's markers ask, read once at its setup (``read``): its decoding and seed, and the model its
    ``lm_model`` marker names with the set that model is held to."""

    sampling: Sampling | None
    seed: int
    model: str | None = None
    expect: str | None = None

    @classmethod
    def read(cls, item: pytest.Item, base_seed: int) -> Marks:
        """Raises MarkerError naming the bad marker: it fails the test that carries it, before any model loads."""
        sampling, seed = sampling_for(item, base_seed)
        return cls(sampling, seed, *_lm_model_of(item))

    def model_or(self, default: str) -> str:
        return self.model if self.model is not None else default

    def expected_set(self, spec: str, chosen: str, expect: str | None) -> str | None:
        """The snapshot set the test's model is held to when it is not the model's own: the ``lm_model`` marker's
        ``expect``, else --lm-expect for the session's model; None for the model's own set."""
        if self.model is not None:
            return self.expect
        return expect if spec == chosen else None
