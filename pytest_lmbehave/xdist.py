"""Everything xdist-specific: registered only when pytest-xdist is installed."""

from __future__ import annotations

from typing import Any

from .report import ReportPlugin


class XdistReportHooks:
    """Brings each worker's process figures (model-ready time, peak memory) to the controller's report."""

    def __init__(self, report: ReportPlugin) -> None:
        self.report = report

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        figures = getattr(node, "workeroutput", {}).get("lmbehave_process")
        if figures:
            self.report.processes.append(figures)
