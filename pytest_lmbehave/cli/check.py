"""`lmbehave check --model MODEL --report out.json`: the document's behaviour specs, as packaged, run against any model
the plugin can load, with a short table of which behaviours hold and a report that `lmbehave diff` reads.

A spec is either a property, which any causal LM must have (greedy is a chain of argmaxes, the nucleus holds, a
batch gives the unbatched results...), or a recorded expectation (a snapshot of what one model said). A model with a
recorded set among the packaged specs (the embedded model) is held to it; any other model has none, so passing means
its properties hold, and its recorded observations go into the report (and a set of its own, in the scratch copy)
as the baseline of its next check. The specs run from a scratch copy: nothing is written into the package or the
user's tree but the report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.engines import ENGINES
from ..config.files import path_problem
from ..config.naming import slug
from .init import init

SETS = "__lm_snapshots__"


@dataclass
class Outcomes:
    """Each test's outcome, and whether it holds the model to a recorded snapshot (``lm_snapshot``)."""

    model: str
    recorded: set[str] = field(default_factory=set)
    outcome: dict[str, str] = field(default_factory=dict)
    reason: dict[str, str] = field(default_factory=dict)

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        """Only the checked model: the specs also run each other model that has a set beside them."""
        other = [item for item in items if _param(item) not in (None, self.model)]
        if other:
            items[:] = [item for item in items if item not in other]
            config.hook.pytest_deselected(items=other)
        self.recorded |= {item.nodeid for item in items if "lm_snapshot" in getattr(item, "fixturenames", ())}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":  # a setup error or skip, or the call's verdict
            if self.outcome.get(report.nodeid) in (None, "passed"):
                self.outcome[report.nodeid] = report.outcome
                if report.outcome != "passed":
                    self.reason[report.nodeid] = _first_line(report)


def _param(item: Any) -> Any:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("lm_model_spec")


def _first_line(report: Any) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and crash.message:
        return str(crash.message).splitlines()[0]
    text = str(getattr(report, "longreprtext", "") or "")
    lines = [line.strip().removeprefix("E").strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith("(at ")), "")


def behaviour(nodeid: str) -> str:
    """A spec file's behaviour, in words: specs/test_few_shot.py -> few shot."""
    return Path(nodeid.split("::")[0]).stem.removeprefix("test_").replace("_", " ")


def table(outcomes: Outcomes, has_set: bool) -> list[str]:
    rows: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for nodeid, outcome in outcomes.outcome.items():
        part = "recorded" if nodeid in outcomes.recorded else "property"
        rows[behaviour(nodeid)][part].append(outcome)
    lines = [f"{'behaviour':<14}{'properties':<22}recorded expectations"]
    for name in sorted(rows):
        found = rows[name]
        props = _count(found["property"], "hold")
        kept = _count(found["recorded"], "match" if has_set else "recorded")
        lines.append(f"{name:<14}{props:<22}{kept}")
    return lines


def _count(outcomes: list[str], verb: str) -> str:
    if not outcomes:
        return "-"
    passed = outcomes.count("passed")
    skipped = outcomes.count("skipped")
    text = f"{passed}/{len(outcomes) - skipped} {verb}"
    return text + (f" ({skipped} skipped)" if skipped else "")


def check(model: str, report: Path, engine: str | None, extra: list[str]) -> int:
    import pytest

    with tempfile.TemporaryDirectory(prefix="lmbehave-check-") as scratch:
        specs = Path(scratch) / "specs"
        init("specs", specs)
        has_set = (specs / SETS / slug(model)).is_dir()
        args = [str(specs), "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist"]
        args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]  # this command imported the plugin already
        args += [f"--lm-model={model}", f"--lm-report={report}", f"--rootdir={scratch}"]
        args += [f"--lm-engine={engine}"] if engine else []
        args += [] if has_set else ["--snapshot-update"]  # its own observations, as the baseline of the next check
        outcomes = Outcomes(model)
        code = pytest.main(args + extra, plugins=[outcomes])
    if not outcomes.outcome:
        print(f"lmbehave check: no spec ran against {model} (pytest exit status {int(code)})", file=sys.stderr)
        return 2
    print(f"\nlmbehave check: the document's behaviours on {model}\n")
    for line in table(outcomes, has_set):
        print(f"  {line}")
    failed = {n: r for n, r in outcomes.reason.items() if outcomes.outcome[n] == "failed"}
    properties_failed = [n for n in failed if n not in outcomes.recorded]
    print()
    if has_set:
        print(
            f"passing means: {model}'s properties hold and it says what its recorded set ({slug(model)}) says, "
            "within the tolerances"
        )
    else:
        print(
            f"passing means: {model} has no recorded set, so its properties were checked (greedy is a chain of "
            "argmaxes, a seeded sample reproduces, every top-p token lies in the nucleus, a batch gives the "
            "unbatched results...), not the embedded model's texts; what it said is in the report"
        )
    for nodeid, reason in sorted(failed.items()):
        print(f"  does not hold: {nodeid.split('::', 1)[-1]}: {reason[:160]}")
    print(
        f"\nreport: {report} (after an upgrade: lmbehave check --model {model} --report new.json, then "
        f"lmbehave diff {report} new.json)"
    )
    return 1 if properties_failed or (has_set and failed) else 0


def run(args: argparse.Namespace) -> int:
    report = Path(args.report)
    problem = path_problem(report)
    if problem is not None:
        print(f"lmbehave check: --report {report}: {problem}; pass a file path such as check.json", file=sys.stderr)
        return 2
    return check(args.model, report.resolve(), args.engine, list(args.pytest_args or []))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="embedded",
        help="the model to check: 'embedded', a local directory, a GGUF file, a cached hub id, or a served URL "
        "(http://host:8000/v1#name)",
    )
    parser.add_argument(
        "--report", default="lmbehave-check.json", help="where to write the report (default lmbehave-check.json)"
    )
    parser.add_argument("--engine", choices=tuple(ENGINES), help="the engine that runs a GGUF")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --, e.g. -- -k generation")
