"""Near-tie flips that let a snapshot pass: noted by the snapshot extension, carried on each test's report (xdist
brings reports to the controller), listed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest


class NearTieSummary:
    """This process's notes of its running test (``pending``), and every process's, listed at the end."""

    def __init__(self) -> None:
        self.pending: list[str] = []  # the snapshot extension appends here (extension_for's ``notes``)
        self.notes: list[tuple[str, str]] = []

    def take(self) -> list[str]:
        """The running test's notes, for its report (and no other's)."""
        notes = list(self.pending)
        self.pending.clear()
        return notes

    def add(self, report: pytest.TestReport, carried: dict[str, Any]) -> None:
        self.notes += [(report.nodeid, str(note)) for note in carried.get("near_ties", ())]

    def summary(self, terminalreporter: Any) -> None:
        if not self.notes:
            return
        terminalreporter.write_sep(
            "-", f"{len(self.notes)} near-tie flip(s) (not failures; --lm-strict makes them fail)"
        )
        for nodeid, note in self.notes:
            terminalreporter.write_line(f"{nodeid}: {note}")
