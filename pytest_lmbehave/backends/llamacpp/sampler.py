"""A sampled row's draws: llama.cpp's own sampler chain, seeded once per row, with the knobs in the order
transformers applies them (temperature, then top-k, then top-p), so one ``@sampled`` spec means one distribution on
every engine. Its random numbers are llama.cpp's (std::mt19937), so its paths are its own: they are compared
with its own recorded variant, never across engines."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy

from ..sampling import Sampling

RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: "pick a random seed", never wanted here


class Sampler:
    def __init__(self, llama_cpp: Any, sampling: Sampling, seed: int | None) -> None:
        self.api = llama_cpp
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if sampling.temperature is not None and sampling.temperature != 1.0:
            self._add(llama_cpp.llama_sampler_init_temp(float(sampling.temperature)))
        if sampling.top_k is not None:
            self._add(llama_cpp.llama_sampler_init_top_k(int(sampling.top_k)))
        if sampling.top_p is not None and sampling.top_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_top_p(float(sampling.top_p), 1))
        seeded = int(seed or 0) & 0xFFFFFFFF
        self._add(llama_cpp.llama_sampler_init_dist(seeded if seeded != RANDOM_SEED else seeded - 1))

    def _add(self, sampler: Any) -> None:
        self.api.llama_sampler_chain_add(self.chain, sampler)

    def draw(self, context: Any) -> int:
        """A token from the context's last logits (the chain accepts it, as llama.cpp's own loop does)."""
        return int(self.api.llama_sampler_sample(self.chain, context, -1))

    def draw_from(self, logits: numpy.ndarray[Any, Any]) -> int:
        """A token from a position's logits, any position a teacher-forced pass read: what ``draw`` gives when those
        are the context's last logits, as ``llama_sampler_sample`` does it (every token with its logit and no
        probability, unsorted, nothing selected; the chain applied; the selected token accepted)."""
        size = len(logits)
        data = numpy.zeros(size, dtype=numpy.dtype([("id", numpy.intc), ("logit", numpy.single), ("p", numpy.single)]))
        data["id"] = numpy.arange(size, dtype=numpy.intc)
        data["logit"] = logits
        candidates = self.api.llama_token_data_array(
            data=data.ctypes.data_as(self.api.llama_token_data_p), size=size, selected=-1, sorted=False
        )
        self.api.llama_sampler_apply(self.chain, ctypes.byref(candidates))
        if not 0 <= candidates.selected < candidates.size:
            raise RuntimeError(f"llama.cpp's sampler chain selected no token ({candidates.selected})")
        token = int(candidates.data[candidates.selected].id)
        self.api.llama_sampler_accept(self.chain, token)
        return token

    def close(self) -> None:
        self.api.llama_sampler_free(self.chain)
