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
            assert lm.engine.backend.loaded.loaded_from.joinpath("lmbehave-manifest.json").is_file()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["lmbehave: model embedded = SmolLM2-135M-Instruct (Q4_1 GGUF, embedded) (embedded, sha256 *)"]
    )


def test_batched_greedy_on_the_embedded_model_equals_one_prompt_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        PROMPTS = ["Shakespeare was a", "The best places to visit in Boston are", "Tell me what job this person had.\\n\\nShakespeare:"]

        def test_batch(lm):
            batched = lm.generate(PROMPTS, max_new_tokens=12)
            lm.engine.forget()
            assert [g.ids for g in batched] == [lm.generate(p, max_new_tokens=12).ids for p in PROMPTS]
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
