"""A causal LM loaded in this process and computed with torch and transformers: loading (and the GGUF conversion
cache), forward passes, the stitched prefill, decoding with each row's own policy, draft verification, the model's
own generation config. The only part of the package that imports torch or transformers (with
``observations/tensors.py``). Its top is the engine table's interface (``protocol.EnginePackage``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ...config.errors import LMBehaveError, ModelLoadError
from ...config.settings import Settings
from ..protocol import Backend, ModelSource
from . import loading
from .conversion import say
from .hardware import LOW_PRECISION

DRAFTS = True  # its generations are the plan's drafts, verified in one teacher-forced pass
OWN_DRAFTS = False  # they are the plan's own


def check(settings: Settings, resolve: Callable[[str], ModelSource]) -> None:
    """Nothing more to judge before a test: the device was checked for every engine, the model is read when asked."""


def numerics(settings: Settings) -> str:
    return f"dtype={settings.dtype} device={settings.device} threads={settings.threads} attention={settings.attention}"


def by_level(environment: Mapping[str, str]) -> bool:
    return environment.get("dtype") in LOW_PRECISION


def open(
    source: ModelSource,
    settings: Settings,
    announce: Callable[[str], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
) -> Backend:
    """The model's backend. Under --lm-cache, a model this machine has loaded before is known by its facts and not
    loaded until a question misses the cache (a warm re-run imports neither torch nor transformers)."""
    from ..lazy import LazyBackend
    from .lazy import facts_without_loading

    facts = facts_without_loading(source, settings) if settings.observation_cache else None
    if facts is not None:
        return LazyBackend(facts, lambda: load(source, settings, announce, timings), "transformers")
    return load(source, settings, announce, timings)


def load(
    source: ModelSource,
    settings: Settings,
    announce: Callable[[str], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
) -> Backend:
    """Load the model (its transformers imports and its load timed apart, in ``timings``) and say once what its
    generation config applies."""
    from .inprocess import TransformersBackend

    started = time.perf_counter()
    try:
        loading.import_machinery(source)
        imported = time.perf_counter()
        loaded = loading.load(source, settings, announce)
    except LMBehaveError:
        raise
    except Exception as error:
        raise ModelLoadError(f"could not load {source.spec!r}: {type(error).__name__}: {error}") from None
    if timings is not None:
        timings[source.spec] = (round(imported - started, 3), round(time.perf_counter() - imported, 3))
    backend = TransformersBackend(loaded, settings.cache_dir)
    for note in backend.configured.notes(source.spec):
        say(announce, note)
    return backend
