"""Each kind of observation is one unit registered in one table (``observations.KINDS``): its class, record,
comparison, drift line and explanation. The snapshot extension, `lmbehave diff` and the assertions reach a kind only
through the table, so a kind registered there is recorded, compared and explained everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pytest_lmbehave.observations import KINDS, Kind, kind_of
from pytest_lmbehave.observations.differences import SCORE, Compared, Tolerances, moved
from pytest_lmbehave.observations.drift import Thresholds, compare_records
from pytest_lmbehave.observations.records import to_record
from pytest_lmbehave.observations.verdict import compare


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
    assert set(KINDS) == {"tokenization", "next_token", "generation", "choice"}
    for name, kind in KINDS.items():
        assert kind.name == name and callable(kind.record) and callable(kind.compare) and callable(kind.explain)
    assert KINDS["next_token"].drift is not None  # its drift line carries the KL divergence of the top rows


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
    from pytest_lmbehave.engine.engine import Engine

    engine = Engine(tiny_backend)
    generation = engine.generate(["hello hello"], 6, None, None)[0]
    calls: list[bool] = []
    real = tiny_backend.forced_logprobs

    def counted(rows: Any, generated: bool = False) -> Any:
        calls.append(generated)
        return real(rows, generated)

    monkeypatch.setattr(tiny_backend, "forced_logprobs", counted)
    for _ in range(3):
        engine.teacher_force(list(generation.prompt_ids), generation.ids)
        engine.steps(generation)
    assert sorted(calls) == [False, True]
