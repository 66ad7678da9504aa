"""`lmbehave check --model MODEL --report out.json`: the document's specs, as packaged, run against any model the
plugin can load, read in their three kinds (``config/spec_kinds.py``):

- **invariants**, which every correct stack holds whatever its weights: a failure is a bug in the stack;
- **facts** of the document's tokenizer or model, run where they apply (SmolLM2's tokenizer, the model's own set)
  and otherwise counted in one line as not run;
- **behaviours**, held to the model's own recorded set where it has one (the embedded model), else measured as a
  profile whose report is the baseline of the next check (``--baseline OLD.json`` holds this run to it).

It exits 1 on any error, a failed invariant or fact, a failed recorded expectation of the model's own set, or a
behaviour that moved against ``--baseline``; 2 when nothing ran or an argument is wrong; else 0. The specs run from a
scratch copy: nothing is written into the package or the user's tree but the report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import spec_kinds
from ..config.engines import ENGINES
from ..config.files import path_problem
from ..config.naming import slug
from .init import init

SETS = "__lm_snapshots__"


@dataclass
class Outcomes:
    """Each test's outcome and kind, and whether it holds the model to a recorded snapshot (``lm_snapshot``)."""

    model: str
    recorded: set[str] = field(default_factory=set)
    outcome: dict[str, str] = field(default_factory=dict)  # passed, failed, error, skipped or profile
    kind: dict[str, str] = field(default_factory=dict)
    reason: dict[str, str] = field(default_factory=dict)
    rates: list[str] = field(default_factory=list)  # each capability under change, with its interval

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        """Only the checked model: the specs also run each other model that has a set beside them."""
        other = [item for item in items if _param(item) not in (None, self.model)]
        if other:
            items[:] = [item for item in items if item not in other]
            config.hook.pytest_deselected(items=other)
        self.recorded |= {item.nodeid for item in items if "lm_snapshot" in getattr(item, "fixturenames", ())}

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.rates += [str(line) for line in (getattr(report, "lmbehave", None) or {}).get("capabilities", ())]
        if report.when == "call" or report.outcome != "passed":  # a setup error or skip, or the call's verdict
            if self.outcome.get(report.nodeid) in (None, "passed"):
                self.kind[report.nodeid] = spec_kinds.kind_of(report.keywords)
                outcome = report.outcome
                if report.failed and report.when != "call":
                    outcome = "error"
                elif getattr(report, "wasxfail", ""):
                    outcome = "profile"
                self.outcome[report.nodeid] = outcome
                if outcome != "passed":
                    self.reason[report.nodeid] = getattr(report, "wasxfail", "") or _first_line(report)

    def of(self, kind: str) -> dict[str, str]:
        return {n: o for n, o in self.outcome.items() if self.kind.get(n) == kind}

    @property
    def wrong(self) -> dict[str, str]:
        """The tests that failed or erred: a failed invariant or fact, a failed expectation of the model's own set
        (a behaviour a model without a set does not show is a profile, not a failure), or any error."""
        return {n: o for n, o in self.outcome.items() if o in ("failed", "error")}

    def status(self, code: int) -> int:
        """1 when anything went wrong (or pytest itself ended otherwise than passing or failing tests), else 0."""
        return 1 if self.wrong or code not in (0, 1) else 0


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
    """The check in its three kinds: invariants held, facts run or not (one line), the behaviours' profile."""
    lines = [f"invariants    {_count(list(outcomes.of(spec_kinds.INVARIANT).values()), 'hold')}"]
    facts = outcomes.of(spec_kinds.FACT)
    ran = [o for o in facts.values() if o != "skipped"]
    unrun = sorted({outcomes.reason[n] for n, o in facts.items() if o == "skipped"})
    lines.append(f"facts         {_count(ran, 'hold') if ran else 'none run'}")
    lines += [f"              {sum(outcomes.reason.get(n) == r for n in facts)} {r}" for r in unrun]
    rows: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for nodeid, outcome in outcomes.of(spec_kinds.BEHAVIOUR).items():
        rows[behaviour(nodeid)]["recorded" if nodeid in outcomes.recorded else "held"].append(outcome)
    lines.append(f"behaviours    {'shown':<22}recorded expectations")
    for name in sorted(rows):
        found = rows[name]
        shown = _count(found["held"], "shown")
        kept = _count(found["recorded"], "match" if has_set else "recorded")
        lines.append(f"  {name:<12}{shown:<22}{kept}")
    return lines


def _count(outcomes: list[str], verb: str) -> str:
    if not outcomes:
        return "-"
    passed = outcomes.count("passed")
    skipped = outcomes.count("skipped")
    text = f"{passed}/{len(outcomes) - skipped} {verb}"
    return text + (f" ({skipped} skipped)" if skipped else "")


def check(model: str, report: Path, engine: str | None, extra: list[str], baseline: Path | None = None) -> int:
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
    print(f"\nlmbehave check: the document's specs on {model}\n")
    for line in table(outcomes, has_set):
        print(f"  {line}")
    if outcomes.rates:
        print("  under change (failure rates, 99 % Clopper-Pearson):")
        print("\n".join(f"    {line}" for line in sorted(outcomes.rates)))
    print()
    if has_set:
        print(f"behaviours are held to {model}'s own recorded set ({slug(model)}), within the tolerances")
    else:
        print(
            f"{model} has no recorded set: its behaviours are a profile (what it shows, in the report), held to "
            "nothing but --baseline; the invariants hold for any correct stack"
        )
    wrong = outcomes.wrong
    for nodeid, outcome in sorted(wrong.items()):
        what = "error in" if outcome == "error" else f"{outcomes.kind[nodeid]} does not hold:"
        print(f"  {what} {nodeid.split('::', 1)[-1]}: {outcomes.reason.get(nodeid, '')[:160]}")
    for nodeid, reason in sorted((n, r) for n, r in outcomes.reason.items() if outcomes.outcome[n] == "profile"):
        print(f"  not shown: {nodeid.split('::', 1)[-1]}: {reason.removeprefix(spec_kinds.PROFILE).strip()[:140]}")
    print(
        f"\nreport: {report} (after an upgrade: lmbehave check --model {model} --report new.json --baseline {report})"
    )
    status = outcomes.status(int(code))
    if baseline is not None:
        import subprocess

        print(f"\nagainst the baseline {baseline}:", flush=True)
        diff = [sys.executable, "-m", "pytest_lmbehave", "diff", str(baseline), str(report), "--limit", "10"]
        moved = subprocess.run(diff, check=False).returncode
        if moved:
            print(f"lmbehave check: behaviours moved against {baseline} (lmbehave diff exit {moved})")
            status = status or moved
    return status


def run(args: argparse.Namespace) -> int:
    report = Path(args.report)
    problem = path_problem(report)
    if problem is not None:
        print(f"lmbehave check: --report {report}: {problem}; pass a file path such as check.json", file=sys.stderr)
        return 2
    baseline = Path(args.baseline).resolve() if args.baseline else None
    if baseline is not None and not baseline.is_file():
        print(
            f"lmbehave check: --baseline {args.baseline}: no such report; pass an earlier check's report",
            file=sys.stderr,
        )
        return 2
    return check(args.model, report.resolve(), args.engine, list(args.pytest_args or []), baseline)


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
    parser.add_argument(
        "--baseline",
        metavar="OLD.json",
        help="an earlier report of this model: exit 1 when a behaviour moved against it (as lmbehave diff judges)",
    )
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --, e.g. -- -k generation")
