"""A transformers model's facts without loading it: under ``--lm-cache`` an unchanged re-run starts its engine from
the fingerprint, vocabulary and context alone (``backends/lazy.py``), so torch and transformers are imported only on
the first miss."""

from __future__ import annotations

import json

from ...config.environment import INVARIANT
from ...config.settings import Settings
from ..lazy import ModelFacts
from ..protocol import ModelSource
from ..vocabulary import Vocabulary, stored_at
from .conversion import cache_key, entry_problem
from .loading import content_hash, fingerprint


def facts_without_loading(source: ModelSource, settings: Settings) -> ModelFacts | None:
    """The model's fingerprint, vocabulary and context from the cache folder and its config, with neither torch
    nor transformers imported; None when any of them is not known yet (the model was never loaded here)."""
    folder = source.path
    if source.is_gguf:
        folder = settings.cache_dir / cache_key(content_hash(source, settings.cache_dir))
        if entry_problem(folder) is not None:
            return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = fingerprint(source, settings)
    if found[INVARIANT] == "unknown":  # never probed here with these numerics: the model must load once
        return None
    vocabulary = Vocabulary.load(*stored_at(settings.cache_dir, found))
    if vocabulary is None:
        return None
    return ModelFacts(found, vocabulary, int(config.get("max_position_embeddings") or 0))
