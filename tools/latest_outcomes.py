"""A pytest plugin for `make latest` (loaded with ``-p latest_outcomes``, tools/ on PYTHONPATH): which tests failed,
and whether each holds the model to a recorded snapshot (``lm_snapshot``: drift to read) or states a property or
tests the plugin (a failure). Written as JSON to $LMBEHAVE_OUTCOMES by the controller (or the only process).

Under xdist the controller collects nothing, so each worker marks the reports of its snapshot tests; the mark
travels to the controller on the report, as the plugin's own per-test notes do."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MARK = ("latest_recorded", "1")
failed: dict[str, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    if "lm_snapshot" in getattr(item, "fixturenames", ()):
        outcome.get_result().user_properties.append(MARK)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        failed[report.nodeid] = "recorded" if MARK in report.user_properties else "property"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or "LMBEHAVE_OUTCOMES" not in os.environ:
        return
    Path(os.environ["LMBEHAVE_OUTCOMES"]).write_text(json.dumps(failed, indent=1, sort_keys=True) + "\n")
