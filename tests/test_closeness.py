"""assert_close and the noise floor: two scored texts judged by a profile (strict, standard, relaxed), the floor
measured by comparing the reference with itself (`lmbehave diff --save-floor`), and a profile below it refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_lmbehave.cli import main

SCORED = """
from pytest_lmbehave import assert_close

TEXT = "Shakespeare was a great writer, but he was also a great actor."


def test_scored(lm):
    assert lm.score(TEXT).logprobs


def test_close_to_itself(lm):
    assert_close(lm.score(TEXT), lm.score(TEXT), "{profile}")
"""


def run(run_with_tiny, tmp_path: Path, profile: str, *args: str):  # type: ignore[no-untyped-def]
    return run_with_tiny(SCORED.replace("{profile}", profile), *args)


def test_the_reference_against_itself_raises_the_floor_and_says_what_measured_it(  # type: ignore[no-untyped-def]
    run_with_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        run(run_with_tiny, tmp_path, "strict", f"--lm-report={tmp_path / name}.json").assert_outcomes(passed=2)
    floor = tmp_path / "floor.json"
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--save-floor", str(floor)]) == 0
    assert main(["diff", str(tmp_path / "b.json"), str(tmp_path / "a.json"), "--save-floor", str(floor)]) == 0
    saved = json.loads(floor.read_text())
    assert saved["mean_kl"] == 0.0 and saved["p99_kl"] == 0.0 and len(saved["measured_by"]) == 2
    assert "noise floor" in capsys.readouterr().out
    assert list(tmp_path.glob("floor.json*")) == [floor]  # written whole: no staging file left


def test_saving_a_floor_from_reports_without_scores_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = {"format": "pytest-lmbehave report", "version": 1, "environments": {}, "observations": {}}
    (tmp_path / "a.json").write_text(json.dumps(empty))
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--save-floor", str(tmp_path / "f")]) == 2
    assert "neither report holds a scored text" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_a_profile_below_the_measured_floor_is_refused_and_a_looser_one_runs(  # type: ignore[no-untyped-def]
    run_with_tiny, tmp_path: Path
) -> None:
    floor = tmp_path / "floor.json"
    floor.write_text(json.dumps({"mean_kl": 0.003, "p99_kl": 0.02, "measured_by": ["simulated CPUs: 34 positions"]}))
    refused = run(run_with_tiny, tmp_path, "strict", f"--lm-noise-floor={floor}")
    refused.assert_outcomes(passed=1, failed=1)
    refused.stdout.fnmatch_lines(["*profile 'strict'*below this machine's measured noise floor (mean KL 0.003*"])
    run(run_with_tiny, tmp_path, "standard", f"--lm-noise-floor={floor}").assert_outcomes(passed=2)


def test_an_unreadable_floor_is_a_usage_error_naming_how_to_measure_it(  # type: ignore[no-untyped-def]
    run_with_tiny, tmp_path: Path
) -> None:
    (tmp_path / "floor.json").write_text("{not json")
    result = run(run_with_tiny, tmp_path, "strict", f"--lm-noise-floor={tmp_path / 'floor.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--lm-noise-floor*cannot be read*lmbehave diff REFERENCE.json RERUN.json --save-floor*"]
    )


def test_a_real_change_fails_naming_the_profile_its_source_and_its_distance_from_the_floor(  # type: ignore[no-untyped-def]
    tiny_runtime, tmp_path: Path
) -> None:
    from dataclasses import replace

    from pytest_lmbehave import assert_close
    from pytest_lmbehave.observations import closeness

    reference = tiny_runtime.score("Shakespeare was a great writer, but he was also a great actor.")
    # The same ids, each position's candidates flattened towards uniform: a change of the distributions.
    flat = tuple(tuple((token, value / 4) for token, value in best) for best in reference.best)
    changed = replace(reference, best=flat, logprobs=tuple(v / 4 for v in reference.logprobs))
    floor = tmp_path / "floor.json"
    floor.write_text(json.dumps({"mean_kl": 1e-6, "p99_kl": 1e-5, "measured_by": ["rerun"]}))
    closeness.use_floor(floor)  # as --lm-noise-floor does
    try:
        with pytest.raises(AssertionError) as failed:
            assert_close(reference, changed, "relaxed")
    finally:
        closeness.use_floor(None)
    message = str(failed.value)
    assert (
        "not relaxed-close" in message
        and "a real change, not noise" in message
        and "x the measured noise floor" in message
    )
    assert "thresholds: a coarser quantization" in message
