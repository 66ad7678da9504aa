"""--lm-report and `lmbehave diff`: what a run observed, and what drifted between two runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_lmbehave.cli import main
from pytest_lmbehave.reports.drift import Thresholds, compare_records

SOURCE = """
from pytest_lmbehave import sampled

def test_tokens(lm):
    lm.tokenize("hello hello")

def test_next_and_generate(lm):
    lm.next_token("hello hello")
    lm.generate(["hello", "Shakespeare was a"], max_new_tokens=5)

def test_choice(lm):
    lm.choose("Review: good game. Decision:", [" good", " bad"])

@sampled(temperature=1.0)
def test_sampled(lm):
    lm.generate("hello", max_new_tokens=5)
"""


def report(run_with_tiny, path: Path, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    result = run_with_tiny(SOURCE, f"--lm-report={path}", *args)
    result.assert_outcomes(passed=4)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_report_holds_every_observation_by_node_id_with_the_environment(run_with_tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = report(run_with_tiny, tmp_path / "run.json")
    assert document["format"] == "pytest-lmbehave report" and document["version"] == 1
    [environment] = document["environments"].values()
    assert environment["dtype"] == "float32" and environment["threads"] == "1" and "torch" in environment
    kinds = {test.split("::")[-1]: [o["kind"] for o in obs] for test, obs in document["observations"].items()}
    assert kinds == {
        "test_tokens": ["tokenization"],
        "test_next_and_generate": ["next_token", "generation", "generation"],
        "test_choice": ["choice"],
        "test_sampled": ["generation"],
    }
    assert list(tmp_path.iterdir()) == [tmp_path / "run.json"]  # written atomically: no staging file left


def test_the_report_keeps_as_many_candidates_as_asked_and_the_snapshot_depth_stays(  # type: ignore[no-untyped-def]
    run_with_tiny, tmp_path: Path
) -> None:
    source = "def test_read(lm):\n    lm.next_token('hello hello')\n    lm.score('hello hello world hello')\n"
    for top in (10, 40):
        run_with_tiny(source, f"--lm-report={tmp_path / str(top)}.json", f"--lm-report-top={top}").assert_outcomes(
            passed=1
        )
    shallow, deep = (json.loads((tmp_path / f"{top}.json").read_text()) for top in (10, 40))
    [(_, [next_10, scores_10])], [(_, [next_40, scores_40])] = (d["observations"].items() for d in (shallow, deep))
    assert len(next_10["top"]) == 10 and len(next_40["top"]) == 40 and next_40["top"][:10] == next_10["top"]
    assert {len(p) for p in scores_10["top"]} == {10} and {len(p) for p in scores_40["top"]} == {40}
    assert [p[:10] for p in scores_40["top"]] == scores_10["top"]  # the same order: the whole distribution's


def test_workers_parts_merge_into_the_same_report_as_a_serial_run(run_with_tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    serial = report(run_with_tiny, tmp_path / "serial.json", "-p", "no:xdist")
    parallel = report(run_with_tiny, tmp_path / "parallel.json", "-n", "2")
    assert parallel["observations"].keys() == serial["observations"].keys()
    for test, observations in serial["observations"].items():
        assert [(o["kind"], o.get("ids"), o.get("argmax"), o.get("best")) for o in parallel["observations"][test]] == [
            (o["kind"], o.get("ids"), o.get("argmax"), o.get("best")) for o in observations
        ]


def test_identical_reports_show_no_drift_and_exit_0(
    run_with_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    report(run_with_tiny, tmp_path / "a.json")
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "0 changes" in out and "no changes" in out


def test_real_drift_is_found_classified_worst_first_and_exits_1(
    run_with_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import build_tiny_model

    report(run_with_tiny, tmp_path / "old.json")
    other = build_tiny_model(tmp_path / "retrained", seed=7)
    report(run_with_tiny, tmp_path / "new.json", f"--lm-model={other}")
    # The two runs name their models differently; compare them as one model's before and after.
    new = json.loads((tmp_path / "new.json").read_text())
    old = json.loads((tmp_path / "old.json").read_text())
    new["environments"] = {next(iter(old["environments"])): next(iter(new["environments"].values()))}
    (tmp_path / "new.json").write_text(json.dumps(new))
    capsys.readouterr()  # drop the inner runs' output
    code = main(
        ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--html", str(tmp_path / "drift.html")]
    )
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    # Other weights behind the same tokenizer: the weights are the root cause, with both hashes.
    assert lines[2] == "root causes:" and lines[3].startswith("  the weights changed (sha256 ")
    assert ", same tokenizer): " in lines[3]
    assert any(line.startswith("severity  kind") for line in lines)
    assert out.index("[major]") < out.index("[minor]") if "[minor]" in out else "[major]" in out
    assert "first diverging token 0" in out and "top-1 flip" in out
    assert "model_sha256" in out and "<- differs" in out
    page = (tmp_path / "drift.html").read_text()
    assert "<svg" in page and "<script" not in page and "http" not in page.replace("<!doctype html>", "")


def test_a_flip_on_a_small_margin_is_a_near_tie_and_on_a_large_one_is_major() -> None:
    old = {
        "kind": "choice",
        "prompt": "p",
        "options": [" good", " bad"],
        "best": " good",
        "scores": [-1.0, -1.002],
        "margin": 0.002,
    }
    new = dict(old, best=" bad", scores=[-1.002, -1.0], margin=0.002)
    [flip] = compare_records("t", 0, old, new, Thresholds())
    assert (flip.kind, flip.severity) == ("label", "near-tie")
    far = dict(old, margin=1.5)
    assert compare_records("t", 0, far, dict(new, margin=1.5), Thresholds())[0].severity == "major"
    assert compare_records("t", 0, old, new, Thresholds(near_tie=0.001))[0].severity == "major"


def test_probability_changes_report_the_largest_delta_and_the_kl_divergence() -> None:
    old = {"kind": "next_token", "prompt": "p", "argmax": " a", "margin": 1.0, "top": [[" a", 1, 0.6], [" b", 2, 0.2]]}
    new = dict(old, top=[[" a", 1, 0.5], [" b", 2, 0.3]])
    [change] = compare_records("t", 0, old, new, Thresholds())
    assert change.kind == "probabilities" and "probability of ' a' (1): 0.6 -> 0.5" in change.summary
    assert change.details["kl"] > 0.01 and f"KL {change.details['kl']:.4f} nats" in change.summary
    assert compare_records("t", 0, old, old, Thresholds()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such report; write one with `pytest specs/ --lm-report"),
        ('{"format": "pytest-lmbehave report", "version": 1, "observ', "is not valid JSON"),
        ('{"tests": []}', "is not a pytest-lmbehave report"),
        ('{"format": "pytest-lmbehave report", "version": 99, "observations": {}}', "is a version 99 report"),
    ],
    ids=["missing", "truncated", "foreign", "future"],
)
def test_unusable_input_gives_a_clear_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = tmp_path / "good.json"
    good.write_text('{"format": "pytest-lmbehave report", "version": 1, "environments": {}, "observations": {}}')
    assert main(["diff", str(good), str(bad)]) == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"format": "pytest-lmbehave report", "version": 1, "environments": {}, "observations": {}}')
    done = subprocess.run(
        [sys.executable, "-m", "pytest_lmbehave", "diff", str(good), str(good)], capture_output=True, text=True
    )
    assert done.returncode == 0 and "0 observations compared" in done.stdout


def test_a_sampled_path_that_moves_is_minor_and_questions_about_changed_text_are_not_compared() -> None:
    from pytest_lmbehave.reports.drift import compare_reports

    def generation(ids: list[int], sampling: str = "greedy") -> dict:  # type: ignore[type-arg]
        return {
            "kind": "generation",
            "prompt": "p",
            "sampling": sampling,
            "text": "".join(map(str, ids)),
            "ids": ids,
            "margins": [2.0] * len(ids),
        }

    def asked(prompt: str) -> dict:  # type: ignore[type-arg]
        return {"kind": "next_token", "prompt": prompt, "argmax": " a", "margin": 1.0, "top": [[" a", 1, 0.5]]}

    old = {
        "observations": {
            "t::greedy": [generation([1, 2]), asked("p12")],
            "t::sampled": [generation([1, 2], "sampled(temperature=1.0)")],
        }
    }
    new = {
        "observations": {
            "t::greedy": [generation([1, 3]), asked("p13")],
            "t::sampled": [generation([1, 3], "sampled(temperature=1.0)")],
        }
    }
    changes, compared = compare_reports(old, new, Thresholds())
    assert compared == 2
    assert sorted((c.test, c.kind, c.severity) for c in changes) == [
        ("t::greedy", "follow-on", "minor"),
        ("t::greedy", "generation", "major"),
        ("t::sampled", "generation", "minor"),
    ]


def test_the_noise_floor_leaves_out_a_chat_answers_margins_as_it_does_a_generations() -> None:
    """A step's margin is recorded to 3 decimals, so two CPUs whose numbers differ by 1e-5 can record 1.508 and
    1.509 (measured: the sampled chat spec under ATEN_CPU_CAPABILITY=default on an AVX2 machine). That one rounding
    step is not a move of the numbers; a 0.0001 change of a 6-decimal log-probability is."""
    from pytest_lmbehave.reports.drift import largest_move

    def report(margin: float, logprob: float) -> dict[str, object]:
        answer = {"text": " Paris", "ids": [60, 23], "margins": [0.082, margin], "logprobs": [-0.5, logprob]}
        chat = {"kind": "chat", "messages": [["user", "Capital of France?"]], "template": "<q>", **answer}
        return {"observations": {"specs/test_chat.py::t": [chat, {**answer, "kind": "generation", "prompt": "p"}]}}

    assert largest_move(report(1.508, -1.25), report(1.509, -1.25)) == (0.0, "")
    size, where = largest_move(report(1.508, -1.25), report(1.509, -1.2501))
    assert size == pytest.approx(1e-4) and where == "specs/test_chat.py::t #0 logprobs[1]"
