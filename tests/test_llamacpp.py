"""The llama.cpp engine (``--lm-engine llama.cpp``) on the embedded GGUF, read as it is: it keeps the contract every
backend keeps, reads the document's ids exactly as transformers does, names itself in the fingerprint, and is
refused, naming the fix, for a model it cannot run."""

from __future__ import annotations

import json
import math
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.backends import open as open_backend
from pytest_lmbehave.backends.protocol import Decoded
from pytest_lmbehave.backends.sampling import Policy, Sampling
from pytest_lmbehave.config.settings import Settings, default_cache_dir

from .conftest import document, document_prompts, write_wrong_step
from .test_backend_contract import check_backend

llama_cpp = pytest.importorskip("llama_cpp", reason="llama.cpp is an extra: pip install 'pytest-lmbehave[llamacpp]'")


@pytest.fixture(scope="module")
def llama() -> Any:
    return open_backend("embedded", Settings(engine="llama.cpp", cache_dir=default_cache_dir()))


def test_the_llama_cpp_backend_keeps_the_contract(llama: Any) -> None:
    check_backend(llama, "Shakespeare was a")


def test_llama_cpp_reads_every_document_prompt_as_the_documents_ids(llama: Any) -> None:
    doc = document()
    assert llama.tokenize(doc.SHAKESPEARE, special=False) == [4370, 10735, 436, 253]  # the document's ids
    from pytest_lmbehave.backends import open as again

    transformers = again("embedded", Settings(cache_dir=default_cache_dir()))
    for prompt in document_prompts():
        assert llama.tokenize(prompt) == transformers.tokenize(prompt), prompt
        assert llama.detokenize(llama.tokenize(prompt)) == prompt


def test_the_fingerprint_names_the_engine_its_version_and_the_weights(llama: Any) -> None:
    found = llama.fingerprint()
    assert found["engine"] == "llama.cpp"
    assert found["engine_version"] == llama_cpp.__version__
    assert found["dtype"] == "Q4_1"
    assert len(found["model_sha256"]) == 16
    assert "transformers" not in found  # what transformers computes is not what llama.cpp computes


def test_a_row_reads_the_same_whatever_was_read_before_it(llama: Any) -> None:
    doc = document()
    alone = llama.next_logprobs([llama.tokenize(doc.BOSTON_PLACES)])[0].values
    llama.next_logprobs([llama.tokenize(doc.FANEUIL)])
    after = llama.next_logprobs([llama.tokenize(doc.BOSTON_PLACES)])[0].values
    assert (alone == after).all()
    assert math.fsum(math.exp(float(v)) for v in alone) == pytest.approx(1.0, abs=1e-5)


def test_sampling_knobs_cut_the_distribution_as_they_say(llama: Any) -> None:
    ids = llama.tokenize("Shakespeare was a")
    [row] = llama.generate([ids], 12, [Policy(Sampling(temperature=1.0, top_k=1), 7)])
    assert row.ids == row.argmax_ids  # top-k 1 is greedy, whatever the seed
    [greedy] = llama.generate([ids], 12, [Policy()])
    assert row.ids == greedy.ids


def test_the_llama_cpp_engine_with_a_directory_model_is_a_usage_error_naming_the_fix(
    pytester: pytest.Pytester, tiny_model: Path
) -> None:
    pytester.makepyfile("def test_one(lm):\n    assert lm.tokenize('a')\n")
    result = pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}", "--lm-engine=llama.cpp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-engine=llama.cpp runs GGUF files*is a directory model*drop --lm-engine*"])


def test_a_long_row_reads_the_same_in_one_pass_token_by_token_and_from_a_shared_prefix(llama: Any) -> None:
    # llama.cpp computes 64 tokens or more at once by another path (1.84 apart in a logit, measured); the backend
    # reads at most 32 at a time, so none of these may differ by a bit.
    doc = document()
    first, second = (llama.tokenize(doc.few_shot_prompt(r)) for r in (doc.REVIEWS[0], doc.REVIEWS[3]))
    assert len(second) >= 64
    llama.generate([llama.tokenize("x")], 1, [Policy()])  # an unrelated row held in the context
    fresh = llama.forced_logprobs([(second[:1], second[1:])])[0]
    llama.next_logprobs([first])  # the shared beginning now held
    reused = llama.forced_logprobs([(second[:1], second[1:])])[0]
    stepped = [llama.next_logprobs([second[: i + 1]])[0] for i in range(1, len(second) - 1, 9)]
    assert all((a.values == b.values).all() for a, b in zip(fresh, reused))
    assert all((fresh[i].values == s.values).all() for i, s in zip(range(1, len(second) - 1, 9), stepped))


@pytest.fixture(scope="module")
def requantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded Q4_1 re-quantized by llama.cpp to Q8_0 and Q3_K_M (seconds each; made here, never committed)."""
    import importlib.util

    from pytest_lmbehave.backends import resolve

    spec = importlib.util.spec_from_file_location(
        "requantize", Path(__file__).parent.parent / "tools" / "requantize.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    folder = tmp_path_factory.mktemp("weights")
    source = resolve("embedded").path
    return {kind: tool.with_llama_cpp(source, folder / f"smol-{kind}.gguf", kind) for kind in ("Q8_0", "Q3_K_M")}


def scores_of(spec: str, engine: str = "llama.cpp") -> Any:
    from pytest_lmbehave.runtime.runtime import Runtime

    doc = document()
    return Runtime(open_backend(spec, Settings(engine=engine, cache_dir=default_cache_dir()))).score(doc.PROSE)


def test_a_coarser_quantization_moves_the_distributions_further_and_both_beyond_the_noise_floor(
    requantized: dict[str, Path],
) -> None:
    from pytest_lmbehave import assert_close
    from pytest_lmbehave.observations import closeness

    reference = scores_of("embedded")
    floor = assert_close(reference, scores_of("embedded"), "strict")  # the reference run twice: its noise floor
    q8 = assert_close(reference, scores_of(str(requantized["Q8_0"])), "standard")
    with pytest.raises(AssertionError) as failed:
        assert_close(reference, scores_of(str(requantized["Q3_K_M"])), "standard")
    q3 = assert_close(reference, scores_of(str(requantized["Q3_K_M"])), "relaxed")
    assert q3["mean_kl"] > q8["mean_kl"] > floor["mean_kl"] >= 0
    assert q3["p99_kl"] > q8["p99_kl"] > floor["p99_kl"]
    message = str(failed.value)
    assert "not standard-close" in message and "mean KL" in message and "thresholds: the same weights" in message
    assert closeness.PROFILES["standard"].mean_kl < q3["mean_kl"]


def test_the_same_weights_on_transformers_are_standard_close_to_llama_cpp_and_not_strict() -> None:
    from pytest_lmbehave import assert_close

    reference, other = scores_of("embedded"), scores_of("embedded", engine="transformers")
    found = assert_close(reference, other, "standard")
    assert found["positions"] == len(reference.ids) - 1
    with pytest.raises(AssertionError, match="not strict-close"):
        assert_close(reference, other, "strict")


def test_weights_whose_batched_kernel_differs_are_read_token_by_token_and_agree_however_asked(
    requantized: dict[str, Path],
) -> None:
    # Q3_K_M falls back to Q4_0/Q5_0 on SmolLM2's 576-wide tensors, which llama.cpp computes by another kernel for
    # any batch of more than one token: the backend finds it at load and reads such a model token by token.
    coarse = open_backend(str(requantized["Q3_K_M"]), Settings(engine="llama.cpp", cache_dir=default_cache_dir()))
    assert coarse.chunk == 1 and coarse.fingerprint()["batch"] == "1"
    ids = coarse.tokenize(document().PROSE)[:12]
    forced = coarse.forced_logprobs([(ids[:1], ids[1:])])[0]
    for i in (1, 6, 10):
        assert (coarse.next_logprobs([ids[: i + 1]])[0].values == forced[i].values).all()
    assert open_backend(str(requantized["Q8_0"]), Settings(engine="llama.cpp", cache_dir=default_cache_dir())).chunk > 1


def test_each_simd_level_compares_against_the_llama_cpp_variant_recorded_on_it() -> None:
    # llama.cpp's quantized kernels differ between its AVX2 and AVX-512 builds (" master" 0.2688 against 0.2619,
    # other greedy texts): a run picks the variant recorded on its own level, whatever else it shares.
    from pytest_lmbehave.plugin.snapshot_sets import choose_variant

    specs = Path(__file__).resolve().parent.parent / "specs"
    for level, variant in (("AVX2", "embedded@llama.cpp"), ("AVX512", "embedded@llama.cpp-avx512")):
        now = {"engine": "llama.cpp", "dtype": "Q4_1", "device": "cpu", "cpu_capability": level}
        name, reason = choose_variant(specs, "embedded", now, None)
        assert name == variant and reason == "recorded in this run's environment"
    other = {"engine": "llama.cpp", "dtype": "Q4_1", "device": "cpu", "cpu_capability": "NEON"}
    assert "it differs in cpu_capability" in choose_variant(specs, "embedded", other, None)[1]


# -- drafts: a greedy row's ids last time, verified by one teacher-forced pass --------------------------------------
def test_a_draft_verified_by_teacher_forcing_gives_decodings_result_byte_for_byte_and_a_wrong_one_changes_nothing(
    llama: Any,
) -> None:
    from pytest_lmbehave.backends.sampling import GREEDY

    doc = document()
    for prompt in (doc.SHAKESPEARE, doc.BOSTON_VISIT, doc.FANEUIL):
        row = llama.tokenize(prompt)
        [decoded] = llama.generate([row], 40, [GREEDY])
        [verified] = llama.generate([row], 40, [GREEDY], [decoded.ids])
        assert verified == Decoded(*astuple(decoded)[:5], verified=len(decoded.ids) - 1)  # every token but the last
        wrong = [*decoded.ids[:7], (decoded.ids[7] + 1) % llama.vocab_size, *decoded.ids[8:]]  # step 7 departs
        [corrected] = llama.generate([row], 40, [GREEDY], [wrong])
        assert corrected == Decoded(*astuple(decoded)[:5], verified=7)
        [longer] = llama.generate([row], 45, [GREEDY], [decoded.ids])  # decoding goes on past the draft
        assert longer.ids[:40] == decoded.ids and longer.logprobs[:40] == decoded.logprobs


def llama_cpp_own_loop(llama: Any, row: list[int], policy: Policy, steps: int) -> list[int]:
    """A sampled row as llama.cpp's own loop draws it: llama_sampler_sample on the context's last logits, then the
    token evaluated, step by step."""
    from pytest_lmbehave.backends.llamacpp.sampler import Sampler

    sampler = Sampler(llama.api, policy.sampling, policy.seed)
    try:
        llama._read(row)
        ids: list[int] = []
        for _ in range(steps):
            ids.append(sampler.draw(llama.llama.ctx))
            if ids[-1] in llama.stop_ids:
                break
            llama.llama.eval(ids[-1:])
        return ids
    finally:
        sampler.close()


def test_a_sampled_row_verified_from_its_draft_draws_what_llama_cpps_own_loop_draws(llama: Any) -> None:
    # Its sampler chain applied to each teacher-forced position's logits picks what llama_sampler_sample picks from
    # the context's last logits; a wrong step in the draft makes it decode from there, with the same result.
    row = llama.tokenize(document().SHAKESPEARE)
    for policy in (Policy(Sampling(top_k=50), seed=3), Policy(Sampling(temperature=0.7, top_p=0.9), seed=11)):
        [decoded] = llama.generate([row], 20, [policy])
        assert list(decoded.ids) == llama_cpp_own_loop(llama, row, policy, 20) and decoded.verified == 0
        [verified] = llama.generate([row], 20, [policy], [decoded.ids])
        assert verified == Decoded(*astuple(decoded)[:5], verified=len(decoded.ids) - 1)
        wrong = [*decoded.ids[:7], (decoded.ids[7] + 1) % llama.vocab_size, *decoded.ids[8:]]
        [corrected] = llama.generate([row], 20, [policy], [wrong])
        assert corrected == Decoded(*astuple(decoded)[:5], verified=7)


def test_a_wrong_step_written_into_both_the_llama_cpp_set_and_the_plan_still_fails(llama: Any, tmp_path: Path) -> None:
    import json
    import re
    import shutil
    import subprocess
    import sys

    specs = Path(__file__).resolve().parent.parent / "specs"
    (tmp_path / "specs").mkdir()
    for name in ["test_generation.py", "document.py", "conftest.py", "lmbehave-plan.json"]:
        shutil.copy(specs / name, tmp_path / "specs" / name)
    quiet = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--lm-engine=llama.cpp", "--lm-variant=mine"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest", "specs/test_generation.py", *quiet, "-k", "50_tokens", *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)

    done = run("-p", "no:xdist", "--snapshot-update")
    assert done.returncode == 0, done.stdout[-3000:]
    record = tmp_path / "specs" / "__lm_snapshots__" / "embedded@mine" / "test_generation.ambr"
    text = record.read_text()
    block = text.split("# name: test_greedy_generation_of_50_tokens[embedded]\n", 1)[1].split("# ---", 1)[0]
    ids = json.loads(re.search(r"^  ids: (\[.*\])$", block, flags=re.M).group(1))  # type: ignore[union-attr]
    numbers = llama.next_logprobs([[4370, 10735, 436, 253, *ids[:10]]])[0].values
    order = sorted(range(len(numbers)), key=lambda t: -float(numbers[t]))
    wrong = next(t for t in order if float(numbers[order[0]] - numbers[t]) >= 1.0)  # >= 1 nat behind the argmax
    write_wrong_step(tmp_path / "specs", record, ids, wrong)
    done = run("-n", "2", "--lm-plan=specs/lmbehave-plan.json")
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"first diverging token 10: recorded [{wrong}]" in done.stdout
    assert "a real change of behaviour" in done.stdout and "NEAR-TIE" not in done.stdout


def test_a_reference_engine_puts_each_positions_exact_kl_in_the_report_and_the_summary(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    from scipy.special import rel_entr, softmax

    from pytest_lmbehave.runtime.runtime import Runtime

    text = "Shakespeare was a great writer"
    pytester.makepyfile(f"def test_read(lm):\n    lm.next_token('Shakespeare was a')\n    lm.score({text!r})\n")
    path = tmp_path / "checked.json"
    result = pytester.runpytest(
        "-p", "no:randomly", "--lm-engine=llama.cpp", "--lm-reference=transformers", f"--lm-report={path}"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*KL divergence from the reference transformers over 6 position(s), exact (the full*"])
    [[next_token, scores]] = json.loads(path.read_text())["observations"].values()
    assert next_token["reference"]["engine"] == "transformers" and len(scores["reference"]["kl"]) == 5
    # Each number is KL(transformers || llama.cpp) over the whole vocabulary, as scipy computes it from the two.
    ours, theirs = (
        Runtime(open_backend("embedded", Settings(engine=engine, cache_dir=default_cache_dir()))).score(text)
        for engine in ("transformers", "llama.cpp")
    )
    assert ours.whole is not None and theirs.whole is not None
    direct = [
        float(rel_entr(softmax(a.astype(float)), softmax(b.astype(float))).sum())
        for a, b in zip(ours.whole, theirs.whole)
    ]
    assert scores["reference"]["kl"] == pytest.approx(direct, rel=1e-4, abs=1e-8)
    assert next_token["reference"]["kl"] == pytest.approx(direct[3:4], rel=1e-4, abs=1e-8)  # after "Shakespeare was a"
    assert min(direct) > 0 and scores["reference"]["same_top"] == [
        bool(a.argmax() == b.argmax()) for a, b in zip(ours.whole, theirs.whole)
    ]


def test_a_reference_engines_kl_is_told_without_a_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_read(lm):\n    lm.next_token('Shakespeare was a')\n")
    result = pytester.runpytest("-p", "no:randomly", "--lm-engine=llama.cpp", "--lm-reference=transformers")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*KL divergence from the reference transformers over 1 position(s), exact (the full*"])
    result.stdout.no_fnmatch_line("*observations from*written to*")
    assert not list(pytester.path.glob("*.json"))  # nothing written


def test_an_unchanged_llama_cpp_rerun_loads_no_model_and_observes_the_same(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_cached_rerun import SOURCE

    monkeypatch.setenv("LMBEHAVE_CACHE", str(tmp_path / "cache"))
    pytester.makepyfile(SOURCE)

    def run(report: str, *args: str) -> dict[str, Any]:
        result = pytester.runpytest_subprocess(
            "--lm-engine=llama.cpp", "--lm-cache", f"--lm-report={report}", "-p", "no:randomly", "-p", "no:xdist", *args
        )
        result.assert_outcomes(passed=SOURCE.count("def test_"))
        return json.loads((pytester.path / report).read_text())  # type: ignore[no-any-return]

    first = run("first.json")
    [computing] = first["processes"]
    assert computing["computed"] > 0 and computing["model_ready_s"]["embedded"] > 0
    second = run("second.json")
    [reading] = second["processes"]
    assert reading["computed"] == 0 and reading["from_disk"] > 0 and reading["model_ready_s"] == {}
    assert not reading["imported_torch"] and not reading["imported_scipy"]
    assert second["observations"] == first["observations"] and second["environments"] == first["environments"]
    # Another number of threads is another fingerprint: the model loads to learn it, and answers afresh.
    third = run("third.json", "--lm-threads=2")
    [relearning] = third["processes"]
    assert relearning["model_ready_s"]["embedded"] > 0 and relearning["computed"] > 0


OWN_DRAFTS_SPEC = """
from pytest_lmbehave import sampled


@sampled(top_k=50)
def test_a_sampled_continuation(lm):
    assert len(lm.generate("Shakespeare was a", 16).ids) == 16


def test_a_greedy_continuation(lm):
    assert lm.generate("Shakespeare was a", 8).ids
"""


def test_llama_cpp_keeps_its_own_sampled_drafts_in_the_plan_beside_transformers_and_verifies_them(
    pytester: pytest.Pytester,
) -> None:
    # transformers writes the plan; llama.cpp's update adds its own ids where they differ (the sampled row) and leaves
    # every byte of the plan's own entries as they were; the next llama.cpp run verifies the sampled row's draft.
    pytester.makepyfile(test_own=OWN_DRAFTS_SPEC)
    quiet = ["-p", "no:randomly", "-p", "no:xdist", "--lm-plan=plan.json"]
    pytester.runpytest_subprocess(*quiet, "--lm-plan-update").assert_outcomes(passed=2)
    plan = pytester.path / "plan.json"
    before = json.loads(plan.read_text())["tests"]
    llama = ["--lm-engine=llama.cpp", *quiet]
    pytester.runpytest_subprocess(*llama, "--lm-plan-update").assert_outcomes(passed=2)
    after = json.loads(plan.read_text())["tests"]
    own = after["test_own.py::test_a_sampled_continuation"][0]["drafts"]["llama.cpp"]
    assert len(own) == 16 and own != before["test_own.py::test_a_sampled_continuation"][0]["draft"]
    for entries in after.values():
        for entry in entries:
            entry.pop("drafts", None)
    assert after == before  # the rest of the plan as transformers wrote it
    pytester.runpytest_subprocess(*llama, "--lm-report=report.json").assert_outcomes(passed=2)
    [process] = json.loads((pytester.path / "report.json").read_text())["processes"]
    assert process["tokens_verified"] >= 15 + 7 and process["tokens_decoded"] <= 2
    pytester.runpytest_subprocess(*quiet, "--lm-plan-update").assert_outcomes(passed=2)  # transformers again
    [kept] = json.loads(plan.read_text())["tests"]["test_own.py::test_a_sampled_continuation"]
    assert kept["drafts"] == {"llama.cpp": own}  # kept through transformers' own update
