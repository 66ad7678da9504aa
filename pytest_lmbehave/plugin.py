"""The pytest11 entry point: options, ini keys, markers, fixtures and one-line hooks over the LM API."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import defaults, environment, snapshots
from .assertions import explain
from .errors import LMBehaveError, SettingsError
from .exercises import Exercise, ExerciseProgress, exercise_for
from .files import path_problem
from .lm import LM
from .markers import MARKERS, model_for, sampling_for
from .models import resolve, slug
from .planner import PlanPlugin, asks_for
from .registry import Registry
from .report import ReportPlugin, recorder_for
from .settings import Settings, build_settings
from .snapshots import SETS_DIRNAME, LMSnapshotExtension, extension_for

SETTINGS = pytest.StashKey[Settings]()
REGISTRY = pytest.StashKey[Registry]()

# (option, ini key, environment variable, help)
OPTIONS: list[tuple[str, str, str | None, str]] = [
    (
        "--lm-model",
        "lm_model",
        "LMBEHAVE_MODEL",
        "model to test: 'embedded' (default), a directory, a .gguf file or a cached hub id",
    ),
    ("--lm-dtype", "lm_dtype", None, "weights dtype: float32 (default), bfloat16 or float16"),
    ("--lm-device", "lm_device", None, "device: cpu (default), cuda or mps"),
    ("--lm-threads", "lm_threads", None, "torch threads per process, pinned before loading (default 1)"),
    ("--lm-attention", "lm_attention", None, "attention implementation: sdpa (default) or eager"),
    ("--lm-seed", "lm_seed", None, "base seed of sampled tests; each test adds a hash of its node id (default 0)"),
    (
        "--lm-top",
        "lm_top",
        None,
        f"how many candidates a failure shows and a snapshot records (default {defaults.TOP})",
    ),
    (
        "--lm-tolerance",
        "lm_tolerance",
        None,
        f"how far a snapshot's probabilities, scores and margins may move (default {defaults.TOLERANCE})",
    ),
    (
        "--lm-near-tie",
        "lm_near_tie",
        None,
        "a flip is a near-tie (numerical noise: it warns, and passes) when its recorded and its new margin are "
        f"both below this many nats (default {defaults.NEAR_TIE})",
    ),
    (
        "--lm-variant",
        "lm_variant",
        None,
        "the recorded snapshot variant to compare against and update: __lm_snapshots__/<model>@NAME ('default' for "
        "the plain set); a new variant is recorded with --snapshot-update --lm-variant NAME. Without it a run "
        "compares against the variant recorded in the environment closest to its own",
    ),
    (
        "--lm-plan",
        "lm_plan",
        None,
        "request plan: what each test asked last time, batched up front (default lmbehave-plan.json in the "
        "rootdir; 'none' computes every request when it is asked)",
    ),
]
FLAGS: list[tuple[str, str, str]] = [
    (
        "--lm-strict",
        "lm_strict",
        "near-tie flips fail too (by default a snapshot whose only differences are near-tie flips passes, and the "
        "terminal summary lists them)",
    ),
    (
        "--lm-accept-near-ties",
        "lm_accept_near_ties",
        "deprecated: near-tie flips pass by default now; --lm-strict makes them fail",
    ),
    (
        "--lm-cache",
        "lm_cache",
        "keep observations on disk ($LMBEHAVE_CACHE/observations), keyed by the environment fingerprint, "
        "so an unchanged re-run reads instead of computing",
    ),
    (
        "--lm-plan-update",
        "lm_plan_update",
        "record each test's requests in the plan (--lm-plan) at the end of the run; --snapshot-update does too",
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lmbehave", "language model behaviour (pytest-lmbehave)")
    for option, ini, env, text in OPTIONS:
        suffix = f"; ini {ini}" + (f", env {env}" if env else "")
        group.addoption(option, dest=ini, default=None, help=text + suffix)
        parser.addini(ini, text)
    group.addoption(
        "--lm-reveal", action="store_true", default=False, help="exercises: show the teacher's answer beside each blank"
    )
    group.addoption(
        "--lm-answer-key",
        action="store_true",
        default=False,
        help="exercises: fill every blank from answer_key.py beside the exercises (proves each one solvable)",
    )
    group.addoption(
        "--lm-report",
        dest="lm_report",
        default=None,
        metavar="PATH.json",
        help="write every observation the run made (per test, with the environment) to PATH.json; compare two with `lmbehave diff`",
    )
    for option, ini, text in FLAGS:
        group.addoption(option, dest=ini, action="store_true", default=None, help=text + f"; ini {ini}")
        parser.addini(ini, text, type="bool", default=None)


def _lookup(config: pytest.Config) -> Any:
    def get(option: str, ini: str, env: str | None) -> Any:
        for found in (config.getoption(option), config.getini(ini), os.environ.get(env) if env else None):
            if found not in (None, "", []):
                return found
        return None

    return get


def pytest_configure(config: pytest.Config) -> None:
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    try:
        settings = build_settings(_lookup(config))
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SETTINGS] = settings
    _check_paths(config)
    # syrupy warns when an interrupted xdist run sends it fewer reports than workers; under a project's
    # `filterwarnings = error` that warning would turn pytest's short "Interrupted" into a long traceback.
    config.addinivalue_line("filterwarnings", "default:syrupy. received .* xdist worker snapshot reports:UserWarning")
    workerinput = getattr(config, "workerinput", None)
    shared = None
    if workerinput is not None and workerinput.get("lmbehave_share"):
        shared = Path(workerinput["lmbehave_share"])
    registry = Registry(settings, lambda message: _announce(config, message), shared)
    config.stash[REGISTRY] = registry
    config.pluginmanager.register(ExerciseProgress(), "lmbehave-exercises")
    config.pluginmanager.register(NearTieSummary(), "lmbehave-near-ties")
    if _lookup(config)("lm_accept_near_ties", "lm_accept_near_ties", None):
        _announce(
            config,
            "pytest-lmbehave: --lm-accept-near-ties is deprecated and does nothing: a snapshot whose only differences "
            "are near-tie flips passes by default (listed at the end); pass --lm-strict to make them fail",
        )
    path = plan_path(config)
    if path is not None:
        update = bool(
            _lookup(config)("lm_plan_update", "lm_plan_update", None) or config.getoption("update_snapshots", False)
        )
        planner = PlanPlugin(path, settings.seed, update, lambda message: _announce(config, message), registry.use_plan)
        config.pluginmanager.register(planner, "lmbehave-plan")
    if config.pluginmanager.hasplugin("xdist") and workerinput is None:
        from .xdist import XdistShareHooks

        config.pluginmanager.register(XdistShareHooks(), "lmbehave-xdist-share")
    if config.getoption("lm_report"):
        registry = config.stash[REGISTRY]
        report = ReportPlugin(Path(config.getoption("lm_report")), registry.load_seconds, registry.import_seconds)

        config.pluginmanager.register(report, "lmbehave-report")
        if config.pluginmanager.hasplugin("xdist"):
            from .xdist import XdistReportHooks

            config.pluginmanager.register(XdistReportHooks(report), "lmbehave-xdist")


NEAR_TIE_PROPERTY = "lmbehave_near_tie"


class NearTieSummary:
    """Lists the near-tie flips that let snapshots pass, from every worker's reports, at the end of the run."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.notes += [
            (report.nodeid, str(value)) for name, value in report.user_properties if name == NEAR_TIE_PROPERTY
        ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.notes:
            return
        terminalreporter.write_sep(
            "-", f"{len(self.notes)} near-tie flip(s) (not failures; --lm-strict makes them fail)"
        )
        for nodeid, note in self.notes:
            terminalreporter.write_line(f"{nodeid}: {note}")


def _set_folders(config: pytest.Config) -> list[Path]:
    """The snapshot-set folders under the paths this run was given (each ``__lm_snapshots__``)."""
    folders: set[Path] = set()
    for arg in config.args or [str(config.invocation_params.dir)]:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        start = path if path.is_dir() else path.parent
        if (start / SETS_DIRNAME).is_dir():
            folders.add(start / SETS_DIRNAME)
        if path.is_dir():
            for here, dirs, _ in os.walk(start):  # hidden folders (.venv, .git) are never entered
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
                if SETS_DIRNAME in dirs:
                    folders.add(Path(here) / SETS_DIRNAME)
    return sorted(folders)


def _check_paths(config: pytest.Config) -> None:
    """Files the run will write or read must be possible before any test runs: one usage error, not a traceback."""
    report = config.getoption("lm_report")
    if report and path_problem(Path(report)) is not None:
        raise pytest.UsageError(
            f"--lm-report={report}: {path_problem(Path(report))}; pass a file path such as report.json"
        )
    plan = plan_path(config)
    if plan is not None and path_problem(plan) is not None:
        raise pytest.UsageError(
            f"--lm-plan: {path_problem(plan)}; pass a file path such as lmbehave-plan.json, or 'none' for no plan"
        )


def plan_path(config: pytest.Config) -> Path | None:
    """--lm-plan (from the current directory), else ini lm_plan (from the rootdir), else the rootdir's
    lmbehave-plan.json; None for 'none'."""
    given, base = config.getoption("lm_plan"), config.invocation_params.dir
    if given in (None, ""):
        given, base = config.getini("lm_plan"), config.rootpath
    if given in (None, ""):
        return config.rootpath / "lmbehave-plan.json"
    return None if str(given).strip().lower() == "none" else base / str(given)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # With a model loaded, the interpreter's last garbage collection walks millions of objects: ~1 s at exit
    # (measured 1.25 s, 0.24 s frozen), which every xdist worker adds to the run. Nothing is left to collect.
    registry = config.stash.get(REGISTRY, None)
    if registry is not None and registry.engines:
        import gc

        gc.freeze()


def _announce(config: pytest.Config, message: str) -> None:
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
        for folder in _set_folders(config):
            for path in snapshots.remove_stale_sidecars(folder):
                _announce(config, f"pytest-lmbehave: removed {path}, left by an interrupted snapshot update")
    # A model the user named explicitly must exist: say so once, before any test runs.
    if _lookup(config)("lm_model", "lm_model", "LMBEHAVE_MODEL") is None:
        return
    try:
        resolve(config.stash[SETTINGS].model)
    except LMBehaveError as error:
        raise pytest.UsageError(f"--lm-model: {error}") from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    # Versions from package metadata, the CPU from the OS: importing torch here would hold back xdist's workers.
    settings = config.stash[SETTINGS]
    versions = " ".join(f"{k}={v}" for k, v in environment.software().items())
    variables = " ".join(f"{k}={v}" for k, v in environment.numerics_variables().items())
    return [
        f"lmbehave: model {config.stash[REGISTRY].describe(settings.model)}",
        f"lmbehave: dtype={settings.dtype} device={settings.device} threads={settings.threads} "
        f"attention={settings.attention} base seed={settings.seed} (--lm-seed)",
        f"lmbehave: {versions}",
        f"lmbehave: cpu={environment.cpu_without_torch()} {variables}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Model-specific expectations run for the chosen model and for every model that has a set beside the test.
    if "lm_snapshot" in metafunc.fixturenames and metafunc.definition.get_closest_marker("lm_model") is None:
        settings = metafunc.config.stash[SETTINGS]
        metafunc.parametrize(
            "lm_model_spec", snapshot_models(metafunc.definition.path.parent, settings.model), indirect=True
        )


def snapshot_models(folder: Path, chosen: str) -> list[Any]:
    params = [pytest.param(chosen, id=slug(chosen))]
    sets = folder / SETS_DIRNAME
    seen = {slug(chosen)}
    for entry in sorted(sets.iterdir()) if sets.is_dir() else []:
        name = entry.name.split(snapshots.VARIANT, 1)[0]  # a model's variants run as that one model
        spec = spec_of_set(name)
        if spec is None or name in seen:
            continue
        seen.add(name)
        params.append(pytest.param(spec, id=name, marks=_skip_unless_available(spec)))
    return params


def spec_of_set(name: str) -> str | None:
    """The model spec a set's folder name stands for: 'embedded' or a hub id ('owner--name'); None for local paths."""
    if name == "embedded":
        return name
    owner, sep, repo = name.partition("--")
    return f"{owner}/{repo}" if sep and owner and repo else None


def _skip_unless_available(spec: str) -> list[pytest.MarkDecorator]:
    from .errors import ModelNotFoundError
    from .models import resolve

    try:
        resolve(spec)
    except ModelNotFoundError as error:
        words = "; ".join(line.strip() for line in str(error).splitlines() if not line.startswith("["))
        return [
            pytest.mark.skip(reason=f"expectations for {spec} are kept, but the model is not available here: {words}")
        ]
    return []


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Bad marker arguments fail the test that carries them, before any model loads.
    settings = item.config.stash[SETTINGS]
    sampling_for(item, settings.seed)
    model_for(item, settings.model)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if snapshots.NEAR_TIE_NOTES:
        report.user_properties += [(NEAR_TIE_PROPERTY, note) for note in snapshots.NEAR_TIE_NOTES]
        snapshots.NEAR_TIE_NOTES.clear()
    if call.excinfo is not None and isinstance(call.excinfo.value, LMBehaveError) and report.failed:
        # Our errors name the problem and the fix; a traceback into torch would only bury that.
        error = call.excinfo.value
        own = [entry for entry in call.excinfo.traceback if str(entry.path) == str(item.path)]
        where = f"\n(at {item.path.name}:{own[-1].lineno + 1})" if own else ""
        report.longrepr = f"{type(error).__name__}: {error}{where}"


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    return explain(left, right) if op == "==" else None


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
    if engine.shared is not None:
        # Under xdist each worker takes one more of the plan's batches before each test: a worker kept busy by
        # its tests takes fewer, so the batches are shared out by how busy each worker is.
        engine.prefetch(1)
    sampling, seed = sampling_for(request.node, lm_settings.seed)
    recorder = None
    if request.config.getoption("lm_report"):
        recorder = recorder_for(request.node, lm_model_spec, engine.loaded.fingerprint)
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
    """syrupy's ``snapshot``, storing LM observations in this model's own set (``__lm_snapshots__/<model>/``)."""
    model = slug(lm_model_spec)
    set_name, reason = snapshots.choose_variant(
        Path(str(request.node.path)).parent, model, lm.fingerprint, lm_settings.variant
    )
    extension: type[LMSnapshotExtension] = extension_for(
        model,
        environment.line(lm.fingerprint),
        lm_settings.tolerance,
        lm_settings.near_tie,
        lm_settings.strict,
        lm_settings.top_shown,
        teacher=lm.engine.teacher_force,
        set_name=set_name,
        variant_reason=reason,
        updating=bool(request.config.getoption("update_snapshots", False)),
    )
    return snapshot.use_extension(extension)


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> Exercise:
    """A teaching exercise: ``exercise.check(actual, ___, hint=...)``; see ``pytest_lmbehave.exercises``."""
    return exercise_for(request)
