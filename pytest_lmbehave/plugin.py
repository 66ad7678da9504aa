"""The pytest11 entry point: options, markers, fixtures and thin hooks over the LM API."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import environment, near_ties, snapshot_sets, tally
from .assertions import explain
from .backends.http import ServerGone
from .errors import BackendUnavailable, LMBehaveError, SettingsError
from .exercises import Exercise, ExerciseProgress, exercise_for
from .lm import LM
from .markers import MARKERS, expected_set_for, model_for, sampling_for
from .models import slug
from .options import OPTIONS, Lookup, Option, given
from .planner import PlanPlugin, asks_for, check_paths, plan_path
from .registry import Registry
from .report import ReportPlugin, recorder_for
from .settings import Settings, build_settings
from .snapshots import extension_for_test

SETTINGS = pytest.StashKey[Settings]()
REGISTRY = pytest.StashKey[Registry]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lmbehave", "language model behaviour (pytest-lmbehave)")
    for option in OPTIONS:
        suffix = (f"; ini {option.ini}" if option.in_ini else "") + (f", env {option.env}" if option.env else "")
        if option.switch:
            default = None if option.in_ini else False
            group.addoption(
                option.flag, dest=option.ini, action="store_true", default=default, help=option.help + suffix
            )
        else:
            group.addoption(
                option.flag, dest=option.ini, default=None, metavar=option.metavar, help=option.help + suffix
            )
        if option.in_ini and option.switch:
            parser.addini(option.ini, option.help, type="bool", default=None)
        elif option.in_ini:
            parser.addini(option.ini, option.help, type="string", default=None)


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


def pytest_configure(config: pytest.Config) -> None:
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    lookup = lookup_for(config)
    try:
        settings = build_settings(lookup)
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SETTINGS] = settings
    check_paths(config)
    # syrupy warns when an interrupted xdist run sends it fewer reports than workers; under a project's
    # `filterwarnings = error` that warning would turn pytest's short "Interrupted" into a long traceback.
    config.addinivalue_line("filterwarnings", "default:syrupy. received .* xdist worker snapshot reports:UserWarning")
    workerinput = getattr(config, "workerinput", None)
    shared = workerinput.get("lmbehave_share") if workerinput is not None else None
    registry = Registry(settings, lambda message: announce(config, message), Path(shared) if shared else None)
    config.stash[REGISTRY] = registry
    config.pluginmanager.register(ExerciseProgress(), "lmbehave-exercises")
    config.pluginmanager.register(near_ties.NearTieSummary(), "lmbehave-near-ties")
    controller_header = lambda: header(config) if config.pluginmanager.hasplugin("dsession") else []  # noqa: E731
    config.pluginmanager.register(tally.ModelTests(controller_header), "lmbehave-model-tests")
    if given(lookup, "lm_accept_near_ties"):
        announce(
            config,
            "pytest-lmbehave: --lm-accept-near-ties is deprecated and does nothing: a snapshot whose only differences "
            "are near-tie flips passes by default (listed at the end); pass --lm-strict to make them fail",
        )
    path = plan_path(config)
    if path is not None:
        update = bool(given(lookup, "lm_plan_update") or config.getoption("update_snapshots", False))
        planner = PlanPlugin(path, settings.seed, update, lambda message: announce(config, message), registry.use_plan)
        config.pluginmanager.register(planner, "lmbehave-plan")
    xdist = config.pluginmanager.hasplugin("xdist")
    if xdist and workerinput is None:
        from .xdist import XdistShareHooks

        config.pluginmanager.register(XdistShareHooks(), "lmbehave-xdist-share")
    if config.getoption("lm_report"):
        report = ReportPlugin(
            Path(config.getoption("lm_report")), registry.load_seconds, registry.import_seconds, registry.counts
        )
        config.pluginmanager.register(report, "lmbehave-report")
        if xdist:
            from .xdist import XdistReportHooks

            config.pluginmanager.register(XdistReportHooks(report), "lmbehave-xdist")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # With a model loaded, the interpreter's last garbage collection walks millions of objects: about a second at
    # exit (README), which every xdist worker adds to the run. Nothing is left to collect.
    registry = config.stash.get(REGISTRY, None)
    if registry is not None and registry.engines:
        import gc

        gc.freeze()


def announce(config: pytest.Config, message: str) -> None:
    with _uncaptured(config):
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        yield


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not hasattr(config, "workerinput"):  # the only process, or the xdist controller: before any test writes
        for folder in snapshot_sets.set_folders(config.invocation_params.dir, config.args):
            for path in snapshot_sets.remove_stale_sidecars(folder):
                announce(config, f"pytest-lmbehave: removed {path}, left by an interrupted snapshot update")
    settings = config.stash[SETTINGS]
    if settings.model_named:  # a model the user named must exist: say so once, before any test runs
        try:
            source = config.stash[REGISTRY].source(settings.model)
            if source.kind == "served" and not hasattr(config, "workerinput"):
                from .backends.capabilities import announcement

                announce(config, announcement(settings.model, settings.server_timeout))
        except LMBehaveError as error:
            raise pytest.UsageError(f"--lm-model: {error}") from None


def header(config: pytest.Config) -> list[str]:
    """The model, its numerics, the versions and the seed, in two lines. Versions come from package metadata and the
    CPU from the OS: importing torch here would hold back xdist's workers."""
    settings = config.stash[SETTINGS]
    versions = " ".join(f"{k}={v}" for k, v in environment.software().items())
    variables = "".join(f" {k}={v}" for k, v in environment.numerics_variables().items() if v != "unset")
    return [
        f"lmbehave: model {config.stash[REGISTRY].describe(settings.model)}; dtype={settings.dtype} "
        f"device={settings.device} threads={settings.threads} attention={settings.attention} base seed={settings.seed}",
        f"lmbehave: {versions} cpu={environment.cpu_without_torch()}{variables}",
    ]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    # Only a run that collected a test asking for a model says which: a project with the plugin installed and no
    # model test prints nothing. (Under xdist the controller collects nothing: the summary says it instead.)
    return header(config) if any(tally.uses_model(item) for item in items) else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Model-specific expectations run for the chosen model and for every model that has a set beside the test.
    if "lm_snapshot" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("lm_model") is not None:
        return
    settings = metafunc.config.stash[SETTINGS]
    chosen = settings.model
    registry = metafunc.config.stash[REGISTRY]
    params = []
    held_to = slug(settings.expect) if settings.expect else slug(chosen)  # --lm-expect: new weights, old set
    for spec, name in snapshot_sets.models_with_sets(metafunc.definition.path.parent, chosen, held_to):
        missing = None if spec == chosen else registry.unavailable(spec)
        reason = f"expectations for {spec} are kept, but the model is not available here: {missing}"
        params.append(pytest.param(spec, id=name, marks=[pytest.mark.skip(reason=reason)] if missing else []))
    metafunc.parametrize("lm_model_spec", params, indirect=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Bad marker arguments fail the test that carries them, before any model loads.
    settings = item.config.stash[SETTINGS]
    sampling_for(item, settings.seed)
    model_for(item, settings.model)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    near_ties.attach(report)
    tally.attach(item, report)
    error = None if call.excinfo is None else call.excinfo.value
    if isinstance(error, ServerGone):  # like a model that cannot load: one message, and the run ends
        item.session.shouldstop = f"pytest-lmbehave: {error}"
    elif isinstance(error, BackendUnavailable) and report.failed:
        # A verb this backend cannot answer (a served model has no raw logits): the spec cannot run here.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: not available on this backend: {error}")
        return
    if call.excinfo is not None and isinstance(error, LMBehaveError) and report.failed:
        # Our errors name the problem and the fix; a traceback into torch would only bury that.
        own = [entry for entry in call.excinfo.traceback if str(entry.path) == str(item.path)]
        where = f"\n(at {item.path.name}:{own[-1].lineno + 1})" if own else ""
        report.longrepr = f"{type(error).__name__}: {error}{where}"


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    return explain(left, right, config.stash[SETTINGS].top_shown) if op == "==" else None


@pytest.fixture(scope="session")
def lm_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated session settings (model, dtype, device, threads, attention, base seed)."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture
def lm_model_spec(request: pytest.FixtureRequest, lm_settings: Settings) -> str:
    """The model this test runs against: a parametrized value, the closest lm_model marker, or --lm-model."""
    param = getattr(request, "param", None)
    return str(param) if param is not None else model_for(request.node, lm_settings.model)


@pytest.fixture
def lm(request: pytest.FixtureRequest, lm_model_spec: str, lm_settings: Settings) -> LM:
    """The test's handle on the model (loaded once per process per model): greedy unless marked sampled."""
    __tracebackhide__ = True
    registry = request.config.stash[REGISTRY]
    try:
        with _uncaptured(request.config):
            engine = registry.engine(lm_model_spec)
    except LMBehaveError as error:
        if lm_model_spec == lm_settings.model:  # without the session's model no test can run: stop at once
            request.session.shouldfail = f"pytest-lmbehave: the model {lm_model_spec!r} could not be loaded ({type(error).__name__}, shown above); stopped"
        raise
    if engine.sharing:
        # Under xdist each worker takes one more of the plan's batches before each test: a worker kept busy by
        # its tests takes fewer, so the batches are shared out by how busy each worker is.
        engine.prefetch(1)
    sampling, seed = sampling_for(request.node, lm_settings.seed)
    recorder = None
    if request.config.getoption("lm_report"):
        recorder = recorder_for(request.node, lm_model_spec, engine.fingerprint)
    return LM(engine, sampling, seed, recorder, asks_for(request.node))


@pytest.fixture
def model(lm: LM) -> Any:
    """The raw transformers model behind ``lm``."""
    return lm.model


@pytest.fixture
def tokenizer(lm: LM) -> Any:
    """The raw transformers tokenizer behind ``lm``."""
    return lm.tokenizer


@pytest.fixture
def lm_snapshot(
    request: pytest.FixtureRequest, snapshot: Any, lm: LM, lm_model_spec: str, lm_settings: Settings
) -> Any:
    """syrupy's ``snapshot``, storing LM observations in this model's own set (``__lm_snapshots__/<model>/``), or
    in the set it is held to (--lm-expect, ``lm_model(expect=...)``)."""
    expected = expected_set_for(request.node, lm_model_spec, lm_settings.model, lm_settings.expect)
    extension = extension_for_test(
        Path(str(request.node.path)).parent,
        slug(expected or lm_model_spec),
        lm.fingerprint,
        lm_settings,
        lm.engine.teacher_force,
        updating=bool(request.config.getoption("update_snapshots", False)),
        held=expected is not None,
    )
    return snapshot.use_extension(extension)


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> Exercise:
    """A teaching exercise: ``exercise.check(actual, ___, hint=...)``; see ``pytest_lmbehave.exercises``."""
    return exercise_for(request)
