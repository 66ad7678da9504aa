"""The pytest surface (the ``pytest11`` entry point): options, markers, fixtures, and every hook of the plugin, each
a line or two delegating to the process's one ``Session``. No other object registers hooks."""

from __future__ import annotations

from typing import Any

import pytest

from ..api.assertions import explain
from ..config import defaults
from ..config.options import OPTIONS
from ..observations import rates
from .fixtures import SESSION, exercise, lm, lm_model_spec, lm_settings, lm_snapshot, model, tokenizer
from .session import Session

__all__ = ["SESSION", "exercise", "lm", "lm_model_spec", "lm_settings", "lm_snapshot", "model", "tokenizer"]


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


# pytest_runtest_logreport is given a report and no config: it goes to the innermost configured session (a pytester
# run in process configures its own inside ours, and ends it before ours reports again), as syrupy's hooks do.
_ACTIVE: list[Session] = []


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION] = Session(config)
    _ACTIVE.append(config.stash[SESSION])
    show_all_candidates(config, config.stash[SESSION].settings.top_shown)


def show_all_candidates(config: pytest.Config, top: int) -> None:
    """--lm-top N asks a failure for N candidates; pytest's truncation at default verbosity (8 lines, 640 characters)
    would cut the explanation after 5. Unless the user set pytest's limits, they are raised to hold N."""
    cache = getattr(config, "_inicache", None)  # pytest has no public setter for an ini value
    if top <= defaults.TOP or cache is None:
        return
    for name, value in (("truncation_limit_lines", 12 + 2 * top), ("truncation_limit_chars", 800 + 160 * top)):
        if config.getini(name) is None:
            cache[name] = value


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.end()
        if session in _ACTIVE:
            _ACTIVE.remove(session)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION].start()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    plan = config.stash[SESSION].plan
    if plan is not None:  # before any plugin deselects: the plan keeps what a narrower run did not run
        plan.collection_modifyitems(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    plan = session.config.stash[SESSION].plan
    if plan is not None:
        plan.collection_finish(session)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    return config.stash[SESSION].collected(items)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.config.stash[SESSION].parametrize(metafunc)


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[SESSION].setup(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    item.config.stash[SESSION].reported(item, call, outcome.get_result())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _ACTIVE:
        _ACTIVE[-1].logreport(report)


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    if op == "==":
        return explain(left, right, config.stash[SESSION].settings.top_shown)
    return rates.explain(op, left, right)


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SESSION].finish(session)


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.config.stash[SESSION].summary(terminalreporter)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    share = node.config.stash[SESSION].share
    if share is not None:
        share.configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    node.config.stash[SESSION].node_down(node, error)
