"""Faults and bad input: nothing lost, nothing poisoned, one clear message (each case failed before its fix)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pytest_lmbehave import LM
from pytest_lmbehave.backends.transformers import conversion
from pytest_lmbehave.backends.transformers import loading as models
from pytest_lmbehave.cli import main
from pytest_lmbehave.config.errors import InputError, ModelLoadError, ModelNotFoundError
from pytest_lmbehave.runtime.runtime import Runtime
from pytest_lmbehave.runtime.store import ObservationStore

# -- data loss and poisoning ------------------------------------------------------------------------------------

MANY_SNAPSHOTS = "\n".join(
    f"def test_{i}(lm, lm_snapshot):\n    assert lm.tokenize('hello {i}') == lm_snapshot\n" for i in range(12)
)
KILLER = """
import os, signal

def test_before(lm, lm_snapshot):
    assert lm.tokenize("before") == lm_snapshot

def test_killer(lm, lm_snapshot):
    if os.environ.get("LMBEHAVE_TEST_KILL"):
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies as under `kill -9`
    assert lm.tokenize("killer") == lm_snapshot

def test_after(lm, lm_snapshot):
    assert lm.tokenize("after") == lm_snapshot
"""


def test_a_worker_killed_during_an_xdist_update_deletes_no_snapshot(
    run_with_tiny, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_many=MANY_SNAPSHOTS, test_killed=KILLER)
    run_with_tiny("", "--snapshot-update", "-n", "2").assert_outcomes(passed=15)
    sets = sorted((pytester.path / "__lm_snapshots__" / "tiny-llama").glob("*.ambr"))
    before = {p.name: p.read_bytes() for p in sets}
    assert set(before) == {"test_killed.ambr", "test_many.ambr"}
    monkeypatch.setenv("LMBEHAVE_TEST_KILL", "1")
    result = run_with_tiny("", "--snapshot-update", "-n", "2")
    after = {p.name: p.read_bytes() for p in sets if p.exists()}
    assert after == before, "an update after a crashed worker changed or deleted snapshot files"
    result.stderr.fnmatch_lines(["*pytest-lmbehave: worker gw* crashed, so no snapshot is deleted as unused*"])


def test_changing_a_returned_distribution_does_not_poison_later_questions(tiny_runtime) -> None:  # type: ignore[no-untyped-def]
    runtime = Runtime(tiny_runtime.backend)
    lm = LM(runtime)
    expected = lm.next_token("hello hello")
    argmax, margin = expected.argmax_id, expected.margin
    lm.next_token("hello hello").logprobs[:] = 0  # a test that scribbles on what it was handed
    again = lm.next_token("hello hello")
    assert (again.argmax_id, again.margin) == (argmax, margin)
    assert lm.generate("hello hello", max_new_tokens=1).ids == (argmax,)
    token = lm.decode(argmax)
    assert lm.choose("hello hello", [token, " zz" if token != " zz" else " yy"]).best == token


# -- the conversion cache ------------------------------------------------------------------------------------------


def _fake_convert(gguf: Path, target: Path) -> None:
    (target / "model.safetensors").write_bytes(os.urandom(1 << 20))
    (target / "config.json").write_text("{}")


@pytest.fixture
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A GGUF whose conversion is faked (1 MB of random weights), so the cache logic runs in milliseconds."""
    monkeypatch.setattr(conversion, "_convert", _fake_convert)
    path = tmp_path / "w.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


def test_a_converted_model_damaged_in_place_is_detected_and_rebuilt(gguf: Path, tmp_path: Path) -> None:
    entry = conversion.converted_entry(gguf, "abc", tmp_path / "cache", lambda _: None)
    weights = entry / "model.safetensors"
    built = weights.read_bytes()
    with open(weights, "r+b") as handle:  # randomise 64 KB in the middle, keeping the size
        handle.seek(len(built) // 2)
        handle.write(os.urandom(1 << 16))
    messages: list[str] = []
    conversion.converted_entry(gguf, "abc", tmp_path / "cache", messages.append)
    assert any("model.safetensors does not hold the bytes it was built with" in m for m in messages), messages
    assert weights.read_bytes() != built  # rebuilt (the fake converter writes new random bytes)
    quiet: list[str] = []
    conversion.converted_entry(gguf, "abc", tmp_path / "cache", quiet.append)
    assert quiet == []  # an unchanged entry is checked by size and mtime, not hashed again


def test_a_killed_builds_leftover_folder_is_removed_by_the_next_build(gguf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stale = cache / f".{conversion.cache_key('abc')}.building-x1"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    conversion.converted_entry(gguf, "abc", cache, lambda _: None)
    assert not stale.exists()


def test_a_truncated_gguf_stops_the_run_with_one_message(pytester: pytest.Pytester, tmp_path: Path) -> None:
    truncated = tmp_path / "t.gguf"
    with open(models.embedded_gguf(), "rb") as handle:
        truncated.write_bytes(handle.read(1 << 20))
    pytester.makepyfile("\n".join(f"def test_{i}(lm): pass" for i in range(6)))
    result = pytester.runpytest_subprocess("-p", "no:randomly", f"--lm-model={truncated}")
    text = result.stdout.str() + result.stderr.str()
    # One error (the first test's setup), its message once, no traceback; the summary line repeats it (in full
    # when CI is set, cut to the terminal's width otherwise).
    result.assert_outcomes(errors=1)
    assert [line for line in text.splitlines() if line.startswith("ModelLoadError: could not read the GGUF file")]
    assert text.count("could not read the GGUF file") <= 2 and "Traceback" not in text
    result.stdout.fnmatch_lines(["*could not be loaded (ModelLoadError, shown above); stopped*"])
    assert main(["explore", "hello", "--model", str(truncated)]) == 2


# -- bad values reach no deeper than the API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda lm: lm.next_token("hello").rank(-1), "token id -1 is outside the vocabulary"),
        (lambda lm: lm.next_token("hello").prob(999999), "token id 999999 is outside the vocabulary"),
        (lambda lm: lm.next_token("hello").top(10**6), "k must be a whole number from 1 to the vocabulary size"),
        (lambda lm: lm.decode([999999]), "token id 999999 is outside the vocabulary"),
        (lambda lm: lm.generate([999999, 5], max_new_tokens=2), "token id 999999 is outside the vocabulary"),
        (lambda lm: lm.next_token([-5, 3]), "token id -5 is outside the vocabulary"),
        (lambda lm: lm.logits([999999]), "token id 999999 is outside the vocabulary"),
        (lambda lm: lm.choose("hello", [" a", " a"]), "name ' a' more than once"),
    ],
    ids=["rank", "prob", "top", "decode", "generate", "next_token", "logits", "duplicate-options"],
)
def test_a_bad_id_or_size_is_an_input_error_that_names_the_valid_range(tiny_runtime, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=re.escape(message)):
        call(LM(tiny_runtime))


def test_choose_takes_token_ids_as_its_prompt(tiny_runtime) -> None:  # type: ignore[no-untyped-def]
    lm = LM(tiny_runtime)
    ids = list(lm.tokenize("Review: good game. Decision:").ids)
    by_ids, by_text = lm.choose(ids, [" good", " bad"]), lm.choose("Review: good game. Decision:", [" good", " bad"])
    assert by_ids.scores == pytest.approx(by_text.scores, abs=1e-5)


def test_an_lm_top_larger_than_the_vocabulary_is_one_clear_error(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny("def test_a(lm):\n    pass\n\ndef test_b(lm):\n    pass\n", "--lm-top=100000")
    result.stdout.fnmatch_lines(["*--lm-top=100000 is larger than the vocabulary of * (300 tokens); pass at most*"])
    assert "passed" not in result.parseoutcomes()


def test_a_bad_plan_entry_is_dropped_with_a_note_and_the_rest_is_used(run_with_tiny, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    plan = {
        "format": "pytest-lmbehave plan",
        "version": 1,
        "base_seed": 0,
        "tests": {
            "test_a_bad_plan_entry_is_dropped_with_a_note_and_the_rest_is_used.py::test_next": [
                {"kind": "next", "prompt": ""},
                {"kind": "next", "prompt": [999999, 1]},
                {"kind": "next", "prompt": "hello hello"},
            ]
        },
    }
    (pytester.path / "lmbehave-plan.json").write_text(json.dumps(plan))
    result = run_with_tiny("def test_next(lm):\n    assert lm.next_token('hello hello').argmax\n")
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(["*1 unreadable request(s) dropped*", "*1 request(s) of the plan dropped*"])


# -- files and paths -----------------------------------------------------------------------------------------------


def test_a_cache_folder_that_is_a_file_is_a_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("LMBEHAVE_CACHE", str(blocker))
    pytester.makepyfile("def test_one(lm): pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*the cache folder {blocker} cannot be used*point LMBEHAVE_CACHE at a directory*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--lm-report={dir}", "--lm-report={dir}: {dir} is a directory; pass a file path such as report.json"),
        ("--lm-plan={file}/plan.json", "--lm-plan: {file} is a file, not a directory; pass a file path"),
        ("--lm-plan={dir}", "--lm-plan: {dir} is a directory; pass a file path such as lmbehave-plan.json"),
    ],
    ids=["report-is-a-directory", "plan-under-a-file", "plan-is-a-directory"],
)
def test_an_unwritable_report_or_plan_path_is_a_usage_error_before_any_test(
    pytester: pytest.Pytester, tmp_path: Path, option: str, message: str
) -> None:
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("x")
    pytester.makepyfile("def test_one(): pass\n")
    result = pytester.runpytest("-p", "no:randomly", option.format(dir=folder, file=file), "--lm-plan-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message.format(dir=folder, file=file)}*"])


def test_a_damaged_snapshot_file_says_so_names_the_last_whole_record_and_how_to_restore_it(
    run_with_tiny, pytester: pytest.Pytester
) -> None:  # type: ignore[no-untyped-def]
    source = "\n".join(
        f"def test_{i}(lm, lm_snapshot):\n    assert lm.tokenize('w{i}') == lm_snapshot\n" for i in range(3)
    )
    run_with_tiny(source, "--snapshot-update").assert_outcomes(passed=3)
    [path] = (pytester.path / "__lm_snapshots__" / "tiny-llama").glob("*.ambr")
    shown = path.relative_to(pytester.path)
    text = path.read_text()
    path.write_text(text[: text.index("test_2") + 30])  # cut inside the last record, mid-line
    result = run_with_tiny(source)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*{shown} is damaged: it ends in the middle of a record (the last whole record is 'test_1[[]tiny-llama[]]'); "
            f"restore it with `git checkout -- {shown}`, or record it again with `pytest --snapshot-update`*"
        ]
    )
    run_with_tiny(source, "--snapshot-update").assert_outcomes(passed=3)  # an update mends it
    run_with_tiny(source).assert_outcomes(passed=3)


def test_lock_files_left_by_an_interrupted_update_are_removed_by_the_next_run(
    run_with_tiny, pytester: pytest.Pytester
) -> None:  # type: ignore[no-untyped-def]
    source = "def test_0(lm, lm_snapshot):\n    assert lm.tokenize('w') == lm_snapshot\n"
    run_with_tiny(source, "--snapshot-update").assert_outcomes(passed=1)
    folder = pytester.path / "__lm_snapshots__" / "tiny-llama"
    [path] = folder.glob("*.ambr")
    leftovers = [Path(f"{path}.lock"), Path(f"{path}.tmp")]
    for leftover in leftovers:
        leftover.write_text("")
    result = run_with_tiny(source)
    result.assert_outcomes(passed=1)
    assert not any(p.exists() for p in leftovers)
    result.stderr.fnmatch_lines([f"*removed {leftovers[0]}, left by an interrupted snapshot update*"])


def test_syrupys_incomplete_xdist_reports_warning_does_not_become_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import warnings

def pytest_sessionfinish(session):
    warnings.warn(
        "syrupy: received 0 of 2 xdist worker snapshot reports; unused snapshot detection skipped to avoid false removals",
        UserWarning,
    )
"""
    )
    pytester.makeini("[pytest]\nfilterwarnings = error\n")  # as this repository's own configuration has it
    pytester.makepyfile("def test_one(): pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == 0 and "Traceback" not in result.stdout.str()


def test_report_and_plan_files_get_the_umasks_mode(run_with_tiny, pytester: pytest.Pytester, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "run.json"
    run_with_tiny("def test_a(lm):\n    lm.next_token('hello')\n", f"--lm-report={report}", "--lm-plan-update")
    mask = os.umask(0o022)
    os.umask(mask)
    for path in (report, pytester.path / "lmbehave-plan.json"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


# -- the command line ----------------------------------------------------------------------------------------------

EMPTY_REPORT = '{"format": "pytest-lmbehave report", "version": 1, "environments": {}, "observations": {}}'


def test_diff_html_into_a_directory_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(EMPTY_REPORT)
    assert main(["diff", str(good), str(good), "--html", str(tmp_path)]) == 2
    assert f"--html {tmp_path}: {tmp_path} is a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["diff", "a.json", "b.json", "--prob", "-1"], ["explore", "hello", "--samples", "0"]],
    ids=["diff-negative-threshold", "explore-zero-samples"],
)
def test_a_meaningless_number_on_the_command_line_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_diff_pairs_snapshot_tests_of_two_models_by_node_id_without_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def report(model: str, slug: str, argmax: str) -> str:
        record = {"model": model, "kind": "next_token", "prompt": "p", "argmax": argmax, "margin": 2.0, "top": []}
        return json.dumps(
            {
                "format": "pytest-lmbehave report",
                "version": 1,
                "environments": {},
                "observations": {f"specs/test_a.py::test_next[{slug}]": [record]},
            }
        )

    (tmp_path / "a.json").write_text(report("embedded", "embedded", " master"))
    (tmp_path / "b.json").write_text(report("HuggingFaceTB/SmolLM2-360M", "HuggingFaceTB--SmolLM2-360M", " great"))
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    out = capsys.readouterr().out
    assert "1 observations compared" in out and "top-1 flip" in out
    assert "specs/test_a.py::test_next[embedded]  <->  specs/test_a.py::test_next[HuggingFaceTB--SmolLM2-360M]" in out


# -- the runtime and model lookup -----------------------------------------------------------------------------------


def test_forget_recomputes_instead_of_reading_the_disk_cache(tiny_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fingerprint = tiny_runtime.fingerprint
    LM(Runtime(tiny_runtime.backend, ObservationStore(tmp_path, fingerprint))).next_token("hello")
    runtime = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, fingerprint))
    LM(runtime).next_token("hello")
    assert runtime.stats["from_disk"] == 1
    runtime.forget()
    LM(runtime).next_token("hello")
    assert (runtime.stats["from_disk"], runtime.stats["computed"]) == (1, 1)


def test_only_a_model_missing_from_the_hub_cache_counts_as_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def broken(*args: object, **kwargs: object) -> str:
        raise PermissionError("the cache folder is not readable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", broken)
    with pytest.raises(ModelLoadError, match="PermissionError: the cache folder is not readable"):
        models.resolve("HuggingFaceTB/SmolLM2-360M")

    def missing(*args: object, **kwargs: object) -> str:
        from huggingface_hub.errors import LocalEntryNotFoundError

        raise LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(ModelNotFoundError, match="is not in the local Hugging Face cache"):
        models.resolve("HuggingFaceTB/SmolLM2-360M")


def test_a_llama_cpp_built_with_its_amx_kernels_is_refused_naming_the_rebuild_before_it_can_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from pytest_lmbehave.backends import llamacpp
    from pytest_lmbehave.backends import resolve as resolve_model
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    # What llama.cpp 0.3.36's system info said on an Intel Xeon with AMX, built with -march=native: every batched
    # evaluation then crashed the process (a segfault in ggml_backend_amx_mul_mat).
    info = b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 | "
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(llama_print_system_info=lambda: info))
    settings = Settings(engine="llama.cpp", cache_dir=default_cache_dir())
    with pytest.raises(ModelLoadError, match=r"AMX kernels .* crash .*CFLAGS='-mno-amx-tile -mno-amx-int8"):
        llamacpp.open(resolve_model("embedded"), settings)
