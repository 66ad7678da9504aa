"""One model per spec per process: resolved once, loaded on first use, failures remembered so they are reported
once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import models, plan
from .backends import Backend
from .backends.inprocess import TransformersBackend
from .backends.lazy import LazyBackend, facts_without_loading
from .conversion import say
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
        self.sets: list[Path] = []  # the snapshot-set folders of this run (for drafts), known with the plan
        self._recorded: dict[str, plan.Drafts] = {}
        self._engines: dict[str, Engine] = {}
        self._failures: dict[str, LMBehaveError] = {}
        self._sources: dict[str, models.ModelSource | LMBehaveError] = {}
        self.load_seconds: dict[str, float] = {}  # how long each model took to be ready, in this process
        self.import_seconds: dict[str, float] = {}  # transformers' lazy imports before that, timed apart

    def engine(self, spec: str) -> Engine:
        """The spec's engine. Under --lm-cache, a model this machine has loaded before is not loaded until a
        question misses the cache (a warm re-run imports neither torch nor transformers)."""
        __tracebackhide__ = True
        if spec in self._engines:
            return self._engines[spec]
        if spec in self._failures:
            raise type(self._failures[spec])(str(self._failures[spec]))
        source = self.source(spec)
        facts = None
        if self.settings.observation_cache and source.kind != "served":
            facts = facts_without_loading(source, self.settings)
        backend: Backend = self._load(spec) if facts is None else LazyBackend(facts, lambda: self._load(spec))
        size = backend.vocab_size
        if self.settings.top_shown > size:
            self._failures[spec] = SettingsError(
                f"--lm-top={self.settings.top_shown} is larger than the vocabulary of {spec} ({size} tokens); "
                f"pass at most --lm-top={size}"
            )
            raise self._failures[spec]
        fingerprint = backend.fingerprint()
        store = None
        if self.settings.observation_cache:
            store = ObservationStore(self.settings.cache_dir / "observations", fingerprint)
        shared = None if self.shared is None else SharedBatches(self.shared, fingerprint)
        engine = self._engines[spec] = Engine(backend, store, shared, self.announce)
        engine.use_plan(self.plan, self._drafts(spec))
        return engine

    def _load(self, spec: str) -> Backend:
        """Load the model, or connect to its server (once: a failure is remembered and reported again)."""
        __tracebackhide__ = True
        if spec in self._failures:
            raise type(self._failures[spec])(str(self._failures[spec]))
        started = time.perf_counter()
        try:
            source = self.source(spec)
            if source.kind == "served":
                from .backends.connect import connect

                served = connect(spec, self.settings, self.announce)
                self.load_seconds[spec] = round(time.perf_counter() - started, 3)
                return served
            models.import_machinery(source)
            imported = time.perf_counter()
            loaded = models.load(source, self.settings, self.announce)
        except LMBehaveError as error:
            self._failures[spec] = error
            raise
        except Exception as error:  # remembered too: a model that cannot load is tried, and reported, once
            self._failures[spec] = ModelLoadError(f"could not load {spec!r}: {type(error).__name__}: {error}")
            raise self._failures[spec] from None
        self.import_seconds[spec] = round(imported - started, 3)
        self.load_seconds[spec] = round(time.perf_counter() - imported, 3)
        backend = TransformersBackend(loaded, self.settings.cache_dir)
        for note in backend.configured.notes(spec):
            say(self.announce, note)
        return backend

    def use_plan(self, asks: list[plan.Ask], sets: list[Path] | None = None) -> None:
        """The plan's requests for this run's tests, and the snapshot sets beside them (whose recorded generations
        are drafts too); engines made from now on batch them. --lm-drafts=false keeps the batches, not the drafts."""
        self.plan = list(asks) if self.settings.drafts else [replace(ask, draft=None) for ask in asks]
        self.sets = list(sets or []) if self.settings.drafts else []
        self._recorded.clear()
        for spec, engine in self._engines.items():
            engine.use_plan(self.plan, self._drafts(spec))

    def _drafts(self, spec: str) -> plan.Drafts:
        """The recorded snapshots' generations of this model, by plan.draft_key; none without a plan."""
        if not self.sets:
            return {}
        if spec not in self._recorded:
            from .snapshots import recorded_drafts

            held_to = self.settings.expect if spec == self.settings.model and self.settings.expect else spec
            self._recorded[spec] = recorded_drafts(self.sets, models.slug(held_to))
        return self._recorded[spec]

    def counts(self) -> dict[str, int]:
        """This process's figures over every model: tokens verified from drafts and decoded, results computed,
        read from --lm-cache and read from other workers."""
        total: Counter[str] = Counter()
        for engine in self._engines.values():
            total.update(engine.stats)
        names = ("tokens verified", "tokens decoded", "computed", "from_disk", "shared")
        return {name.replace(" ", "_"): int(total[name]) for name in names}

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
            if source.kind == "served":
                return f"{spec} (served; probed at the start of the session)"
            return f"{spec} = {source.name} ({source.kind}, sha256 {models.content_hash(source, self.settings.cache_dir)[:16]})"
        except LMBehaveError as error:
            return f"{spec} (not loadable: {str(error).splitlines()[0]})"
