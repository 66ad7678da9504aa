"""Each kind of observation is one unit registered in one table (``observations.KINDS``): its class, record,
comparison, drift line and explanation. The snapshot extension, `lmbehave diff` and the assertions reach a kind only
through the table, so a kind registered there is recorded, compared and explained everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pytest_lmbehave.observations import KINDS, Kind, kind_of
from pytest_lmbehave.observations.differences import SCORE, Compared, Tolerances, moved
from pytest_lmbehave.observations.records import to_record
from pytest_lmbehave.observations.verdict import compare
from pytest_lmbehave.reports.drift import Thresholds, compare_records


@dataclass(frozen=True)
class Scores:
    """A made-up kind: a text's total log-probability."""

    text: str
    total: float


def record(observation: Scores, top: int) -> dict[str, Any]:
    return {"kind": "scores", "text": observation.text, "total": round(observation.total, 4)}


def compare_scores(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    a, b = old["total"], new.get("total", 0.0)
    return ([moved(SCORE, "total", a, b, tolerances.score)] if abs(a - b) > tolerances.score else []), {"total"}


def explain(observation: Scores, expected: Any, k: int) -> list[str] | None:
    return [f"total of {observation.text!r}: {observation.total}, expected {expected}"]


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Kind:
    kind = Kind("scores", Scores, record, compare_scores, explain)
    monkeypatch.setitem(KINDS, "scores", kind)
    return kind


def test_every_built_in_kind_is_registered_with_its_whole_unit() -> None:
    assert set(KINDS) == {"tokenization", "next_token", "generation", "chat", "choice", "scores", "draws", "capability"}
    for name, kind in KINDS.items():
        assert kind.name == name and callable(kind.record) and callable(kind.compare) and callable(kind.explain)
    assert KINDS["next_token"].drift is not None  # its drift line carries the KL divergence of the top rows
    assert KINDS["scores"].summary is not None  # two reports' scores give distribution statistics
    assert KINDS["capability"].summary is not None  # two reports' capability rates side by side
    assert KINDS["draws"].summary is not None  # two runs' draws side by side, as distributions


def test_a_kind_registered_in_the_table_is_recorded_compared_explained_and_drifts(registered: Kind) -> None:
    from pytest_lmbehave.api.assertions import explain as explained

    old, new = Scores("hello", -3.0), Scores("hello", -3.5)
    assert kind_of(new) is registered
    assert to_record(old) == {"kind": "scores", "text": "hello", "total": -3.0}
    [difference] = compare(to_record(old), to_record(new), Tolerances())
    assert difference.kind == SCORE and difference.old == -3.0 and difference.new == -3.5
    assert [c.kind for c in compare_records("t", 0, to_record(old), to_record(new), Thresholds())] == ["scores"]
    assert explained(new, -3.0) == ["total of 'hello': -3.5, expected -3.0"]


def test_an_object_of_no_registered_kind_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="not dict"):
        to_record({"kind": "next_token"})


def test_a_teacher_forced_pass_is_computed_once_per_request(tiny_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request identity for teacher forcing too: a failing generation's localisation and lm.steps() each read
    their pass once, however often they are asked."""
    from pytest_lmbehave.runtime.runtime import Runtime

    runtime = Runtime(tiny_backend)
    generation = runtime.generate(["hello hello"], 6, None, None)[0]
    calls: list[bool] = []
    real = tiny_backend.forced_logprobs

    def counted(rows: Any, generated: bool = False) -> Any:
        calls.append(generated)
        return real(rows, generated)

    monkeypatch.setattr(tiny_backend, "forced_logprobs", counted)
    for _ in range(3):
        runtime.teacher_force(list(generation.prompt_ids), generation.ids)
        runtime.steps(generation)
    assert sorted(calls) == [False, True]


def test_a_scored_text_is_recorded_compared_and_summed_up_as_distributions(tiny_runtime: Any) -> None:
    """lm.score: one teacher-forced pass gives each token's log-probability given the ones before it; two runs'
    records of the same ids give KL statistics (mean, median, p99, max, same top, RMS Δp) as llama.cpp's tool."""
    import copy

    from pytest_lmbehave.observations import scores

    scored = tiny_runtime.score("hello hello world, the model predicts")
    assert len(scored.logprobs) == len(scored.ids) - 1 and scored.total < 0
    for i in (1, len(scored.ids) - 1):
        [after] = tiny_runtime.next_tokens([list(scored.ids[:i])])
        assert after.logprob(scored.ids[i]) == pytest.approx(scored.logprobs[i - 1], abs=2e-4)
    old = to_record(scored)
    assert compare(old, copy.deepcopy(old), Tolerances(kl=1e-6)) == []
    same = scores.statistics([(old, old)])
    assert same["mean_kl"] == pytest.approx(0.0, abs=1e-9) and same["same_top"] == 1.0 and same["rms_dp"] == 0.0
    new = copy.deepcopy(old)
    new["logprobs"][2] -= 0.5
    (first, p_first), (second, p_second), *rest = new["top"][3]
    new["top"][3] = [[second, p_first], [first, p_second], *rest]  # the runner-up now leads, by the leader's p
    kinds = {d.kind for d in compare(old, new, Tolerances(kl=0.0))}
    assert kinds == {SCORE, "top-1 flip", "distribution"}
    moved_ = scores.statistics([(old, new)])
    assert moved_["max_kl"] > 0 and moved_["same_top"] < 1 and moved_["rms_dp"] > 0
    assert moved_["worst"][0]["token"] == 4
    [line, *_] = scores.summary([(old, new)])
    assert line.startswith(f"distributions over {len(scored.logprobs)} scored position(s) of the same ids")


def test_scoring_a_single_token_is_refused_with_the_reason(tiny_runtime: Any) -> None:
    from pytest_lmbehave.config.errors import InputError

    with pytest.raises(InputError, match="scoring needs at least two"):
        tiny_runtime.score([5])


def test_diff_only_takes_every_kind_of_the_table_with_generation_split_by_its_modes() -> None:
    from pytest_lmbehave.observations import selectable, selected_as

    assert selectable() == (
        "tokenization",
        "next_token",
        "chat",
        "greedy",
        "sampled",
        "choice",
        "scores",
        "draws",
        "capability",
    )
    assert selected_as({"kind": "generation", "sampling": "greedy"}) == "greedy"
    assert selected_as({"kind": "generation", "sampling": "temperature=0.7"}) == "sampled"
    assert selected_as({"kind": "scores"}) == "scores"


def reports_with(tmp_path: Any, records: list[dict[str, Any]], moved: list[dict[str, Any]]) -> list[str]:
    import json

    from pytest_lmbehave.reports.report_format import FORMAT, VERSION

    paths = []
    for name, observations in (("old", records), ("new", moved)):
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps({"format": FORMAT, "version": VERSION, "environments": {}, "observations": {"t": observations}})
        )
        paths.append(str(path))
    return paths


def test_a_kind_registered_in_the_table_is_a_choice_of_diff_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_lmbehave.cli import main

    old, new = reports_with(
        tmp_path, [{"kind": "totals", "text": "a", "total": -3.0}], [{"kind": "totals", "text": "a", "total": -3.5}]
    )
    with pytest.raises(SystemExit):
        main(["diff", old, new, "--only", "totals"])
    assert "'totals': the kinds are tokenization, next_token, chat, greedy, sampled, choice, scores" in (
        capsys.readouterr().err
    )
    monkeypatch.setitem(KINDS, "totals", Kind("totals", Scores, record, compare_scores, explain))
    assert main(["diff", old, new, "--only", "totals"]) == 1
    assert "1 observations compared, 1 changes" in capsys.readouterr().out
    assert main(["diff", old, new, "--only", "scores,chat"]) == 0  # the other kinds leave it out
    assert "2 observation(s) left out by --only scores,chat" in capsys.readouterr().out
