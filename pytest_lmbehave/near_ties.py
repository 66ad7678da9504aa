"""Near-tie flips that let a snapshot pass: collected from every process's test reports, listed at the end."""

from __future__ import annotations

from typing import Any

import pytest

PROPERTY = "lmbehave_near_tie"
# Near-tie flips of this process's running test, waiting to be attached to its report.
NOTES: list[str] = []


def attach(report: pytest.TestReport) -> None:
    """Move this process's notes onto the running test's report (xdist brings reports to the controller)."""
    if NOTES:
        report.user_properties += [(PROPERTY, note) for note in NOTES]
        NOTES.clear()


class NearTieSummary:
    """Lists the near-tie flips that let snapshots pass, from every worker's reports, at the end of the run."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.notes += [(report.nodeid, str(value)) for name, value in report.user_properties if name == PROPERTY]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.notes:
            return
        terminalreporter.write_sep(
            "-", f"{len(self.notes)} near-tie flip(s) (not failures; --lm-strict makes them fail)"
        )
        for nodeid, note in self.notes:
            terminalreporter.write_line(f"{nodeid}: {note}")
