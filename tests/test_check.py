"""`lmbehave check`: the packaged specs against any model, a table of which behaviours hold, and a report that
`lmbehave diff` reads. The tests' tiny random model has no recorded set, so passing means its properties: its own
tokenizer does not give the document's ids, and its context of 64 tokens cannot take the few-shot prompts, so those
do not hold, and the check says so and exits 1. (The converted embedded model, copied into a folder of its own, is
checked in `make user-path`, from the wheel: every behaviour holds, and its report diffs against the embedded
model's with no change.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_lmbehave.config.settings import default_cache_dir
from pytest_lmbehave.reports.report_format import load_report


def lmbehave(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMBEHAVE_CACHE": str(default_cache_dir())}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    command = [sys.executable, "-m", "pytest_lmbehave", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_a_model_without_a_set_is_held_to_the_properties_and_its_observations_go_to_the_report(
    tiny_model: Path, tmp_path: Path
) -> None:
    done = lmbehave("check", "--model", str(tiny_model), "--report", "tiny.json", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    assert f"lmbehave check: the document's behaviours on {tiny_model}" in out
    assert "behaviour     properties" in out and "recorded expectations" in out
    assert "sampling      12/12 hold" in out  # properties any causal LM has: the tiny one too
    assert "zero shot     -                     " in out and "7 recorded" in out  # recorded, not judged: no set
    assert "has no recorded set, so its properties were checked" in out
    # The document's ids are SmolLM2's, not its tokenizer's; the few-shot prompts are longer than its context.
    assert "does not hold: test_the_document_tokenization_is_reproduced['hello hello']: assert [" in out
    assert "does not hold: test_each_few_shot_answer_is_exactly_one_of_the_labels: InputError: the prompt has" in out
    report = load_report(tmp_path / "tiny.json")
    assert any("test_zero_shot.py" in test for test in report["observations"])
    assert not list(tmp_path.glob("specs")) and not list(tmp_path.glob("__lm_snapshots__"))  # only the report
    again = lmbehave("diff", "tiny.json", "tiny.json", cwd=tmp_path)
    assert again.returncode == 0 and "0 changes" in again.stdout


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
