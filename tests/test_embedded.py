"""A few plugin tests with the real embedded model (converted once into the shared cache, then ~1 s to load)."""

from __future__ import annotations

import pytest


def test_the_embedded_model_is_the_default_and_reproduces_the_document_tokens(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_embedded(lm):
            assert lm.tokenize("Shakespeare was a").text_ids == (4370, 10735, 436, 253)
            read = len(lm.tokenize("Shakespeare was a great").ids)  # 5 tokens, and a BOS on transformers 4.57
            assert tuple(lm.logits("Shakespeare was a great").shape) == (1, read, 49152)
            assert lm.fingerprint["model"] == "embedded" and lm.fingerprint["dtype"] == "float32"
            assert lm.runtime.backend.loaded.loaded_from.joinpath("lmbehave-manifest.json").is_file()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["lmbehave: model embedded = SmolLM2-135M-Instruct (Q4_1 GGUF, embedded) (embedded, sha256 *); dtype=float32*"]
    )


def test_batched_greedy_on_the_embedded_model_equals_one_prompt_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        PROMPTS = ["Shakespeare was a", "The best places to visit in Boston are", "Tell me what job this person had.\\n\\nShakespeare:"]

        def test_batch(lm):
            batched = lm.generate(PROMPTS, max_new_tokens=12)
            lm.runtime.forget()
            assert [g.ids for g in batched] == [lm.generate(p, max_new_tokens=12).ids for p in PROMPTS]
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_drafts_verified_on_the_embedded_model_give_free_decoding_on_every_document_prompt() -> None:
    """Every prompt of the document, greedy and sampled (top-50, as the document sampled): one free batch, then
    the same batch again with each row's draft right, wrong from step 5, or cut to 7 tokens, by turns."""
    from pytest_lmbehave.backends.sampling import Policy, Sampling
    from pytest_lmbehave.config.settings import Settings, default_cache_dir
    from pytest_lmbehave.runtime.registry import Registry

    from .conftest import document, document_prompts

    prompts = document_prompts()
    backend = Registry(Settings(cache_dir=default_cache_dir())).runtime("embedded").backend
    rows = [backend.tokenize(p) for p in prompts] + [backend.tokenize(document().SHAKESPEARE)] * 3
    rows += [backend.tokenize(document().BOSTON_VISIT)] * 3
    top50 = Sampling(top_k=50)
    policies = [Policy()] * len(prompts) + [Policy(top50, seed) for seed in (1, 2, 3, 4, 5, 6)]
    free = backend.generate(rows, 20, policies)
    drafts = []
    for i, decoded in enumerate(free):
        ids = decoded.ids
        wrong = (*ids[:5], (ids[5] + 1) % backend.vocab_size, *ids[6:]) if len(ids) > 5 else ids
        drafts.append([ids, wrong, ids[:7]][i % 3])
    verified = backend.generate(rows, 20, policies, drafts)
    for i, (checked, decoded) in enumerate(zip(verified, free)):
        assert checked.ids == decoded.ids, f"row {i} ({['right', 'wrong', 'short'][i % 3]} draft)"
        # float32 numbers of another shape of pass: the determinism tolerance (tests/test_determinism.py).
        assert checked.logprobs == pytest.approx(decoded.logprobs, abs=2e-4)
        assert checked.margins == pytest.approx(decoded.margins, abs=2e-4)
    assert sum(v.verified for v in verified) >= sum(len(d.ids) for d in free) / 2  # the drafts were really used
