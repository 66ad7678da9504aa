"""A model's own generation config is part of what a generation is: decoding applies its processors as
``model.generate`` does, and verified drafts, wrong drafts and teacher-forced localisation apply the very same ones,
so the three give one answer on every document prompt, whatever the config sets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.backends import Decoded
from pytest_lmbehave.backends.sampling import Policy, Sampling

from .conftest import build_tiny_model, document_prompts, tiny_backend_of

STEPS = 12
FLOATS = 2e-4  # teacher-forced and step-by-step passes agree to ~1e-6; the determinism tolerance


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that reads the document's longest prompt (its byte-level tokens are many)."""
    return build_tiny_model(tmp_path_factory.mktemp("plain") / "tiny", context=1024)


@pytest.fixture(scope="module")
def rows_and_plain(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[int]], list[Decoded]]:
    backend = tiny_backend_of(plain, tmp_path_factory.mktemp("cache"))
    rows = [backend.tokenize(p) for p in document_prompts()]
    return rows, backend.generate(rows, STEPS, [Policy()] * len(rows))


def settings(rows: list[list[int]], free: list[Decoded]) -> dict[str, dict[str, Any]]:
    """One config per setting of the issue, with ids taken from what the plain model does, so each one bites."""
    common = Counter(t for d in free for t in d.ids).most_common(2)
    pair = next([a, b] for d in free for a, b in zip(d.ids, d.ids[1:]) if a != b)
    return {
        "repetition_penalty": {"repetition_penalty": 1.5},
        "no_repeat_ngram_size": {"no_repeat_ngram_size": 2},
        "min_new_tokens": {"min_new_tokens": 6},
        "suppress_tokens": {"suppress_tokens": [common[0][0]]},
        "begin_suppress_tokens": {"begin_suppress_tokens": sorted({d.ids[0] for d in free})[:3]},
        "bad_words_ids": {"bad_words_ids": [pair]},
        "sequence_bias": {"sequence_bias": [[[common[1][0]], 3.0]]},
        "several, and sampling defaults": {
            "repetition_penalty": 1.2,
            "no_repeat_ngram_size": 3,
            "do_sample": True,
            "temperature": 0.7,
            "top_k": 20,
            "top_p": 0.9,
        },
    }


def with_config(plain: Path, folder: Path, fields: dict[str, Any]) -> Path:
    import shutil

    shutil.copytree(plain, folder)
    path = folder / "generation_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**config, **fields}))
    return folder


def assert_same(got: list[Decoded], free: list[Decoded], what: str) -> None:
    __tracebackhide__ = True
    for i, (checked, decoded) in enumerate(zip(got, free)):
        assert checked.ids == decoded.ids, f"{what}: row {i} differs from free decoding"
        assert checked.margins == pytest.approx(decoded.margins, abs=FLOATS), f"{what}: row {i}"


@pytest.mark.parametrize("name", [0, 1, 2, 3, 4, 5, 6, 7])
def test_free_decoding_verified_drafts_and_wrong_drafts_agree_under_the_models_own_generation_config(
    name: int, plain: Path, rows_and_plain: Any, tmp_path: Path
) -> None:
    import torch

    rows, plain_free = rows_and_plain
    label, fields = list(settings(rows, plain_free).items())[name]
    backend = tiny_backend_of(with_config(plain, tmp_path / "model", fields), tmp_path / "cache")
    assert backend.configured.processing and backend.configured.replayable, label
    policies = [Policy()] * len(rows) + [Policy(Sampling(top_p=0.95), seed) for seed in (1, 2, 3)]
    every = rows + [rows[0]] * 3
    free = backend.generate(every, STEPS, policies)

    # The definition: a greedy row is what the document's `model.generate` gives for that prompt alone.
    for row, decoded in list(zip(rows, free))[:6]:
        alone = backend.model.generate(torch.tensor([row]), max_new_tokens=STEPS, do_sample=False)
        assert list(decoded.ids) == alone[0, len(row) :].tolist()[: len(decoded.ids)], label
    assert [d.ids for d in free[: len(rows)]] != [d.ids for d in plain_free] or label == "min_new_tokens"

    right = backend.generate(every, STEPS, policies, [d.ids for d in free])
    assert_same(right, free, f"{label}, right drafts")
    assert sum(r.verified for r in right) == sum(len(d.ids) for d in free)
    wrong = [(*d.ids[:4], (d.ids[4] + 1) % backend.vocab_size, *d.ids[5:]) if len(d.ids) > 4 else d.ids for d in free]
    assert_same(backend.generate(every, STEPS, policies, wrong), free, f"{label}, wrong drafts")
    # The raw model's greedy ids as drafts: where the config changes a step, verifying must not keep them.
    assert_same(backend.generate(rows, STEPS, policies[: len(rows)], [d.ids for d in plain_free]), free, label)


def test_min_new_tokens_keeps_a_row_from_stopping_early(plain: Path, rows_and_plain: Any, tmp_path: Path) -> None:
    """The tiny model rarely ends a row by itself: a prompt ending in its EOS makes it likely, then the minimum
    holds it off for six tokens, in decoding and in a draft's verification alike."""
    rows, _ = rows_and_plain
    backend = tiny_backend_of(with_config(plain, tmp_path / "model", {"min_new_tokens": 6}), tmp_path / "cache")
    raw = tiny_backend_of(plain, tmp_path / "raw-cache")
    stop = next(iter(backend.stop_ids))
    policy = Policy(Sampling(temperature=3.0), 0)
    for seed in range(300):  # a sampled row the raw model ends before six tokens
        seeded = [Policy(policy.sampling, seed)] * len(rows)
        early = [i for i, d in enumerate(raw.generate(rows, 6, seeded)) if stop in d.ids]
        if early:
            break
    else:
        pytest.fail("no sampled row of the raw model stopped within six tokens in 300 seeds")
    row, seeded = [rows[early[0]]], [seeded[0]]
    held = backend.generate(row, 6, seeded)
    assert stop not in held[0].ids and len(held[0].ids) == 6
    assert backend.generate(row, 6, seeded, [raw.generate(row, 6, seeded)[0].ids])[0].ids == held[0].ids


def test_a_processor_that_cannot_be_replayed_turns_drafts_off_and_is_said_once(
    plain: Path, rows_and_plain: Any, tmp_path: Path
) -> None:
    rows, _ = rows_and_plain
    backend = tiny_backend_of(with_config(plain, tmp_path / "model", {"guidance_scale": 1.5}), tmp_path / "cache")
    assert not backend.configured.replayable
    free = backend.generate(rows[:3], 6, [Policy()] * 3)
    drafted = backend.generate(rows[:3], 6, [Policy()] * 3, [d.ids for d in free])
    assert [d.ids for d in drafted] == [d.ids for d in free]
    assert sum(d.verified for d in drafted) == 0  # decoded token by token, never verified
    notes = backend.configured.notes("tiny")
    assert any("drafts are off for tiny" in n and "ClassifierFreeGuidance" in n for n in notes)


def test_the_fingerprint_names_the_generation_config_so_an_edit_misses_the_cache_and_is_named(
    plain: Path, tmp_path: Path
) -> None:
    from pytest_lmbehave.backends.transformers import loading as models
    from pytest_lmbehave.config import environment
    from pytest_lmbehave.config.settings import Settings
    from pytest_lmbehave.runtime.store import ObservationStore

    folder = with_config(plain, tmp_path / "model", {"repetition_penalty": 1.3})
    settings_ = Settings(cache_dir=tmp_path / "cache")
    before = models.fingerprint(models.resolve(str(folder)), settings_)
    assert before["generation"] == "repetition_penalty:1.3"
    assert "generation=repetition_penalty:1.3" in environment.line(before)
    (folder / "generation_config.json").write_text(json.dumps({"repetition_penalty": 1.5, "eos_token_id": 0}))
    models.content_hash.cache_clear()
    after = models.fingerprint(models.resolve(str(folder)), settings_)
    cache = tmp_path / "observations"
    assert ObservationStore(cache, before).folder != ObservationStore(cache, after).folder
    changed, _ = environment.differences(before, after)
    assert "generation repetition_penalty:1.3 -> repetition_penalty:1.5" in changed
    # A recording made before the field existed (or of a model without one) reads as none.
    plain_print = models.fingerprint(models.resolve(str(plain)), settings_)
    assert "generation" not in plain_print
    assert "generation none -> repetition_penalty:1.5" in environment.differences(plain_print, after)[0]


def test_a_diverging_generation_is_localised_through_the_models_own_processors(
    plain: Path, rows_and_plain: Any, tmp_path: Path
) -> None:
    """The teacher-forced pass that explains a failure reads the steps as generate did: with the config's
    processors, the recorded tokens are today's top candidates at every step."""
    from pytest_lmbehave.runtime.runtime import Runtime

    backend = tiny_backend_of(with_config(plain, tmp_path / "model", {"repetition_penalty": 2.0}), tmp_path / "cache")
    runtime = Runtime(backend)
    rows, _ = rows_and_plain
    generation = runtime.generate([rows[0]], STEPS, None, None)[0]
    checks = runtime.teacher_force(rows[0], generation.ids)
    assert [c.token for c in checks] == [c.argmax for c in checks]
    raw = backend.forced_logprobs([(rows[0], generation.ids)])[0]
    assert any(int(n.values.argmax()) != t for n, t in zip(raw, generation.ids))  # the raw view disagrees


def test_a_recorded_generation_under_a_repetition_penalty_passes_on_the_next_run_with_its_drafts(
    pytester: pytest.Pytester, tiny_model: Path, tmp_path: Path
) -> None:
    """The reported case: a model folder whose generation config sets a repetition penalty records a 30-token
    greedy generation; the next plain run verifies the recorded ids as drafts and must pass."""
    folder = with_config(tiny_model, tmp_path / "penalised", {"repetition_penalty": 1.3})
    pytester.makepyfile(
        """
        def test_shakespeare(lm, lm_snapshot):
            assert lm.generate("Shakespeare was a", max_new_tokens=30) == lm_snapshot
        """
    )
    args = ("-p", "no:randomly", f"--lm-model={folder}", "--lm-plan=plan.json")
    pytester.runpytest(*args, "--snapshot-update").assert_outcomes(passed=1)
    again = pytester.runpytest(*args, "--lm-report=again.json")
    again.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "again.json").read_text())
    assert sum(p.get("tokens_verified", 0) for p in report["processes"]) == 30  # the drafts were used, and held
