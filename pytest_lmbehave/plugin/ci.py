"""What CI reads of a run: the summary appended to ``$GITHUB_STEP_SUMMARY`` (a GitHub Actions job summary, shown on
the pull request's checks even where a token may not comment), and each failing spec's verdict line at the head of
its message, which JUnit XML (``--junitxml``) carries to CI dashboards."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from ..config import spec_kinds
from ..config.files import write_atomically
from ..observations.differences import DECODING, FOLLOW_ON, MODEL, TOKENIZER
from ..reports import markdown

CAUSE = re.compile(r"^(?:E\s+)?\s*root cause: (.+)$", re.MULTILINE)
LAYERS = "|".join(re.escape(layer) for layer in (TOKENIZER, MODEL, DECODING, FOLLOW_ON))
DIFFERENCE = re.compile(rf"^(?:E\s+)?\s*- \[({LAYERS})\] (.+)$", re.MULTILINE)


def kind_of(report: pytest.TestReport) -> str:
    return spec_kinds.kind_of(report.keywords)


def verdict(report: pytest.TestReport) -> str:
    """'[behaviour] root cause: the dtype float32 → bfloat16 (...)': the kind of spec and its root cause; where none is
    named, its first difference with the layer it lies in ('[behaviour] [model] probability of ...'); else the first
    line of its failure."""
    kind = f"[{kind_of(report)}]"
    crash = getattr(report.longrepr, "reprcrash", None)
    first = (crash.message if crash is not None else report.longreprtext).strip().splitlines() or ["failed"]
    if first[0].startswith(f"{kind} "):
        return first[0]  # already led by its verdict
    found = CAUSE.search(report.longreprtext)
    if found:
        return f"{kind} root cause: {found.group(1).strip()}"
    difference = DIFFERENCE.search(report.longreprtext)
    if difference:
        return f"{kind} [{difference.group(1)}] {difference.group(2).strip()}"
    return f"{kind} {first[0]}"


def lead_with_verdict(report: pytest.TestReport) -> None:
    """A failing report's message starts with its verdict line (what ``--junitxml`` writes as the failure's message)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if report.failed and crash is not None:
        line = verdict(report)
        if not crash.message.startswith(line):
            crash.message = f"{line}\n{crash.message}"


class JobSummary:
    """The failures of a run, gathered from every process's reports, and the summary written once at its end."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.failures: list[tuple[str, str, str]] = []

    def add(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failures.append((report.nodeid, kind_of(report), verdict(report).split("] ", 1)[-1]))  # kind apart

    def write(
        self,
        terminalreporter: Any,
        sets: dict[str, str],  # each set compared against, as the run's closing lines show it, and why
        near_ties: list[tuple[str, str]],
        rates: list[tuple[str, str]],
    ) -> None:
        """Appends the run's summary to ``$GITHUB_STEP_SUMMARY`` where it is set; a path that cannot be written is
        said, never a crash."""
        target = os.environ.get("GITHUB_STEP_SUMMARY")
        if not (self.enabled and target) or hasattr(terminalreporter.config, "workerinput"):
            return
        stats = terminalreporter.stats
        counts = {
            outcome: len([r for r in stats.get(outcome, []) if getattr(r, "when", "call") in ("call", "setup")])
            for outcome in ("failed", "passed", "skipped", "xfailed", "error")
        }
        text = markdown.run_summary(counts, sets, self.failures, near_ties, rates)
        path = Path(target)
        try:
            old = path.read_bytes() if path.exists() else b""
            write_atomically(path, old + text.encode())
        except OSError as error:
            terminalreporter.write_line(f"lmbehave: the job summary was not written to {target}: {error}")
            return
        terminalreporter.write_line(f"lmbehave: job summary appended to {target} ({len(text.encode()):,} bytes)")
