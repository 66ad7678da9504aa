"""lm.chat: a conversation through the model's own chat template. The answer is plain generation after the rendered
template; its record pins the template, so a template that renders otherwise fails as a tokenizer-layer cause, and
the answer is compared as a generation only while the template holds. In process, and served (the server's own
template, or the local copy's over /v1/completions)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave import LM, Chat, InputError
from pytest_lmbehave.observations import verdict
from pytest_lmbehave.observations.records import to_record
from pytest_lmbehave.runtime.runtime import Runtime
from tests.conftest import build_tiny_model, tiny_backend_of
from tests.fake_server import Behaviour, FakeServer

# A ChatML-like template over the tiny tokenizer's one special token.
TEMPLATE = (
    "{% for m in messages %}<|endoftext|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|endoftext|>assistant\n{% endif %}"
)
QUESTION = [{"role": "user", "content": "hello world"}]


def with_template(folder: Path, template: str) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_template(build_tiny_model(tmp_path_factory.mktemp("chat") / "tiny-chat"), TEMPLATE)


@pytest.fixture(scope="session")
def chat_backend(chat_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_backend_of(chat_model, tmp_path_factory.mktemp("chat-cache"))


def test_a_chat_answer_is_generation_after_the_rendered_template(chat_backend: Any) -> None:
    lm = LM(Runtime(chat_backend))
    answer = lm.chat(QUESTION, max_new_tokens=6)
    rendered = chat_backend.tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert (
        isinstance(answer, Chat)
        and answer.prompt == rendered == "<|endoftext|>user\nhello world\n<|endoftext|>assistant\n"
    )
    assert answer.prompt_ids == tuple(chat_backend.tokenize(rendered, special=False))
    assert answer.ids == lm.generate(list(answer.prompt_ids), max_new_tokens=6).ids
    assert answer.messages == (("user", "hello world"),)
    record = to_record(answer)
    assert (record["kind"], record["messages"], record["template"]) == ("chat", QUESTION, rendered)
    assert record["input_ids"] == list(answer.prompt_ids) and record["ids"] == list(answer.ids)


def test_a_chat_answer_that_is_not_the_expected_text_is_explained_by_its_question(chat_backend: Any) -> None:
    from pytest_lmbehave.api.assertions import explain

    answer = LM(Runtime(chat_backend)).chat(QUESTION, max_new_tokens=6)
    lines = explain(answer, answer.text + "!") or []
    assert lines[0] == "chat answer to 'hello world':"
    assert lines[1:3] == [f"  expected: {answer.text + '!'!r}", f"  actual:   {answer.text!r}"]


def test_a_sampled_chat_takes_the_handles_seed_and_reproduces(chat_backend: Any) -> None:
    lm = LM(Runtime(chat_backend)).with_sampling(temperature=1.5, seed=7)
    first, second = lm.chat(QUESTION, 6), lm.chat(QUESTION, 6)
    assert first.sampling == "sampled(temperature=1.5)" and first.seed != second.seed  # the next seed per call
    again = LM(Runtime(chat_backend)).with_sampling(temperature=1.5, seed=7).chat(QUESTION, 6)
    assert (again.seed, again.ids) == (first.seed, first.ids)


def test_a_model_without_a_chat_template_gets_an_error_naming_the_fix(tiny_runtime: Any) -> None:
    with pytest.raises(InputError, match=r"has no chat template.*chat or instruct model.*lm\.generate"):
        LM(tiny_runtime).chat(QUESTION)


@pytest.mark.parametrize(
    "messages",
    [
        "hello",
        [],
        [{"role": "user"}],
        [{"role": "user", "content": 1}],
        [("user", "hi")],
        [{"role": "", "content": "x"}],
    ],
)
def test_messages_that_are_not_role_and_content_dicts_are_refused_naming_the_shape(
    chat_backend: Any, messages: Any
) -> None:
    with pytest.raises(InputError, match=r"'role'.*'content'|list of messages"):
        LM(Runtime(chat_backend)).chat(messages)


def test_a_template_that_refuses_the_messages_says_so(tmp_path: Path) -> None:
    strict = "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message comes first') }}{% endif %}"
    backend = tiny_backend_of(with_template(build_tiny_model(tmp_path / "m"), strict), tmp_path / "cache")
    with pytest.raises(InputError, match=r"refused these messages.*a system message comes first"):
        LM(Runtime(backend)).chat(QUESTION)


def test_one_role_marker_changed_is_a_tokenizer_difference_and_the_answer_is_not_compared(
    chat_backend: Any, tmp_path: Path
) -> None:
    recorded = to_record(LM(Runtime(chat_backend)).chat(QUESTION, 6))
    edited = with_template(build_tiny_model(tmp_path / "m"), TEMPLATE.replace("assistant", "model"))
    now = to_record(LM(Runtime(tiny_backend_of(edited, tmp_path / "cache"))).chat(QUESTION, 6))
    [difference] = verdict.compare(recorded, now, verdict.Tolerances())
    assert (difference.kind, difference.layer) == (verdict.INPUT, verdict.TOKENIZER)
    assert "the chat template renders the same messages differently from character" in difference.text
    assert "<|endoftext|>assistant\\n'" in difference.text and "<|endoftext|>model\\n'" in difference.text
    assert "its answer is not compared" in difference.text


def test_the_same_template_with_another_answer_compares_as_a_generation(chat_backend: Any) -> None:
    runtime = Runtime(chat_backend)
    now = to_record(LM(runtime).chat(QUESTION, 6))
    tampered = {**now, "ids": [now["ids"][0], (now["ids"][1] + 1) % chat_backend.vocab_size, *now["ids"][2:]]}
    [difference] = verdict.compare(tampered, now, verdict.Tolerances(), runtime.teacher_force)
    assert difference.kind == verdict.GENERATION and difference.layer == verdict.MODEL
    assert "first diverging token 1" in difference.text and "teacher-forced: at step 1" in difference.text
    assert verdict.compare(now, now, verdict.Tolerances()) == []


HAND_EDITED = """
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]

def test_chat(lm, lm_snapshot):
    assert lm.chat(QUESTION, max_new_tokens=8) == lm_snapshot
"""


@pytest.fixture
def embedded_copy(tmp_path: Path) -> Iterator[Path]:
    """The converted embedded model as a directory of its own: its files copied, its weights linked."""
    from pytest_lmbehave.backends.transformers.conversion import converted_entry
    from pytest_lmbehave.backends.transformers.loading import content_hash, resolve
    from pytest_lmbehave.config.settings import default_cache_dir

    source, cache = resolve("embedded"), default_cache_dir()
    entry = converted_entry(source.path, content_hash(source, cache), cache)
    copy = tmp_path / "smollm2-copy"
    copy.mkdir()
    for file in entry.iterdir():
        if file.suffix == ".safetensors":
            (copy / file.name).symlink_to(file)
        elif not file.name.startswith("lmbehave-"):
            shutil.copy(file, copy / file.name)
    yield copy


def edit_template(folder: Path, old: str, new: str) -> None:
    """One edit of the template, wherever this transformers saved it (chat_template.jinja, or tokenizer_config.json)."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        assert old in jinja.read_text()
        jinja.write_text(jinja.read_text().replace(old, new))
        return
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert old in config["chat_template"]
    config["chat_template"] = config["chat_template"].replace(old, new)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def test_a_hand_edited_template_of_the_embedded_model_fails_with_the_tokenizer_as_root_cause(
    pytester: pytest.Pytester, embedded_copy: Path
) -> None:
    pytester.makepyfile(HAND_EDITED)
    args = ("-p", "no:randomly", f"--lm-model={embedded_copy}", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess(*args, "--snapshot-update").assert_outcomes(passed=1)
    assert pytester.runpytest_subprocess(*args).ret == 0  # recorded and unchanged: it passes
    edit_template(embedded_copy, "<|im_start|>assistant", "<|im_start|>Assistant")  # one role marker

    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*root cause: the tokenizer: the model's files changed (sha256 *) and every difference is in how the "
            "text reaches the model (its tokenizer or chat template), a cause of its own*",
            "*[[]tokenizer[]] the chat template renders the same messages differently from character 168:",
            "*recorded: *<|im_start|>assistant\\n'",
            "*now: *<|im_start|>Assistant\\n'",
        ]
    )


@pytest.mark.parametrize("vllm", [True, False], ids=["the server's own template", "the local copy's template"])
def test_a_served_chat_renders_and_answers_as_the_in_process_model_does(
    chat_model: Path, chat_backend: Any, tmp_path: Path, vllm: bool, request: pytest.FixtureRequest
) -> None:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings

    server = FakeServer(chat_backend, Behaviour(name=str(chat_model), vllm=vllm, prompt_logprobs=vllm, echo=vllm))
    request.addfinalizer(server.die)
    served = open_backend(f"{server.url}#{server.behaviour.name}", Settings(cache_dir=tmp_path, server_timeout=30))
    assert served.chat(QUESTION) == chat_backend.chat(QUESTION)
    rendered = [r for r in server.requests if r["path"] == "/tokenize" and "messages" in r]
    assert len(rendered) == (1 if vllm else 0)
    if vllm:  # the answer too (the tiny model's text answers name partial characters, which only ids carry)
        answer = LM(Runtime(served)).chat(QUESTION, max_new_tokens=6)
        assert to_record(answer) == to_record(LM(Runtime(chat_backend)).chat(QUESTION, max_new_tokens=6))


def test_a_served_model_without_a_template_gets_the_same_clear_error(tiny_backend: Any, tmp_path: Path) -> None:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings

    server = FakeServer(tiny_backend, Behaviour(name="remote-model"))
    try:
        served = open_backend(f"{server.url}#remote-model", Settings(cache_dir=tmp_path, server_timeout=30))
        with pytest.raises(InputError, match="the served model 'remote-model' has no chat template"):
            LM(Runtime(served)).chat(QUESTION)
    finally:
        server.die()
