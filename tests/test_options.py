"""The option table (``config/options.py``) writes each option once: its flag, ini key, default, parser and help. The
settings take their defaults from it, and the `lmbehave` command checks its numbers with the same parsers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_lmbehave.cli import main
from pytest_lmbehave.config.options import OPTIONS
from pytest_lmbehave.config.settings import Settings, build_settings


def test_each_settings_default_is_its_options_default_as_a_run_with_nothing_given_reads_it() -> None:
    given_nothing = build_settings(lambda option: None)
    assert replace(given_nothing, cache_dir=Settings().cache_dir) == Settings()
    changed = next(o for o in OPTIONS if o.setting == "near_tie")
    assert Settings().near_tie == float(changed.default or "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diff", "a.json", "b.json", "--kl", "-1"], "argument --kl: --kl=-1.0 must be a number >= 0"),
        (["diff", "a.json", "b.json", "--prob", "x"], "argument --prob: --prob='x' is not a number; pass e.g."),
        (["explore", "hello", "--top", "0"], "argument --top: --top=0 is too small; it must be at least 1"),
    ],
)
def test_the_commands_numbers_are_refused_in_the_plugin_options_words(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"lm_reference": "transformers"}, "--lm-reference=transformers names the engine this run uses"),
        ({"lm_reference": "vllm"}, "--lm-reference='vllm' is not supported; choose one of: transformers, llama.cpp"),
        (
            {"lm_reference": "llama.cpp", "lm_server": "http://127.0.0.1:8000/v1"},
            "a server reports only its top candidates, so no exact KL divergence can be taken from it",
        ),
        ({"lm_report_top": "0"}, "--lm-report-top=0 is too small"),
    ],
)
def test_a_reference_or_report_depth_that_cannot_work_is_refused_naming_the_fix(
    given: dict[str, str], message: str
) -> None:
    from pytest_lmbehave.config.errors import SettingsError

    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_settings(lambda option: given.get(option.ini))
