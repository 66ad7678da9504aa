"""Near-tie flips that let a snapshot pass: noted by the snapshot extension, moved onto each test's report (xdist
brings reports to the controller), listed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

PROPERTY = "lmbehave_near_tie"


class NearTieSummary:
    """This process's notes of its running test (``pending``), and every process's, listed at the end."""

    def __init__(self) -> None:
        self.pending: list[str] = []  # the snapshot extension appends here (extension_for's ``notes``)
        self.notes: list[tuple[str, str]] = []

    def attach(self, report: pytest.TestReport) -> None:
        """Move the running test's notes onto its report."""
        if self.pending:
            report.user_properties += [(PROPERTY, note) for note in self.pending]
            self.pending.clear()

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
