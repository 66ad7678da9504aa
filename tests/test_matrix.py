"""The matrix: the plugin on tiny random-weight models of the architectures users run (tests/architectures.py), each
built here from transformers' own config classes. On each, ``lmbehave check`` exits 0 with every invariant held and
its behaviour profile, and the LM API gives what transformers' own ``generate`` and forward pass give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.api.invariants import INVARIANTS
from pytest_lmbehave.api.lm import LM
from pytest_lmbehave.config.errors import BackendUnavailable
from pytest_lmbehave.runtime.runtime import Runtime
from tests.architectures import MODELS
from tests.broken_stacks import CONTROLS
from tests.test_check import lmbehave
from tests.test_invariants import HEALTHY, shown_on

PROMPTS = ["Shakespeare was a", "The best places to visit in Boston are the"]


@pytest.mark.parametrize("name", list(MODELS))
def test_check_exits_0_on_each_architecture_with_every_invariant_held(name: str, matrix: Any, tmp_path: Path) -> None:
    done = lmbehave("check", "--model", str(matrix(name)), "--report", "check.json", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    invariants = next(line for line in out.splitlines() if line.strip().startswith("invariants"))
    held, _, total = invariants.split()[1].partition("/")
    assert held == total and int(total) >= 30, invariants
    assert "behaviours    shown" in out and (tmp_path / "check.json").is_file()


@pytest.mark.parametrize("name", list(MODELS))
def test_the_api_gives_what_transformers_own_generate_and_forward_pass_give(name: str, matrix_backend: Any) -> None:
    import torch

    backend = matrix_backend(name)
    lm = LM(Runtime(backend))
    model, tokenizer = backend.model, backend.tokenizer
    for prompt in PROMPTS:
        ids = lm.tokenize(prompt).ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits
            out = model.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=8,
                do_sample=False, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        assert float((lm.logits(prompt) - logits).abs().max()) < 1e-4
        own = tuple(int(t) for t in out[0, len(ids) :])
        stop = next((i for i, t in enumerate(own) if t in backend.stop_ids), None)
        assert lm.generate(prompt, max_new_tokens=8).ids == (own if stop is None else own[: stop + 1])


def test_the_fingerprint_names_the_attention_each_model_ran_with(matrix_backend: Any) -> None:
    """Gemma 2 refuses SDPA in transformers 5 (it runs eager, said once at load); 4.57 takes SDPA for it. Whatever
    the installed transformers let it run with is what the fingerprint says."""
    for name in ("gemma2", "llama"):
        backend = matrix_backend(name)
        assert backend.fingerprint()["attention"] == backend.model.config._attn_implementation
    assert matrix_backend("llama").fingerprint()["attention"] == "sdpa"


def test_the_attention_a_model_ran_with_is_known_to_a_warm_run_without_loading(matrix: Any, tmp_path: Path) -> None:
    from pytest_lmbehave.backends.transformers.loading import fingerprint, resolve
    from pytest_lmbehave.config.settings import Settings
    from tests.conftest import tiny_backend_of

    folder = matrix("gemma2")
    settings = Settings(cache_dir=tmp_path)
    assert fingerprint(resolve(str(folder)), settings)["attention"] == "sdpa"  # not learned yet: what was asked
    ran = tiny_backend_of(folder, tmp_path).model.config._attn_implementation  # a load learns it
    assert fingerprint(resolve(str(folder)), settings)["attention"] == ran


def test_a_token_named_by_the_model_resolves_to_its_own_id_where_two_ids_decode_alike(matrix_backend: Any) -> None:
    lm = LM(Runtime(matrix_backend("llama+sentencepiece")))
    vocabulary = lm.vocabulary
    by_text: dict[str, list[int]] = {}
    for token in range(vocabulary.tokens):
        by_text.setdefault(vocabulary.pieces[token], []).append(token)
    alike = next(ids for text, ids in by_text.items() if len(ids) > 1 and text.strip())
    dist = lm.next_token("Shakespeare was a")
    for token in alike:  # byte fallback's <0x..> and a merged token decode to the same text
        piece = vocabulary.piece(token)
        assert piece.id == token and dist.logprob(piece) == float(dist.values[token])
    assert dist.prob(dist.argmax) == dist.prob(dist.argmax_id)  # the model's own top candidate can be asked about
    assert [dist.rank(c.piece) for c in dist.top(5)] == [dist.rank(c.id) for c in dist.top(5)]


@pytest.mark.parametrize("model", [m for m in MODELS if m != HEALTHY])
def test_every_negative_control_fails_on_every_model_of_the_matrix(model: str, matrix_backend: Any) -> None:
    """Each control broken over each architecture's working stack: an invariant that does not apply to a model (a
    chat template it lacks, padding rows it does not have) is left out, as the spec skips it there."""
    inner = matrix_backend(model)
    caught, missed = [], []
    for name, invariant in INVARIANTS.items():
        if shown_on(name) != HEALTHY and model != shown_on(name):
            continue
        try:
            invariant.check(CONTROLS[invariant.control](inner))
        except AssertionError:
            caught.append(name)
            continue
        except (BackendUnavailable, pytest.skip.Exception):
            continue
        missed.append(name)
    assert not missed, f"on {model}, these broken stacks passed their invariant: {missed}"
    assert len(caught) >= 28, caught
