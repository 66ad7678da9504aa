"""The plugin as pytest sees it: options, markers, fixtures, header and failure messages (through pytester)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_every_option_shows_in_pytest_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in (
        "--lm-model",
        "--lm-dtype",
        "--lm-device",
        "--lm-threads",
        "--lm-attention",
        "--lm-seed",
        "--lm-top",
        "--lm-plan",
        "--lm-plan-update",
        "--lm-cache",
    ):
        result.stdout.fnmatch_lines([f"*{option}*"])
    result.stdout.fnmatch_lines(["*lm_model (string)*"])


def test_markers_are_registered_so_strict_markers_accepts_them(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.greedy*",
            "@pytest.mark.sampled(seed=None, temperature=None, top_p=None, top_k=None)*",
            "@pytest.mark.lm_model(spec, expect=None)*",
        ]
    )


def test_the_header_shows_model_numerics_versions_and_seed_in_two_lines(run_with_tiny, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny("def test_model(lm): pass", "--lm-seed=41")
    result.stdout.fnmatch_lines(
        [
            f"lmbehave: model {tiny_model} = tiny-llama (directory, sha256 *); dtype=float32 device=cpu threads=1 "
            "attention=sdpa base seed=41",
            "lmbehave: torch=* transformers=* tokenizers=* gguf=* lmbehave=* decoding=* cpu=*",
        ]
    )
    assert sum(line.startswith("lmbehave: ") for line in result.stdout.lines) == 2


def test_a_run_with_no_test_that_uses_a_model_prints_no_lmbehave_lines(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    for args in ((), ("-n", "2")):
        result = run_with_tiny("def test_nothing():\n    assert 1 + 1 == 2\n", *args)
        result.assert_outcomes(passed=1)
        ours = [
            line
            for line in result.stdout.lines + result.stderr.lines
            if line.startswith(("lmbehave:", "pytest-lmbehave:"))
        ]
        assert ours == [], args


def test_under_xdist_the_header_comes_in_the_summary(run_with_tiny, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny("def test_model(lm):\n    lm.next_token('hello')\n", "-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"lmbehave: model {tiny_model} = tiny-llama*", "lmbehave: torch=*", "*1 passed*"])


def test_model_choice_follows_option_then_ini_then_environment(
    pytester: pytest.Pytester, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("from-env", "from-ini", "from-cli"):  # each must exist: an explicit model is checked at start
        (pytester.path / name).symlink_to(tiny_model, target_is_directory=True)
    pytester.makepyfile("def test_model(lm_settings): print('MODEL', lm_settings.model)")
    monkeypatch.setenv("LMBEHAVE_MODEL", "from-env")
    pytester.makeini("[pytest]\nlm_model = from-ini\n")
    first = pytester.runpytest("-s")
    assert "MODEL from-ini" in first.stdout.str(), first.stderr.str()
    assert "MODEL from-cli" in pytester.runpytest("-s", "--lm-model=from-cli").stdout.str()
    pytester.makeini("[pytest]\n")
    assert "MODEL from-env" in pytester.runpytest("-s").stdout.str()


def test_a_bad_option_value_is_a_usage_error_that_says_the_fix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--lm-dtype=float8")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-dtype='float8' is not supported; choose one of: float32, bfloat16, float16*"])
    result = pytester.runpytest("--lm-threads=0")
    result.stderr.fnmatch_lines(["*--lm-threads=0 is too small; it must be at least 1*"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_cuda_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--lm-device=cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-device=cuda was asked for, but torch sees no CUDA device*drop the option*"])


def test_a_failed_next_token_expectation_shows_the_top_candidates_and_the_rank(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        """
        def test_next(lm):
            dist = lm.next_token("hello hello")
            wrong = dist.top(3)[2].piece
            assert dist == wrong
        """
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*next token after 'hello hello': expected *, the model's top candidate is*",
            "*has rank 3 with p=0.*",
            "*top 5 (margin of the top candidate:*",
            "*1. *p=0.*",
            "*5. *p=0.*",
        ]
    )


def test_a_failed_tokenization_shows_expected_and_actual_pieces_side_by_side(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        """
        def test_tokens(lm):
            expected = list(lm.tokenize("hello world").pieces)
            expected[1] = "MISSING"
            assert lm.tokenize("hello world") == expected
        """
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*tokenization of 'hello world': * tokens, expected *",
            "*#  expected*actual*id*",
            "*0  '*'  *'*",
            "*1  'MISSING'*!='*",
        ]
    )


def test_a_failed_generation_shows_where_the_texts_part_and_the_candidates_there(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        """
        def test_generation(lm):
            generation = lm.generate("hello", max_new_tokens=4)
            assert generation == generation.pieces[0] + "\\u2603"
        """
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*generation after 'hello' (greedy):*",
            "*the texts part at character *, in new token 1*",
            "*top 5 at that step:*",
        ]
    )


FAILING_TWICE = """
def test_next(lm):
    dist = lm.next_token("hello hello")
    assert dist == dist.top(3)[2].piece

def test_generation(lm):
    generation = lm.generate("hello", max_new_tokens=4)
    assert generation == generation.pieces[0] + "\\u2603"
"""


def test_lm_top_sets_how_many_candidates_a_failure_shows_at_default_verbosity(  # type: ignore[no-untyped-def]
    run_with_tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("CI", "BUILD_NUMBER"):  # pytest never truncates on CI
        monkeypatch.delenv(variable, raising=False)
    result = run_with_tiny(FAILING_TWICE, "--lm-top=8")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    assert "top 8 (margin of the top candidate:" in text and "top 8 at that step:" in text
    assert text.count("  8. ") == 2 and "  9. " not in text and "top 5" not in text
    assert "Full output truncated" not in text
    # Limits the user set are theirs: pytest cuts the same explanation again.
    limited = run_with_tiny(FAILING_TWICE, "--lm-top=8", "-o", "truncation_limit_lines=6")
    assert "Full output truncated" in limited.stdout.str()


def test_sampled_tests_get_a_seed_from_the_base_seed_and_node_id_whatever_the_order(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    import re

    source = """
        from pytest_lmbehave import sampled

        @sampled(temperature=1.0)
        def test_a(lm):
            print("<A", lm.seed, lm.generate("hello", 5).ids, ">")

        @sampled(temperature=1.0)
        def test_b(lm):
            print("<B", lm.seed, lm.generate("hello", 5).ids, ">")
        """

    def observed(*args: str) -> dict[str, str]:
        out = run_with_tiny(source, "-s", *args).stdout.str()
        return {m.group(1): m.group(2) for m in re.finditer(r"<([AB]) (.*?) >", out)}

    module = "test_sampled_tests_get_a_seed_from_the_base_seed_and_node_id_whatever_the_order.py"
    forward = observed()
    assert set(forward) == {"A", "B"}
    assert observed(f"{module}::test_b", f"{module}::test_a") == forward
    assert observed(f"{module}::test_b") == {"B": forward["B"]}
    assert forward["A"] != forward["B"]
    changed = observed("--lm-seed=1")
    assert changed["A"] != forward["A"] and changed["B"] != forward["B"]


def test_a_seed_on_the_marker_fixes_the_sample(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        """
        import pytest
        from pytest_lmbehave import LM, Sampling

        @pytest.mark.sampled(seed=3, top_p=0.9)
        def test_fixed(lm):
            assert lm.seed == 3 and lm.sampling == Sampling(top_p=0.9, seed=3)
            again = LM(lm.runtime, Sampling(top_p=0.9, seed=3), 3)
            assert lm.generate("hello", 5).ids == again.generate("hello", 5).ids

        def test_greedy_by_default(lm):
            assert lm.sampling is None
        """
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "@pytest.mark.sampled(temprature=2)",
            "@pytest.mark.sampled(temprature=2) is not valid: got an unexpected keyword argument 'temprature'; the marker takes sampled(seed=None, temperature=None, top_p=None, top_k=None)",
        ),
        ("@pytest.mark.sampled(temperature=0)", "temperature=0 must be a number > 0"),
        ("@pytest.mark.sampled(top_p=0)", "top_p=0 must lie in (0, 1]"),
        ("@pytest.mark.greedy(3)", "@pytest.mark.greedy(3) is not valid"),
        ("@pytest.mark.lm_model()", "@pytest.mark.lm_model() is not valid: missing a required argument: 'spec'"),
    ],
)
def test_a_bad_marker_fails_its_test_with_a_message_that_names_it(run_with_tiny, marker: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(f"import pytest\n\n{marker}\ndef test_marked(lm):\n    pass\n")
    result.assert_outcomes(errors=1)
    assert message in result.stdout.str()
    assert "Traceback" not in result.stdout.str() and "site-packages" not in result.stdout.str()


def test_bad_input_in_a_test_fails_it_with_the_message_and_the_test_line(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny("def test_empty(lm):\n    lm.generate('', max_new_tokens=3)\n")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "InputError: the prompt is empty; pass at least one character of text",
            "(at test_bad_input_in_a_test_fails_it_with_the_message_and_the_test_line.py:2)",
        ]
    )
    assert "site-packages" not in result.stdout.str()


def test_an_unknown_model_is_a_usage_error_with_what_to_pass_instead(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(lm): pass\ndef test_two(lm): pass\n")
    result = pytester.runpytest("-p", "no:randomly", "--lm-model=./no/such/model")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--lm-model: unknown model './no/such/model': no such file or directory, and not a hub id*"]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_model_that_fails_to_load_stops_the_run_with_one_message(
    pytester: pytest.Pytester, tmp_path: Path, workers: list[str]
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    (broken / "model.safetensors").write_bytes(b"not weights")
    pytester.makepyfile("\n".join(f"def test_{i}(lm): pass" for i in range(8)))
    result = pytester.runpytest_subprocess("-p", "no:randomly", f"--lm-model={broken}", *workers)
    outcomes = result.parseoutcomes()
    assert 1 <= outcomes.get("errors", outcomes.get("error", 0)) <= 2  # the first test on each process, no cascade
    assert "passed" not in outcomes
    result.stdout.fnmatch_lines(
        ["*pytest-lmbehave: the model '*broken-model' could not be loaded (ModelLoadError, shown above); stopped*"]
    )
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_hub_id_that_is_not_cached_names_the_id_the_cache_and_the_download_command(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makepyfile("def test_one(lm): pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--lm-model=HuggingFaceTB/SmolLM2-360M")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*HuggingFaceTB/SmolLM2-360M is not in the local Hugging Face cache ({tmp_path / 'hub'}); pytest-lmbehave never downloads.*",
            "*On a connected machine run: hf download HuggingFaceTB/SmolLM2-360M*",
        ]
    )


def test_a_file_that_is_not_a_gguf_is_rejected_by_its_first_bytes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    pytester.makepyfile("def test_one(lm): pass\n")
    result = pytester.runpytest(f"--lm-model={fake}")
    result.stderr.fnmatch_lines(["*weights.gguf is not a GGUF file (it starts with b'PK\\x03\\x04', not b'GGUF')*"])


def test_the_lm_model_marker_loads_each_model_once_per_process(run_with_tiny, tiny_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import build_tiny_model

    other = build_tiny_model(tmp_path / "other-tiny", seed=1)
    result = run_with_tiny(
        f"""
        import pytest

        def test_default(lm, request):
            assert lm.runtime.backend.loaded.source.path.name == "tiny-llama"

        @pytest.mark.lm_model({str(other)!r})
        class TestOther:
            def test_one(self, lm):
                assert lm.runtime.backend.loaded.source.path.name == "other-tiny"

            def test_two(self, lm, request):
                registry = request.config.stash[__import__("pytest_lmbehave.plugin").plugin.SESSION].registry
                assert len(registry.runtimes) == 2
        """
    )
    result.assert_outcomes(passed=3)


def test_raw_model_and_tokenizer_fixtures_are_the_ones_behind_lm(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        """
        def test_raw(lm, model, tokenizer):
            assert model is lm.model and tokenizer is lm.tokenizer
            assert tokenizer("hello")["input_ids"] == list(lm.tokenize("hello").ids)
        """
    )
    result.assert_outcomes(passed=1)


def test_a_crashed_worker_fails_its_test_with_one_message_and_the_report_survives(
    run_with_tiny, pytester: pytest.Pytester
) -> None:  # type: ignore[no-untyped-def]
    import json

    result = run_with_tiny(
        "import os\n\ndef test_fine(lm):\n    lm.tokenize('hello')\n\ndef test_crash(lm):\n    os._exit(3)\n\ndef test_after(lm):\n    lm.tokenize('hello')\n",
        "-n",
        "2",
        "--lm-report=run.json",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running '*::test_crash'*"])
    assert "INTERNALERROR" not in result.stdout.str()
    observed = json.loads((pytester.path / "run.json").read_text())["observations"]
    assert sorted(test.split("::")[-1] for test in observed) == ["test_after", "test_fine"]


def test_a_model_path_given_as_a_separate_argument_is_refused_with_the_equals_form(
    pytester: pytest.Pytester, tiny_model: Path
) -> None:
    """pytest would read the path as a test path when it picks the rootdir, and the plan would be written into a
    common parent outside the project."""
    pytester.makepyfile("def test_next(lm):\n    lm.next_token('hello')\n")
    result = pytester.runpytest("-p", "no:randomly", "--lm-model", str(tiny_model))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--lm-model {tiny_model}: write it as --lm-model={tiny_model}.*rootdir*"])
    assert not (tiny_model.parent / "lmbehave-plan.json").exists()
    pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}").assert_outcomes(passed=1)


def test_a_switch_given_a_folder_is_refused_naming_the_fix_instead_of_collecting_nothing_under_xdist(
    pytester: pytest.Pytester, tiny_model: Path
) -> None:
    """`--lm-cache /tmp/cache` reads like an option with a value; pytest takes the folder for a test path, and under
    xdist a missing test path is not reported: the run said only "no tests ran"."""
    pytester.makepyfile("def test_next(lm):\n    lm.next_token('hello')\n")
    cache = pytester.path / "no-such-cache"
    result = pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}", "-n", "2", "--lm-cache", str(cache))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--lm-cache takes no value, so '{cache}' was read as a test path*LMBEHAVE_CACHE={cache}*"]
    )
    # A test path that is there after a switch is the user's own: taken.
    pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}", "--lm-strict", ".").assert_outcomes(passed=1)
    node = f"{next(pytester.path.glob('test_*.py')).name}::test_next"
    pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}", "--lm-cache", node).assert_outcomes(passed=1)


def test_a_report_path_given_as_a_separate_argument_is_taken_when_the_rootdir_stays(
    pytester: pytest.Pytester, tiny_model: Path
) -> None:
    """The form users copy from every other plugin: refused only when it would move the rootdir, not here."""
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    pytester.makepyfile("def test_next(lm):\n    lm.next_token('hello')\n")
    out = pytester.path.parent / f"{pytester.path.name}-out"
    out.mkdir()
    result = pytester.runpytest("-p", "no:randomly", f"--lm-model={tiny_model}", "--lm-report", f"../{out.name}/r.json")
    result.assert_outcomes(passed=1)
    assert f"rootdir: {pytester.path}" in result.stdout.str()
    assert "test_next" in "".join(json.loads((out / "r.json").read_text())["observations"])


SURFACE_CONFTEST = """
import pytest
from pytest_lmbehave.plugin import markers

READ = []
_read = markers.Marks.read.__func__


def counted(cls, item, base_seed):
    READ.append(item.nodeid)
    return _read(cls, item, base_seed)


markers.Marks.read = classmethod(counted)


def pytest_unconfigure(config):
    ours = sorted(
        name for name, plugin in config.pluginmanager.list_name_plugin()
        if (getattr(plugin, "__name__", None) or type(plugin).__module__).startswith("pytest_lmbehave")
    )
    print("REGISTERED", ours)
    print("MARKS READ", sorted(set(READ)), len(READ))
"""


def test_the_plugin_module_is_the_only_object_that_hooks_and_each_tests_markers_are_read_once(  # type: ignore[no-untyped-def]
    run_with_tiny, pytester: pytest.Pytester, tiny_model: Path
) -> None:
    pytester.makeconftest(SURFACE_CONFTEST)
    result = run_with_tiny(
        f"""
        import pytest

        @pytest.mark.sampled(seed=3)
        @pytest.mark.lm_model({str(tiny_model)!r})
        def test_marked(lm, lm_model_spec):
            assert lm_model_spec == {str(tiny_model)!r}
            lm.generate("hello", max_new_tokens=2)

        def test_plain(lm):
            lm.next_token("hello")
        """,
        "-s",
        f"--lm-report={pytester.path / 'report.json'}",
    )
    result.assert_outcomes(passed=2)
    # No collector, exercise counter, plan or report writer registers hooks of its own: the module does, over one
    # Session; and a test's markers are read once, at its setup, though its fixtures ask for them three times.
    module = "test_the_plugin_module_is_the_only_object_that_hooks_and_each_tests_markers_are_read_once.py"
    lines = result.stdout.lines
    assert "REGISTERED ['lmbehave']" in lines
    assert f"MARKS READ ['{module}::test_marked', '{module}::test_plain'] 2" in lines
    result.stdout.fnmatch_lines(["lmbehave: * observations from 2 tests written to *report.json"])
