"""The pytest side of the request plan (``plan.py``): read it after collection, record it on an update.

Each test's requests are kept on the item; on ``--lm-plan-update`` (or ``--snapshot-update``) they travel on the
test's report (so xdist brings them to the controller) and the controller, or the only process, merges them into
the plan file atomically at the end of the run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..config.files import path_problem, write_atomically
from ..config.options import OPTIONS
from ..runtime import plan
from .snapshot_sets import set_folders

ASKS = pytest.StashKey[list[plan.Ask]]()
COLLECTED = "lmbehave_collected"  # a worker's collected node ids, in its workeroutput for the controller


def asks_for(item: pytest.Item) -> list[plan.Ask]:
    """The list an item's ``LM`` handles append their requests to."""
    return item.stash.setdefault(ASKS, [])


class PlanFile:
    """The request plan: read after collection and handed to the registry; under an update, each test's requests
    ride on its teardown report and the plan is written at the end."""

    def __init__(
        self,
        path: Path,
        base_seed: int,
        update: bool,
        announce: Callable[[str], None],
        use: Callable[[list[plan.Ask], list[Path]], None],
        own: str | None = None,
    ) -> None:
        self.use = use  # hands the requests to the registry before any model loads
        self.path = path
        self.base_seed = base_seed
        self.update = update
        self.own = own  # the engine whose own drafts an update adds, leaving the rest of the plan alone
        self.announce = announce
        self.collected: set[str] = set()  # node ids collected, before any deselection
        self.ran: dict[str, list[plan.Ask]] = {}

    def collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected.update(item.nodeid for item in items)

    def collection_finish(self, session: pytest.Session) -> None:
        tests, base_seed, problem = plan.read(self.path)
        if problem is not None:
            self.announce(f"pytest-lmbehave: {problem}")
        chosen = {item.nodeid for item in session.items}
        # Each test's requests once, a request asked by two tests twice: what the tests still owe is kept longest.
        asks = [ask for node, entries in tests.items() if node in chosen for ask in plan.unique(entries)]
        if base_seed != self.base_seed:  # sampled seeds derive from the base seed: those requests will not come
            asks = [ask for ask in asks if ask.policy.greedy]
        # The plan's requests for the tests this run will run, and the snapshot sets whose generations are drafts.
        self.use(asks, set_folders(session.config.invocation_params.dir, session.config.args))

    def node_down(self, node: Any) -> None:
        """An xdist worker's collected node ids (before any deselection), so that an update drops the entries of
        tests gone from a collected module there too (a crashed worker tells nothing: its modules keep theirs)."""
        self.collected.update(getattr(node, "workeroutput", {}).get(COLLECTED, ()))

    def carried(self, item: pytest.Item) -> dict[str, Any]:
        """What a test's teardown report carries for an update of the plan: the requests it made."""
        return {"asks": [a.to_json() for a in item.stash.get(ASKS, [])]} if self.update else {}

    def add(self, report: pytest.TestReport, carried: dict[str, Any]) -> None:
        asks = carried.get("asks")
        if asks is not None:
            self.ran[report.nodeid] = [plan.Ask.from_json(a) for a in asks]

    def finish(self, session: pytest.Session) -> None:
        if not self.update:
            return
        if hasattr(session.config, "workerinput"):  # the controller collects nothing: it hears what each worker did
            session.config.workeroutput[COLLECTED] = sorted(self.collected)  # type: ignore[attr-defined]
            return
        if not self.ran:
            return
        old, seed, _ = plan.read(self.path)
        if self.own is not None:
            if seed != self.base_seed:  # its sampled rows ran under other seeds than the plan's
                return
            text = plan.render(plan.own_drafts(old, self.ran, self.own), self.base_seed)
            if text != plan.render(old, self.base_seed):
                write_atomically(self.path, text)
                self.announce(f"pytest-lmbehave: {self.own}'s own drafts written into the request plan {self.path}")
            return
        merged = plan.merge(old, self.ran, self.collected)
        write_atomically(self.path, plan.render(merged, self.base_seed))
        self.announce(f"pytest-lmbehave: request plan for {len(self.ran)} tests written to {self.path}")


def plan_path(config: pytest.Config) -> Path | None:
    """--lm-plan (from the current directory), else ini lm_plan (from the rootdir), else the rootdir's
    lmbehave-plan.json; None for 'none'."""
    given, base = config.getoption("lm_plan"), config.invocation_params.dir
    if given in (None, ""):
        given, base = config.getini("lm_plan"), config.rootpath
    if given in (None, ""):
        return config.rootpath / "lmbehave-plan.json"
    return None if str(given).strip().lower() == "none" else base / str(given)


SPACED = ("--lm-model", "--lm-report", "--lm-plan")  # options whose value may be a path


def spaced_path(args: list[str], invocation: Path) -> tuple[str, str] | None:
    """A path option written as two arguments (``--lm-model /abs/dir``) whose path lies outside the invocation
    folder: pytest reads it as a test path too when it picks the rootdir (plugins' options are not known yet then),
    and takes a common parent outside the project, where the plan and reports would be written."""
    for flag, value in itertools.pairwise(args):
        if flag in SPACED and not value.startswith("-"):
            path = Path(value).expanduser()
            if (path.exists() or path.parent.exists()) and not path.resolve().is_relative_to(invocation.resolve()):
                return flag, value
    return None


def rootdir_without_it(config: pytest.Config) -> Path | None:
    """The rootdir pytest picks from the run's own test paths, without a spaced option's value among them (None
    when this pytest's rootdir rule cannot be asked: the path is then refused, as pytest may have moved it)."""
    try:
        from _pytest.config.findpaths import determine_setup

        rootpath, *_ = determine_setup(
            inifile=config.option.inifilename,
            override_ini=config.option.override_ini,
            args=list(config.option.file_or_dir or []),
            rootdir_cmd_arg=config.option.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )
    except Exception:  # another pytest's private signature
        return None
    return Path(rootpath)


def switch_given_a_value(args: list[str], invocation: Path) -> tuple[str, str] | None:
    """A switch followed by a word that names nothing (``--lm-cache /tmp/cache``): pytest takes the word for a test
    path, and under xdist a test path that does not exist is not reported: the run collects nothing, silently."""
    switches = {option.flag for option in OPTIONS if option.switch}
    for flag, value in itertools.pairwise(args):
        if flag not in switches or value.startswith("-"):
            continue
        if not (invocation / Path(value.split("::")[0]).expanduser()).exists():  # a node id names its file
            return flag, value
    return None


# What a switch that reads like it takes a folder does take it from.
FOLDERS = {"--lm-cache": "its folder is set by the environment: LMBEHAVE_CACHE={value} pytest ... --lm-cache"}


def check_paths(config: pytest.Config) -> None:
    """Files the run will write or read must be possible before any test runs: one usage error, not a traceback."""
    given = switch_given_a_value(list(config.invocation_params.args), config.invocation_params.dir)
    if given is not None:
        flag, value = given
        folder = f" ({FOLDERS[flag].format(value=value)})" if flag in FOLDERS else ""
        raise pytest.UsageError(
            f"{flag} takes no value, so {value!r} was read as a test path, and nothing is there; write the switch "
            f"alone{folder}"
        )
    spaced = spaced_path(list(config.invocation_params.args), config.invocation_params.dir)
    if spaced is not None and rootdir_without_it(config) != config.rootpath:
        flag, value = spaced
        raise pytest.UsageError(
            f"{flag} {value}: write it as {flag}={value}. Given as a separate argument, a path outside this folder "
            f"is read by pytest as a test path when it picks the rootdir (it picked {config.rootpath}), and the "
            "plugin's plan and reports would be written there"
        )
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
