"""`lmbehave check`: the packaged specs against any model, a table of which behaviours hold, and a report that
`lmbehave diff` reads. The tests' tiny random model has no recorded set, so passing means its properties: its own
tokenizer is not SmolLM2's, so the document's tokenizer facts are not run, and its context of 64 tokens cannot take
the few-shot prompts, an error the check reports as it exits 1. (The converted embedded model, copied into a folder of its own, is
checked in `make user-path`, from the wheel: every behaviour holds, and its report diffs against the embedded
model's with no change.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.config.settings import default_cache_dir
from pytest_lmbehave.reports.report_format import load_report


def lmbehave(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMBEHAVE_CACHE": str(default_cache_dir())}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    command = [sys.executable, "-m", "pytest_lmbehave", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_a_model_without_a_set_is_read_in_the_three_kinds_and_its_observations_go_to_the_report(
    tiny_model: Path, tmp_path: Path
) -> None:
    done = lmbehave("check", "--model", str(tiny_model), "--report", "tiny.json", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    assert f"lmbehave check: the document's specs on {tiny_model}" in out
    assert "  invariants    " in out and "behaviours    shown" in out and "recorded expectations" in out
    # The document's ids are SmolLM2's, not its tokenizer's: facts, not run, said once with the reason.
    assert "12 not run: a fact of the document's tokenizer (SmolLM2's), and this model's tokenizer is another" in out
    assert "has no recorded set: its behaviours are a profile" in out
    # Its context of 64 tokens cannot take the few-shot prompts: an error of the run, so the check exits 1.
    assert "test_the_few_shot_decisions_for_all_six_reviews[" in out and "InputError: the prompt has" in out
    report = load_report(tmp_path / "tiny.json")
    assert any("test_zero_shot.py" in test for test in report["observations"])
    assert not list(tmp_path.glob("specs")) and not list(tmp_path.glob("__lm_snapshots__"))  # only the report
    again = lmbehave("diff", "tiny.json", "tiny.json", cwd=tmp_path)
    assert again.returncode == 0 and "0 changes" in again.stdout


def test_a_model_that_fails_to_load_exits_non_zero(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "vocab_size": "many"}')
    done = lmbehave("check", "--model", str(broken), "--report", "broken.json", cwd=tmp_path)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "could not be loaded" in done.stdout + done.stderr


def test_a_behaviour_moved_against_the_baseline_exits_1_and_an_unmoved_one_0(matrix: Any, tmp_path: Path) -> None:
    model = str(matrix("llama"))
    first = lmbehave("check", "--model", model, "--report", "old.json", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    same = lmbehave("check", "--model", model, "--report", "new.json", "--baseline", "old.json", cwd=tmp_path)
    assert same.returncode == 0 and "0 changes" in same.stdout, same.stdout[-3000:]
    report = json.loads((tmp_path / "old.json").read_text())
    kinds = report["kinds"]  # each test's kind of spec, in the report as in the table
    assert kinds["specs/test_invariants.py::test_every_correct_stack_holds_the_invariant[logits-shape]"] == "invariant"
    assert kinds["specs/test_tokenization.py::test_shakespeare_splits_into_sh_and_akespeare"] == "fact"
    assert "behaviour" in kinds.values()
    test = next(t for t in report["observations"] if "test_greedy_generation_of_50_tokens" in t)
    record = report["observations"][test][0]
    record["ids"] = [record["ids"][1], *record["ids"][1:]]  # the baseline's first greedy token, changed by hand
    record["text"] = "tampered" + record["text"]
    (tmp_path / "old.json").write_text(json.dumps(report))
    moved = lmbehave("check", "--model", model, "--report", "new.json", "--baseline", "old.json", cwd=tmp_path)
    assert moved.returncode == 1, moved.stdout[-3000:]
    assert "behaviours moved against " in moved.stdout and "old.json (lmbehave diff exit 1)" in moved.stdout


def test_a_report_path_that_cannot_be_written_is_refused_before_any_spec_runs(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    done = lmbehave("check", "--report", "taken", cwd=tmp_path)
    assert done.returncode == 2 and "--report taken:" in done.stderr and "pass a file path" in done.stderr
    assert "passed" not in done.stdout


def test_check_and_its_options_show_in_the_commands_help() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_lmbehave", "--help"], capture_output=True, text=True)
    assert "check" in done.stdout
    done = subprocess.run([sys.executable, "-m", "pytest_lmbehave", "check", "--help"], capture_output=True, text=True)
    assert "--model" in done.stdout and "--report" in done.stdout and "served URL" in done.stdout


@pytest.mark.parametrize(
    ("kind", "outcome", "code", "status"),
    [
        ("invariant", "failed", 1, 1),  # a failed invariant: a bug in the stack
        ("fact", "failed", 1, 1),  # a fact that ran (the document's tokenizer or model) and failed
        ("behaviour", "failed", 1, 1),  # a recorded expectation of the model's own set that failed
        ("behaviour", "error", 1, 1),  # a setup error: the model did not load
        ("behaviour", "profile", 0, 0),  # a behaviour a model without a set does not show: its profile
        ("fact", "skipped", 0, 0),  # a fact that does not apply here
        ("invariant", "passed", 2, 1),  # pytest interrupted: the run did not finish
        ("invariant", "passed", 0, 0),
    ],
)
def test_the_exit_status_says_whether_anything_went_wrong(kind: str, outcome: str, code: int, status: int) -> None:
    from pytest_lmbehave.cli.check import Outcomes

    outcomes = Outcomes("model", outcome={"specs/test_x.py::test_x": outcome}, kind={"specs/test_x.py::test_x": kind})
    assert outcomes.status(code) == status
