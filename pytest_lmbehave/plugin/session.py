"""One ``Session`` per pytest process: the run's settings, its runtimes (the registry), and the collectors that plan,
report and summarise. Every hook (``plugin/__init__``) is a line that delegates here.

A test's reports carry what the controller needs in one attribute, ``report.lmbehave`` (``CARRIED``): whether the test
used a model, its near-tie notes, the sets it was compared against, and at teardown its observations and requests.
xdist ships reports whole, so the controller reads the same attribute whether a worker or this process ran the test."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .. import backends
from ..api.lm import LM
from ..config import environment, spec_kinds
from ..config.errors import BackendGone, BackendUnavailable, LMBehaveError, SettingsError
from ..config.naming import slug
from ..config.options import BY_INI, Lookup, Option, given
from ..config.settings import build_settings
from ..observations import closeness, statistics
from ..observations.changes import Capability
from ..runtime.registry import Registry
from ..teaching.exercises import ExerciseProgress, is_exercise
from . import ci, snapshot_sets, tally
from .markers import MARKERS, Marks
from .near_ties import NearTieSummary
from .planner import PlanFile, asks_for, check_paths, plan_path
from .report import ReportFile, recorder_for
from .snapshots import recorded_drafts
from .xdist import Share, worker_figures

MARKS = pytest.StashKey[Marks]()  # a test's markers, read once at its setup
JUDGED = pytest.StashKey[list[Capability]]()  # the capabilities a test judged under change
CARRIED = "lmbehave"  # the one attribute of a test's report that carries what the controller needs


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
        """Settings checked, the registry of runtimes made, and the collectors of this run made."""
        for text in MARKERS.values():
            config.addinivalue_line("markers", text)
        lookup = lookup_for(config)
        try:
            self.settings = build_settings(lookup)
            backends.check(self.settings)
            if self.settings.reference is not None:
                backends.check(replace(self.settings, engine=self.settings.reference))
        except SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        self.config = config
        check_paths(config)
        statistics.keep_in(self.settings.cache_dir / "statistics" if self.settings.observation_cache else None)
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
        # A near-tie flip under a change is a warning by design (assert_invariant): shown, never raised.
        config.addinivalue_line("filterwarnings", "default::pytest_lmbehave.config.errors.NearTieWarning")
        workerinput = getattr(config, "workerinput", None)
        shared = workerinput.get("lmbehave_share") if workerinput is not None else None
        self.registry = Registry(self.settings, self.announce, Path(shared) if shared else None, recorded_drafts)
        self.near_ties = NearTieSummary()
        self.chosen_sets: dict[tuple[Path, str, str, str | None], tuple[str, str]] = {}  # variant per model, module
        self.sets_compared = tally.SetsCompared(self.chosen_sets)
        self.model_tests = tally.ModelTests(self.controller_header)
        self.capability_rates = tally.CapabilityRates()
        self.job_summary = ci.JobSummary(self.settings.summary == "on")
        self.exercises: ExerciseProgress | None = None  # made when the first exercise reports
        self.unrun_facts: dict[str, int] = {}  # why facts were not run here, and how many
        if given(lookup, "lm_accept_near_ties"):
            self.announce(
                "pytest-lmbehave: --lm-accept-near-ties is deprecated and does nothing: a snapshot whose only "
                "differences are near-tie flips passes by default (listed at the end); pass --lm-strict to make them fail"
            )
        self.plan: PlanFile | None = None
        path = plan_path(config)
        if path is not None:
            update = bool(given(lookup, "lm_plan_update") or config.getoption("update_snapshots", False))
            # An engine that takes no drafts would replace the plan's with generations of its own; so would another
            # dtype's (bfloat16's numbers are not float32's, and its runs take no drafts: invariance.py). An engine
            # that keeps drafts of its own adds them beside the plan's and changes nothing else.
            takes = backends.takes_drafts(self.settings)
            own = self.settings.engine if not takes and backends.keeps_own_drafts(self.settings) else None
            update = update and (takes or own is not None)
            update = update and (self.settings.dtype == "float32" or bool(given(lookup, "lm_plan_update")))
            self.plan = PlanFile(path, self.settings.seed, update, self.announce, self.registry.use_plan, own)
        controller = workerinput is None
        self.share = Share() if controller and config.pluginmanager.hasplugin("xdist") else None
        self.report: ReportFile | None = None
        if config.getoption("lm_report") or self.settings.reference:  # a reference's KL is told without a report too
            path = config.getoption("lm_report")
            self.report = ReportFile(Path(path) if path else None, self.registry.timings, self.registry.counts)

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
        numerics = backends.numerics(settings)
        return [
            f"lmbehave: model {backends.describe(settings.model, settings, self.registry.source)}; "
            f"{numerics + ' ' if numerics else ''}base seed={settings.seed}",
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
        item.stash[MARKS] = Marks.read(item, self.settings.seed)

    def marks(self, item: pytest.Item) -> Marks:
        found = item.stash.get(MARKS, None)
        return found if found is not None else Marks.read(item, self.settings.seed)

    def reported(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """A test's report, given what the controller needs (``CARRIED``), and its own errors told without a
        traceback into torch."""
        carried = self.carried(item, call.when)
        if carried:
            setattr(report, CARRIED, carried)
        if item.config.option.xmlpath:  # --junitxml: a failure's message starts with its verdict line
            ci.lead_with_verdict(report)
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
        if call.when == "call" and report.failed and isinstance(error, AssertionError) and self.profiled(item):
            # A behaviour of a model without a recorded set: measured, not held to another model's numbers.
            report.outcome = "skipped"
            report.wasxfail = f"{spec_kinds.PROFILE} not shown by this model (it has no recorded set): {error}"[:300]
            return
        if call.excinfo is not None and isinstance(error, LMBehaveError) and report.failed:
            own = [entry for entry in call.excinfo.traceback if str(entry.path) == str(item.path)]
            where = f"\n(at {item.path.name}:{own[-1].lineno + 1})" if own else ""
            report.longrepr = f"{type(error).__name__}: {error}{where}"

    def model_of(self, item: pytest.Item) -> str:
        callspec = getattr(item, "callspec", None)
        param = None if callspec is None else callspec.params.get("lm_model_spec")
        return str(param) if param is not None else self.marks(item).model_or(self.settings.model)

    def has_set(self, item: pytest.Item, spec: str) -> bool:
        """Whether the set this test's model is held to lies beside the test (its own, or the one it is expected to
        keep: --lm-expect, lm_model(expect=...))."""
        held = self.marks(item).expected_set(spec, self.settings.model, self.settings.expect) or spec
        return bool(snapshot_sets.variants(item.path.parent, slug(held)))

    def profiled(self, item: pytest.Item) -> bool:
        """Whether a failed assertion of this test is a behaviour profile: a behaviour whose expectations were written
        for other models (their sets lie beside it: the document's specs) asked of a model without a set. A spec
        folder with no set, or with this model's, holds its assertions as written."""
        sets = item.path.parent / snapshot_sets.SETS_DIRNAME
        return (
            tally.uses_model(item)
            and spec_kinds.kind_of(item.keywords) == spec_kinds.BEHAVIOUR
            and sets.is_dir()
            and any(folder.is_dir() for folder in sets.iterdir())
            and not self.has_set(item, self.model_of(item))
        )

    def carried(self, item: pytest.Item, when: str) -> dict[str, Any]:
        """What one report of a test carries: only what is there to tell."""
        carried: dict[str, Any] = {}
        if tally.uses_model(item):
            carried["model"] = True
        if is_exercise(item):
            carried["exercise"] = True
        notes, sets = self.near_ties.take(), self.sets_compared.take()
        if notes:
            carried["near_ties"] = notes
        if sets:
            carried["sets"] = sets
        judged = item.stash.get(JUDGED, None)
        if when == "call" and judged:
            carried["capabilities"] = [capability.line() for capability in judged]
        if when == "teardown":
            if self.report is not None:
                carried.update(self.report.carried(item))
            if self.plan is not None:
                carried.update(self.plan.carried(item))
        return carried

    def logreport(self, report: pytest.TestReport) -> None:
        """A report of this process or of a worker: each collector takes its part."""
        carried: dict[str, Any] = getattr(report, CARRIED, None) or {}
        self.near_ties.add(report, carried)
        self.sets_compared.add(carried)
        self.model_tests.add(report, carried)
        self.capability_rates.add(report, carried)
        self.job_summary.add(report)
        reason = _skip_reason(report)
        if reason.startswith(spec_kinds.NOT_RUN):
            self.unrun_facts[reason] = self.unrun_facts.get(reason, 0) + 1
        if carried.get("exercise"):
            self.exercises = self.exercises or ExerciseProgress()
            self.exercises.add(report)
        if self.plan is not None:
            self.plan.add(report, carried)
        if self.report is not None:
            self.report.add(report, carried)

    def node_down(self, node: Any, error: Any) -> None:
        """An xdist worker finished (or crashed): its process figures, its collected tests for the plan, and no
        deletion of snapshots after a crash."""
        figures = worker_figures(node)
        if self.report is not None and figures is not None:
            self.report.processes.append(figures)
        if self.share is not None:
            self.share.node_down(node, error)
        if self.plan is not None:
            self.plan.node_down(node)

    def finish(self, session: pytest.Session) -> None:
        if self.report is not None:
            self.report.finish(session)
        if self.plan is not None:
            self.plan.finish(session)

    def summary(self, terminalreporter: Any) -> None:
        """The run's closing lines: the report written, the model (under xdist), the sets compared against, and
        the near-tie flips that passed."""
        if self.report is not None:
            self.report.summary(terminalreporter)
        self.model_tests.summary(terminalreporter)
        self.capability_rates.summary(terminalreporter)
        for reason, count in sorted(self.unrun_facts.items()):
            terminalreporter.write_line(f"lmbehave: {count} spec(s) {reason}")
        self.sets_compared.summary(terminalreporter)
        self.near_ties.summary(terminalreporter)
        rates, ties = self.capability_rates.lines, self.near_ties.notes
        sets = self.sets_compared.shown(Path(terminalreporter.config.invocation_params.dir))
        self.job_summary.write(terminalreporter, sets, ties, rates)

    def lm(self, request: pytest.FixtureRequest, spec: str) -> LM:
        """The test's handle on its model (loaded once per process per model): greedy unless marked sampled."""
        __tracebackhide__ = True
        try:
            with self.uncaptured():
                runtime = self.registry.runtime(spec)
        except LMBehaveError as error:
            if spec == self.settings.model:  # without the session's model no test can run: stop at once
                request.session.shouldfail = (
                    f"pytest-lmbehave: the model {spec!r} could not be loaded ({type(error).__name__}, shown above); "
                    "stopped"
                )
            raise
        if runtime.sharing:
            # Under xdist each worker takes one more of the plan's batches before each test: a worker kept busy by
            # its tests takes fewer, so the batches are shared out by how busy each worker is.
            runtime.prefetch(1)
        marks = self.marks(request.node)
        sampling, seed = marks.sampling, marks.seed
        recorder = None
        if self.report is not None:
            recorder = recorder_for(
                request.node,
                spec,
                runtime.fingerprint,
                self.settings.report_top,
                lambda: self.registry.reference(spec),
            )
        fact = request.node.get_closest_marker(spec_kinds.FACT)
        if fact is not None:
            of = spec_kinds.fact_of(fact)
            reason = spec_kinds.unrun_fact(
                of, runtime.vocabulary.tokenizer, of == "tokenizer" or self.has_set(request.node, spec)
            )
            if reason is not None:
                pytest.skip(reason)
        judged = request.node.stash.setdefault(JUDGED, [])
        return LM(runtime, sampling, seed, recorder, asks_for(request.node), judged)

    def end(self) -> None:
        closeness.use_floor(None)  # the floor is this session's: a run inside a test leaves none behind
        if self.exercises is not None:
            self.exercises.closing_line(self.config)
        if self.share is not None:
            self.share.end()
        # With a model loaded, the interpreter's last garbage collection walks millions of objects: about a second
        # at exit, which every xdist worker adds to the run. Nothing is left to collect.
        if self.registry.runtimes:
            import gc

            gc.freeze()


def _skip_reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return ""
