"""assert_close and the noise floor: two scored texts judged by a profile (strict, standard, relaxed), the floor
measured by comparing the reference with itself (`lmbehave diff --save-floor`), and a profile below it refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy
import pytest

from pytest_lmbehave.cli import main
from pytest_lmbehave.observations import closeness

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


def flattened(scores: Any) -> Any:
    """The same ids, each position's distribution flattened towards uniform (its log-probabilities divided by 4 and
    normalised again): a change of the distributions."""
    from dataclasses import replace

    whole = tuple(v / 4 - numpy.logaddexp.reduce(v / 4) for v in (w.astype(numpy.float64) for w in scores.whole))
    flat = tuple(tuple((token, float(w[token])) for token, _ in best) for best, w in zip(scores.best, whole))
    logprobs = tuple(float(w[token]) for w, token in zip(whole, scores.ids[1:]))
    return replace(scores, best=flat, logprobs=logprobs, whole=whole)


def test_in_process_closeness_is_the_full_vocabulary_kl_held_to_a_direct_computation_to_1e_6(  # type: ignore[no-untyped-def]
    tiny_runtime,
) -> None:
    from scipy.special import rel_entr, softmax

    from pytest_lmbehave import assert_close
    from pytest_lmbehave.observations import next_token

    reference = tiny_runtime.score("Shakespeare was a great writer, but he was also a great actor.")
    changed = flattened(reference)
    found = assert_close(reference, changed, closeness.Profile("any", 100.0, 100.0, 0.0, "this test"))
    direct = [
        float(rel_entr(softmax(p.astype(numpy.float64)), softmax(q.astype(numpy.float64))).sum())
        for p, q in zip(reference.whole, changed.whole)
    ]
    assert found["over"] == next_token.EXACT and found["positions"] == len(direct)
    assert abs(found["mean_kl"] - sum(direct) / len(direct)) < 1e-6 and abs(found["max_kl"] - max(direct)) < 1e-6
    # The same two read from their records (the top 10, the rest pooled) say so, and are a lower bound.
    records = [(closeness.record(reference, 10), closeness.record(changed, 10))]
    pooled = closeness.statistics(records)
    assert pooled["over"] == next_token.pooled(10) and pooled["mean_kl"] < found["mean_kl"]


def test_a_servers_scores_are_compared_over_their_top_candidates_and_the_message_says_lower_bound(  # type: ignore[no-untyped-def]
    tiny_runtime,
) -> None:
    from dataclasses import replace

    from pytest_lmbehave import assert_close

    reference = tiny_runtime.score("Shakespeare was a great writer, but he was also a great actor.")
    served = replace(flattened(reference), whole=None)  # as a server reports: its best candidates only
    with pytest.raises(AssertionError) as failed:
        assert_close(reference, served, "strict")
    assert "(over the top 10 candidates, the rest pooled (a lower bound))" in str(failed.value)


def test_a_real_change_fails_naming_the_profile_its_source_and_its_distance_from_the_floor(  # type: ignore[no-untyped-def]
    tiny_runtime, tmp_path: Path
) -> None:
    from pytest_lmbehave import assert_close

    reference = tiny_runtime.score("Shakespeare was a great writer, but he was also a great actor.")
    changed = flattened(reference)
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
