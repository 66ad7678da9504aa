"""The matrix: the plugin on tiny random-weight models of the architectures users run (tests/architectures.py), each
built here from transformers' own config classes. On each, ``lmbehave check`` exits 0 with every invariant held and
its behaviour profile, and the LM API gives what transformers' own ``generate`` and forward pass give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.api.lm import LM
from pytest_lmbehave.runtime.runtime import Runtime
from tests.architectures import MODELS
from tests.test_check import lmbehave

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


def test_gemma_2_refuses_sdpa_so_it_runs_eager_and_its_fingerprint_says_so(matrix_backend: Any) -> None:
    assert matrix_backend("gemma2").fingerprint()["attention"] == "eager"
    assert matrix_backend("llama").fingerprint()["attention"] == "sdpa"


def test_the_attention_a_model_ran_with_is_known_to_a_warm_run_without_loading(matrix: Any, tmp_path: Path) -> None:
    from pytest_lmbehave.backends.transformers.loading import fingerprint, resolve
    from pytest_lmbehave.config.settings import Settings
    from tests.conftest import tiny_backend_of

    folder = matrix("gemma2")
    settings = Settings(cache_dir=tmp_path)
    assert fingerprint(resolve(str(folder)), settings)["attention"] == "sdpa"  # not learned yet: what was asked
    tiny_backend_of(folder, tmp_path)  # a load learns it
    assert fingerprint(resolve(str(folder)), settings)["attention"] == "eager"


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
