"""What a run checked about a model. One where every test that asked for a model was skipped (a server that answers
none of its verbs, a model that is not here) says so at the end, instead of passing in silence; and each snapshot
set compared against is named once at the end, with why it was chosen (``SetsCompared``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .snapshot_sets import SETS_DIRNAME

MARKER_LINE = "pytest-lmbehave: every test that uses a model was skipped"


MODEL_FIXTURES = frozenset({"lm", "lm_snapshot", "model", "tokenizer", "exercise"})


def uses_model(item: pytest.Item) -> bool:
    return not MODEL_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


class ModelTests:
    """Counts how the tests that use a model ended, from every process's reports; under xdist, whose controller
    collects nothing, the model's header lines come at the end (``header``)."""

    def __init__(self, header: Callable[[], list[str]] | None = None) -> None:
        self.outcomes: dict[str, set[str]] = {}
        self.header = header

    def add(self, report: pytest.TestReport, carried: dict[str, Any]) -> None:
        # A test's outcome is its call's, or a setup that did not pass (a skip mark, a failing fixture).
        if carried.get("model") and (report.when == "call" or report.outcome != "passed"):
            self.outcomes.setdefault(report.nodeid, set()).add(report.outcome)

    def summary(self, terminalreporter: Any) -> None:
        if self.header is not None and self.outcomes:
            for line in self.header():
                terminalreporter.write_line(line)
        ran = [n for n, seen in self.outcomes.items() if seen - {"skipped"}]
        if self.outcomes and not ran:
            terminalreporter.write_sep(
                "!", f"{MARKER_LINE} ({len(self.outcomes)} of them): nothing about the model was checked"
            )


class SetsCompared:
    """The sets this process's tests were compared against, told once each on a test's report (``take``), and
    every process's listed at the end, one line per set: "recorded on transformers 5.24.0, running 5.25.0: same
    major, no variant of its own" reads once, not once per test."""

    def __init__(self, chosen: dict[Any, tuple[str, str]]) -> None:
        self.chosen = chosen  # the session's (set folder, ...) -> (set name, why), filled as extensions are made
        self.told: set[Any] = set()
        self.sets: dict[str, str] = {}

    def take(self) -> list[tuple[str, str]]:
        """The sets chosen since the last report, each as (its folder, why it was chosen)."""
        new = []
        for key, (name, why) in list(self.chosen.items()):
            if key not in self.told:
                self.told.add(key)
                new.append((str(key[0] / SETS_DIRNAME / name), why))
        return new

    def add(self, carried: dict[str, Any]) -> None:
        for where, why in carried.get("sets", ()):
            self.sets.setdefault(str(where), str(why))

    def shown(self, root: Path) -> dict[str, str]:
        """Each set, relative to ``root`` where it lies under it, and why it was chosen; sorted."""
        return {
            os.path.relpath(where, root) if Path(where).is_relative_to(root) else where: why
            for where, why in sorted(self.sets.items())
        }

    def summary(self, terminalreporter: Any) -> None:
        for shown, why in self.shown(Path(terminalreporter.config.invocation_params.dir)).items():
            terminalreporter.write_line(f"lmbehave: compared against {shown}" + (f" ({why})" if why else ""))


class CapabilityRates:
    """Each capability judged under change (``lm.invariance``, ``lm.direction``), carried on its test's report and
    printed at the end with its failure rate and interval, one line per capability and test."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def add(self, report: pytest.TestReport, carried: dict[str, Any]) -> None:
        self.lines += [(report.nodeid, str(line)) for line in carried.get("capabilities", ())]

    def summary(self, terminalreporter: Any) -> None:
        if not self.lines:
            return
        terminalreporter.write_sep("-", "lmbehave: behaviour under change (failure rates, 99 % Clopper-Pearson)")
        for nodeid, line in sorted(self.lines):
            terminalreporter.write_line(f"{line}  [{nodeid.split('::')[-1]}]")
