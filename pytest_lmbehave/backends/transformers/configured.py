"""The model's own generation config, applied as ``generate`` applies it, one row at a time.

A published model's ``generation_config.json`` often sets logits processors (a repetition penalty, banned n-grams,
suppressed tokens, a minimum length...) and sampling defaults. A generation is what ``model.generate`` does with
them, so decoding applies them; and since a draft is verified, and a divergence localised, by teacher forcing
over raw logits, those passes apply the very same processors to the very same inputs: each row's own ids (never
a batch's padding) from its own prompt length, so a row is what it would be alone. ``next_token`` stays the raw
distribution, as the document's forward pass is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..sampling import Sampling

# Fields of a generation config that never change which tokens generate picks here: ids are the model's (its hash
# holds them), the length is each request's own, the rest are output and cache plumbing.
PLUMBING = frozenset(
    {
        "transformers_version",
        "_from_model_config",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "decoder_start_token_id",
        "max_length",
        "max_new_tokens",
        "use_cache",
        "cache_implementation",
        "cache_config",
        "return_dict_in_generate",
        "output_scores",
        "output_logits",
        "output_attentions",
        "output_hidden_states",
        "num_return_sequences",
    }
)
# A sampled spec's knobs left at None take the model's own value, as generate(do_sample=True, ...) would.
KNOBS = ("temperature", "top_p", "top_k")
# Other sampling warpers of a config: not applied (a spec's sampling is its marker's knobs), named once.
UNAPPLIED = ("min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_h", "num_beams", "penalty_alpha")
# A forced EOS at the last step makes a row's tokens depend on its length limit, so that a shorter run would no
# longer be a prefix of a longer one (which the memo, the plan and drafts rely on): not applied, and said once.
LENGTH_BOUND = frozenset({"ForcedEOSTokenLogitsProcessor"})
# Processors that are a function of (the row's ids so far, the scores) alone: replayed exactly over teacher-forced
# logits. Any other (classifier-free guidance runs the model again, a watermark, ...) turns drafts off.
REPLAYABLE = frozenset(
    {
        "SequenceBiasLogitsProcessor",
        "RepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor",
        "NoBadWordsLogitsProcessor",
        "MinLengthLogitsProcessor",
        "MinNewTokensLengthLogitsProcessor",
        "ForcedBOSTokenLogitsProcessor",
        "InfNanRemoveLogitsProcessor",
        "ExponentialDecayLengthPenalty",
        "SuppressTokensLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor",
        "LogitNormalization",
    }
)


def settings_of(folder: Path) -> dict[str, Any]:
    """The generation config's own settings that change what generate does, read from ``generation_config.json``
    (transformers writes only the fields that differ from its defaults), without importing transformers."""
    try:
        found = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in sorted(found.items()) if k not in PLUMBING} if isinstance(found, dict) else {}


def describe(fields: dict[str, Any]) -> str:
    """The fingerprint's ``generation`` value: ``repetition_penalty:1.3,no_repeat_ngram_size:3`` (no spaces)."""
    return ",".join(f"{k}:{json.dumps(v, separators=(',', ':'))}" for k, v in sorted(fields.items()))


class Configured:
    """The processors and sampling defaults a model's generation config makes generate apply."""

    def __init__(self, model: Any, stop_ids: frozenset[int]) -> None:
        self.model = model
        config = getattr(model, "generation_config", None)
        own = config.to_diff_dict() if config is not None else {}
        self.fields = {k: v for k, v in sorted(own.items()) if k not in PLUMBING}
        self.defaults = {k: self.fields[k] for k in KNOBS if self.fields.get(k) is not None}
        self._config: Any = None
        self._neutral: Any = None
        self.kinds: list[str] = []
        if config is not None:
            self._config = copy.deepcopy(config)
            self._config.do_sample = False  # sampling warpers are the row's policy's, never the config's
            self._config._eos_token_tensor = _tensor(sorted(stop_ids)) if stop_ids else None
            self.kinds = [type(p).__name__ for p in self._processors(1, "cpu")]
            from transformers import GenerationConfig

            self._neutral = GenerationConfig(  # type: ignore[no-untyped-call]
                bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
            )

    @property
    def processing(self) -> bool:
        """Whether the config makes generate change any score."""
        return bool(self.kinds)

    @property
    def replayable(self) -> bool:
        """Whether teacher forcing can apply exactly what decoding applies (else drafts are off for this model)."""
        return all(kind in REPLAYABLE for kind in self.kinds)

    def notes(self, model: str) -> list[str]:
        """What a run is told once about this model's generation config."""
        said = []
        if self.processing:
            said.append(
                f"pytest-lmbehave: {model}'s generation config applies {', '.join(self.kinds)} to every generation "
                f"({describe(self.fields)}); next_token stays the raw distribution"
            )
        if not self.replayable:
            others = sorted(set(self.kinds) - REPLAYABLE)
            said.append(
                f"pytest-lmbehave: drafts are off for {model}: {', '.join(others)} cannot be replayed over "
                "teacher-forced logits, so every generation is decoded token by token"
            )
        if self.fields.get("do_sample"):
            said.append(
                f"pytest-lmbehave: {model}'s generation config samples by default (do_sample=True); specs decode "
                "greedily unless marked @pytest.mark.sampled, whose knobs left at None take the config's "
                + (", ".join(f"{k}={v}" for k, v in self.defaults.items()) or "(none set)")
            )
        unapplied = [k for k in (*UNAPPLIED, "forced_eos_token_id") if self.fields.get(k) is not None]
        if unapplied:
            said.append(
                f"pytest-lmbehave: {model}'s generation config sets {', '.join(unapplied)}, which specs do not apply "
                "(a row is decoded alone, greedily or sampled by temperature, top_k and top_p)"
            )
        return said

    def sampling(self, sampling: Sampling) -> Sampling:
        """A sampled row's knobs: the marker's, and the config's where the marker left one at None."""
        if not self.defaults:
            return sampling
        return Sampling(
            sampling.temperature if sampling.temperature is not None else self.defaults.get("temperature"),
            sampling.top_p if sampling.top_p is not None else self.defaults.get("top_p"),
            sampling.top_k if sampling.top_k is not None else self.defaults.get("top_k"),
        )

    def for_row(self, begin: int, device: Any) -> Any:
        """The processors of one row whose prompt is ``begin`` tokens long, as generate builds them for that prompt
        alone; None when the config sets none."""
        return self._processors(begin, device) if self.kinds else None

    def _processors(self, begin: int, device: Any) -> Any:
        from transformers.generation.logits_process import LogitsProcessorList

        built = self.model._get_logits_processor(
            generation_config=self._config, input_ids_seq_length=begin, device=device
        )
        return LogitsProcessorList(p for p in built if type(p).__name__ not in LENGTH_BOUND)

    @contextmanager
    def neutral(self) -> Iterator[None]:
        """generate with none of the config's processors (each row applies its own): the model's config is lent
        back unchanged, so a spec's own ``model.generate`` still sees it."""
        if self._neutral is None or not self.fields:
            yield
            return
        kept = self.model.generation_config
        self.model.generation_config = self._neutral
        try:
            yield
        finally:
            self.model.generation_config = kept


def _tensor(values: list[int]) -> Any:
    import torch

    return torch.tensor(values)
