"""``--lm-report PATH.json``: every observation a run made, keyed by test node id, with the environments.

Each test's observations ride on its teardown report (``carried``), which xdist ships to the controller; the
controller (or the only process) hands them to ``reports.report_format``, which writes the one file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import spec_kinds
from ..observations.records import to_record
from ..observations.scores import kl_figures
from ..reports.report_format import write_report

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

OBSERVED = pytest.StashKey[list[dict[str, Any]]]()
ENVIRONMENTS = pytest.StashKey[dict[str, dict[str, str]]]()


def recorder_for(
    item: pytest.Item,
    model: str,
    fingerprint: dict[str, str],
    top: int,
    reference: Callable[[], Runtime | None] = lambda: None,
) -> Any:
    """A callback for ``LM`` that keeps the item's observations as records, each distribution with its ``top``
    candidates and, under --lm-reference, each position's exact KL divergence from the reference engine's."""
    records = item.stash.setdefault(OBSERVED, [])
    item.stash.setdefault(ENVIRONMENTS, {})[model] = fingerprint

    def record(observation: Any) -> None:
        found = {"model": model, **to_record(observation, top)}
        against = reference()
        checked = None if against is None else against.kl_from(observation)
        records.append(found if checked is None else {**found, "reference": checked})

    return record


def _proportional_set_size_mb() -> float | None:
    """Memory with shared pages split among the processes sharing them (the mapped weights, under xdist)."""
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class ReportFile:
    """Collects observations from test reports (local or from workers) and writes the report at the end."""

    def __init__(
        self,
        path: Path | None,  # None: nothing written (--lm-reference without --lm-report), its KL line still told
        timings: dict[str, tuple[float, float]],
        counts: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.timings = timings  # the registry's, filled as models load: (imports, load) seconds per model
        self.counts = counts  # tokens verified from drafts and decoded, observations computed and read
        self.path = path
        self.observations: dict[str, list[dict[str, Any]]] = {}
        self.skipped: dict[str, str] = {}  # node id -> reason
        self.kinds: dict[str, str] = {}  # node id -> its kind of spec
        self.profile: dict[str, str] = {}  # node id -> a behaviour a model without a set did not show
        self.environments: dict[str, dict[str, str]] = {}
        self.processes: list[dict[str, Any]] = []

    @staticmethod
    def carried(item: pytest.Item) -> dict[str, Any]:
        """What a test's teardown report carries for the report: its observations and the environments they had."""
        return {"observations": item.stash.get(OBSERVED, []), "environments": item.stash.get(ENVIRONMENTS, {})}

    def add(self, report: pytest.TestReport, carried: dict[str, Any]) -> None:
        observed = carried.get("observations")
        if observed:
            self.observations[report.nodeid] = list(observed)
        self.environments.update(carried.get("environments") or {})
        if report.skipped and isinstance(report.longrepr, tuple):  # why (a backend that cannot answer a verb)
            self.skipped[report.nodeid] = str(report.longrepr[2]).removeprefix("Skipped: ")
        if carried.get("model"):
            self.kinds[report.nodeid] = spec_kinds.kind_of(report.keywords)
        if str(getattr(report, "wasxfail", "")).startswith(spec_kinds.PROFILE):
            self.profile[report.nodeid] = str(report.wasxfail)

    def process_figures(self, name: str) -> dict[str, Any]:
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "process": name,
            "imports_s": {spec: imports for spec, (imports, _) in self.timings.items()},
            "model_ready_s": {spec: load for spec, (_, load) in self.timings.items()},
            "peak_rss_mb": round(peak_kib / 1024, 1),
            "pss_mb": _proportional_set_size_mb(),
            "imported_torch": "torch" in sys.modules,
            "imported_transformers": "transformers" in sys.modules,
            "imported_scipy": "scipy" in sys.modules,
            **self.counts(),
        }

    def finish(self, session: pytest.Session) -> None:
        workerinput = getattr(session.config, "workerinput", None)
        if workerinput is not None:  # a worker hands its figures over; the controller writes the one report
            session.config.workeroutput["lmbehave_process"] = self.process_figures(workerinput["workerid"])  # type: ignore[attr-defined]
            return
        if session.config.pluginmanager.getplugin("dsession") is None:  # tests ran here: a run without workers
            self.processes.append(self.process_figures("main"))
        if self.path is None:
            return
        write_report(
            self.path, self.environments, self.processes, self.observations, self.skipped, self.kinds, self.profile
        )

    def summary(self, terminalreporter: Any) -> None:
        count = sum(len(v) for v in self.observations.values())
        if self.path is not None:
            terminalreporter.write_line(
                f"lmbehave: {count} observations from {len(self.observations)} tests written to {self.path}"
            )
        checked = [r["reference"] for records in self.observations.values() for r in records if "reference" in r]
        if checked:
            found = kl_figures(
                [kl for c in checked for kl in c["kl"]], [same for c in checked for same in c["same_top"]]
            )
            terminalreporter.write_line(
                f"lmbehave: KL divergence from the reference {checked[0]['engine']} over {found['positions']} "
                "position(s), exact (the full vocabulary): mean {mean_kl:.5f}, median {median_kl:.5f}, p99 "
                "{p99_kl:.5f}, max {max_kl:.5f} nats; same top token {same_top:.2%}".format(**found)
            )
