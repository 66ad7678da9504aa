"""Every code block of the documentation and the README runs as a test, with Sybil.

- A ``python`` block whose first line names a file (``# test_first.py``) is written into the document's own scratch
  folder. A spec file (``test_*.py``) that no ``console`` block after it runs is run there with pytest, against the
  embedded model, and must pass.
- A ``console`` block is a session: each ``$ command`` runs in that folder (``pytest`` and ``lmbehave`` are this
  environment's), and its output must match the lines shown. Times, ``=`` rules and the scratch folder's path are
  normalised; ``...`` alone on a line stands for any lines, ``…`` inside a line for any text. ``# exits N`` after a
  command expects that exit status (0 otherwise).
- Any other ``python`` block runs in the document's namespace.
- ``<!-- skip: next "reason" -->`` skips the next block, with the reason; ``<!-- skip: next if(ENGINE !=
  "llama.cpp", reason="...") -->`` runs it only where ``LMBEHAVE_DOCS_ENGINE`` names that engine (``make llamacpp``).

``bash`` blocks are instructions to copy (installs, make targets), not run. Each run ends with a line counting the
blocks in each state.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

FILE = re.compile(r"\A# ([\w./-]+\.py)\n")
EXITS = re.compile(r"\s+# exits (\d+)\s*$")
# pytest's closing time, with the "(0:01:26)" it adds past a minute
TIME = re.compile(r"\bin \d+(?:\.\d+)?s\b(?: \(\d+:\d\d:\d\d\))?")
RULE = re.compile(r"([=\-])\1{2,}")
STATES = {
    "spec": "spec files run",
    "console": "console sessions checked",
    "python": "python blocks run",
    "file": "files written",
}
TIMEOUT_S = 600
SERIAL = pytest.StashKey[bool]()
DOCS = Path(__file__).resolve().parent.parent


class Blocks:
    """The parser of ``python`` and ``console`` blocks."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(language=r".+", mapping={"language": "arguments", "source": "source"})
        self.python = PythonEvaluator()

    def __call__(self, document: Document) -> Iterable[Region]:
        regions = [r for r in self.lexer(document) if r.lexemes["arguments"] in ("python", "console")]
        for index, region in enumerate(regions):
            source = str(region.lexemes["source"])
            language = region.lexemes["arguments"]
            region.parsed = region.lexemes["source"]
            if language == "console":
                region.evaluator = run_console
                region.state = "console"  # type: ignore[attr-defined]
            elif FILE.match(source):
                name = FILE.match(source).group(1)  # type: ignore[union-attr]
                later = regions[index + 1 :]
                run_later = any(r.lexemes["arguments"] == "console" and name in str(r.lexemes["source"]) for r in later)
                is_spec = Path(name).name.startswith("test_") and not run_later
                region.evaluator = run_spec if is_spec else write_file
                region.state = "spec" if is_spec else "file"  # type: ignore[attr-defined]
            else:
                region.evaluator = self.python
                region.state = "python"  # type: ignore[attr-defined]
            yield region


def setup(namespace: dict[str, Any]) -> None:
    namespace["workdir"] = Path(tempfile.mkdtemp(prefix="lmbehave-docs-"))
    namespace["ENGINE"] = os.environ.get("LMBEHAVE_DOCS_ENGINE", "transformers")


def teardown(namespace: dict[str, Any]) -> None:
    shutil.rmtree(namespace["workdir"], ignore_errors=True)


def write_file(example: Example) -> None:
    source = str(example.parsed)
    name = FILE.match(source).group(1)  # type: ignore[union-attr]
    path = example.namespace["workdir"] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


def run_spec(example: Example) -> str | None:
    """Runs the specs of the file; one that records a snapshot runs twice: recorded, then held to the record."""
    write_file(example)
    source = str(example.parsed)
    name = FILE.match(source).group(1)  # type: ignore[union-attr]
    runs = [["--snapshot-update"], []] if "lm_snapshot" in source else [[]]
    for extra in runs:
        status, output = run(["pytest", name, "-q", "-p", "no:randomly", *extra], example.namespace["workdir"])
        if status != 0:
            return f"the specs of {name} did not pass (pytest {' '.join([name, *extra])}: exit {status}):\n{output}"
    return None


def run_console(example: Example) -> str | None:
    workdir: Path = example.namespace["workdir"]
    for command, expected_status, shown in sessions(str(example.parsed)):
        status, output = run(shlex.split(command), workdir)
        output = output.replace(str(workdir) + "/", "").replace(str(workdir), ".")
        problem = compare(shown, output)
        if status != expected_status:
            problem = f"exited {status}, the docs say {expected_status}" + (f"; {problem}" if problem else "")
        if problem:
            return f"$ {command}\n{problem}\n--- its output:\n{output}"
    return None


def sessions(text: str) -> list[tuple[str, int, list[str]]]:
    """Each ``$ command`` of a console block, the exit status it expects, and the lines shown after it."""
    found: list[tuple[str, int, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            command = line[2:]
            status = EXITS.search(command)
            found.append((EXITS.sub("", command), int(status.group(1)) if status else 0, []))
        elif found:
            found[-1][2].append(line)
        elif line.strip():
            raise ValueError(f"a console block must start with '$ command', not {line!r}")
    return found


def run(argv: list[str], workdir: Path) -> tuple[int, str]:
    """One command in ``workdir``, with this environment's pytest and lmbehave, as a newcomer's shell runs it."""
    program = {"pytest": [sys.executable, "-m", "pytest"], "lmbehave": [sys.executable, "-m", "pytest_lmbehave"]}
    if argv[0] not in program:
        raise ValueError(f"the docs run only pytest and lmbehave, not {argv[0]!r}")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "LMBEHAVE_MODEL", "LMBEHAVE_ENGINE", "LMBEHAVE_SERVER", "LMBEHAVE_EXPECT"))
    }
    env.update(COLUMNS="80", NO_COLOR="1")
    done = subprocess.run(
        program[argv[0]] + argv[1:],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr


def normalise(line: str) -> str:
    return RULE.sub(r"\1\1\1", TIME.sub("in 0.00s", line.rstrip()))


def compare(shown: list[str], output: str) -> str | None:
    """None when the output matches the lines shown; else what differs."""
    while shown and not shown[-1].strip():
        shown = shown[:-1]
    pattern = ""
    for line in shown:
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += ".*".join(re.escape(part) for part in normalise(line).split("…")) + r"\n"
    actual = "".join(normalise(line) + "\n" for line in output.splitlines())
    if re.fullmatch(pattern, actual):
        return None
    for number, line in enumerate(shown):  # the first shown line not found, to say where it departs
        if line.strip() != "..." and not re.search(
            "^" + ".*".join(re.escape(p) for p in normalise(line).split("…")) + "$", actual, re.MULTILINE
        ):
            return f"the output lacks line {number + 1} shown: {line!r}"
    return "the output has the lines shown, but not in that order or with other lines between them"


def collector(root: Path) -> Any:
    """The pytest hook that collects README.md (the root's only) and every page under docs/."""

    def one(path: Path, patterns: list[str], excludes: list[str]) -> Sybil:
        return Sybil(
            parsers=[Blocks(), SkipParser()],
            patterns=patterns,
            excludes=excludes,
            path=str(path),
            setup=setup,
            teardown=teardown,
        )

    return (one(root, ["README.md"], ["*/*"]) + one(root / "docs", ["*.md"], ["examples/*", "_*/*"])).pytest()


class Tally:
    """The blocks in each state, counted on the process that reports (the xdist controller, or the only one)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def mark(self, item: pytest.Item) -> None:
        region = getattr(getattr(item, "example", None), "region", None)
        if hasattr(region, "state"):  # a code block (a skip directive is an example of its own, not counted)
            item.user_properties.append(("docs block", region.state))

    def add(self, report: pytest.TestReport) -> None:
        state = dict(report.user_properties).get("docs block")
        if state is None or (report.when != "call" and not report.skipped):
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.counts[f"skipped ({reason.removeprefix('Skipped: ')})"] += 1
        elif report.failed:
            self.counts[f"failed ({STATES.get(state, state)})"] += 1
        else:
            self.counts[STATES.get(state, state)] += 1

    def line(self) -> str | None:
        if not self.counts:
            return None
        total = sum(self.counts.values())
        parts = ", ".join(f"{count} {state}" for state, count in sorted(self.counts.items()))
        return f"docs: {total} code blocks: {parts}"


TALLY = Tally()


def pytest_runtest_setup(item: pytest.Item) -> None:
    TALLY.mark(item)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    TALLY.add(report)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A page's blocks run in order in one folder, so a run of README.md or docs/ runs in one process: under ``-n``
    it says so and turns xdist off (before xdist starts its workers)."""
    paths = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    docs = any(path.name == "README.md" or DOCS in (path, *path.parents) for path in paths)
    if docs and getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        config.option.numprocesses = 0
        config.option.dist = "no"
        config.stash[SERIAL] = True


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.stash.get(SERIAL, False):
        return "docs: the code blocks run in order, a page in one process: xdist is off for this run"
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    line = TALLY.line()
    if line:
        terminalreporter.write_line(line)
