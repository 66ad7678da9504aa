"""A served model behind the same protocol: an OpenAI-compatible server on loopback (tests/fake_server.py, in vLLM's
shapes, answering from the tiny model) keeps the backend contract, passes the snapshots the in-process model
recorded, says what a lesser server cannot answer, and a server that dies ends the run with one message.

The same checks against a real vLLM server: `make served` (see tests/test_vllm.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_server import Behaviour, FakeServer
from tests.test_backend_contract import check_backend


@pytest.fixture
def serve(tiny_backend: Any, tiny_model: Path) -> Iterator[Any]:
    servers: list[FakeServer] = []

    def start(**behaviour: Any) -> FakeServer:
        behaviour.setdefault("name", str(tiny_model))
        servers.append(FakeServer(tiny_backend, Behaviour(**behaviour)))
        return servers[-1]

    yield start
    for server in servers:
        server.die()


def connected(server: FakeServer, tmp_path: Path) -> Any:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings

    return open_backend(f"{server.url}#{server.behaviour.name}", Settings(cache_dir=tmp_path, server_timeout=30))


def test_a_served_model_keeps_the_backend_contract(serve: Any, tmp_path: Path) -> None:
    server = serve()
    backend = connected(server, tmp_path)
    probes = len(server.requests)
    check_backend(backend, "Shakespeare was a")
    completions = [r for r in server.requests[probes:] if r["path"] == "/v1/completions"]
    assert all(isinstance(r["prompt"], list) for r in completions)  # the model reads our ids, not its own split
    assert backend.fingerprint()["engine"] == "vllm" and backend.fingerprint()["engine_version"] == "fake-0.32"


def test_a_model_not_here_is_read_through_the_servers_own_tokenizer(
    serve: Any, tmp_path: Path, tiny_backend: Any
) -> None:
    server = serve(name="remote-model")  # no local copy: /tokenize, /detokenize, and the vocabulary read once
    backend = connected(server, tmp_path)
    assert backend.fingerprint()["model_sha256"] == "unknown"
    assert backend.tokenize("Shakespeare was a") == tiny_backend.tokenize("Shakespeare was a")
    assert backend.vocabulary().pieces == tiny_backend.vocabulary().pieces
    check_backend(backend, "hello hello")
    reads = sum(r["path"] == "/detokenize" for r in server.requests)
    connected(server, tmp_path)  # the vocabulary is kept: a second connection reads no id again
    assert sum(r["path"] == "/detokenize" for r in server.requests) == reads


def test_a_list_of_prompts_is_one_request(serve: Any, tmp_path: Path) -> None:
    server = serve()
    backend = connected(server, tmp_path)
    rows = [backend.tokenize(p) for p in ("hello", "hello hello", "Review: good game")]
    before = len(server.requests)
    backend.next_logprobs(rows)
    backend.generate(rows, 4, [__import__("pytest_lmbehave.backends.sampling").backends.sampling.Policy()] * 3)
    assert len(server.requests) - before == 2


SPECS = """
def test_next(lm, lm_snapshot):
    assert lm.next_token("hello hello") == lm_snapshot

def test_generation(lm, lm_snapshot):
    assert lm.generate("hello", max_new_tokens=6) == lm_snapshot

def test_choice(lm, lm_snapshot):
    assert lm.choose("Review: good game. Decision:", [" good game", " bad game"]) == lm_snapshot

def test_steps(lm):
    generation = lm.generate("Shakespeare was a", max_new_tokens=5)
    assert [d.argmax_id for d in lm.steps(generation)] == list(generation.ids)

def test_logits(lm):
    lm.logits("hello")
"""


def test_a_served_copy_passes_the_snapshots_the_in_process_model_recorded(
    run_with_tiny: Any, serve: Any, tiny_model: Path
) -> None:
    run_with_tiny(SPECS, "--snapshot-update").assert_outcomes(passed=5)
    server = serve()
    result = run_with_tiny(SPECS, f"--lm-server={server.url}", "-rs")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(
        ["*3 snapshots passed*", "*SKIPPED*not available on this backend: lm.logits() needs the raw logits*"]
    )
    result.stderr.fnmatch_lines(["*vllm fake-0.32 at * serves * (top 20 candidates per position)*"])
    [header] = [line for line in result.stdout.lines if line.startswith("lmbehave: model")]
    assert header.endswith("(served; probed at the start of the session); base seed=0")  # none of this machine's
    assert "dtype=" not in header and "threads=" not in header  # numerics: the server's are its own


def test_a_server_without_prompt_scoring_says_so_and_its_specs_are_skipped_not_scored_at_chance(
    run_with_tiny: Any, serve: Any
) -> None:
    server = serve(prompt_logprobs=False, echo=False)  # llama.cpp's server: echo ignored, no prompt_logprobs
    result = run_with_tiny(SPECS, f"--lm-server={server.url}", "-rs", "--snapshot-update")
    result.stderr.fnmatch_lines(["*specs that need what it lacks are skipped*no log-probabilities of a given text*"])
    result.assert_outcomes(passed=2, skipped=3)
    assert result.stdout.str().count("reports no log-probabilities of a given text") == 2  # choose, steps


def test_a_server_whose_echo_scores_are_one_token_off_is_not_used_for_scoring(run_with_tiny: Any, serve: Any) -> None:
    # llama-cpp-python 0.3.36 answers echo with each prompt token's log-probability after that token, not before it:
    # the probe compares echo with a next-token question and drops it, so nothing is scored with the wrong numbers.
    server = serve(prompt_logprobs=False, echo_shifted=True)
    result = run_with_tiny(SPECS, f"--lm-server={server.url}", "-rs", "--snapshot-update")
    result.stderr.fnmatch_lines(["*no log-probabilities of a given text*agree with the next-token answers*"])
    result.assert_outcomes(passed=2, skipped=3)
    aligned = run_with_tiny(SPECS, f"--lm-server={serve(prompt_logprobs=False).url}", "--snapshot-update")
    assert "no log-probabilities of a given text" not in aligned.stderr.str()


def test_a_server_that_names_tokens_by_text_is_read_back_through_the_vocabulary(run_with_tiny: Any, serve: Any) -> None:
    # llama-cpp-python's server names each token by its text: a text that names one id reads back as that id; one
    # that names none (a part of a character, '\ufffd') makes that question unavailable, never a wrong id.
    server = serve(vllm=False)
    result = run_with_tiny(SPECS, f"--lm-server={server.url}", "-rs", "--snapshot-update")
    result.stderr.fnmatch_lines(["*no token ids in its log-probabilities*read back from their text*"])
    result.assert_outcomes(passed=3, skipped=2)
    result.stdout.fnmatch_lines(["*named a generated token by its text '\ufffd', which names no single id*"])


def test_asking_for_more_candidates_than_the_server_reports_is_a_clear_skip(run_with_tiny: Any, serve: Any) -> None:
    server = serve(max_logprobs=5)
    source = (
        "def test_top(lm):\n    assert len(lm.next_token('hello').top(5)) == 5\n    lm.next_token('hello').top(8)\n"
    )
    result = run_with_tiny(source, f"--lm-server={server.url}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*top(k=8): the served model reports at most 5 candidates (its --max-logprobs)*"])


def test_a_busy_server_is_retried_and_an_unreachable_one_is_a_usage_error(run_with_tiny: Any, serve: Any) -> None:
    server = serve(failures=2)  # two HTTP 503 answers, then the real one
    run_with_tiny("def test_next(lm):\n    lm.next_token('hello')\n", f"--lm-server={server.url}").assert_outcomes(
        passed=1
    )
    server.die()
    result = run_with_tiny("def test_next(lm):\n    pass\n", f"--lm-server={server.url}", "--lm-server-timeout=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-model: the server at * stopped answering*curl *health*"])


KILLED = """
import json, urllib.request

def test_1(lm):
    lm.next_token("hello")

def test_2(lm):
    lm.generate("hello", max_new_tokens=3)
    url = lm.fingerprint["model"].split("#")[0][: -len("/v1")] + "/die"
    urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"))

def test_3(lm):
    lm.next_token("hello world")

def test_4(lm):
    lm.next_token("Review: good game")
"""


def test_a_server_that_dies_mid_run_ends_it_with_one_message_and_no_half_written_file(
    pytester: pytest.Pytester, serve: Any, tiny_model: Path
) -> None:
    server = serve()
    pytester.makepyfile(KILLED)
    result = pytester.runpytest_subprocess(
        f"--lm-server={server.url}", f"--lm-model={tiny_model}", "--lm-report=report.json", "-p", "no:randomly",
        "--lm-server-timeout=5",
    )  # fmt: skip
    text = result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)  # test_4 never ran
    assert text.count("stopped answering") <= 3 and "Traceback" not in text
    result.stdout.fnmatch_lines(["*Interrupted: pytest-lmbehave: the server at * stopped answering*"])
    report = json.loads((pytester.path / "report.json").read_text())  # whole, with what ran before
    assert sorted(t.split("::")[1] for t in report["observations"]) == ["test_1", "test_2"]


def test_the_fake_server_answers_in_the_shapes_a_real_vllm_answered_in(serve: Any, tiny_backend: Any) -> None:
    """Every request the served backend sends, to the fake server and (recorded by `make served`) to vLLM 0.32: the
    same HTTP status, and nothing in the fake's answer that the real one lacks or holds as another kind."""
    import os

    from tests import vllm_shapes

    recorded = Path(os.environ.get("LMBEHAVE_VLLM_RESPONSES") or Path(__file__).with_name("vllm_responses.json"))
    real = json.loads(recorded.read_text())
    server = serve()
    fake = vllm_shapes.answers(server.url.removesuffix("/v1"), server.behaviour.name, tiny_backend.tokenize)
    assert fake.keys() == real.keys() == vllm_shapes.REQUESTS.keys()
    for name in fake:
        assert fake[name]["status"] == real[name]["status"], name
        where = vllm_shapes.missing(vllm_shapes.shape(fake[name]["body"]), vllm_shapes.shape(real[name]["body"]))
        assert where == [], f"{name}: the fake answers what vLLM does not: {where}"
    # The check can fail: an answer of another shape is caught.
    wrong = {"choices": [{"index": "0", "logprobs": {"tokens": [1]}}]}
    assert vllm_shapes.missing(vllm_shapes.shape(wrong), vllm_shapes.shape(real["greedy"]["body"]))


def test_a_refusal_the_probe_did_not_predict_fails_the_test_with_the_request_and_the_servers_words(
    run_with_tiny: Any, serve: Any
) -> None:
    server = serve(refuse="top_p")  # only sampled generations send top_p: nothing the probe asks
    source = (
        "from pytest_lmbehave import sampled\n\n"
        "@sampled(top_p=0.9)\ndef test_sampled(lm):\n    lm.generate('hello', max_new_tokens=3)\n\n"
        "def test_greedy(lm):\n    lm.generate('hello', max_new_tokens=3)\n"
    )
    result = run_with_tiny(source, f"--lm-server={server.url}", "-rs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*ServerRefused: the server at * refused generation with HTTP 400: unknown field 'top_p' (request: *"
         "prompt=1 row(s) of * token ids*top_p=0.9*"]
    )  # fmt: skip


def test_a_temperature_the_probe_found_too_hot_is_a_skip_with_the_reason(run_with_tiny: Any, serve: Any) -> None:
    server = serve()  # refuses temperatures above 2, in vLLM's words
    source = (
        "from pytest_lmbehave import sampled\n\n"
        "@sampled(temperature=14.0)\ndef test_hot(lm):\n    lm.generate('hello', max_new_tokens=3)\n\n"
        "@sampled(temperature=1.5)\ndef test_warm(lm):\n    lm.generate('hello', max_new_tokens=3)\n"
    )
    result = run_with_tiny(source, f"--lm-server={server.url}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*temperature=14: the server at * samples at temperatures up to 2 only*"])
    result.stderr.fnmatch_lines(["*no sampling temperature above 2*"])


def test_a_run_where_every_model_test_was_skipped_says_so(run_with_tiny: Any, serve: Any) -> None:
    server = serve()  # no raw logits over HTTP: both tests need them
    source = "def test_a(lm):\n    lm.logits('hello')\n\n\ndef test_b(lm):\n    lm.logits('hello hello')\n"
    result = run_with_tiny(source, f"--lm-server={server.url}")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*every test that uses a model was skipped (2 of them): nothing about the model*"])
    checked = run_with_tiny("def test_next(lm):\n    lm.next_token('hello')\n", f"--lm-server={serve().url}")
    assert "every test that uses a model was skipped" not in checked.stdout.str()


def test_many_rows_come_back_on_their_own_prompts(serve: Any, tmp_path: Path, tiny_backend: Any) -> None:
    """More rows than one request holds (32): every request's indices start at 0, and each answer stays with the
    prompt it was asked for."""
    backend = connected(serve(), tmp_path)
    rows = [tiny_backend.tokenize("hello " * (1 + i % 7) + ("world" if i % 2 else "model")) for i in range(34)]
    rows = [[*row[: 1 + i % len(row)], i % 50] for i, row in enumerate(rows)]  # 34 different prompts
    assert len({tuple(r) for r in rows}) == 34
    served = backend.next_logprobs(rows)
    local = tiny_backend.next_logprobs(rows)
    assert [int(s.values.argmax()) for s in served] == [int(n.values.argmax()) for n in local]
    assert [round(float(s.values.max()), 4) for s in served] == [round(float(n.values.max()), 4) for n in local]


def test_an_answer_with_fewer_choices_than_prompts_is_an_error_naming_the_request(serve: Any, tmp_path: Path) -> None:
    from pytest_lmbehave.backends.sampling import Policy
    from pytest_lmbehave.backends.served.http import ServerAnswer

    backend = connected(serve(short=True), tmp_path)
    rows = [backend.tokenize(p) for p in ("hello", "hello hello", "Review: good game")]
    with pytest.raises(ServerAnswer, match=r"with 2 choice\(s\) .* for 3 prompt\(s\).*prompt=3 row\(s\) of"):
        backend.next_logprobs(rows)
    with pytest.raises(ServerAnswer, match="generation"):
        backend.generate(rows, 3, [Policy()] * 3)


def test_two_servers_of_one_model_name_never_share_a_cache_entry(serve: Any, tmp_path: Path) -> None:
    from pytest_lmbehave.runtime.store import ObservationStore

    first, second = connected(serve(), tmp_path), connected(serve(), tmp_path)
    assert first.fingerprint()["served_model"] == second.fingerprint()["served_model"]
    assert first.fingerprint()["server"] != second.fingerprint()["server"]
    assert first.fingerprint()["max_logprobs"] == "20" and first.fingerprint()["dtype"] == "unreported"
    cache = tmp_path / "observations"
    assert ObservationStore(cache, first.fingerprint()).folder != ObservationStore(cache, second.fingerprint()).folder


def test_draws_on_a_server_ask_for_the_top_k_they_are_held_to_and_name_the_flag_when_refused(
    serve: Any, tmp_path: Path
) -> None:
    from pytest_lmbehave import BackendUnavailable
    from pytest_lmbehave.backends.sampling import Policy, Sampling

    backend = connected(serve(max_logprobs=20), tmp_path)
    ids = backend.tokenize("Shakespeare was a", True)
    with pytest.raises(BackendUnavailable, match=r"refused them .*start vLLM with --max-logprobs 50"):
        backend.draws(ids, Policy(Sampling(top_k=50), 1), 10)
    with pytest.raises(BackendUnavailable, match="without top_k that is the whole vocabulary"):
        backend.draws(ids, Policy(Sampling(temperature=0.7), 1), 10)
    drawn = backend.draws(ids, Policy(Sampling(top_k=20), 1), 300)  # 250 and 50 choices: two requests
    assert len(drawn.tokens) == 300 and drawn.numbers.known == 20 and drawn.order is None


def test_draws_on_a_server_that_names_tokens_by_text_read_the_completion_text_and_ask_no_log_probabilities(
    serve: Any, tmp_path: Path, tiny_backend: Any
) -> None:
    """llama-cpp-python answers a draw in 2 ms and the same draw with logprobs=1 in 70 ms (measured on its 0.3.36
    server, the tokens named the same in 450 draws): the text names the token as well as the log-probabilities do."""
    from pytest_lmbehave.backends.sampling import Policy, Sampling, derive_seed

    server = serve(vllm=False)
    backend = connected(server, tmp_path)
    ids = backend.tokenize("Shakespeare was a", True)
    before = len(server.requests)
    sampling = Sampling(temperature=1.0, top_k=3)
    drawn = backend.draws(ids, Policy(sampling, 3), 12)
    asked = [r for r in server.requests[before:] if r["path"] == "/v1/completions" and r.get("seed") is not None]
    assert len(asked) == 12 and not any("logprobs" in r for r in asked)
    expected = [
        backend.generate([ids], 1, [Policy(sampling, derive_seed(3, f"draw-{i}"))])[0].ids[0] for i in range(12)
    ]
    assert drawn.tokens == expected and len(set(expected)) > 1


def test_lm_draws_takes_fewer_draws_by_default_where_each_is_a_decode_of_its_own(
    serve: Any, tmp_path: Path, tiny_runtime: Any
) -> None:
    from pytest_lmbehave.config import defaults
    from pytest_lmbehave.runtime.runtime import Runtime

    served = Runtime(connected(serve(max_logprobs=20), tmp_path))
    assert served.backend.decodes_each_draw and served.draw_count() == defaults.DRAWS_DECODED < defaults.DRAWS
    assert not tiny_runtime.backend.decodes_each_draw and tiny_runtime.draw_count() == defaults.DRAWS
