"""One model per spec per process: resolved once, loaded on first use, failures remembered so they are reported
once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import backends
from ..config.errors import LMBehaveError, ModelNotFoundError, SettingsError
from ..config.naming import slug
from ..config.settings import Settings
from . import plan
from .runtime import Runtime
from .store import ObservationStore, SharedBatches

if TYPE_CHECKING:
    from ..backends import ModelSource


class Registry:
    def __init__(
        self,
        settings: Settings,
        announce: Callable[[str], None] | None = None,
        shared: Path | None = None,
        recorded: Callable[[list[Path], str, dict[str, str], str | None], plan.Drafts] | None = None,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.recorded = recorded  # a set's recorded generations, by their plan.key (the snapshot format's reader)
        self.shared = shared  # under xdist: the run's folder of batches shared among workers
        self.plan: list[plan.Ask] = []
        self.sets: list[Path] = []  # the snapshot-set folders of this run (for drafts), known with the plan
        self._recorded: dict[str, plan.Drafts] = {}
        self._runtimes: dict[str, Runtime] = {}
        self._references: dict[str, Runtime] = {}  # --lm-reference's engine on each spec's weights
        self._failures: dict[str, LMBehaveError] = {}
        self._sources: dict[str, ModelSource | LMBehaveError] = {}
        self.timings: dict[str, tuple[float, float]] = {}  # per model: (its imports, its load), in seconds

    def runtime(self, spec: str) -> Runtime:
        """The spec's runtime. Under --lm-cache, a model this machine has loaded before is not loaded until a
        question misses the cache (a warm re-run imports neither torch nor transformers)."""
        __tracebackhide__ = True
        if spec in self._runtimes:
            return self._runtimes[spec]
        if spec in self._failures:
            raise type(self._failures[spec])(str(self._failures[spec]))
        source = self.source(spec)
        try:
            backend = backends.open(spec, self.settings, self.announce, self.timings, source)
        except LMBehaveError as error:
            self._failures[spec] = error
            raise
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
        runtime = self._runtimes[spec] = Runtime(backend, store, shared, self.announce)
        runtime.use_plan(self.plan, self._drafts(spec, fingerprint))
        return runtime

    def reference(self, spec: str) -> Runtime | None:
        """--lm-reference's engine on the spec's weights (loaded on first use, no plan, no cache), or None."""
        __tracebackhide__ = True
        if self.settings.reference is None:
            return None
        if spec not in self._references:
            settings = replace(self.settings, engine=self.settings.reference, reference=None)
            backend = backends.open(spec, settings, self.announce, None, self.source(spec))
            self._references[spec] = Runtime(backend, None, None, self.announce)
        return self._references[spec]

    def use_plan(self, asks: list[plan.Ask], sets: list[Path] | None = None) -> None:
        """The plan's requests for this run's tests, and the snapshot sets beside them (whose recorded generations
        are drafts too); runtimes made from now on batch them. --lm-drafts=false keeps the batches, not the drafts."""
        engine = self.settings.engine  # an engine's own drafts first
        self.plan = (
            [a.for_engine(engine) for a in asks] if self.settings.drafts else [replace(a, draft=None) for a in asks]
        )
        self.sets = list(sets or []) if self.settings.drafts else []
        self._recorded.clear()
        for spec, runtime in self._runtimes.items():
            runtime.use_plan(self.plan, self._drafts(spec, runtime.backend.fingerprint()))

    def _drafts(self, spec: str, fingerprint: dict[str, str]) -> plan.Drafts:
        """The recorded snapshots' generations of this model, by plan.key, the set this run compares against first
        (another engine's generations depart from its own sooner); none without a plan."""
        if not self.sets or self.recorded is None:
            return {}
        if spec not in self._recorded:
            held_to = self.settings.expect if spec == self.settings.model and self.settings.expect else spec
            self._recorded[spec] = self.recorded(self.sets, slug(held_to), fingerprint, self.settings.variant)
        return self._recorded[spec]

    def counts(self) -> dict[str, int]:
        """This process's figures over every model: tokens verified from drafts and decoded, results computed,
        read from --lm-cache and read from other workers, and whole distributions let go (``memo.py``)."""
        total: Counter[str] = Counter()
        for runtime in self._runtimes.values():
            total.update(runtime.stats)
        names = ("tokens verified", "tokens decoded", "computed", "from_disk", "shared", "let go")
        return {name.replace(" ", "_"): int(total[name]) for name in names}

    @property
    def runtimes(self) -> dict[str, Runtime]:
        return dict(self._runtimes)

    def source(self, spec: str) -> ModelSource:
        """Where a spec's model comes from, resolved once per process (a failure too)."""
        __tracebackhide__ = True
        if spec not in self._sources:
            try:
                self._sources[spec] = backends.resolve(spec)
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
