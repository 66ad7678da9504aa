"""An unchanged re-run under --lm-cache answers from disk without torch, transformers or scipy: the fingerprint is
read from package metadata, the OS's CPU flags and facts learned once, the statistics with the counts they were
computed from; the model loads only on the first miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_lmbehave.config import facts

SOURCE = """
from pytest_lmbehave import sampled

def test_tokens(lm):
    assert lm.tokenize("hello hello").ids == lm.tokenize("hello hello").ids
    assert lm.decode(lm.tokenize("hello").ids) == "hello"

def test_next_and_choice(lm):
    dist = lm.next_token("hello hello")
    assert dist.top(3)[0].id == dist.argmax_id and dist.prob(dist.argmax) > 0
    lm.choose("Review: good game. Decision:", [" good", " bad"])

def test_generation(lm):
    generation = lm.generate(["hello", "Shakespeare was a"], max_new_tokens=6)[1]
    assert [d.argmax_id for d in lm.steps(generation)] == list(generation.ids)
    assert lm.generate("Shakespeare was a", max_new_tokens=3).ids == generation.ids[:3]

@sampled(temperature=1.3)
def test_sampled(lm):
    lm.generate("hello", max_new_tokens=5)

@sampled(temperature=1.3)
def test_drawn(lm):
    assert lm.draws("hello", n=200).check().passed
    assert lm.rate("hello", lambda text: True, n=100) >= 0.5
"""


def run(pytester: pytest.Pytester, model: Path, report: str, *args: str) -> dict:  # type: ignore[type-arg]
    result = pytester.runpytest_subprocess(
        f"--lm-model={model}", "--lm-cache", f"--lm-report={report}", "-p", "no:randomly", "-p", "no:xdist", *args
    )
    result.assert_outcomes(passed=SOURCE.count("def test_"))
    return json.loads((pytester.path / report).read_text())  # type: ignore[no-any-return]


def test_an_unchanged_rerun_imports_neither_torch_nor_transformers_nor_scipy_and_observes_the_same(
    pytester: pytest.Pytester, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMBEHAVE_CACHE", str(tmp_path / "cache"))
    pytester.makepyfile(SOURCE)
    first = run(pytester, tiny_model, "first.json")
    [computing] = first["processes"]
    assert computing["imported_torch"] and computing["imported_scipy"] and computing["computed"] > 0
    assert computing["model_ready_s"][str(tiny_model)] > 0 and str(tiny_model) in computing["imports_s"]
    second = run(pytester, tiny_model, "second.json")
    [reading] = second["processes"]
    assert (reading["imported_torch"], reading["imported_transformers"], reading["imported_scipy"]) == (False,) * 3
    assert reading["computed"] == 0 and reading["from_disk"] > 0 and reading["model_ready_s"] == {}
    assert second["observations"] == first["observations"] and second["environments"] == first["environments"]
    # A question the cache cannot answer loads the model then, once, and is answered like any other.
    pytester.makepyfile(test_new="def test_new(lm):\n    assert lm.generate('hello world', 4).ids\n")
    result = pytester.runpytest_subprocess(f"--lm-model={tiny_model}", "--lm-cache", "-p", "no:randomly")
    result.assert_outcomes(passed=SOURCE.count("def test_") + 1)


def test_a_fact_is_learned_once_per_torch_build_cpu_and_kernel_variables(tmp_path: Path) -> None:
    calls: list[str] = []

    def learn() -> dict[str, str]:
        calls.append("torch")
        return {"cpu_capability": "AVX2", "blas": "mkl"}

    assert facts.cpu_facts(tmp_path, {"aten_cpu_capability": "unset"}, learn) == {
        "cpu_capability": "AVX2",
        "blas": "mkl",
    }
    assert facts.cpu_facts(tmp_path, {"aten_cpu_capability": "unset"}, learn) == {
        "cpu_capability": "AVX2",
        "blas": "mkl",
    }
    assert calls == ["torch"]
    facts.cpu_facts(tmp_path, {"aten_cpu_capability": "default"}, learn)  # other kernels: learned again
    assert calls == ["torch", "torch"]


def test_a_files_hash_is_kept_until_its_size_or_mtime_changes(tmp_path: Path) -> None:
    import os

    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + b"a" * 100)
    first = facts.file_sha256(weights, tmp_path / "cache")
    assert first == facts.sha256(weights)
    assert len(list((tmp_path / "cache" / "facts").iterdir())) == 1
    weights.write_bytes(b"GGUF" + b"b" * 100)  # same size; a new mtime
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert facts.file_sha256(weights, tmp_path / "cache") == facts.sha256(weights) != first


def test_a_kept_statistic_is_read_back_and_a_damaged_one_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scipy.stats

    from pytest_lmbehave.observations import statistics

    monkeypatch.setattr(statistics, "SEEN", {})
    monkeypatch.setattr(statistics, "FOLDER", [])
    statistics.keep_in(tmp_path)
    table = [[3, 9], [9, 3]]
    p_value = statistics.fisher_p(table)
    [kept] = tmp_path.glob("*.pkl")

    def asked(*args: object) -> None:
        raise AssertionError("scipy was asked")

    with monkeypatch.context() as patched:
        patched.setattr(scipy.stats, "fisher_exact", asked)
        statistics.SEEN.clear()
        assert statistics.fisher_p(table) == p_value  # read back from the file, scipy not asked
        kept.write_bytes(kept.read_bytes()[:-2])  # damaged: a miss
        statistics.SEEN.clear()
        with pytest.raises(AssertionError, match="scipy was asked"):
            statistics.fisher_p(table)
    assert statistics.fisher_p(table) == p_value
    statistics.SEEN.clear()
    assert statistics.fisher_p(table) == p_value and len(list(tmp_path.glob("*.pkl"))) == 1  # written whole again
