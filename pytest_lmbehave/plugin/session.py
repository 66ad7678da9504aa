"""One ``Session`` per pytest process: the run's settings, its engines (the registry), the near-tie notes, and the
plugin objects that plan, report and summarise. Every hook is a line that delegates here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import backends
from ..api.lm import LM
from ..config import environment
from ..config.errors import BackendGone, BackendUnavailable, LMBehaveError, SettingsError
from ..config.naming import slug
from ..config.options import BY_INI, Lookup, Option, given
from ..config.sampling import Sampling
from ..config.settings import build_settings
from ..engine.registry import Registry
from ..observations import closeness
from ..teaching.exercises import ExerciseProgress
from . import snapshot_sets, tally
from .markers import MARKERS, model_for, sampling_for
from .near_ties import NearTieSummary
from .planner import PlanPlugin, asks_for, check_paths, plan_path
from .report import ReportPlugin, recorder_for
from .snapshots import recorded_drafts

DECODING = pytest.StashKey[tuple[Sampling | None, int]]()  # a test's markers, read once at its setup


def lookup_for(config: pytest.Config) -> Lookup:
    """An option's value: the command line, then the ini file, then the environment variable."""

    def lookup(option: Option) -> Any:
        found = [config.getoption(option.ini)]
        if option.in_ini:
            found.append(config.getini(option.ini))
        if option.env:
            found.append(os.environ.get(option.env))
        return next((value for value in found if value not in (None, "", [])), None)

    return lookup


class Session:
    def __init__(self, config: pytest.Config) -> None:
        """Settings checked, the registry of engines made, and the plugin objects of this run registered."""
        for text in MARKERS.values():
            config.addinivalue_line("markers", text)
        lookup = lookup_for(config)
        try:
            self.settings = build_settings(lookup)
            backends.check(self.settings)
        except SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        self.config = config
        check_paths(config)
        floor = lookup(BY_INI["lm_noise_floor"])
        try:
            closeness.use_floor(Path(config.invocation_params.dir, str(floor)) if floor else None)
        except LMBehaveError as error:
            raise pytest.UsageError(f"--lm-noise-floor: {error}") from None
        # syrupy warns when an interrupted xdist run sends it fewer reports than workers; under a project's
        # `filterwarnings = error` that warning would turn pytest's short "Interrupted" into a long traceback.
        config.addinivalue_line(
            "filterwarnings", "default:syrupy. received .* xdist worker snapshot reports:UserWarning"
        )
        workerinput = getattr(config, "workerinput", None)
        shared = workerinput.get("lmbehave_share") if workerinput is not None else None
        self.registry = Registry(self.settings, self.announce, Path(shared) if shared else None, recorded_drafts)
        self.near_ties = NearTieSummary()
        self.chosen_sets: dict[tuple[Path, str, str, str | None], tuple[str, str]] = {}  # variant per model, module
        register = config.pluginmanager.register
        register(ExerciseProgress(), "lmbehave-exercises")
        register(self.near_ties, "lmbehave-near-ties")
        self.sets_compared = tally.SetsCompared(self.chosen_sets)  # its line comes after the header (pluggy: LIFO)
        register(self.sets_compared, "lmbehave-sets")
        register(tally.ModelTests(self.controller_header), "lmbehave-model-tests")
        if given(lookup, "lm_accept_near_ties"):
            self.announce(
                "pytest-lmbehave: --lm-accept-near-ties is deprecated and does nothing: a snapshot whose only "
                "differences are near-tie flips passes by default (listed at the end); pass --lm-strict to make them fail"
            )
        path = plan_path(config)
        if path is not None:
            update = bool(given(lookup, "lm_plan_update") or config.getoption("update_snapshots", False))
            # llama.cpp decodes without drafts, and its generations would replace transformers' in the plan; so would
            # another dtype's (bfloat16's numbers are not float32's, and its runs take no drafts: invariance.py).
            update = update and self.settings.engine != "llama.cpp"
            update = update and (self.settings.dtype == "float32" or bool(given(lookup, "lm_plan_update")))
            register(
                PlanPlugin(path, self.settings.seed, update, self.announce, self.registry.use_plan), "lmbehave-plan"
            )
        self._register_xdist_and_report(workerinput is None)

    def _register_xdist_and_report(self, controller: bool) -> None:
        config, registry = self.config, self.registry
        xdist = config.pluginmanager.hasplugin("xdist")
        if xdist and controller:
            from .xdist import XdistShareHooks

            config.pluginmanager.register(XdistShareHooks(), "lmbehave-xdist-share")
        if config.getoption("lm_report"):
            report = ReportPlugin(Path(config.getoption("lm_report")), registry.timings, registry.counts)
            config.pluginmanager.register(report, "lmbehave-report")
            if xdist:
                from .xdist import XdistReportHooks

                config.pluginmanager.register(XdistReportHooks(report), "lmbehave-xdist")

    # -- talking to the user ------------------------------------------------------------------------------------
    def announce(self, message: str) -> None:
        with self.uncaptured():
            print(message, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def uncaptured(self) -> Iterator[None]:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            yield

    def header(self) -> list[str]:
        """The model, its numerics, the versions and the seed, in two lines. Versions come from package metadata and
        the CPU from the OS: importing torch here would hold back xdist's workers."""
        settings = self.settings
        versions = " ".join(f"{k}={v}" for k, v in environment.software().items())
        variables = "".join(f" {k}={v}" for k, v in environment.numerics_variables().items() if v != "unset")
        return [
            f"lmbehave: model {backends.describe(settings.model, settings, self.registry.source)}; "
            f"{backends.numerics(settings)} base seed={settings.seed}",
            f"lmbehave: {versions} cpu={environment.cpu_without_torch()}{variables}",
        ]

    def collected(self, items: list[pytest.Item]) -> list[str]:
        # Only a run that collected a test asking for a model says which: a project with the plugin installed and
        # no model test prints nothing. (Under xdist the controller collects nothing: the summary says it instead.)
        return self.header() if any(tally.uses_model(item) for item in items) else []

    def controller_header(self) -> list[str]:
        return self.header() if self.config.pluginmanager.hasplugin("dsession") else []

    # -- the run ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        config, settings = self.config, self.settings
        if not hasattr(config, "workerinput"):  # the only process, or the xdist controller: before any test writes
            for folder in snapshot_sets.set_folders(config.invocation_params.dir, config.args):
                for path in snapshot_sets.remove_stale_sidecars(folder):
                    self.announce(f"pytest-lmbehave: removed {path}, left by an interrupted snapshot update")
        if settings.model_named:  # a model the user named must exist: say so once, before any test runs
            try:
                source = self.registry.source(settings.model)
                probed = None if hasattr(config, "workerinput") else backends.announcement(source, settings)
                if probed is not None:
                    self.announce(probed)
            except LMBehaveError as error:
                raise pytest.UsageError(f"--lm-model: {error}") from None

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """Model-specific expectations run for the chosen model and for every model that has a set beside the test
        (the chosen model under the set it is held to: --lm-expect)."""
        if "lm_snapshot" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("lm_model"):
            return
        chosen, expect = self.settings.model, self.settings.expect
        params = []
        held_to = slug(expect) if expect else slug(chosen)
        for spec, name in snapshot_sets.models_with_sets(metafunc.definition.path.parent, chosen, held_to):
            missing = None if spec == chosen else self.registry.unavailable(spec)
            reason = f"expectations for {spec} are kept, but the model is not available here: {missing}"
            params.append(pytest.param(spec, id=name, marks=[pytest.mark.skip(reason=reason)] if missing else []))
        metafunc.parametrize("lm_model_spec", params, indirect=True)

    def setup(self, item: pytest.Item) -> None:
        """A test's markers, read once: bad arguments fail the test that carries them, before any model loads."""
        item.stash[DECODING] = sampling_for(item, self.settings.seed)
        model_for(item, self.settings.model)

    def decoding(self, item: pytest.Item) -> tuple[Sampling | None, int]:
        found = item.stash.get(DECODING, None)
        return found if found is not None else sampling_for(item, self.settings.seed)

    def reported(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """A test's report, told what the plugin knows: near-tie notes, whether it used a model, and its own
        errors without a traceback into torch."""
        self.near_ties.attach(report)
        self.sets_compared.attach(report)
        tally.attach(item, report)
        error = None if call.excinfo is None else call.excinfo.value
        if isinstance(error, BackendGone):  # like a model that cannot load: one message, and the run ends
            item.session.shouldstop = f"pytest-lmbehave: {error}"
        elif isinstance(error, BackendUnavailable) and report.failed:
            # A verb this backend cannot answer (a served model has no raw logits): the spec cannot run here.
            report.outcome = "skipped"
            report.longrepr = (
                str(item.path),
                item.location[1] or 0,
                f"Skipped: not available on this backend: {error}",
            )
            return
        if call.excinfo is not None and isinstance(error, LMBehaveError) and report.failed:
            own = [entry for entry in call.excinfo.traceback if str(entry.path) == str(item.path)]
            where = f"\n(at {item.path.name}:{own[-1].lineno + 1})" if own else ""
            report.longrepr = f"{type(error).__name__}: {error}{where}"

    def lm(self, request: pytest.FixtureRequest, spec: str) -> LM:
        """The test's handle on its model (loaded once per process per model): greedy unless marked sampled."""
        __tracebackhide__ = True
        try:
            with self.uncaptured():
                engine = self.registry.engine(spec)
        except LMBehaveError as error:
            if spec == self.settings.model:  # without the session's model no test can run: stop at once
                request.session.shouldfail = (
                    f"pytest-lmbehave: the model {spec!r} could not be loaded ({type(error).__name__}, shown above); "
                    "stopped"
                )
            raise
        if engine.sharing:
            # Under xdist each worker takes one more of the plan's batches before each test: a worker kept busy by
            # its tests takes fewer, so the batches are shared out by how busy each worker is.
            engine.prefetch(1)
        sampling, seed = self.decoding(request.node)
        recorder = None
        if request.config.getoption("lm_report"):
            recorder = recorder_for(request.node, spec, engine.fingerprint)
        return LM(engine, sampling, seed, recorder, asks_for(request.node))

    def end(self) -> None:
        # With a model loaded, the interpreter's last garbage collection walks millions of objects: about a second
        # at exit (README), which every xdist worker adds to the run. Nothing is left to collect.
        if self.registry.engines:
            import gc

            gc.freeze()
