"""The pytest surface (the ``pytest11`` entry point): options, markers, fixtures, and hooks of a line or two, each
delegating to the process's one ``Session``."""

from __future__ import annotations

from typing import Any

import pytest

from ..api.assertions import explain
from ..config.options import OPTIONS
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


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION] = Session(config)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.end()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION].start()


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


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    return explain(left, right, config.stash[SESSION].settings.top_shown) if op == "==" else None
