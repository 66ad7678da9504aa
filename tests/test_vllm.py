"""The served backend against a real vLLM server (`make served` starts one on the embedded model and sets
LMBEHAVE_TEST_VLLM): the same contract every backend keeps. Skipped, with the reason, when no server is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_backend_contract import check_backend

SERVER = os.environ.get("LMBEHAVE_TEST_VLLM", "")


@pytest.mark.skipif(not SERVER, reason="no vLLM server: `make served` starts one (LMBEHAVE_TEST_VLLM=URL#NAME)")
def test_a_real_vllm_server_keeps_the_backend_contract(tmp_path: Path) -> None:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    backend = open_backend(SERVER, Settings(cache_dir=default_cache_dir()))
    assert backend.fingerprint()["engine"] == "vllm"
    check_backend(backend, "Shakespeare was a")


@pytest.mark.skipif(not SERVER, reason="no vLLM server: `make served` starts one (LMBEHAVE_TEST_VLLM=URL#NAME)")
def test_a_real_vllm_server_renders_the_chat_template_as_the_local_tokenizer_does() -> None:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.backends.templates import render_with
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    settings = Settings(cache_dir=default_cache_dir())
    backend = open_backend(SERVER, settings)
    local = open_backend("embedded", settings)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    served = backend.chat(messages)  # vLLM's own /tokenize with messages: the template its chat completions use
    assert served == local.chat(messages) == render_with(local.tokenizer, messages, "embedded")  # type: ignore[attr-defined]
    assert served[0].endswith("<|im_start|>assistant\n") and "Be brief." in served[0]
