"""One model per spec per process: resolved once, loaded on first use, failures remembered so they are reported
once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import models, plan
from .backends.inprocess import TransformersBackend
from .engine import Engine
from .errors import LMBehaveError, ModelLoadError, ModelNotFoundError, SettingsError
from .settings import Settings
from .store import ObservationStore, SharedBatches


class Registry:
    def __init__(
        self,
        settings: Settings,
        announce: Callable[[str], None] | None = None,
        shared: Path | None = None,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.shared = shared  # under xdist: the run's folder of batches shared among workers
        self.plan: list[plan.Ask] = []
        self._engines: dict[str, Engine] = {}
        self._failures: dict[str, LMBehaveError] = {}
        self._sources: dict[str, models.ModelSource | LMBehaveError] = {}
        self.load_seconds: dict[str, float] = {}  # how long each model took to be ready, in this process
        self.import_seconds: dict[str, float] = {}  # transformers' lazy imports before that, timed apart

    def engine(self, spec: str) -> Engine:
        __tracebackhide__ = True
        if spec in self._engines:
            return self._engines[spec]
        if spec in self._failures:
            raise type(self._failures[spec])(str(self._failures[spec]))
        started = time.perf_counter()
        try:
            source = self.source(spec)
            models.import_machinery(source)
            imported = time.perf_counter()
            loaded = models.load(source, self.settings, self.announce)
        except LMBehaveError as error:
            self._failures[spec] = error
            raise
        except Exception as error:  # remembered too: a model that cannot load is tried, and reported, once
            self._failures[spec] = ModelLoadError(f"could not load {spec!r}: {type(error).__name__}: {error}")
            raise self._failures[spec] from None
        backend = TransformersBackend(loaded, self.settings.cache_dir)
        vocabulary = backend.vocab_size
        if self.settings.top_shown > vocabulary:
            self._failures[spec] = SettingsError(
                f"--lm-top={self.settings.top_shown} is larger than the vocabulary of {spec} ({vocabulary} tokens); "
                f"pass at most --lm-top={vocabulary}"
            )
            raise self._failures[spec]
        store = None
        if self.settings.observation_cache:
            store = ObservationStore(self.settings.cache_dir / "observations", loaded.fingerprint)
        shared = None if self.shared is None else SharedBatches(self.shared, loaded.fingerprint)
        engine = self._engines[spec] = Engine(backend, store, shared, self.announce)
        self.import_seconds[spec] = round(imported - started, 3)
        self.load_seconds[spec] = round(time.perf_counter() - imported, 3)
        engine.use_plan(self.plan)
        return engine

    def use_plan(self, asks: list[plan.Ask]) -> None:
        """The plan's requests for this run's tests; engines loaded from now on batch them."""
        self.plan = list(asks)
        for engine in self._engines.values():
            engine.use_plan(self.plan)

    @property
    def engines(self) -> dict[str, Engine]:
        return dict(self._engines)

    def source(self, spec: str) -> models.ModelSource:
        """Where a spec's model comes from, resolved once per process (a failure too)."""
        __tracebackhide__ = True
        if spec not in self._sources:
            try:
                self._sources[spec] = models.resolve(spec)
            except LMBehaveError as error:
                self._sources[spec] = error
        found = self._sources[spec]
        if isinstance(found, LMBehaveError):
            raise type(found)(str(found))
        return found

    def unavailable(self, spec: str) -> str | None:
        """Why a model with kept expectations cannot be had here (not found, with the command that gets it), or
        None. Any other problem resolving it is raised."""
        try:
            self.source(spec)
        except ModelNotFoundError as error:
            return "; ".join(line.strip() for line in str(error).splitlines() if not line.startswith("["))
        return None

    def describe(self, spec: str) -> Any:
        """Header text for a model spec without loading it (resolving and hashing only)."""
        try:
            source = self.source(spec)
            return f"{spec} = {source.name} ({source.kind}, sha256 {models.content_hash(source)[:16]})"
        except LMBehaveError as error:
            return f"{spec} (not loadable: {str(error).splitlines()[0]})"
